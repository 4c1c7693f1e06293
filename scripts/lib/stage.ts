// What the stage scripts (scripts/prompt.ts, agent.ts, step.ts) share: their common flags, one-line usage
// errors (exit 2), finding the task and pair, building the system, and the head of their JSON output.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { Example, Task } from "../../src/arc/index.ts";
import { DEFAULTS, type TrainConfig } from "../../src/pipeline/config/train-config.ts";

/** The shared ARC-AGI-2 copy next to the checkout, the default --data when it exists. */
export const SHARED_ARC2 = join(import.meta.dir, "..", "..", "..", "shared", "data", "arc", "ARC-AGI-2");
export const defaultData = (): string => (existsSync(SHARED_ARC2) ? SHARED_ARC2 : "synthetic");

/**
 * The system flags' defaults: the trainer's (config/train-config.ts DEFAULTS, which buildStageSystem
 * starts from too), except the model: the tiny random Qwen2, so that a stage runs without a download.
 */
export const STAGE_DEFAULTS = {
  model: "tiny",
  qwen_train: DEFAULTS.qwen_train,
  lora_rank: DEFAULTS.lora_rank,
  lora_alpha: DEFAULTS.lora_alpha,
  max_prompt_tokens: DEFAULTS.max_prompt_tokens,
  hint_tokens: DEFAULTS.hint_tokens,
  agent_channels: DEFAULTS.agent_channels,
  agent_steps: DEFAULTS.agent_steps,
  memory_capacity: DEFAULTS.memory_capacity,
  rl_lr: DEFAULTS.rl_lr,
  seed: DEFAULTS.seed,
} satisfies Partial<TrainConfig>;

/** A default as the help and the flag parser show it: 1e-4, not 0.0001. */
const shown = (v: string | number): string => (typeof v === "number" && v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v));
const D = Object.fromEntries(Object.entries(STAGE_DEFAULTS).map(([k, v]) => [k, shown(v)])) as Record<keyof typeof STAGE_DEFAULTS, string>;

export const COMMON_HELP = `Example:
  --task ID               a task id in --data, a task file (.json), or a synthetic id FAMILY-SEED (required)
  --pair N                which pair (default 0): a train pair, left out of the prompt (its output is the target)
  --test                  use test pair N instead (the prompt shows every train pair)
  --data SPEC             a folder, a task file, arc-agi-1, arc-agi-2, synthetic or synthetic:N
                          (default ../shared/data/arc/ARC-AGI-2 when it exists, else synthetic)

System (as scripts/train.ts builds it, untrained):
  --model M               "${D.model}" (default: random 2-layer Qwen2, real tokenizer), a Hub id or a local folder
  --qwen_train T          ${["lora", "full", "frozen"].map((t) => (t === D.qwen_train ? `${t} (default)` : t)).join(", ").replace(/, (?=[^,]*$)/, " or ")}
  --lora_rank N           default ${D.lora_rank}
  --lora_alpha X          default ${D.lora_alpha}
  --max_prompt_tokens N   prompt budget; whole demonstrations are dropped from the end (default ${D.max_prompt_tokens})
  --hint_tokens N         greedy hint tokens (default ${D.hint_tokens}, 0 = off)
  --agent_channels N      grid agent channels d (default ${D.agent_channels})
  --agent_steps N         refinement steps T (default ${D.agent_steps})
  --memory_capacity N     episodic memory entries (default ${D.memory_capacity})
  --rl_lr X               the refiner's Adam learning rate (default ${D.rl_lr})
  --seed N                seed of every initialisation and of sampling (default ${D.seed})
  --device D              cpu, cuda or cuda:N (default cuda when available, else cpu)
  --json                  one JSON object instead of text
  --help                  this text

Exit codes: 0 ok, 1 data or model error, 2 bad arguments (unknown task, pair out of range included).`;

export const COMMON_OPTIONS = {
  task: { type: "string" },
  pair: { type: "string", default: "0" },
  test: { type: "boolean" },
  data: { type: "string" },
  model: { type: "string", default: D.model },
  qwen_train: { type: "string", default: D.qwen_train },
  lora_rank: { type: "string", default: D.lora_rank },
  lora_alpha: { type: "string", default: D.lora_alpha },
  max_prompt_tokens: { type: "string", default: D.max_prompt_tokens },
  hint_tokens: { type: "string", default: D.hint_tokens },
  agent_channels: { type: "string", default: D.agent_channels },
  agent_steps: { type: "string", default: D.agent_steps },
  memory_capacity: { type: "string", default: D.memory_capacity },
  rl_lr: { type: "string", default: D.rl_lr },
  seed: { type: "string", default: D.seed },
  device: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsConfig["options"];

/** A bad argument: the script prints one line and exits with code 2. */
export class UsageError extends Error {}

export interface StageArgs {
  task: string;
  pair: number;
  test: boolean;
  data: string;
  model: string;
  qwen_train: "lora" | "full" | "frozen";
  lora_rank: number;
  lora_alpha: number;
  max_prompt_tokens: number;
  hint_tokens: number;
  agent_channels: number;
  agent_steps: number;
  memory_capacity: number;
  rl_lr: number;
  seed: number;
  device: string;
  json: boolean;
}

function int(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const x = Number(v);
  if (v === undefined || !/^\d+$/.test(v.trim()) || !Number.isSafeInteger(x) || x < min || x > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`;
    throw new UsageError(`--${name} must be an integer ${range}, got "${v}"`);
  }
  return x;
}

function positive(name: string, v: string | undefined): number {
  const x = Number(v);
  if (v === undefined || v.trim() === "" || !Number.isFinite(x) || x <= 0) throw new UsageError(`--${name} must be a positive number, got "${v}"`);
  return x;
}

/**
 * Parses a stage script's argv: the common flags plus `extra`. Returns null for --help (after printing
 * `usage`). Throws UsageError for anything wrong, before any model loads.
 */
export function parseStageArgs<E extends ParseArgsConfig["options"]>(
  argv: string[],
  usage: string,
  extra: E = {} as E,
): { args: StageArgs; values: Record<string, string | boolean | undefined> } | null {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...extra }, strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
  if (values.help) {
    process.stdout.write(usage + "\n");
    return null;
  }
  const str = (k: string) => values[k] as string | undefined;
  const task = str("task");
  if (!task) throw new UsageError("--task ID is required");
  const qwenTrain = str("qwen_train")!;
  if (!["lora", "full", "frozen"].includes(qwenTrain)) throw new UsageError(`--qwen_train must be lora, full or frozen, got "${qwenTrain}"`);
  const device = str("device") ?? "auto";
  if (device !== "auto" && !/^(cpu|cuda(:\d+)?)$/.test(device)) throw new UsageError(`--device must be cpu, cuda or cuda:N, got "${device}"`);
  const model = str("model")!;
  if (model.trim() === "") throw new UsageError("--model must not be empty");
  const args: StageArgs = {
    task,
    pair: int("pair", str("pair"), 0),
    test: values.test === true,
    data: str("data") ?? defaultData(),
    model,
    qwen_train: qwenTrain as StageArgs["qwen_train"],
    lora_rank: int("lora_rank", str("lora_rank"), 1),
    lora_alpha: positive("lora_alpha", str("lora_alpha")),
    max_prompt_tokens: int("max_prompt_tokens", str("max_prompt_tokens"), 1),
    hint_tokens: int("hint_tokens", str("hint_tokens"), 0, 4096),
    agent_channels: int("agent_channels", str("agent_channels"), 1),
    agent_steps: int("agent_steps", str("agent_steps"), 1, 100),
    memory_capacity: int("memory_capacity", str("memory_capacity"), 1),
    rl_lr: positive("rl_lr", str("rl_lr")),
    seed: int("seed", str("seed"), 0),
    device,
    json: values.json === true,
  };
  const groups = Math.min(8, args.agent_channels);
  if (args.agent_channels % groups !== 0) throw new UsageError(`--agent_channels must be a multiple of 8 (or below 8), got ${args.agent_channels}`);
  return { args, values };
}

/** The example the flags name: --task in --data (or a file, or FAMILY-SEED) and its --pair. */
export async function resolveExample(a: StageArgs): Promise<{ ex: Example; where: string }> {
  const arc = await import("../../src/arc/index.ts");
  let task: Task;
  let where: string;
  const m = /^([a-z0-9_]+)-(\d+)$/.exec(a.task);
  if (m && arc.FAMILY_NAMES.includes(m[1]!)) {
    task = arc.generateTask(m[1]!, Number(m[2]));
    where = "synthetic";
  } else if (a.task.endsWith(".json")) {
    if (!existsSync(a.task)) throw new UsageError(`--task ${a.task}: no such file`);
    task = arc.loadTask(a.task);
    where = a.task;
  } else {
    const ds = await arc.loadDataset(a.data);
    const hit = arc.findTask(ds, a.task);
    if (!hit) throw new UsageError(`--task ${a.task}: not in ${ds.name} (neither training nor evaluation)`);
    task = hit.task;
    where = `${ds.name} ${hit.split}`;
  }
  const pairs = a.test ? task.test.length : task.train.length;
  if (a.pair >= pairs) throw new UsageError(`--pair ${a.pair}: task ${task.id} has ${pairs} ${a.test ? "test" : "train"} pair${pairs === 1 ? "" : "s"} (0..${pairs - 1})`);
  return { ex: { task, index: a.pair, kind: a.test ? "test" : "train" }, where };
}

/** Builds the system the flags describe (as the trainer does), on the chosen device. */
export async function buildStageSystem(a: StageArgs) {
  const torch = await import("../../src/torch.ts");
  const { buildSystem } = await import("../../src/pipeline/system/system.ts");
  const { systemConfig } = await import("../../src/pipeline/config/run-setup.ts");
  const device = a.device === "auto" ? (torch.cuda.isAvailable() ? "cuda" : "cpu") : a.device;
  if (device !== "cpu" && !torch.cuda.isAvailable()) throw new UsageError(`--device ${device}: CUDA is not available`);
  torch.manualSeed(a.seed);
  const { model, qwen_train, lora_rank, lora_alpha, max_prompt_tokens, hint_tokens, agent_channels, agent_steps, rl_lr, memory_capacity, seed } = a;
  const cfg: TrainConfig = {
    ...DEFAULTS,
    model,
    device,
    qwen_train,
    lora_rank,
    lora_alpha,
    lora_dropout: 0, // the stage scripts build without LoRA dropout
    max_prompt_tokens,
    hint_tokens,
    agent_channels,
    agent_steps,
    rl_lr,
    memory_capacity,
    seed,
  };
  return buildSystem(systemConfig(cfg), { quiet: true });
}

/**
 * Runs a stage script's body: a UsageError is one line on stderr and exit code 2, any other error one
 * line and exit code 1 (the stack with ARC_DEBUG=1).
 */
export async function runStage(name: string, body: () => Promise<void>): Promise<void> {
  let code = 0;
  try {
    await body();
  } catch (e) {
    const msg = (e as Error).message?.split("\n")[0] ?? String(e);
    if (e instanceof UsageError) {
      process.stderr.write(`${name}: ${msg} (see --help)\n`);
      code = 2;
    } else {
      process.stderr.write(`${name}: ${msg}\n`);
      if (process.env.ARC_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      code = 1;
    }
  }
  // exitCode, not exit(): a large output to a pipe is written out completely before the process ends.
  process.exitCode = code;
}

/** A short description of the example. */
export const exampleLabel = (ex: Example, where: string): string =>
  `task ${ex.task.id} (${where}), ${ex.kind === "test" ? "test" : "train"} pair ${ex.index} of ${ex.kind === "test" ? ex.task.test.length : ex.task.train.length}`;

/** The example's fields every stage script's JSON output starts with. */
export const exampleHeader = (ex: Example, where: string) => ({ task: ex.task.id, kind: ex.kind ?? "train", pair: ex.index, data: where });
