// Running sums over a window of batches: the batch record every --log_every batches and the epoch's
// summary. Both windows are saved in checkpoints, so a resumed run's first record and its epoch summary
// average the same examples as a run that never stopped.
import type { ExampleLogs } from "../system/training-step";

export interface Window {
  batches: number;
  examples: number;
  loss: number;
  efe: number;
  dAcc: number;
  /** Cell accuracy after refinement (absolute; d_acc is only the refinement's change). */
  acc: number;
  mask: number;
  dSize: number;
  rl: number;
  qwenGrad: number;
  optSteps: number;
  skipped: number;
  sizeWeight: number;
}

export const emptyWindow = (): Window => ({ batches: 0, examples: 0, loss: 0, efe: 0, dAcc: 0, acc: 0, mask: 0, dSize: 0, rl: 0, qwenGrad: 0, optSteps: 0, skipped: 0, sizeWeight: 0 });

const avg = (sum: number, n: number) => (n > 0 ? sum / n : 0);

/** Adds a trained example (a non-finite one only counts as skipped). */
export function addExample(w: Window, l: ExampleLogs): void {
  w.examples++;
  if (!l.finite) {
    w.skipped++;
    return;
  }
  w.loss += l.loss;
  w.efe += l.efe;
  w.dAcc += l.dAcc;
  w.acc += l.after.acc;
  w.mask += l.maskRatio;
  w.dSize += l.sizeError;
  w.rl += l.r;
}

/** Adds a batch's size weight, and an optimizer step's Qwen gradient norm. */
export function addBatch(w: Window, sizeWeight: number): void {
  w.batches++;
  w.sizeWeight += sizeWeight;
}
export function addOptimizerStep(w: Window, qwenGradNorm: number): void {
  w.qwenGrad += qwenGradNorm;
  w.optSteps++;
}

/** The window's means, as the batch and epoch records name them. */
export function windowStats(w: Window) {
  const n = w.examples - w.skipped;
  return {
    loss: avg(w.loss, n),
    efe: avg(w.efe, n),
    d_acc: avg(w.dAcc, n),
    acc: avg(w.acc, n),
    mask: avg(w.mask, n),
    d_size: avg(w.dSize, n),
    rl_reward: avg(w.rl, n),
    qwen_grad: avg(w.qwenGrad, w.optSteps),
    size_weight: avg(w.sizeWeight, w.batches),
    skipped: w.skipped,
  };
}
export type WindowStats = ReturnType<typeof windowStats>;
