// What `--resume` continues from: the run folder, its config (config.json, or the newest checkpoint's
// copy when config.json is gone), the flags a resume may change, and the checkpoints to try, newest
// first by step, best/ (an independent copy, intact even when every step folder is damaged) among them.
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { DEFAULTS, type TrainConfig, UsageError } from "../config/train-config";
import { savedRunConfig } from "./migrations";
import { MANIFEST, STATE, type CheckpointManifest, firstVerified, listCheckpoints, verifyCheckpoint } from "./checkpoint";
import { BEST } from "./retention";
import { writeFileAtomic } from "../../util/durable";
import { checkpointsDir, latestRun } from "./run-folder";

/**
 * Flags a resumed run may change (how long it runs, how it logs and saves, where): none of them changes
 * the numbers it computes. Any other flag given with a value that differs from the run's is an error.
 * `tensorboard` is listed for the report writer's flag (issue 14): where to log is not what is trained.
 */
export const RESUMABLE_OVERRIDES: readonly string[] = [
  "epochs", "max_batches", "log_every", "ckpt_every", "keep_last", "device", "quiet", "backup_dir", "num_threads",
  "run_dir", "validate_on_stop", "tensorboard", "dist_timeout", "dist_backend", "max_nonfinite_steps", "allow_data_change", "eval_every",
];

export interface Candidate {
  dir: string;
  /** Folder name: step_000000050 or best. */
  name: string;
  manifest: CheckpointManifest;
}

/**
 * The checkpoints of a run in the order a resume tries them: newest first by step, best/ after the step
 * folders of its own step.
 * Each is verified (sizes, sha256) only when reached, so a resume from an intact newest checkpoint
 * hashes nothing else. `reject` reports a candidate that failed and names the one tried next.
 */
export class ResumeCandidates {
  private readonly order: { name: string; dir: string; step: number | null }[];
  private i = 0;
  /** "name: reason" of every rejected candidate, for the final error. */
  readonly rejected: string[] = [];

  constructor(readonly runDir: string, private readonly warn: (line: string) => void) {
    this.order = listCheckpoints(runDir).reverse().map((c) => ({ name: basename(c.dir), dir: c.dir, step: c.step }));
    // best/ goes where its step puts it (after the step folders of its step or newer, which it copies or
    // precedes): a damaged newest step folder then falls back to a newer intact best/ rather than to an
    // older step folder. Its manifest's step is read without verifying; an unreadable one goes last.
    const best = join(checkpointsDir(runDir), BEST);
    if (existsSync(join(best, MANIFEST))) {
      const step = manifestStep(best);
      const at = step === null ? -1 : this.order.findIndex((c) => c.step !== null && c.step < step);
      this.order.splice(at < 0 ? this.order.length : at, 0, { name: BEST, dir: best, step: null });
    }
  }

  /** The next candidate that verifies (checked as latestVerifiedCheckpoint checks), or null when none is left. */
  next(): Candidate | null {
    const c = firstVerified(this.remaining(), { onSkip: (dir, why) => this.reject(dir, why) });
    return c && { dir: c.dir, name: c.name, manifest: c.manifest };
  }

  /** The candidates not tried yet, each counted as tried when it is handed out. */
  private *remaining() {
    while (this.i < this.order.length) yield this.order[this.i++];
  }

  /** Records that `dir` cannot be used, telling which checkpoint comes next (or that none is left). */
  reject(dir: string, why: string): void {
    this.rejected.push(`${basename(dir)}: ${why}`);
    const next = this.order[this.i];
    const then = next ? `trying ${next.name === BEST ? "best/ (the best checkpoint, an independent copy)" : next.name}` : "no other checkpoint is left";
    this.warn(`checkpoint ${dir} is unusable (${why}); ${then}`);
  }

  get empty(): boolean {
    return this.order.length === 0;
  }

  /** Every candidate folder in order, verified or not (for finding a config when config.json is gone). */
  get dirs(): string[] {
    return this.order.map((c) => c.dir);
  }
}

/** The step a checkpoint folder's manifest records (read, not verified), or null when it cannot be read. */
function manifestStep(dir: string): number | null {
  try {
    const step = (JSON.parse(readFileSync(join(dir, MANIFEST), "utf8")) as { step?: unknown }).step;
    return Number.isInteger(step) ? (step as number) : null;
  } catch {
    return null;
  }
}

/** The run folder `--resume` names: `latest` is the newest run under --run_dir with a checkpoint. */
export function resumeDir(c: TrainConfig): string {
  if (c.resume === "latest") {
    const dir = latestRun(c.run_dir);
    if (!dir) throw new UsageError(`--resume: no run with a checkpoint under ${c.run_dir}/ (start one without --resume)`);
    return dir;
  }
  const dir = c.resume!;
  if (!existsSync(dir)) throw new UsageError(`--resume ${dir}: no such run folder`);
  if (!existsSync(checkpointsDir(dir)) && !existsSync(join(dir, "config.json")))
    throw new UsageError(`--resume ${dir}: not a run folder (no config.json or checkpoints/ in it)`);
  return dir;
}

function readJson(path: string): { ok: true; value: any } | { ok: false; why: string } {
  try {
    return { ok: true, value: JSON.parse(readFileSync(path, "utf8")) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, why: code === "ENOENT" ? "missing" : `not valid JSON (${(e as Error).message})` };
  }
}
const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * The run's saved config: config.json, or (when it is missing or unreadable) the config in the state.json
 * of the newest checkpoint that verifies and carries one (`dirs`, newest first), which is then written
 * back to config.json (unless opts.restore is false). Flags added since the run started
 * get what the run had (migrations.ts).
 */
export function savedConfig(runDir: string, dirs: readonly string[], warn: (line: string) => void, opts: { restore?: boolean } = {}): TrainConfig {
  const path = join(runDir, "config.json");
  const cj = readJson(path);
  if (cj.ok && isObject(cj.value)) return savedRunConfig(cj.value);
  const why = cj.ok ? "not a JSON object" : cj.why;
  for (const dir of dirs) {
    if (!verifyCheckpoint(dir).ok) continue;
    const st = readJson(join(dir, STATE));
    if (!st.ok || !isObject(st.value) || !isObject(st.value.config)) continue;
    try {
      // A data-parallel run's other ranks read only; rank 0 restores the file.
      if (opts.restore === false) return savedRunConfig(st.value.config);
      writeFileAtomic(path, JSON.stringify(st.value.config, null, 2) + "\n");
      warn(`${path} is ${why}; restored it from ${dir}/${STATE}`);
    } catch (e) {
      warn(`${path} is ${why}; using the config in ${dir}/${STATE} (could not restore the file: ${(e as Error).message})`);
    }
    return savedRunConfig(st.value.config);
  }
  throw new UsageError(`--resume ${runDir}: ${path} is ${why} and no intact checkpoint carries a config`);
}

/**
 * A resumed run's config: the saved one, with the resumable flags given on the command line. A flag that
 * cannot change on resume and is given with a different value is an error naming every such flag.
 */
export function resumedConfig(runDir: string, saved: TrainConfig, explicit: Partial<TrainConfig>, validated: TrainConfig): TrainConfig {
  const conflicts: string[] = [];
  const overrides: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(explicit)) {
    if (k === "resume") continue;
    if (RESUMABLE_OVERRIDES.includes(k)) overrides[k] = v;
    else if (JSON.stringify(v) !== JSON.stringify((saved as unknown as Record<string, unknown>)[k]))
      conflicts.push(`--${k} ${v} (the run has ${JSON.stringify((saved as unknown as Record<string, unknown>)[k])})`);
  }
  if (conflicts.length)
    throw new UsageError(
      `--resume ${runDir}: ${conflicts.length === 1 ? "this flag" : "these flags"} cannot change on resume: ${conflicts.join(", ")}; ` +
        `drop ${conflicts.length === 1 ? "it" : "them"} to continue the run as it was, or start a new run (resumable: ${RESUMABLE_OVERRIDES.filter((k) => k in DEFAULTS).map((k) => `--${k}`).join(", ")})`,
    );
  return { ...saved, ...overrides, device: validated.device, resume: validated.resume } as TrainConfig;
}

/**
 * What a checkpoint's state.json must hold for training to continue from it; the first thing missing, or
 * null. (Checked before anything is loaded, so a checkpoint written by an older or broken build is skipped
 * with a reason instead of failing deep inside the optimizer.)
 */
export function trainingStateProblem(state: unknown): string | null {
  if (!isObject(state)) return `${STATE} is not a JSON object`;
  const p = state.position;
  if (!isObject(p)) return `${STATE} has no "position"`;
  for (const k of ["step", "epoch", "batchInEpoch"]) if (!Number.isSafeInteger(p[k]) || p[k] < 0) return `${STATE} position.${k} is ${JSON.stringify(p[k])}, not a step count`;
  for (const k of ["window", "epochWindow"]) if (!isObject(p[k])) return `${STATE} has no position.${k}`;
  for (const k of ["optimizer", "policyOptimizer"]) if (!isObject(state[k]) || !Array.isArray(state[k].paramGroups)) return `${STATE} has no ${k}.paramGroups`;
  for (const k of ["scaler", "memory", "refiner"]) if (!isObject(state[k])) return `${STATE} has no "${k}"`;
  return null;
}
