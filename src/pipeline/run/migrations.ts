// Checkpoint compatibility in one place: the steps that bring a checkpoint's state.json (and a run's
// config, in config.json or in state.json) written by an older build to the shape today's code reads.
// Readers then rely on every field: no `?? default` for what older runs lacked anywhere else.
//
// A step goes from one CHECKPOINT_VERSION (run/checkpoint.ts, the manifest's "version") to the next.
// loadCheckpoint applies the steps from the manifest's version on; readManifest accepts every version
// from OLDEST_VERSION on and refuses one from the future. To change the shape of state.json or add a
// flag whose absence must mean something else than its default: bump CHECKPOINT_VERSION, append a step.
//
// Config steps fill only the flags a config lacks (a run records every flag it had), so a config.json,
// which carries no version, is brought forward by the whole chain.
import type { TrainConfig } from "../config/train-config";
import { DEFAULTS } from "../config/train-config";

export interface Migration {
  from: number;
  to: number;
  /** What the step changes, in words. */
  describe: string;
  /** Brings a run config of version `from` to `to` (only flags it lacks are filled). */
  config(config: Record<string, unknown>): Record<string, unknown>;
  /** Brings a state.json of version `from` to `to`; `config` is migrated by the runner. */
  migrate(state: Record<string, any>, manifest?: { version: number; step: number }): Record<string, any>;
}

const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === "object" && !Array.isArray(v);
/** `obj` with `fill`'s entries where `obj` has no such key. */
const fillAbsent = <T extends Record<string, unknown>>(obj: T, fill: Record<string, unknown>): T => {
  const out: Record<string, unknown> = { ...obj };
  for (const [k, v] of Object.entries(fill)) if (!(k in out)) out[k] = v;
  return out as T;
};

/**
 * Flags added while checkpoints were version 1, with what a run from before each one did. Two differ from
 * the flag's default: a run before --agent_input_prior had no prior, one before --group_by_length read
 * the plain shuffled order.
 */
const FLAGS_ADDED_IN_V1: Partial<TrainConfig> = {
  max_batch_tokens: 0,
  group_by_length: "false",
  grad_checkpointing: "off",
  agent_input_prior: 0,
  tensorboard: "true",
  skip_bad_tasks: false,
  validate_on_stop: false,
  augment: false,
  val_ttt_steps: 0,
  dist_timeout: 1800,
  dist_backend: "gloo",
  cuda_graphs: "auto",
  max_nonfinite_steps: 3,
  allow_data_change: false,
};

/**
 * Flags added while checkpoints are version 2 whose absence means their default, so they need no step:
 * savedRunConfig fills them from DEFAULTS (a run before --agent_context conditioned its agent on the
 * prompt alone, which is `prompt`, the default). A flag whose absence means anything else needs a step.
 */
export const DEFAULTED_SINCE_V2: readonly (keyof TrainConfig)[] = ["agent_context", "demo_channels", "demo_layers", "demo_pooling", "before_weight", "run_name", "eval_every", "lr_scheduler", "warmup_steps", "warmup_ratio"];

/** The episodic memory's counters (system/episodic-memory.ts stateJson). */
const MEMORY_COUNTERS = ["updates", "writes", "evictions", "rejected", "reads", "hitReads"] as const;

export const MIGRATIONS: readonly Migration[] = [
  {
    from: 1,
    to: 2,
    describe:
      "flags added during version 1 get what runs before them did (agent_input_prior 0, group_by_length false, the rest their default); " +
      "dataParallel.world 1 (runs before data parallelism); the memory's stamps (write order = row order), clock (its size) and counters (0); " +
      "the refiner's logStdBound (clamp) and updates (0)",
    config: (c) => fillAbsent(c, FLAGS_ADDED_IN_V1),
    migrate(state) {
      const out: Record<string, any> = { ...state, dataParallel: isObject(state.dataParallel) ? state.dataParallel : { world: 1 } };
      if (isObject(state.memory)) {
        const m = state.memory;
        const n = Number.isInteger(m.size) && m.size >= 0 ? m.size : 0;
        out.memory = fillAbsent(m, { stamps: Array.from({ length: n }, (_, i) => i), clock: n, ...Object.fromEntries(MEMORY_COUNTERS.map((k) => [k, 0])) });
      }
      if (isObject(state.refiner)) out.refiner = fillAbsent(state.refiner, { logStdBound: "clamp", updates: 0 });
      return out;
    },
  },
];

/** The oldest checkpoint version the chain brings forward. */
export const OLDEST_VERSION = MIGRATIONS[0]?.from ?? 1;

/** Why a checkpoint of `version` cannot be read by a build that writes `current`, or null when it can. */
export function versionProblem(version: unknown, current: number): string | null {
  if (Number.isSafeInteger(version) && (version as number) >= OLDEST_VERSION && (version as number) <= current) return null;
  const readable = OLDEST_VERSION === current ? `version ${current}` : `versions ${OLDEST_VERSION} to ${current}`;
  const future = Number.isSafeInteger(version) && (version as number) > current ? " (written by a newer build)" : "";
  return `has version ${JSON.stringify(version)}${future}; this build reads ${readable}`;
}

/** The steps from `version` to `current`, in order; throws when the chain has a gap or `version` is outside it. */
export function migrationsFrom(version: number, current: number): Migration[] {
  const steps: Migration[] = [];
  for (let v = version; v < current; ) {
    const step = MIGRATIONS.find((m) => m.from === v);
    if (!step || step.to !== v + 1) throw new Error(`no checkpoint migration from version ${v} to ${v + 1}`);
    steps.push(step);
    v = step.to;
  }
  if (version > current) throw new Error(`checkpoint version ${version} is newer than this build's ${current}`);
  return steps;
}

/**
 * A state.json written at `manifest.version`, brought to version `current` (its config too). Anything
 * that is not a JSON object is returned as it is, for the readers' own checks to name.
 */
export function migrateState(state: unknown, manifest: { version: number; step: number }, current: number): unknown {
  if (!isObject(state)) return state;
  let out = state;
  for (const step of migrationsFrom(manifest.version, current)) {
    out = step.migrate(out, manifest);
    if (isObject(out.config)) out = { ...out, config: step.config(out.config) };
  }
  return out;
}

/** A run config (config.json, which has no version, or a state.json's) with every flag added since filled as that run had it. */
export function migrateConfig(config: Record<string, unknown>): Record<string, unknown> {
  return MIGRATIONS.reduce((c, step) => step.config(c), config);
}

/**
 * A saved run's config as today's TrainConfig: migrated, then any flag still missing (a config written
 * by hand) at its default.
 */
export function savedRunConfig(saved: Record<string, unknown>): TrainConfig {
  return { ...DEFAULTS, ...migrateConfig(saved) } as TrainConfig;
}
