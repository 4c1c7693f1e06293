// The Expected-Free-Energy loss (docs/pipeline.md, "EFE loss") on the after-refinement logits at the target size.
//
// Per refinement step t and cell c, with q = softmax(logits) and the preference C_c = label-smoothed
// one-hot of the target (eps 0.1):
//   risk_t       = Σ_c w_c KL(C_c || q_tc) / Σ_c w_c
//   ambiguity_t  = Σ_c w_c H(q_tc) / Σ_c w_c
//   complexity_t = Σ_c w_c KL(q_tc || sg q_(t-1)c) / Σ_c w_c      (t >= 2; the "backward" term)
//   G_t = risk_t + 0.1 ambiguity_t + 0.05 complexity_t;   EFE = Σ_t (t / Σ t') G_t + λ_size CE(size)
// Hard-cell mask w_c = 1 + 1.0 [argmax q_Tc != y_c] (detached). Soft reward R_soft = mean_c q_Tc(y_c).
// Total = 0.7 EFE + 0.3 (-R_soft).
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { type HostTerms, packTerms, unpackTerms } from "./terms";

export interface EfeConfig {
  labelSmoothing: number;
  ambiguityWeight: number;
  complexityWeight: number;
  /** Extra weight of a wrongly predicted cell in the hard-cell mask. */
  maskWeight: number;
  efeWeight: number;
  rewardWeight: number;
}
export const DEFAULT_EFE: EfeConfig = { labelSmoothing: 0.1, ambiguityWeight: 0.1, complexityWeight: 0.05, maskWeight: 1.0, efeWeight: 0.7, rewardWeight: 0.3 };

export interface SizeWarmup {
  start: number;
  end: number;
  /** Share of all training steps over which λ_size goes from start to end. */
  fraction: number;
}
export const DEFAULT_SIZE_WARMUP: SizeWarmup = { start: 1.0, end: 0.5, fraction: 0.3 };

/** λ_size at `step` of `totalSteps`: linear from start to end over the first `fraction`, then end. */
export function sizeWeight(step: number, totalSteps: number, w: SizeWarmup = DEFAULT_SIZE_WARMUP): number {
  const span = w.fraction * Math.max(totalSteps, 1);
  if (span <= 0 || step >= span) return w.end;
  return w.start + ((w.end - w.start) * Math.max(step, 0)) / span;
}

export interface EfeInputs {
  /** [T, h, w, 10] logits at the target size. */
  logits: Tensor;
  /** [h, w] int64 target colours. */
  target: Tensor;
  /** [30] size-head logits over heights 1..30 and widths 1..30. */
  heightLogits: Tensor;
  widthLogits: Tensor;
  /** λ_size for this step. */
  sizeWeight: number;
}

/** The loss and every logged term (objective/terms.ts names them), read back on the host. */
export type EfeTerms = HostTerms & {
  /** 0.7 EFE + 0.3 (-R_soft): the tensor to differentiate. */
  total: Tensor;
  sizeWeight: number;
  /** false when any term is NaN or inf: the caller must skip the step. */
  finite: boolean;
};

/** The EFE loss as device tensors: `total` to differentiate and `logged`, every logged number in one vector. */
export interface EfeDevice {
  total: Tensor;
  /** Every logged term in one detached vector, laid out by objective/terms.ts (packTerms). */
  logged: Tensor;
  steps: number;
  sizeWeight: number;
}

/** The loss without any host transfer (a batch gathers every example's `logged` into one). */
export function efeLossDevice(inp: EfeInputs, cfg: EfeConfig = DEFAULT_EFE): EfeDevice {
  // Computed in float32 (float64 when given, for gradient checks), whatever autocast produced.
  const logits = inp.logits.dtype === "float64" ? inp.logits : inp.logits.float();
  const dtype = logits.dtype;
  const [T, h, w, K] = logits.shape;
  const logq = logits.logSoftmax(-1); // [T, h, w, K]
  const q = logq.exp();
  const y = inp.target.to({ device: logits.device });
  const eps = cfg.labelSmoothing;
  const C = torch.F.oneHot(y, K).to(dtype).mul(1 - eps).add(eps / K); // [h, w, K]
  const logC = C.log();

  // Hard-cell mask from the final step's prediction (no gradient through it).
  const wrong = torch.noGrad(() => q.select(0, T - 1).argmax(-1).ne(y).to(dtype)); // [h, w]
  const wc = wrong.mul(cfg.maskWeight).add(1);
  const wsum = wc.sum();
  const weighted = (perCell: Tensor) => perCell.mul(wc).sum([1, 2]).div(wsum); // [T, h, w] -> [T]

  const risk = weighted(C.mul(logC.sub(logq)).sum(-1));
  const ambiguity = weighted(q.mul(logq).sum(-1).neg());
  let complexity: Tensor;
  if (T > 1) {
    const cur = logq.narrow(0, 1, T - 1);
    const prev = logq.narrow(0, 0, T - 1).detach();
    const kl = weighted(q.narrow(0, 1, T - 1).mul(cur.sub(prev)).sum(-1));
    complexity = torch.cat([torch.zeros([1], { dtype, device: logits.device }), kl]);
  } else {
    complexity = torch.zeros([1], { dtype, device: logits.device });
  }
  const G = risk.add(ambiguity.mul(cfg.ambiguityWeight)).add(complexity.mul(cfg.complexityWeight));
  const stepW = torch.arange(1, T + 1, 1, { dtype, device: logits.device }).div((T * (T + 1)) / 2);
  const dev = logits.device;
  const sizeTarget = (n: number) => torch.tensor([n - 1], { dtype: "int64", device: dev });
  const sizeCe = torch.F.crossEntropy(inp.heightLogits.to(dtype).view(1, -1), sizeTarget(h))
    .add(torch.F.crossEntropy(inp.widthLogits.to(dtype).view(1, -1), sizeTarget(w)));
  const efe = G.mul(stepW).sum().add(sizeCe.mul(inp.sizeWeight));
  const softReward = q.select(0, T - 1).gather(-1, y.unsqueeze(-1)).mean();
  const total = efe.mul(cfg.efeWeight).sub(softReward.mul(cfg.rewardWeight));

  const logged = packTerms({ sizeCe, softReward, maskRatio: wrong.mean(), efe, loss: total }, { risk, ambiguity, complexity, G });
  return { total, logged, steps: T, sizeWeight: inp.sizeWeight };
}

/** EfeTerms from the host copy of `logged`. */
export function efeTermsFrom(total: Tensor, v: number[], steps: number, sizeWeight: number): EfeTerms {
  return { ...unpackTerms(v, steps), total, sizeWeight, finite: v.every(Number.isFinite) };
}

/** The loss and its logged values (one transfer). */
export function efeLoss(inp: EfeInputs, cfg: EfeConfig = DEFAULT_EFE): EfeTerms {
  const d = efeLossDevice(inp, cfg);
  return efeTermsFrom(d.total, d.logged.tolist() as number[], d.steps, d.sizeWeight);
}
