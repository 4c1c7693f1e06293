// Which checkpoints a run keeps: the newest `--keep_last` step folders, and checkpoints/best/, a copy of
// the step folder with the best validation metric so far. Separate from checkpoint.ts, which writes,
// verifies and loads one folder: this file decides which folders stay, and writes through that protocol.
//
//   pruneCheckpoints(run.dir, keepLast, { protect: [dir] });
//   updateBest(run.dir, dir, "val_accuracy", acc);          // checkpoints/best/, swapped in atomically
import { join } from "node:path";
import {
  type BestRecord, type CheckpointManifest, MANIFEST, copyCheckpointFiles, listCheckpoints, readManifest, removeCheckpointFolder,
  verifyCheckpoint, writeCheckpointFolder,
} from "./checkpoint";
import { writeFileSynced } from "../../util/durable";
import { checkpointsDir } from "./run-folder";

/** The folder name of the run's best checkpoint: `<run>/checkpoints/best`. */
export const BEST = "best";

/**
 * Keeps the newest `keepLast` step folders (by step) and removes the rest (renamed aside, then deleted).
 * best/ is never touched; folders in `protect` (e.g. the checkpoint just written) are kept in any case.
 * Returns the removed folders.
 */
export function pruneCheckpoints(runDir: string, keepLast: number, opts: { protect?: string[] } = {}): string[] {
  if (!Number.isInteger(keepLast) || keepLast < 0) throw new Error(`keep_last must be a non-negative integer, got ${keepLast}`);
  const list = listCheckpoints(runDir);
  const protect = new Set((opts.protect ?? []).map((p) => join(p)));
  const removed: string[] = [];
  for (const c of list.slice(0, Math.max(0, list.length - keepLast))) {
    if (protect.has(join(c.dir))) continue;
    removeCheckpointFolder(c.dir);
    removed.push(c.dir);
  }
  return removed;
}

/** best/'s record ({metric, value, step, ...}), or null when there is no usable best/. */
export function readBest(runDir: string): BestRecord | null {
  const r = readManifest(join(checkpointsDir(runDir), BEST));
  if (!r.ok || !r.manifest.best || typeof r.manifest.best.value !== "number") return null;
  return r.manifest.best;
}

/**
 * Makes `stepDir` the run's best checkpoint when `value` beats the recorded best of the same metric
 * (strictly; a missing or unreadable best/ or another metric counts as no record; NaN never wins). The
 * files are copied (not hard-linked: damage to a step folder's file in place must not reach best/) into a
 * temporary folder, verified against the manifest's sha256, and swapped in as checkpoints/best. Returns
 * whether best/ was updated.
 */
export function updateBest(runDir: string, stepDir: string, metricName: string, value: number, higherIsBetter = true): boolean {
  if (!Number.isFinite(value)) return false;
  const cur = readBest(runDir);
  if (cur && cur.metric === metricName && Number.isFinite(cur.value)) {
    const better = higherIsBetter ? value > cur.value : value < cur.value;
    if (!better) return false;
  }
  const src = verifyCheckpoint(stepDir, { hash: false });
  if (!src.ok) throw new Error(`cannot make ${stepDir} the best checkpoint: ${src.reason}`);
  writeCheckpointFolder(checkpointsDir(runDir), BEST, (tmp) => {
    copyCheckpointFiles(stepDir, tmp, src.manifest);
    const manifest: CheckpointManifest = {
      ...src.manifest,
      best: { metric: metricName, value, step: src.manifest.step, higherIsBetter, updated: new Date().toISOString() },
    };
    writeFileSynced(join(tmp, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
    // Hashing the copy checks the source too: a step folder damaged since it was written is never made best.
    const check = verifyCheckpoint(tmp);
    if (!check.ok) throw new Error(`copy of ${stepDir} into best/ does not match its manifest: ${check.reason}`);
  });
  return true;
}
