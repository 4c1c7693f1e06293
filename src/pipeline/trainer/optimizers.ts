// The optimizers of a run and one update: AdamW over the agent (+ W_up) and Qwen's trainable weights, the
// refiner's own Adam, the GradScaler. An update unscales, clips, steps both and zeroes the gradients: a
// fixed number of host reads whatever the batch size (the gradient norms and the scaler's inf check).
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { type System, demoModules, qwenTrainable } from "../system/system";
import { type GradNorms, groupGradNorms } from "./grad-norms";

export interface Optimizers {
  /** AdamW over the agent + the demonstration encoder (and cell attention) + W_up ("agent" group) and Qwen's trainable weights ("qwen" group). */
  opt: torch.AdamW;
  /** The refiner's own Adam (state norm + MLP). */
  refinerOpt: torch.Adam;
  scaler: torch.GradScaler;
  qwenParams: Tensor[];
  refinerParams: Tensor[];
}

export interface OptimizerSettings {
  agentLr: number;
  qwenLr: number;
  weightDecay: number;
  /** GradScaler on (CUDA float16 autocast). */
  scaleLoss: boolean;
}

export function buildOptimizers(sys: System, s: OptimizerSettings): Optimizers {
  const qwenParams = qwenTrainable(sys);
  const groups = [{ name: "agent", params: [...sys.agent.parameters(), ...demoModules(sys).flatMap((m) => m.parameters()), ...sys.refiner.upParameters()], lr: s.agentLr }];
  if (qwenParams.length) groups.push({ name: "qwen", params: qwenParams, lr: s.qwenLr });
  return {
    opt: new torch.AdamW(groups, { weightDecay: s.weightDecay }),
    refinerOpt: sys.refiner.optimizer,
    scaler: new torch.GradScaler({ device: sys.config.device, enabled: s.scaleLoss }),
    qwenParams,
    refinerParams: sys.refiner.policyParameters(),
  };
}

/**
 * Unscale, clip, step both optimizers, zero the gradients. Returns each group's gradient norm before
 * clipping (agent, qwen when it trains, refiner) and their total, Qwen's again as `qwenGradNorm` (0 when frozen). A non-finite gradient norm skips the whole update (both optimizers) and is named in
 * `nonFinite` ("qwen", "agent" or "refiner"): without the GradScaler (fp32, bf16) nothing else would stop
 * NaN reaching the weights. With the GradScaler the agent/Qwen groups are its business (it skips and backs
 * off its scale, as PyTorch's does); only the refiner, whose loss it does not scale, is checked here.
 */
export function optimizerStep(o: Optimizers, clip: number): { qwenGradNorm: number; gradNorms: GradNorms; stepped: boolean; nonFinite: string | null } {
  o.scaler.unscale_(o.opt);
  // One host read for every group's norm (the refiner's Adam is not the GradScaler's: its gradients are as they are).
  const groups: Record<string, Tensor[]> = Object.fromEntries(o.opt.paramGroups.map((g) => [g.name, g.params]));
  const gradNorms = groupGradNorms({ ...groups, refiner: o.refinerParams });
  const qwenGradNorm = o.qwenParams.length ? gradNorms.groups.qwen : 0;
  const norm = torch.clipGradNorm(o.opt.params(), clip);
  const refinerNorm = torch.clipGradNorm(o.refinerParams, clip);
  let nonFinite: string | null = null;
  if (!o.scaler.isEnabled() && !Number.isFinite(norm)) nonFinite = Number.isFinite(qwenGradNorm) ? "agent" : "qwen";
  else if (!Number.isFinite(refinerNorm)) nonFinite = "refiner";
  const stepped = nonFinite === null && o.scaler.step(o.opt);
  o.scaler.update();
  if (nonFinite === null) o.refinerOpt.step();
  o.opt.zeroGrad();
  o.refinerOpt.zeroGrad();
  return { qwenGradNorm, gradNorms, stepped, nonFinite };
}
