// torch.nn.functional: the layer math as functions (F.linear, F.conv2d, F.crossEntropy, ...). The ones
// that only forward to one native op are generated (functional.generated.ts); here are those that take
// PyTorch's keyword options, map reductions to codes, or compose ops.
import { N, TorchError } from "./native";
import { arg, argOpt } from "./args";
import { type Tensor, wrap } from "./tensor";

export * from "./functional.generated";

type Reduction = "none" | "mean" | "sum";
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };
function reduction(r: Reduction | undefined): number {
  const code = REDUCTION[r ?? "mean"];
  if (code === undefined) throw new TorchError(`reduction must be "none", "mean" or "sum", not "${r}"`);
  return code;
}
const pair = (v: number | [number, number]): [number, number] => (Array.isArray(v) ? v : [v, v]);

export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  opts: { stride?: number | [number, number]; padding?: number | [number, number]; dilation?: number | [number, number]; groups?: number } = {},
): Tensor {
  return wrap(
    N.conv2d(arg(x, "conv2d", 0), arg(weight, "conv2d", 1), argOpt(bias, "conv2d", 2), pair(opts.stride ?? 1), pair(opts.padding ?? 0), pair(opts.dilation ?? 1), opts.groups ?? 1),
  );
}

/** Cross entropy of logits [N, C, ...] against class indices [N, ...] (int64). */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  opts: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  const op = "crossEntropy";
  return wrap(N.crossEntropy(arg(logits, op, 0), arg(target, op, 1), argOpt(opts.weight, op, 2), reduction(opts.reduction), opts.ignoreIndex ?? -100, opts.labelSmoothing ?? 0));
}

export const nllLoss = (logProbs: Tensor, target: Tensor, opts: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number } = {}): Tensor =>
  wrap(N.nllLoss(arg(logProbs, "nllLoss", 0), arg(target, "nllLoss", 1), argOpt(opts.weight, "nllLoss", 2), reduction(opts.reduction), opts.ignoreIndex ?? -100));

export const mseLoss = (input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor =>
  wrap(N.mseLoss(arg(input, "mseLoss", 0), arg(target, "mseLoss", 1), reduction(opts.reduction)));

/** KL(target || exp(input)) with input as log-probabilities, as F.kl_div (reduction "batchmean" divides by N). */
export function klDiv(input: Tensor, target: Tensor, opts: { reduction?: Reduction | "batchmean"; logTarget?: boolean } = {}): Tensor {
  const x = arg(input, "klDiv", 0);
  const y = arg(target, "klDiv", 1);
  if (opts.reduction === "batchmean") {
    const s = wrap(N.klDiv(x, y, 2, opts.logTarget ?? false));
    return s.div(input.shape[0]);
  }
  return wrap(N.klDiv(x, y, reduction(opts.reduction), opts.logTarget ?? false));
}

export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, opts: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction } = {}): Tensor {
  const op = "bceWithLogits";
  return wrap(N.bceWithLogits(arg(input, op, 0), arg(target, op, 1), argOpt(opts.weight, op, 2), argOpt(opts.posWeight, op, 3), reduction(opts.reduction)));
}

/**
 * F.interpolate for [N, C, H, W] input to `size` [h, w]. "nearest" picks source index floor(dst * in/out)
 * (PyTorch's legacy nearest); "bilinear" with alignCorners false by default.
 */
export function interpolate(x: Tensor, opts: { size: [number, number]; mode?: "nearest" | "bilinear"; alignCorners?: boolean }): Tensor {
  const mode = opts.mode ?? "nearest";
  return wrap(N.interpolate(arg(x, "interpolate", 0), opts.size, mode, mode === "bilinear" ? (opts.alignCorners ?? false) : undefined));
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
  const op = "scaledDotProductAttention";
  return wrap(N.scaledDotProductAttention(arg(q, op, 0), arg(k, op, 1), arg(v, op, 2), argOpt(opts.attnMask, op, 3), opts.dropoutP ?? 0, opts.isCausal ?? false, opts.scale));
}

/**
 * scaledDotProductAttention for grouped-query attention: q [B, H, T, E], k/v [B, KV, S, E] with H a
 * multiple of KV; query head h reads KV head floor(h / (H / KV)) (transformers' repeat_kv order), with no
 * copy of the keys and values per query head (a masked or non-causal pass folds each KV head's query
 * heads into its query positions; a causal pass uses SDPA's enable_gqa from LibTorch 2.5).
 */
export function gqaAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: { attnMask?: Tensor | null; dropoutP?: number; isCausal?: boolean; scale?: number } = {},
): Tensor {
  const op = "gqaAttention";
  return wrap(N.gqaAttention(arg(q, op, 0), arg(k, op, 1), arg(v, op, 2), argOpt(opts.attnMask, op, 3), opts.dropoutP ?? 0, opts.isCausal ?? false, opts.scale));
}

/** x / max(||x||_p, eps) along dim (F.normalize). */
export function normalize(x: Tensor, opts: { p?: number; dim?: number; eps?: number } = {}): Tensor {
  const n = x.norm(opts.p ?? 2, opts.dim ?? 1, true).clamp(opts.eps ?? 1e-12);
  return x.div(n);
}

/** Cosine similarity along dim (F.cosineSimilarity). */
export function cosineSimilarity(a: Tensor, b: Tensor, dim = 1, eps = 1e-8): Tensor {
  const dot = a.mul(b).sum(dim);
  const na = a.norm(2, dim).clamp(eps);
  const nb = b.norm(2, dim).clamp(eps);
  return dot.div(na.mul(nb));
}
