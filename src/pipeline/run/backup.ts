// The second copy of a checkpoint (`--backup_dir`): a finished checkpoint folder copied elsewhere with
// the same crash-safe protocol (checkpoint.ts) and every file checked against its manifest. Separate
// because it is a job of its own after the save: the run's own checkpoints never depend on it.
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsyncDir, fsyncFile, writeFileAtomic } from "../../util/durable";
import { MANIFEST, copyCheckpointFiles, verifyCheckpoint, writeCheckpointFolder } from "./checkpoint";
import { pruneCheckpoints } from "./retention";
import { CHECKPOINTS, checkpointsDir } from "./run-folder";

export interface MirrorOptions {
  /** Prune the mirrored run to this many step folders afterwards. */
  keepLast?: number;
}

/**
 * Copies a finished checkpoint to a second folder (`--backup_dir`), with the same temp + fsync + rename
 * protocol, checking every copied file against the manifest. A checkpoint of a run lands at
 * `<backupDir>/<run name>/checkpoints/<step_… or best>`, next to copies of the run's config.json and
 * metrics.jsonl, so the backup is itself a run folder that --run accepts; any other folder lands at
 * `<backupDir>/<its name>`. Returns the mirrored folder.
 */
export function mirrorCheckpoint(dir: string, backupDir: string, opts: MirrorOptions = {}): string {
  const src = verifyCheckpoint(dir, { hash: false });
  if (!src.ok) throw new Error(`cannot back up ${dir}: ${src.reason}`);
  const parent = dirname(dir);
  const inRun = basename(parent) === CHECKPOINTS;
  const runDir = inRun ? dirname(parent) : null;
  const destRun = runDir ? join(backupDir, basename(runDir)) : null;
  const destParent = destRun ? checkpointsDir(destRun) : backupDir;
  const final = writeCheckpointFolder(destParent, basename(dir), (tmp) => {
    copyCheckpointFiles(dir, tmp, src.manifest);
    copyFileSync(join(dir, MANIFEST), join(tmp, MANIFEST));
    fsyncFile(join(tmp, MANIFEST));
    const check = verifyCheckpoint(tmp);
    if (!check.ok) throw new Error(`backup copy of ${dir} in ${backupDir} does not match its manifest: ${check.reason}`);
  });
  if (runDir && destRun) {
    for (const f of ["config.json", "metrics.jsonl"]) {
      const from = join(runDir, f);
      if (existsSync(from)) writeFileAtomic(join(destRun, f), readFileSync(from));
    }
    fsyncDir(backupDir);
    if (opts.keepLast !== undefined) pruneCheckpoints(destRun, opts.keepLast, { protect: [final] });
  }
  return final;
}
