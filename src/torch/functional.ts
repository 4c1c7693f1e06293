// torch.nn.functional: the layer math as functions (F.linear, F.conv2d, F.crossEntropy, ...).
import { N, TorchError } from "./native";
import { type Tensor, wrap } from "./tensor";

type Reduction = "none" | "mean" | "sum";
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };
function reduction(r: Reduction | undefined): number {
  const code = REDUCTION[r ?? "mean"];
  if (code === undefined) throw new TorchError(`reduction must be "none", "mean" or "sum", not "${r}"`);
  return code;
}
const pair = (v: number | [number, number]): [number, number] => (Array.isArray(v) ? v : [v, v]);

export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor => wrap(N.linear(x?._h, weight?._h, bias?._h));

export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  opts: { stride?: number | [number, number]; padding?: number | [number, number]; dilation?: number | [number, number]; groups?: number } = {},
): Tensor {
  return wrap(N.conv2d(x?._h, weight?._h, bias?._h, pair(opts.stride ?? 1), pair(opts.padding ?? 0), pair(opts.dilation ?? 1), opts.groups ?? 1));
}

export const groupNorm = (x: Tensor, numGroups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor =>
  wrap(N.groupNorm(x?._h, numGroups, weight?._h, bias?._h, eps));

export const layerNorm = (x: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor =>
  wrap(N.layerNorm(x?._h, normalizedShape, weight?._h, bias?._h, eps));

export const embedding = (indices: Tensor, weight: Tensor, paddingIdx = -1): Tensor => wrap(N.embedding(weight?._h, indices?._h, paddingIdx));

export const dropout = (x: Tensor, p = 0.5, training = true): Tensor => wrap(N.dropout(x?._h, p, training));

export const relu = (x: Tensor): Tensor => wrap(N.relu(x?._h));
/** GELU; approximate "none" (erf, PyTorch's default) or "tanh". */
export const gelu = (x: Tensor, approximate: "none" | "tanh" = "none"): Tensor => wrap(N.gelu(x?._h, approximate));
export const silu = (x: Tensor): Tensor => wrap(N.silu(x?._h));
export const sigmoid = (x: Tensor): Tensor => wrap(N.sigmoid(x?._h));
export const tanh = (x: Tensor): Tensor => wrap(N.tanh(x?._h));
export const logSigmoid = (x: Tensor): Tensor => wrap(N.logSigmoid(x?._h));
export const softplus = (x: Tensor, beta = 1, threshold = 20): Tensor => wrap(N.softplus(x?._h, beta, threshold));
export const softmax = (x: Tensor, dim: number): Tensor => x.softmax(dim);
export const logSoftmax = (x: Tensor, dim: number): Tensor => x.logSoftmax(dim);

/** Cross entropy of logits [N, C, ...] against class indices [N, ...] (int64). */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  opts: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  return wrap(N.crossEntropy(logits?._h, target?._h, opts.weight?._h, reduction(opts.reduction), opts.ignoreIndex ?? -100, opts.labelSmoothing ?? 0));
}

export const nllLoss = (logProbs: Tensor, target: Tensor, opts: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number } = {}): Tensor =>
  wrap(N.nllLoss(logProbs?._h, target?._h, opts.weight?._h, reduction(opts.reduction), opts.ignoreIndex ?? -100));

export const mseLoss = (input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor =>
  wrap(N.mseLoss(input?._h, target?._h, reduction(opts.reduction)));

/** KL(target || exp(input)) with input as log-probabilities, as F.kl_div (reduction "batchmean" divides by N). */
export function klDiv(input: Tensor, target: Tensor, opts: { reduction?: Reduction | "batchmean"; logTarget?: boolean } = {}): Tensor {
  if (opts.reduction === "batchmean") {
    const s = wrap(N.klDiv(input?._h, target?._h, 2, opts.logTarget ?? false));
    return s.div(input.shape[0]);
  }
  return wrap(N.klDiv(input?._h, target?._h, reduction(opts.reduction), opts.logTarget ?? false));
}

export const binaryCrossEntropyWithLogits = (input: Tensor, target: Tensor, opts: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction } = {}): Tensor =>
  wrap(N.bceWithLogits(input?._h, target?._h, opts.weight?._h, opts.posWeight?._h, reduction(opts.reduction)));

/**
 * F.interpolate for [N, C, H, W] input to `size` [h, w]. "nearest" picks source index floor(dst * in/out)
 * (PyTorch's legacy nearest); "bilinear" with alignCorners false by default.
 */
export function interpolate(x: Tensor, opts: { size: [number, number]; mode?: "nearest" | "bilinear"; alignCorners?: boolean }): Tensor {
  const mode = opts.mode ?? "nearest";
  return wrap(N.interpolate(x?._h, opts.size, mode, mode === "bilinear" ? (opts.alignCorners ?? false) : undefined));
}

/**
 * softmax(q k^T * scale + mask) v over [..., L, E] queries and [..., S, E] keys. The mask is additive
 * (float) or boolean (true = attend). Fused kernels on LibTorch >= 2.1; a plain path on 1.13.
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: { attnMask?: Tensor | null; dropoutP?: number; isCausal?: boolean; scale?: number } = {},
): Tensor {
  return wrap(N.scaledDotProductAttention(q?._h, k?._h, v?._h, opts.attnMask?._h, opts.dropoutP ?? 0, opts.isCausal ?? false, opts.scale));
}

export const oneHot = (indices: Tensor, numClasses = -1): Tensor => wrap(N.oneHot(indices?._h, numClasses));

/** Constant padding; `pad` lists (before, after) pairs starting from the last dimension, as F.pad. */
export const pad = (x: Tensor, padding: number[], value = 0): Tensor => wrap(N.pad(x?._h, padding, value));

/** x / max(||x||_p, eps) along dim (F.normalize). */
export function normalize(x: Tensor, opts: { p?: number; dim?: number; eps?: number } = {}): Tensor {
  const n = x.norm(opts.p ?? 2, opts.dim ?? 1, true).clamp(opts.eps ?? 1e-12);
  return x.div(n);
}

/** Cosine similarity along dim (F.cosine_similarity). */
export function cosineSimilarity(a: Tensor, b: Tensor, dim = 1, eps = 1e-8): Tensor {
  const dot = a.mul(b).sum(dim);
  const na = a.norm(2, dim).clamp(eps);
  const nb = b.norm(2, dim).clamp(eps);
  return dot.div(na.mul(nb));
}
