// What `--checkpoint best|latest|PATH` (with `--run DIR`) names: a verified checkpoint folder, found
// through the run folders (run-folder.ts) and checked with checkpoint.ts. Separate from checkpoint.ts, which
// knows one folder: this file knows the flags' names and which folder each means, and the errors that
// tell a user what to pass instead.
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type CheckpointManifest, MANIFEST, type VerifyResult, latestVerifiedCheckpoint, parseStepDir, verifyCheckpoint } from "./checkpoint";
import { BEST } from "./retention";
import { isDir } from "../../util/fs";
import { CHECKPOINTS, checkpointsDir, hasCheckpoint, latestRun } from "./run-folder";

export interface ResolveOptions {
  /** `--run DIR`; default: the newest run under `runsBase` that has a checkpoint. */
  runDir?: string;
  /** `--run_dir` (default "runs"). */
  runsBase?: string;
  onSkip?: (dir: string, reason: string) => void;
  /** Told when `best` is damaged and the newest verified step folder is used instead (default: stderr). */
  onFallback?: (message: string) => void;
}
export interface ResolvedCheckpoint {
  dir: string;
  /** The run folder it belongs to (null for a checkpoint folder outside any run). */
  runDir: string | null;
  manifest: CheckpointManifest;
}

const TRAIN_FIRST = "train first with bun scripts/train.ts";

/** A checkpoint that verifies but lists no model weights (a broken writer) cannot be evaluated. */
export const noWeights = (m: CheckpointManifest): string | null => ("model.safetensors" in m.files ? null : `${MANIFEST} lists no model.safetensors (the checkpoint holds no weights)`);

/** verifyCheckpoint, with a checkpoint that holds no weights unusable too. */
function verifyUsable(dir: string): VerifyResult {
  const v = verifyCheckpoint(dir);
  const why = v.ok ? noWeights(v.manifest) : null;
  return why ? { ok: false, reason: why } : v;
}

function latestOrThrow(runDir: string, onSkip?: (dir: string, reason: string) => void): ResolvedCheckpoint {
  const skipped: string[] = [];
  const c = latestVerifiedCheckpoint(runDir, {
    unusable: noWeights,
    onSkip: (d, why) => {
      skipped.push(`${basename(d)}: ${why}`);
      onSkip?.(d, why);
    },
  });
  if (c) return { dir: c.dir, runDir, manifest: c.manifest };
  if (skipped.length) throw new Error(`no intact checkpoint in ${runDir}: ${skipped.join("; ")}`);
  throw new Error(`no checkpoint in ${runDir}: ${TRAIN_FIRST}`);
}

/**
 * Resolves `--checkpoint best|latest|PATH` (with `--run DIR`) to a verified checkpoint folder. `best` is
 * `<run>/checkpoints/best`, `latest` the newest verified step folder; a PATH is a checkpoint folder (or a
 * run folder, meaning its latest). `<run>` defaults to the newest run under `runsBase` with a checkpoint.
 * Errors say what is missing and what to do.
 */
export function resolveCheckpoint(spec: string, opts: ResolveOptions = {}): ResolvedCheckpoint {
  const runsBase = opts.runsBase ?? "runs";
  if (spec === "best" || spec === "latest") {
    let runDir = opts.runDir;
    if (runDir !== undefined) {
      if (!isDir(runDir)) throw new Error(`run folder ${runDir} does not exist`);
    } else {
      runDir = latestRun(runsBase) ?? undefined;
      if (!runDir) throw new Error(`no run with a checkpoint under ${runsBase}/: ${TRAIN_FIRST} (or pass --run DIR or --checkpoint PATH)`);
    }
    if (spec === "latest") return latestOrThrow(runDir, opts.onSkip);
    const dir = join(checkpointsDir(runDir), BEST);
    if (!isDir(dir)) {
      const hint = hasCheckpoint(runDir) ? "use --checkpoint latest" : TRAIN_FIRST;
      throw new Error(`no best checkpoint in ${runDir} (${dir} is written when validation improves --best_metric): ${hint}`);
    }
    const v = verifyUsable(dir);
    if (v.ok) return { dir, runDir, manifest: v.manifest };
    // best/ is damaged: the newest intact step folder is the next best thing, and the caller says so.
    let latest: ResolvedCheckpoint;
    try {
      latest = latestOrThrow(runDir, opts.onSkip);
    } catch (e) {
      throw new Error(`best checkpoint ${dir} is unusable (${v.reason}), and ${(e as Error).message}`);
    }
    (opts.onFallback ?? ((m: string) => process.stderr.write(`${m}\n`)))(`best checkpoint ${dir} is unusable (${v.reason}); using the newest intact checkpoint ${latest.dir} (step ${latest.manifest.step}) instead`);
    return latest;
  }
  const path = spec;
  if (!existsSync(path)) throw new Error(`checkpoint ${path} does not exist`);
  if (!isDir(path)) throw new Error(`checkpoint ${path} is not a folder (a checkpoint is a folder with ${MANIFEST})`);
  if (existsSync(join(path, MANIFEST)) || parseStepDir(basename(path)) !== null || basename(path) === BEST) {
    const v = verifyUsable(path);
    if (!v.ok) throw new Error(`checkpoint ${path} is unusable: ${v.reason}`);
    const parent = dirname(path);
    return { dir: path, runDir: basename(parent) === CHECKPOINTS ? dirname(parent) : null, manifest: v.manifest };
  }
  if (isDir(checkpointsDir(path))) return latestOrThrow(path, opts.onSkip);
  if (basename(path) === CHECKPOINTS) return latestOrThrow(dirname(path), opts.onSkip);
  throw new Error(`${path} is neither a checkpoint folder (no ${MANIFEST}) nor a run folder (no checkpoints/)`);
}
