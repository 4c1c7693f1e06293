// A run folder with known contents for report tests: config.json, metrics.jsonl shaped like the
// trainer's records (batch, epoch and val), and val_latest.json with grids chosen so that every ARC
// colour appears, without training anything.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Gallery } from "../../src/pipeline/observe/report-html";

/** A 3x4 grid holding every colour 0..9 (and 0, 1 again): the cells tests sample. */
export const KNOWN_GRID = [
  [0, 1, 2, 3],
  [4, 5, 6, 7],
  [8, 9, 0, 1],
];
const WRONG = [
  [9, 8, 7, 6],
  [5, 4, 3, 2],
  [1, 0, 9, 8],
];

export function writeRunFixture(dir: string, opts: { cuda?: boolean; steps?: number } = {}): { dir: string; gallery: Gallery } {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ epochs: 2, model: "tiny", data: "synthetic", device: opts.cuda ? "cuda" : "cpu", seed: 0 }, null, 1));
  const lines: string[] = [];
  const steps = opts.steps ?? 40;
  for (let s = 5; s <= steps; s += 5) {
    lines.push(JSON.stringify({
      type: "batch", step: s, epoch: s <= steps / 2 ? 1 : 2, batch: s, loss: 3 - s / 40, efe: 3.2 - s / 30, risk: 2 - s / 50, ambiguity: 0.8, complexity: 0.1 + s / 400, size_ce: 1.5 - s / 40, soft_reward: 0.2, d_acc: 0.01 * Math.sin(s), acc: 0.2 + s / 200,
      mask: 0.5 - s / 200, d_size: 3 - s / 20, rl_reward: -0.1 + s / 400, qwen_grad: 1e-4 * (1 + s / 10), size_weight: 1 - s / steps, skipped: 0,
      theta: 0.3 + s / 1000, memory: s * 2, scale: 65536 / (s > 20 ? 2 : 1), lr_agent: 1e-3, lr_qwen: 5e-4, lr_rl: 1e-3, examples_per_s: 4 + (s % 3),
      rss_mb: 800 + s, ...(opts.cuda ? { gpu_alloc_mb: 1000 + s, gpu_peak_mb: 2000 + s } : {}), time: "2025-01-01T00:00:00.000Z",
    }));
    if (s % 20 === 0) {
      lines.push(JSON.stringify({ type: "epoch", step: s, epoch: s / 20, efe: 3 - s / 30, loss: 2.9 - s / 40 }));
      lines.push(JSON.stringify({
        type: "val", step: s, epochs_done: s / 20, examples: 8, exactFirst: s / 400, exactFirstCount: s / 50, pass2: s / 300, pass2Count: 1,
        cellAcc: 0.3 + s / 500, cellAccBefore: 0.28 + s / 500, accuracyDelta: 0.02, tasksSolved: 1, tasks: 4, seconds: 1.5,
      }));
    }
  }
  writeFileSync(join(dir, "metrics.jsonl"), `${lines.join("\n")}\n`);
  const gallery: Gallery = {
    step: steps,
    examples: 2,
    results: [
      { task: "known", kind: "test", index: 0, input: WRONG, target: KNOWN_GRID, attempts: [WRONG, KNOWN_GRID], firstCorrect: false, correct: true, cellAccBefore: 0.1, cellAccAfter: 1, size: [3, 4], sizeSource: "task", hint: "colours <all>" },
      { task: "other", kind: "train", index: 1, input: [[1]], target: [[2, 2]], attempts: [[[3]], [[2, 3]]], firstCorrect: false, correct: false, cellAccBefore: 0, cellAccAfter: 0.5, size: [1, 2], sizeSource: "head", hint: "" },
    ],
  };
  writeFileSync(join(dir, "val_latest.json"), JSON.stringify(gallery));
  return { dir, gallery };
}
