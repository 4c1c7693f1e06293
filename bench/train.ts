// Training throughput of the trainer's own step (src/pipeline/trainer/backward.ts: trainBatch's passes, backward of
// both losses, unscale, clip, AdamW/GradScaler, the refiner's Adam, the memory): examples/s, ms per
// example by stage, host transfers per optimizer step, padding shares and peak memory, and the epoch of
// ARC-AGI-2's 3232 training pairs extrapolated from the examples measured. One JSON object on stdout.
//
//   bun bench/train.ts                                        smoke configuration (tiny Qwen, synthetic data) on the CPU
//   bun bench/train.ts --batch_sizes 1,4,8                    one child process per batch size (its own peak RSS), one JSON
//   bun bench/train.ts --preset none --batch_sizes 1,4,8      the default configuration (128 channels, 16 hint tokens) on ARC-AGI-2
//   bun bench/train.ts --device cuda --model qwen-1.5b-random  Qwen2.5-1.5B shapes, random bf16 weights, ARC-AGI-2, the trainer's defaults
//   bun bench/train.ts --out bench/results/train-cpu-$(date +%F).json
//
// Examples come in the trainer's data order (its sampler: a shuffled epoch, grouped by prompt length unless
// --group_by_length false), so grid sizes and prompt lengths vary as in training. Stage times: on the CPU
// they come from the timed batches themselves (CPU ops are synchronous); on CUDA from extra
// --profile_batches with a device sync at each stage boundary, since syncing inside the timed batches
// would stall the very pipeline being measured.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { epochOrder, loadDataset, trainingExamples } from "../src/arc";
import { QWEN25_1_5B_CONFIG, Qwen2ForCausalLM } from "../src/models/qwen2";
import { DEFAULTS, PRESETS, type TrainConfig, withDeviceDefaults } from "../src/pipeline/config/train-config";
import { sizeWeight } from "../src/pipeline/objective/efe";
import { lengthGroupedOrder, paddingShare } from "../src/pipeline/trainer/sampler";
import { autocastFor, systemConfig } from "../src/pipeline/config/run-setup";
import type { BatchStats } from "../src/pipeline/system/training-step";
import { buildSystem } from "../src/pipeline/system/system";
import { backwardBatch, emptyStats } from "../src/pipeline/trainer/backward";
import { buildOptimizers, optimizerStep } from "../src/pipeline/trainer/optimizers";
import { QwenTokenizer } from "../src/tokenizer";
import * as torch from "../src/torch";
import type { Device } from "../src/torch";
import { StageClock } from "../src/util/stage-timer";
import { machine } from "./machine";

/** The original (Python) system's epoch over ARC-AGI-2's training pairs, on an unnamed GPU. */
const PYTHON_REFERENCE = { epoch_s: 456, pairs: 3232, note: "the original Python system's reported epoch over the ARC-AGI-2 training pairs (Qwen2.5-1.5B); GPU not named" };
const ARC_AGI_2_TRAINING_PAIRS = 3232;
const SHARED_ARC2 = join(import.meta.dir, "..", "..", "shared", "data", "arc", "ARC-AGI-2");

const USAGE = `Usage: bun bench/train.ts [options]
  --device D        cpu (default), cuda, cuda:N
  --model M         tiny (default on the CPU), qwen-1.5b-random (Qwen2.5-1.5B shapes, random bf16 weights; default on CUDA),
                    or what --model of scripts/train.ts takes (Hub id, folder)
  --preset P        smoke (default with --model tiny) or none (the trainer's defaults: 128 channels, 16 hint tokens, 2048 prompt tokens)
  --data SPEC       default: synthetic for the smoke preset, else ${SHARED_ARC2} (or arc-agi-2)
  --batch_size N    examples per batch (default: the preset's, else the trainer's: 16 on CUDA, 4 on the CPU)
  --batch_sizes L   a comma list (1,4,8): one child process per size, results in one JSON
  --max_batch_tokens N  as the trainer's flag (0 = one pass per batch; default 24576 on CUDA, 0 on the CPU)
  --group_by_length B   true or false, as the trainer's flag (default ${DEFAULTS.group_by_length}): batches of similar prompt length.
                    padding.prompt_tokens_share is what the passes computed (on the CPU the prompter splits a batch by
                    length, see --prompt_pad_share 1); padding.epoch_prompt_share is the whole epoch's batches' share
  --prompt_pad_share S  largest padding share of a Qwen pass (default: the prompter's, 1 on CUDA, 0 on the CPU)
  --agent_pad_share S   the same for the agent's passes (default: 1 on CUDA, 0.25 on the CPU)
  --amp_dtype T     fp16, bf16, none (default: the trainer's: bf16 on CUDA, none on the CPU)
  --qwen_train Q    lora (default), full, frozen
  --grad_checkpointing M  off, layer or mlp, as the trainer's flag (default: mlp on CUDA, off on the CPU)
  --warmup N        untimed batches first (default 3 on the CPU, 5 on CUDA)
  --examples N      timed examples (default 48 on the CPU, 240 on CUDA): ceil(N / batch size) batches; with
                    --group_by_length false the same examples in the same order at every batch size (grouped, the
                    batches are each batch size's own)
  --batches N       timed batches instead (overrides --examples)
  --profile_batches N  extra batches with a device sync per stage, for stage times on CUDA (default 5; CPU: 0, the timed batches are timed by stage)
  --threads N       LibTorch CPU threads (default LibTorch's)
  --seed N          seed (default 0)
  --out FILE        also write the JSON to FILE`;

const { values: v } = parseArgs({
  options: {
    device: { type: "string" }, model: { type: "string" }, preset: { type: "string" }, data: { type: "string" }, batch_size: { type: "string" },
    batch_sizes: { type: "string" }, max_batch_tokens: { type: "string" }, group_by_length: { type: "string" }, profile_batches: { type: "string" }, examples: { type: "string" }, prompt_pad_share: { type: "string" }, agent_pad_share: { type: "string" },
    amp_dtype: { type: "string" }, qwen_train: { type: "string" }, grad_checkpointing: { type: "string" }, warmup: { type: "string" }, batches: { type: "string" }, threads: { type: "string" },
    seed: { type: "string" }, out: { type: "string" }, help: { type: "boolean", short: "h" },
  },
});
if (v.help) {
  console.log(USAGE);
  process.exit(0);
}
const fail = (msg: string): never => {
  console.error(`bench/train: ${msg}`);
  process.exit(2);
};
const int = (name: string, s: string | undefined, dflt: number, min = 0): number => {
  if (s === undefined) return dflt;
  if (!/^\d+$/.test(s) || Number(s) < min) fail(`--${name} must be an integer >= ${min}, got "${s}"`);
  return Number(s);
};
const writeOut = (result: unknown) => {
  const json = JSON.stringify(result, null, 1);
  console.log(json);
  if (v.out) {
    mkdirSync(dirname(v.out), { recursive: true });
    writeFileSync(v.out, `${json}\n`);
  }
};

// ---- several batch sizes: one child per size, so each peak RSS is its own -----------------------------
if (v.batch_sizes) {
  const sizes = v.batch_sizes.split(",").map((s) => int("batch_sizes", s.trim(), 1, 1));
  const passOn = process.argv.slice(2).filter((a, i, all) => !["--batch_sizes", "--out"].includes(a) && !["--batch_sizes", "--out"].includes(all[i - 1] ?? ""));
  const runs: Record<string, unknown>[] = [];
  for (const b of sizes) {
    const r = spawnSync(process.execPath, [import.meta.path, ...passOn, "--batch_size", String(b)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20 });
    if (r.status !== 0 && !r.stdout.trim().startsWith("{")) fail(`batch size ${b}: the child exited with ${r.status}`);
    runs.push(JSON.parse(r.stdout));
  }
  const eps = (r: Record<string, unknown>) => r.examples_per_s as number | null;
  const base = runs[0];
  writeOut({
    bench: "train",
    batch_sizes: sizes,
    // examples/s of each batch size over the first's (same process settings, same data order).
    speedup_vs_first: runs.map((r) => (eps(r) && eps(base) ? eps(r)! / eps(base)! : null)),
    runs,
    date: new Date().toISOString(),
  });
  process.exit(runs.some((r) => r.error) ? 1 : 0);
}

const device = (v.device ?? "cpu") as Device;
if (!/^(cpu|cuda(:\d+)?)$/.test(device)) fail(`--device must be cpu, cuda or cuda:N, got "${device}"`);
const cuda = device !== "cpu";
if (cuda && !torch.cuda.isAvailable()) fail(`--device ${device}: CUDA is not available`);
const devIndex = cuda ? (device === "cuda" ? 0 : Number(device.split(":")[1])) : 0;
const modelName = v.model ?? (cuda ? "qwen-1.5b-random" : "tiny");
const presetName = v.preset ?? (modelName === "tiny" ? "smoke" : "none");
if (presetName !== "none" && !PRESETS[presetName]) fail(`--preset must be ${Object.keys(PRESETS).join(", ")} or none`);
if (v.threads) torch.setNumThreads(int("threads", v.threads, 0, 1));

const defaultData = presetName === "smoke" ? "synthetic" : existsSync(SHARED_ARC2) ? SHARED_ARC2 : "arc-agi-2";
const given: Partial<TrainConfig> = {
  ...(presetName === "none" ? {} : PRESETS[presetName]),
  ...(v.batch_size ? { batch_size: int("batch_size", v.batch_size, 1, 1) } : {}),
  ...(v.max_batch_tokens ? { max_batch_tokens: int("max_batch_tokens", v.max_batch_tokens, 0) } : {}),
  ...(v.group_by_length ? { group_by_length: v.group_by_length as TrainConfig["group_by_length"] } : {}),
  ...(v.amp_dtype ? { amp_dtype: v.amp_dtype as TrainConfig["amp_dtype"] } : {}),
  ...(v.qwen_train ? { qwen_train: v.qwen_train as TrainConfig["qwen_train"] } : {}),
  ...(v.grad_checkpointing ? { grad_checkpointing: v.grad_checkpointing as TrainConfig["grad_checkpointing"] } : {}),
};
// The trainer's defaults, its CUDA ones included (config/train-config.ts, CUDA_DEFAULTS), under what was given.
const cfg: TrainConfig = withDeviceDefaults({ ...DEFAULTS, ...given, device, model: modelName, data: v.data ?? defaultData, seed: int("seed", v.seed, 0) }, given);
if (!["fp16", "bf16", "none"].includes(cfg.amp_dtype)) fail(`--amp_dtype must be fp16, bf16 or none`);
if (!["lora", "full", "frozen"].includes(cfg.qwen_train)) fail(`--qwen_train must be lora, full or frozen`);
if (!["true", "false"].includes(cfg.group_by_length)) fail(`--group_by_length must be true or false, got "${cfg.group_by_length}"`);
if (!["off", "layer", "mlp"].includes(cfg.grad_checkpointing)) fail(`--grad_checkpointing must be off, layer or mlp, got "${cfg.grad_checkpointing}"`);
const padShare = (name: string, s: string | undefined): number | undefined => {
  if (s === undefined) return undefined;
  const x = Number(s);
  if (!(x >= 0 && x <= 1)) fail(`--${name} must be in [0, 1], got "${s}"`);
  return x;
};
const promptPadShare = padShare("prompt_pad_share", v.prompt_pad_share);
const agentPadShare = padShare("agent_pad_share", v.agent_pad_share);
const warmup = int("warmup", v.warmup, cuda ? 5 : 3);
const batches = v.batches ? int("batches", v.batches, 1, 1) : Math.ceil(int("examples", v.examples, cuda ? 240 : 48, 1) / cfg.batch_size);
const profileBatches = int("profile_batches", v.profile_batches, cuda ? 5 : 0);

const mach = machine();
const sync = () => cuda && torch.cuda.synchronize(devIndex);
const rssGiB = () => process.resourceUsage().maxRSS / 2 ** 20; // maxRSS is in KiB

// ---- build -------------------------------------------------------------------------------------------
const tBuild = performance.now();
torch.manualSeed(cfg.seed);
const ds = await loadDataset(cfg.data);
// All training pairs (the epoch the reference counts); their order is the trainer's for epoch 0, below.
const examples = trainingExamples(ds.training);
if (examples.length === 0) fail(`--data ${cfg.data}: no training examples`);
let qwen: { model: Qwen2ForCausalLM; tokenizer: QwenTokenizer } | undefined;
if (modelName === "qwen-1.5b-random") {
  // Real shapes, random weights (no download): the same compute as the real model. The tiny tokenizer has
  // Qwen2.5's vocabulary (ids below 151665), so prompts have the real lengths.
  qwen = { model: Qwen2ForCausalLM.fromConfig(QWEN25_1_5B_CONFIG, { dtype: "bfloat16", device, seed: cfg.seed }), tokenizer: QwenTokenizer.tiny() };
}
const sys = await buildSystem(systemConfig(cfg), { quiet: true, qwen });
if (promptPadShare !== undefined) sys.prompter.config.maxPadShare = promptPadShare;
// The trainer's sampler for epoch 0 (trainer.ts), from each example's exact prompt length. The trainer
// measures the lengths before its loop only when grouping; here they are measured either way, for the
// epoch's padding share (tokenizing is well under a millisecond an example, and the builds are kept).
const promptLengths = examples.map((ex) => sys.prompter.build(ex).ids.length);
const order = cfg.group_by_length === "true" ? lengthGroupedOrder(promptLengths, { batch: cfg.batch_size, seed: cfg.seed, epoch: 0 }) : epochOrder(examples.length, cfg.seed, 0);
// The trainer's autocast rule (fp16 autocast only on CUDA; the CPU runs bf16 or none).
const autocast = autocastFor(cfg);
const opts = buildOptimizers(sys, { agentLr: cfg.agent_lr, qwenLr: cfg.qwen_lr, weightDecay: cfg.weight_decay, scaleLoss: cuda && cfg.amp_dtype === "fp16" });
sync();
const buildS = (performance.now() - tBuild) / 1000;
const count = (ps: torch.Tensor[]) => ps.reduce((a, p) => a + p.numel(), 0);

// ---- the loop: the trainer's update ---------------------------------------------------------------------
const totalBatches = cfg.epochs * Math.ceil(examples.length / cfg.batch_size);
let cursor = 0;
let promptTokens = 0;
let cells = 0;
let skipped = 0;
let stats: BatchStats = emptyStats();
const transfers: number[] = [];
let oom: string | null = null;
const clock = new StageClock(cuda ? sync : undefined);

function batch(step: number, o: { timed: boolean; clock: StageClock | null }): void {
  const lambda = sizeWeight(step, totalBatches);
  const exs = Array.from({ length: cfg.batch_size }, () => examples[order[cursor++ % order.length]]);
  const timer = o.clock ?? undefined;
  const { result, syncs } = torch.countSyncs(() => {
    const r = backwardBatch(sys, exs, { sizeWeight: lambda, autocast, agentPadShare, scaler: opts.scaler, perUpdate: cfg.batch_size, maxBatchTokens: cfg.max_batch_tokens, timer });
    const run = () => optimizerStep(opts, cfg.clip);
    if (timer) timer.time("optimizer", run);
    else run();
    return r;
  });
  if (!o.timed) return;
  transfers.push(syncs);
  stats = {
    examples: stats.examples + result.stats.examples, realTokens: stats.realTokens + result.stats.realTokens, paddedTokens: stats.paddedTokens + result.stats.paddedTokens,
    cells: stats.cells + result.stats.cells, paddedCells: stats.paddedCells + result.stats.paddedCells, agentPasses: stats.agentPasses + result.stats.agentPasses,
  };
  for (const [i, l] of result.logs.entries()) {
    promptTokens += l.promptTokens;
    const ex = exs[i];
    const out = ex.kind === "test" ? null : ex.task.train[ex.index].output;
    cells += out ? out.length * out[0].length : 0;
    if (!l.finite) skipped++;
  }
}

let seconds = 0;
let liveBefore = 0;
let stageMs: Record<string, number> | null = null;
try {
  if (cuda) torch.cuda.resetPeakMemoryStats(devIndex);
  for (let s = 0; s < warmup; s++) batch(s, { timed: false, clock: null });
  sync();
  cursor = 0; // the timed examples are the same at every batch size
  liveBefore = torch.liveTensors();
  const t0 = performance.now();
  for (let s = 0; s < batches; s++) batch(warmup + s, { timed: true, clock: cuda ? null : clock });
  sync();
  seconds = (performance.now() - t0) / 1000;
  // On CUDA the stage times come from extra synchronised batches (not counted in the throughput).
  const profiled = cuda ? profileBatches : batches;
  if (cuda) for (let s = 0; s < profileBatches; s++) batch(warmup + batches + s, { timed: false, clock });
  if (profiled > 0) stageMs = Object.fromEntries([...clock.ms].map(([k, ms]) => [k, ms / (profiled * cfg.batch_size)]));
} catch (e) {
  if (!(e instanceof torch.TorchError && /out of memory/i.test(e.message))) throw e;
  oom = e.message;
}

const timedExamples = batches * cfg.batch_size;
const sPerExample = seconds / timedExamples;
const mem = cuda ? torch.cuda.memoryStats(devIndex) : null;
const comparable = cuda && modelName !== "tiny" && presetName === "none" && examples.length === ARC_AGI_2_TRAINING_PAIRS;
const share = (real: number, padded: number) => (padded > 0 ? 1 - real / padded : 0);
writeOut({
  bench: "train",
  config: {
    device, model: modelName, preset: presetName, data: cfg.data, batch_size: cfg.batch_size, max_batch_tokens: cfg.max_batch_tokens, group_by_length: cfg.group_by_length, qwen_train: cfg.qwen_train,
    amp_dtype: autocast ? cfg.amp_dtype : "none", agent_channels: cfg.agent_channels, agent_steps: cfg.agent_steps, hint_tokens: cfg.hint_tokens,
    max_prompt_tokens: cfg.max_prompt_tokens, lora_rank: cfg.lora_rank, grad_checkpointing: cfg.grad_checkpointing,
    prompt_pad_share: sys.prompter.config.maxPadShare ?? null, agent_pad_share: agentPadShare ?? null,
  },
  params: { qwen: sys.qwen.numParameters(), qwen_trainable: count(opts.qwenParams), agent: count(opts.opt.params()) - count(opts.qwenParams), policy: count(opts.refinerParams) },
  warmup_batches: warmup,
  timed_batches: oom ? 0 : batches,
  timed_examples: oom ? 0 : timedExamples,
  seconds: oom ? null : seconds,
  batches_per_s: oom ? null : batches / seconds,
  examples_per_s: oom ? null : timedExamples / seconds,
  ms_per_example: oom ? null : sPerExample * 1e3,
  // Milliseconds per example by stage: hint generation, prompt encoding, agent passes (both, with the
  // refiner and memory read), loss (resize, EFE, the host transfer, rewards, memory writes), backward, optimizer.
  stage_ms_per_example: oom ? null : stageMs,
  stage_source: cuda ? `${profileBatches} extra batches, device synchronised at each stage boundary` : "the timed batches",
  // Device-to-host reads per optimizer update (torch.syncCount): bounded by a constant, whatever the batch size.
  transfers_per_step: transfers.length ? { mean: transfers.reduce((a, b) => a + b, 0) / transfers.length, max: Math.max(...transfers) } : null,
  padding: {
    // Shares of computed positions that were padding: prompt tokens in the encoding pass, grid cells in the agent passes.
    prompt_tokens_share: share(stats.realTokens, stats.paddedTokens),
    agent_cells_share: share(stats.cells, stats.paddedCells),
    agent_passes_per_batch: batches ? stats.agentPasses / batches : 0,
    // The share of prompt positions a batch of the whole epoch's order pads (examples x longest, exact
    // token counts), whatever the passes then split: what --group_by_length changes.
    epoch_prompt_share: paddingShare(promptLengths, order, cfg.batch_size),
  },
  mean_prompt_tokens: oom ? null : promptTokens / timedExamples,
  mean_target_cells: oom ? null : cells / timedExamples,
  skipped_nonfinite: skipped,
  epoch: {
    // Extrapolated from the measured examples (drawn in the trainer's shuffled order): training steps
    // only, no validation or checkpoints.
    pairs: ARC_AGI_2_TRAINING_PAIRS,
    seconds_extrapolated: oom ? null : sPerExample * ARC_AGI_2_TRAINING_PAIRS,
    data: cfg.data,
    data_pairs: examples.length,
    seconds_data_epoch: oom ? null : sPerExample * examples.length,
    python_reference: PYTHON_REFERENCE,
    // The reference trained Qwen2.5-1.5B on a GPU over ARC-AGI-2: only that configuration compares.
    comparable_to_reference: comparable,
    speedup_vs_python_reference: oom || !comparable ? null : PYTHON_REFERENCE.epoch_s / (sPerExample * ARC_AGI_2_TRAINING_PAIRS),
  },
  memory: {
    peak_rss_gib: rssGiB(),
    ...(mem ? { cuda_peak_allocated_gib: mem.peakAllocated / 2 ** 30, cuda_peak_reserved_gib: mem.peakReserved / 2 ** 30, cuda_allocated_gib: mem.allocated / 2 ** 30 } : {}),
  },
  live_tensors: { after_warmup: liveBefore, after_timed: torch.liveTensors() },
  build_s: buildS,
  error: oom,
  date: new Date().toISOString(),
  machine: mach,
});
process.exit(oom ? 1 : 0);
