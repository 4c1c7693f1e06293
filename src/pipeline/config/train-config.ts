// The training command line: flags with defaults, the smoke preset, and validation that
// fails with one line (exit code 2) before any model loads.
import { existsSync, readFileSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ConfigFileError, readConfigFile } from "../../util/config-file";
import { duplicateFlag, joinNegativeValues, parseArgsErrorLine, parseDecimal, parseInteger } from "../../util/flags";
import { dataSpecProblem } from "../../arc/index";
import type { Device } from "../../torch";
import type { AgentContext, QwenTrain } from "../system/system";
import type { DemoPooling } from "../system/demo-encoder";
import { TTT_DEFAULTS } from "../eval/ttt-defaults";
import { LR_SCHEDULE_DEFAULTS, LR_SCHEDULE_FLAGS, type LrSchedulerKind, lrScheduleProblem } from "./lr-schedule";

export type AmpDtype = "fp16" | "bf16" | "none";
export type GradCheckpointing = "off" | "layer" | "mlp";
export type BestMetric = "val_exact" | "val_pass2" | "val_cell_acc" | "accuracy_delta";

export interface TrainConfig {
  epochs: number;
  agent_lr: number;
  qwen_lr: number;
  rl_lr: number;
  weight_decay: number;
  device: string;
  resume: string | null;
  max_batches: number;
  model: string;
  data: string;
  seed: number;
  run_dir: string;
  run_name: string | null;
  batch_size: number;
  max_batch_tokens: number;
  group_by_length: "true" | "false";
  grad_accum: number;
  ckpt_every: number;
  eval_every: number;
  keep_last: number;
  log_every: number;
  best_metric: BestMetric;
  qwen_train: QwenTrain;
  amp_dtype: AmpDtype;
  grad_checkpointing: GradCheckpointing;
  clip: number;
  lr_scheduler: LrSchedulerKind;
  warmup_steps: number;
  warmup_ratio: number;
  max_prompt_tokens: number;
  hint_tokens: number;
  lora_rank: number;
  lora_alpha: number;
  lora_dropout: number;
  agent_channels: number;
  agent_steps: number;
  agent_input_prior: number;
  agent_context: AgentContext;
  demo_channels: number;
  demo_layers: number;
  demo_pooling: DemoPooling;
  before_weight: number;
  memory_capacity: number;
  val_fraction: number;
  val_max: number;
  backup_dir: string | null;
  num_threads: number;
  preset: string | null;
  quiet: boolean;
  tensorboard: "true" | "false";
  skip_bad_tasks: boolean;
  validate_on_stop: boolean;
  augment: boolean;
  val_ttt_steps: number;
  dist_timeout: number;
  dist_backend: "gloo" | "nccl";
  cuda_graphs: "auto" | "off";
  max_nonfinite_steps: number;
  allow_data_change: boolean;
}

interface FlagSpec {
  type: "string" | "boolean";
  kind: "int" | "float" | "string" | "bool";
  help: string;
  choices?: readonly string[];
  min?: number;
  /** Largest value allowed (a function for bounds known only at run time, e.g. the core count). */
  max?: number | (() => number);
}

export const FLAGS: Record<keyof TrainConfig, FlagSpec> = {
  epochs: { type: "string", kind: "int", min: 1, help: "passes over the training examples" },
  agent_lr: { type: "string", kind: "float", help: "AdamW learning rate of the grid agent (and W_up)" },
  qwen_lr: { type: "string", kind: "float", help: "AdamW learning rate of Qwen's trainable weights" },
  rl_lr: { type: "string", kind: "float", help: "Adam learning rate of the RL prompt refiner" },
  weight_decay: { type: "string", kind: "float", help: "AdamW weight decay (both groups)" },
  device: { type: "string", kind: "string", help: "cpu, cuda or cuda:N (default: cuda when available)" },
  resume: { type: "string", kind: "string", help: "continue the latest run under --run_dir, or the run folder given" },
  max_batches: { type: "string", kind: "int", min: 0, help: "stop after this many batches in all (0 = no limit); leaves a checkpoint" },
  model: { type: "string", kind: "string", help: "Hub id, local folder, or tiny (a small random Qwen2 for tests)" },
  data: { type: "string", kind: "string", help: "a folder (training/ + evaluation/), a task file, arc-agi-1, arc-agi-2, synthetic (360 generated training tasks) or synthetic:N (N of them)" },
  seed: { type: "string", kind: "int", min: 0, max: Number.MAX_SAFE_INTEGER, help: "seed of initialisation, data order and sampling" },
  run_dir: { type: "string", kind: "string", help: "where run folders go" },
  run_name: { type: "string", kind: "string", help: "the run's folder under --run_dir and TensorBoard's run name (letters, digits, _ . -; default arc_YYYYMMDD_HHMMSS)" },
  batch_size: { type: "string", kind: "int", min: 1, help: "examples per batch (one Qwen pass, one agent pass)" },
  max_batch_tokens: { type: "string", kind: "int", min: 0, help: "cap on a pass's padded prompt tokens (examples x longest prompt): a batch over it runs as several passes, gradients accumulated (0 = no cap)" },
  group_by_length: { type: "string", kind: "string", choices: ["true", "false"], help: "batch examples of similar prompt length (windows of 256 of the epoch's shuffle, sorted, cut into batches, batches shuffled: less padding); false: the plain shuffled order" },
  grad_accum: { type: "string", kind: "int", min: 1, help: "batches per optimizer step" },
  ckpt_every: { type: "string", kind: "int", min: 0, help: "checkpoint every N batches (and at each epoch's end; 0 = only at epoch ends and on stop)" },
  eval_every: { type: "string", kind: "int", min: 0, help: "validate every N batches too, with a checkpoint so best/ can follow, report.html refreshed (0 = at epoch ends only)" },
  keep_last: { type: "string", kind: "int", min: 1, help: "step checkpoints kept (best/ is kept apart)" },
  log_every: { type: "string", kind: "int", min: 1, help: "print the batch line every N batches" },
  best_metric: { type: "string", kind: "string", choices: ["val_exact", "val_pass2", "val_cell_acc", "accuracy_delta"], help: "what best/ follows" },
  qwen_train: { type: "string", kind: "string", choices: ["lora", "full", "frozen"], help: "how Qwen trains" },
  amp_dtype: { type: "string", kind: "string", choices: ["fp16", "bf16", "none"], help: "autocast dtype (fp16: CUDA only, with a GradScaler; bf16 on CUDA or the CPU; none: full precision)" },
  grad_checkpointing: { type: "string", kind: "string", choices: ["off", "layer", "mlp"], help: "Qwen's activation recomputation: layer keeps only each decoder layer's input and reruns the layer in backward, mlp only the MLP block (most of the memory); each costs one more forward of what it recomputes" },
  clip: { type: "string", kind: "float", help: "gradient clipping max norm" },
  ...LR_SCHEDULE_FLAGS,
  max_prompt_tokens: { type: "string", kind: "int", min: 64, help: "prompt budget; whole demonstrations are dropped to fit" },
  hint_tokens: { type: "string", kind: "int", min: 0, help: "greedy hint tokens Qwen generates before encoding (0 = off)" },
  lora_rank: { type: "string", kind: "int", min: 1, help: "LoRA rank" },
  lora_alpha: { type: "string", kind: "float", help: "LoRA alpha (scaling alpha/rank)" },
  lora_dropout: { type: "string", kind: "float", help: "LoRA dropout" },
  agent_channels: { type: "string", kind: "int", min: 8, help: "grid agent channels d" },
  agent_steps: { type: "string", kind: "int", min: 1, help: "refinement steps T" },
  agent_input_prior: { type: "string", kind: "float", help: "add this times the input's one-hot to every step's logits, head initialised small: the agent starts as the identity and training learns the change (0 = off)" },
  agent_context: { type: "string", kind: "string", choices: ["prompt", "demos", "both", "cells", "demos+cells"] satisfies AgentContext[], help: "what conditions the agent: prompt, Qwen's prompt vector p (the agent of before); demos, the demonstration encoder's c in place of p (Qwen does not run); both, c beside p; cells, p and a per-cell read of the demonstrations (each test-input cell attends over the demonstration cells); demos+cells, c in place of p and the per-cell read (Qwen does not run: the fastest to train where Qwen's weights carry nothing, e.g. --model tiny)" },
  demo_channels: { type: "string", kind: "int", min: 8, help: "demonstration encoder channels (the width of c; every --agent_context but prompt)" },
  demo_layers: { type: "string", kind: "int", min: 0, help: "demonstration encoder conv layers after its stem" },
  demo_pooling: { type: "string", kind: "string", choices: ["mean", "attention"], help: "how a task's demonstration vectors become c: their mean, or attention from the test input" },
  before_weight: { type: "string", kind: "float", help: "weight of the before-refinement pass's loss (the pass that gives attempt 1) beside the after pass's: 0, the design's objective, trains only the pass on p' = p + W_up a" },
  memory_capacity: { type: "string", kind: "int", min: 1, help: "episodic memory entries" },
  val_fraction: { type: "string", kind: "float", help: "share of training tasks held out for validation" },
  val_max: { type: "string", kind: "int", min: 0, help: "validation examples at most (0 = no validation)" },
  backup_dir: { type: "string", kind: "string", help: "mirror each finished checkpoint to this folder" },
  num_threads: { type: "string", kind: "int", min: 0, max: () => availableParallelism() * 4, help: "LibTorch CPU threads (0 = every core; at most 4 per core)" },
  preset: { type: "string", kind: "string", choices: ["smoke"], help: "smoke: tiny model, synthetic data, small agent: a CPU run of a minute" },
  quiet: { type: "boolean", kind: "bool", help: "no progress bar" },
  tensorboard: { type: "string", kind: "string", choices: ["true", "false"], help: "TensorBoard event files in <run>/tb/ (tensorboard --logdir runs)" },
  skip_bad_tasks: { type: "boolean", kind: "bool", help: "skip (and list) task files that fail validation; without it, any bad file stops the run, all listed" },
  validate_on_stop: { type: "boolean", kind: "bool", help: "on Ctrl-C/SIGTERM, validate before the final checkpoint (default: checkpoint only)" },
  augment: { type: "boolean", kind: "bool", help: "train each example under a random dihedral transform and colour permutation (0 kept), prompt and grids alike" },
  val_ttt_steps: { type: "string", kind: "int", min: 0, help: `test-time training steps per task in validation (eval.ts --ttt_steps; lr ${TTT_DEFAULTS.lr}, ${TTT_DEFAULTS.batch} demonstrations a step; 0 = off)` },
  dist_timeout: { type: "string", kind: "float", help: "data-parallel runs (WORLD_SIZE > 1): seconds a rank waits for the others in a collective before it fails" },
  cuda_graphs: { type: "string", kind: "string", choices: ["auto", "off"], help: "replay each hint decode step as a CUDA graph (CUDA builds on LibTorch >= 2.1, greedy decoding; auto falls back to eager, saying so, if a capture fails)" },
  max_nonfinite_steps: { type: "string", kind: "int", min: 0, help: "stop the run (exit code 3, naming the loss term or parameter group) at the Nth optimizer step whose loss or gradients were non-finite; such steps are skipped and counted (0 = never stop)" },
  allow_data_change: { type: "boolean", kind: "bool", help: "resume even when the run's task set has changed (tasks added, removed or edited); the change is recorded in metrics.jsonl" },
  dist_backend: { type: "string", kind: "string", choices: ["gloo", "nccl"], help: "data-parallel runs: gloo (CPU tensors; CUDA gradients go through host copies) or nccl (CUDA builds, --device cuda, one GPU per rank); given under a launcher with WORLD_SIZE=1, a group of one" },
};

export const DEFAULTS: TrainConfig = {
  epochs: 20,
  agent_lr: 1e-4,
  qwen_lr: 1e-4,
  rl_lr: 1e-4,
  weight_decay: 0.01,
  device: "auto",
  resume: null,
  max_batches: 0,
  model: "Qwen/Qwen2.5-1.5B-Instruct",
  data: "arc-agi-2",
  seed: 0,
  run_dir: "runs",
  run_name: null,
  batch_size: 4,
  max_batch_tokens: 0,
  group_by_length: "true",
  grad_accum: 1,
  ckpt_every: 50,
  eval_every: 0,
  keep_last: 5,
  log_every: 50,
  best_metric: "val_exact",
  qwen_train: "lora",
  amp_dtype: "none",
  grad_checkpointing: "off",
  clip: 1.0,
  ...LR_SCHEDULE_DEFAULTS,
  max_prompt_tokens: 2048,
  hint_tokens: 16,
  lora_rank: 16,
  lora_alpha: 32,
  lora_dropout: 0.05,
  agent_channels: 128,
  agent_steps: 5,
  agent_input_prior: 2,
  agent_context: "prompt",
  demo_channels: 64,
  demo_layers: 3,
  demo_pooling: "mean",
  before_weight: 0,
  memory_capacity: 2048,
  val_fraction: 0.05,
  val_max: 256,
  backup_dir: null,
  num_threads: 0,
  preset: null,
  quiet: false,
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
 * Defaults on CUDA, where a flag is given neither on the command line nor by a preset: what the H200
 * measurements chose (docs/pipeline.md, "Measurements behind the design"). Batches of 16 fill the GPU
 * (at 4 a fixed cost per batch dominates); bf16 is the dtype Qwen's checkpoints are in (fp16 autocast
 * recasts every frozen weight at every call, and needs the GradScaler); recomputing the MLP in backward
 * and capping a pass at 24576 prompt tokens (only the longest batches, 16 prompts near the 2048-token
 * budget, split in two) bring the peak under a 40 GB card's memory, at some cost in speed. On a card with room to spare,
 * --grad_checkpointing off --max_batch_tokens 0 is the fastest.
 */
export const CUDA_DEFAULTS: Partial<TrainConfig> = { batch_size: 16, amp_dtype: "bf16", grad_checkpointing: "mlp", max_batch_tokens: 24576 };

/** The config with CUDA_DEFAULTS applied where the device is CUDA and neither the command line nor the preset set the flag. */
export function withDeviceDefaults(c: TrainConfig, explicit: Partial<TrainConfig>): TrainConfig {
  if (!String(c.device).startsWith("cuda")) return c;
  const preset = c.preset ? (PRESETS[c.preset] ?? {}) : {};
  const out = { ...c } as Record<string, unknown>;
  for (const [k, v] of Object.entries(CUDA_DEFAULTS)) if (!(k in explicit) && !(k in preset)) out[k] = v;
  return out as unknown as TrainConfig;
}

/** `--preset smoke`: a complete run (prompt, hint, LoRA, agent, RL, memory, checkpoints) in about a minute on 2 CPU cores. */
export const PRESETS: Record<string, Partial<TrainConfig>> = {
  smoke: {
    model: "tiny",
    data: "synthetic",
    epochs: 1,
    batch_size: 2,
    agent_channels: 32,
    max_prompt_tokens: 1024,
    hint_tokens: 4,
    lora_rank: 8,
    lora_alpha: 16,
    log_every: 5,
    ckpt_every: 5,
    val_max: 8,
    memory_capacity: 256,
    agent_lr: 1e-3,
    qwen_lr: 1e-3,
    rl_lr: 1e-3,
  },
};

/** A one-line usage error (exit code 2). */
export class UsageError extends Error {}

export function helpText(): string {
  const lines = ["Usage: bun scripts/train.ts [flags]", "", "Train the ARC system (docs/pipeline.md). Flags (default in brackets):"];
  for (const [name, spec] of Object.entries(FLAGS)) {
    const d = DEFAULTS[name as keyof TrainConfig];
    const choices = spec.choices ? ` {${spec.choices.join("|")}}` : "";
    // A flag whose default depends on the device says both: [the CPU's] (on CUDA: the GPU's).
    const shown = name in CUDA_DEFAULTS ? `[${d === null ? "none" : d} on the CPU] (on CUDA: ${CUDA_DEFAULTS[name as keyof TrainConfig]})` : `[${d === null ? "none" : d}]`;
    lines.push(`  --${name.padEnd(18)} ${spec.help}${choices} ${shown}`);
  }
  lines.push("", "  --config FILE        flags from a JSON or YAML file (a run's own config.json too); flags on the command line win");
  lines.push("", "Examples:", "  bun scripts/train.ts --epochs 20 --agent_lr 1e-4 --qwen_lr 1e-4 --device cuda", "  bun scripts/train.ts --preset smoke --max_batches 10 --device cpu", "  bun scripts/train.ts --resume            # continue the latest run");
  return lines.join("\n");
}

function parseValue(name: string, spec: FlagSpec, raw: string | boolean): unknown {
  if (spec.kind === "bool") return raw === true;
  const s = String(raw);
  if (spec.kind === "int") {
    if (!/^[+-]?\d+$/.test(s.trim())) throw new UsageError(`--${name} must be an integer, got "${s}"`);
    const v = parseInteger(s);
    const max = typeof spec.max === "function" ? spec.max() : spec.max;
    if (v === null) throw new UsageError(`--${name} ${s} is too large${max !== undefined ? ` (at most ${max})` : ""}`);
    if (spec.min !== undefined && v < spec.min) throw new UsageError(`--${name} must be >= ${spec.min}, got ${v}`);
    if (max !== undefined && v > max) throw new UsageError(`--${name} must be <= ${max}, got ${v}`);
    return v;
  }
  if (spec.kind === "float") {
    const v = parseDecimal(s);
    if (v === null) throw new UsageError(`--${name} must be a decimal number (like 1e-4 or 0.5), got "${s}"`);
    return v;
  }
  if (spec.choices && !spec.choices.includes(s)) throw new UsageError(`--${name} must be one of ${spec.choices.join(", ")}, got "${s}"`);
  return s;
}

export interface ParsedArgs {
  config: TrainConfig;
  /** Flags given on the command line (they override a resumed run's saved config). */
  explicit: Partial<TrainConfig>;
  help: boolean;
}

/** Parses argv (without the runtime and script). `--resume` alone means the latest run. */
export function parseTrainArgs(argv: string[]): ParsedArgs {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" }, config: { type: "string" } };
  for (const [k, v] of Object.entries(FLAGS)) options[k] = { type: v.type };
  // `--resume` alone means the latest run; `--resume ""` (an unset shell variable) is an error below.
  const args = [...argv];
  const i = args.indexOf("--resume");
  if (i >= 0 && (i === args.length - 1 || args[i + 1].startsWith("--"))) args.splice(i, 1, "--resume=latest");
  const joined = joinNegativeValues(args, options);
  const dup = duplicateFlag(joined, options);
  if (dup) throw new UsageError(`--${dup} is given more than once`);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: joined, options, strict: true, allowPositionals: false }) as { values: Record<string, string | boolean | undefined> });
  } catch (e) {
    throw new UsageError(parseArgsErrorLine(e, Object.keys(options)));
  }
  // --config FILE: its flags count as given (for the CUDA defaults and a resume's checks); the command line's win.
  const fromFile = typeof values.config === "string" ? configFileFlags(values.config) : {};
  const explicit: Partial<TrainConfig> = { ...fromFile };
  for (const [k, spec] of Object.entries(FLAGS)) {
    const raw = values[k];
    if (raw === undefined) continue;
    (explicit as Record<string, unknown>)[k] = parseValue(k, spec, raw);
  }
  const preset = explicit.preset ? PRESETS[explicit.preset] : {};
  const config: TrainConfig = { ...DEFAULTS, ...preset, ...explicit };
  return { config, explicit, help: values.help === true };
}

/** Keys a run's config.json may hold with null (the flag not given). */
const NULLABLE = Object.keys(DEFAULTS).filter((k) => DEFAULTS[k as keyof TrainConfig] === null);

/** The flags a --config file sets (JSON or YAML; a run's own config.json included); a bad key or value is a UsageError naming it. */
function configFileFlags(path: string): Partial<TrainConfig> {
  if (path === "") throw new UsageError("--config was given an empty value (an unset shell variable?)");
  try {
    // A run's config.json records `resume` as null; giving it in a file would be a resume, which --resume says.
    const values = readConfigFile(path, FLAGS, { nullable: NULLABLE, ignore: ["resume"] });
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(values)) out[k] = parseValue(k, FLAGS[k as keyof TrainConfig], typeof v === "boolean" ? v : String(v));
    return out as Partial<TrainConfig>;
  } catch (e) {
    if (e instanceof ConfigFileError) throw new UsageError(`--config ${e.message}`);
    if (e instanceof UsageError) throw new UsageError(`--config ${path}: ${e.message}`);
    throw e;
  }
}

/**
 * Checkpoints and validations happen only at optimizer steps, so --ckpt_every and --eval_every must be
 * multiples of --grad_accum (otherwise the interval would silently stretch to a common multiple of the two).
 */
export function checkCheckpointInterval(c: Pick<TrainConfig, "ckpt_every" | "grad_accum"> & Partial<Pick<TrainConfig, "eval_every">>): void {
  for (const flag of ["ckpt_every", "eval_every"] as const) {
    const n = c[flag] ?? 0;
    if (n % c.grad_accum === 0) continue;
    const up = Math.ceil(n / c.grad_accum) * c.grad_accum;
    const what = flag === "ckpt_every" ? "checkpoints are written" : "validation runs";
    throw new UsageError(`--${flag} ${n} is not a multiple of --grad_accum ${c.grad_accum}: ${what} only at optimizer steps (every ${c.grad_accum} batches); give --${flag} ${up}${up - c.grad_accum > 0 ? ` or ${up - c.grad_accum}` : ""}`);
  }
}

/** Checks what can be checked before loading anything (devices, data paths, numbers). */
export function validateConfig(c: TrainConfig, env: { cudaAvailable: boolean; cudaDevices: number }): TrainConfig {
  if (c.resume === "") throw new UsageError(`--resume was given an empty value (an unset shell variable?); give a run folder, or --resume alone for the latest run`);
  if (c.run_dir.trim() === "") throw new UsageError(`--run_dir was given an empty value; give a folder (default: runs)`);
  if (existsSync(c.run_dir) && !statSync(c.run_dir).isDirectory()) throw new UsageError(`--run_dir ${c.run_dir} is a file, not a folder`);
  if (c.backup_dir === "") throw new UsageError(`--backup_dir was given an empty value; give a folder or leave the flag out`);
  if (c.backup_dir && resolve(c.backup_dir) === resolve(c.run_dir)) throw new UsageError(`--backup_dir ${c.backup_dir} is --run_dir itself; a backup must live elsewhere`);
  if (!(c.lora_alpha > 0)) throw new UsageError(`--lora_alpha must be positive, got ${c.lora_alpha}`);
  for (const k of ["agent_lr", "qwen_lr", "rl_lr"] as const) if (!(c[k] > 0)) throw new UsageError(`--${k} must be positive, got ${c[k]}`);
  if (!(c.weight_decay >= 0)) throw new UsageError(`--weight_decay must be >= 0, got ${c.weight_decay}`);
  if (!(c.clip > 0)) throw new UsageError(`--clip must be positive, got ${c.clip}`);
  if (!(c.before_weight >= 0 && Number.isFinite(c.before_weight))) throw new UsageError(`--before_weight must be a finite number >= 0, got ${c.before_weight}`);
  if (!c.resume) checkCheckpointInterval(c);
  const schedule = lrScheduleProblem(c);
  if (schedule) throw new UsageError(schedule);
  if (c.run_name !== null) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(c.run_name)) throw new UsageError(`--run_name ${JSON.stringify(c.run_name)} is not a plain folder name (letters, digits, "_", ".", "-", not starting with "." or "-")`);
    if (c.resume) throw new UsageError(`--run_name names a new run; --resume ${c.resume} continues an existing one (leave --run_name out)`);
    if (existsSync(join(c.run_dir, c.run_name))) throw new UsageError(`--run_name ${c.run_name}: ${join(c.run_dir, c.run_name)} already exists; --resume ${join(c.run_dir, c.run_name)} continues it, or choose another name`);
  }
  if (!(c.dist_timeout > 0)) throw new UsageError(`--dist_timeout must be positive (seconds), got ${c.dist_timeout}`);
  if (!(c.val_fraction >= 0 && c.val_fraction < 1)) throw new UsageError(`--val_fraction must be in [0, 1), got ${c.val_fraction}`);
  if (!(c.lora_dropout >= 0 && c.lora_dropout < 1)) throw new UsageError(`--lora_dropout must be in [0, 1), got ${c.lora_dropout}`);
  if (c.agent_channels % Math.min(8, c.agent_channels) !== 0) throw new UsageError(`--agent_channels must be a multiple of 8, got ${c.agent_channels}`);
  if (c.demo_channels % 8 !== 0) throw new UsageError(`--demo_channels must be a multiple of 8, got ${c.demo_channels}`);
  let device = c.device;
  if (device === "auto") device = env.cudaAvailable ? "cuda" : "cpu";
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (device !== "cpu" && !m) throw new UsageError(`--device must be cpu, cuda or cuda:N, got "${c.device}"`);
  if (m && !env.cudaAvailable) throw new UsageError(`--device ${device}: CUDA is not available (no GPU, or LibTorch built without CUDA); use --device cpu`);
  if (m?.[1] && Number(m[1]) >= env.cudaDevices) throw new UsageError(`--device ${device}: only ${env.cudaDevices} CUDA device(s)`);
  const cuda = device.startsWith("cuda");
  if (!cuda && c.amp_dtype === "fp16") c = { ...c, amp_dtype: "none" }; // fp16 autocast is a CUDA feature
  const dataProblem = dataSpecProblem(c.data);
  if (dataProblem) throw new UsageError(`--data ${dataProblem}`);
  if (c.model !== "tiny" && (c.model.startsWith(".") || c.model.startsWith("/")) && !(existsSync(c.model) && statSync(c.model).isDirectory()))
    throw new UsageError(`--model ${c.model}: no such folder (give a Hub id like Qwen/Qwen2.5-1.5B-Instruct, a model folder, or tiny)`);
  if (c.model !== "tiny" && existsSync(c.model) && statSync(c.model).isDirectory()) checkModelJson(c.model);
  if (c.backup_dir && existsSync(c.backup_dir) && !statSync(c.backup_dir).isDirectory()) throw new UsageError(`--backup_dir ${c.backup_dir} is not a folder`);
  for (const [flag, p] of [["--run_dir", c.run_dir], ["--backup_dir", c.backup_dir]] as const) {
    if (!p) continue;
    let at = resolve(p);
    while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
    if (!statSync(at).isDirectory()) throw new UsageError(`${flag} ${p}: ${at} is a file, so the folder cannot be made`);
  }
  return { ...c, device: device as Device };
}

/** A model folder's config.json must exist and be a JSON object (its contents are checked when it loads). */
function checkModelJson(folder: string): void {
  const path = join(folder, "config.json");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new UsageError(`--model ${folder}: no config.json in this folder (a model folder holds config.json, tokenizer.json and the weights)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--model ${folder}: ${path} is not valid JSON (${(e as Error).message}${text.length === 0 ? ", the file is empty" : ""})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new UsageError(`--model ${folder}: ${path} is not a JSON object`);
}
