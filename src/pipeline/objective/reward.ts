// Reward shaping (docs/pipeline.md, "Reward"): four metrics of a hard prediction at the target size, and their mix.
// Pure functions of plain grids, so they are cheap, exact and easy to test.
import type { Grid } from "../../arc/types";

export interface RewardWeights {
  acc: number;
  size: number;
  colour: number;
  exact: number;
}
export const DEFAULT_REWARD_WEIGHTS: RewardWeights = { acc: 0.4, size: 0.2, colour: 0.2, exact: 0.2 };

export interface RewardMetrics {
  /** Share of cells equal to the target (prediction already at the target size). */
  acc: number;
  /** 1 when the predicted size is right, else the IoU of the two rectangles anchored at the origin. */
  size: number;
  /** Sum over colours of min(predicted share, target share). */
  colour: number;
  /** 1 when the size is right and every cell equal. */
  exact: number;
  /** The weighted mix R in [0, 1]. */
  R: number;
}

export function cellAccuracy(pred: Grid, target: Grid): number {
  let same = 0;
  let n = 0;
  for (let i = 0; i < target.length; i++) {
    for (let j = 0; j < target[i].length; j++) {
      n++;
      if (pred[i]?.[j] === target[i][j]) same++;
    }
  }
  return n ? same / n : 0;
}

/** IoU of an h1 x w1 and an h2 x w2 rectangle sharing the top-left corner. */
export function sizeScore(predSize: [number, number], targetSize: [number, number]): number {
  const [h1, w1] = predSize;
  const [h2, w2] = targetSize;
  if (h1 === h2 && w1 === w2) return 1;
  const inter = Math.min(h1, h2) * Math.min(w1, w2);
  return inter / (h1 * w1 + h2 * w2 - inter);
}

function histogram(g: Grid): number[] {
  const h = new Array(10).fill(0);
  let n = 0;
  for (const row of g) {
    for (const c of row) {
      h[c]++;
      n++;
    }
  }
  return h.map((v) => v / Math.max(n, 1));
}

export function colourScore(pred: Grid, target: Grid): number {
  const a = histogram(pred);
  const b = histogram(target);
  return a.reduce((s, v, i) => s + Math.min(v, b[i]), 0);
}

/**
 * The metrics of `pred` (already resized to the target's size) against `target`, where `predSize` is
 * the size the size head predicted.
 */
export function reward(pred: Grid, predSize: [number, number], target: Grid, w: RewardWeights = DEFAULT_REWARD_WEIGHTS): RewardMetrics {
  const targetSize: [number, number] = [target.length, target[0].length];
  const acc = cellAccuracy(pred, target);
  const size = sizeScore(predSize, targetSize);
  const colour = colourScore(pred, target);
  const exact = size === 1 && acc === 1 ? 1 : 0;
  const total = w.acc + w.size + w.colour + w.exact;
  const R = (w.acc * acc + w.size * size + w.colour * colour + w.exact * exact) / total;
  return { acc, size, colour, exact, R };
}

/** ARC's rule: a prediction is right when it has the target's exact size and every cell. */
export function exactMatch(pred: Grid, target: Grid): boolean {
  return pred.length === target.length && pred.every((row, i) => row.length === target[i].length && row.every((c, j) => c === target[i][j]));
}
