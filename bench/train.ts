// Training throughput of the whole pipeline (DESIGN §7): batches/s, examples/s and peak memory of the
// trainer's step (prompt + hint, agent, refinement, EFE + reward loss, backward, AdamW/GradScaler, the
// policy's Adam, the memory), and the epoch time of ARC-AGI-2's 3232 training pairs extrapolated from
// the examples measured. One JSON object on stdout.
//
//   bun bench/train.ts                                        smoke configuration (tiny Qwen, synthetic data) on the CPU
//   bun bench/train.ts --device cuda --model qwen-1.5b-random  Qwen2.5-1.5B shapes, random bf16 weights, ARC-AGI-2, DESIGN defaults
//   bun bench/train.ts --out bench/results/train-cpu-$(date +%F).json
//
// The loop is the trainer's (src/pipeline/trainer.ts) without logging, validation and checkpoints:
// examples in the trainer's data order, λ_size on its schedule, backward of both losses, unscale, clip,
// step. Examples vary in grid size and prompt length, so the estimate draws them from a shuffled epoch.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { epochOrder, loadDataset, trainingExamples } from "../src/arc";
import { QWEN25_1_5B_CONFIG, Qwen2ForCausalLM } from "../src/models/qwen2";
import { DEFAULTS, PRESETS, type TrainConfig } from "../src/pipeline/config";
import { sizeWeight } from "../src/pipeline/efe";
import { trainExample } from "../src/pipeline/step";
import { buildSystem, qwenTrainable } from "../src/pipeline/system";
import { systemConfig } from "../src/pipeline/run-setup";
import { QwenTokenizer } from "../src/tokenizer";
import * as torch from "../src/torch";
import type { DType, Device } from "../src/torch";
import { machine } from "./machine";

/** The original (Python) system's epoch over ARC-AGI-2's training pairs, on an unnamed GPU. */
const PYTHON_REFERENCE = { epoch_s: 456, pairs: 3232, note: "the original Python system's reported epoch over the ARC-AGI-2 training pairs (Qwen2.5-1.5B); GPU not named" };
const ARC_AGI_2_TRAINING_PAIRS = 3232;
const SHARED_ARC2 = join(import.meta.dir, "..", "..", "shared", "data", "arc", "ARC-AGI-2");

const USAGE = `Usage: bun bench/train.ts [options]
  --device D        cpu (default), cuda, cuda:N
  --model M         tiny (default on the CPU), qwen-1.5b-random (Qwen2.5-1.5B shapes, random bf16 weights; default on CUDA),
                    or what --model of scripts/train.ts takes (Hub id, folder)
  --preset P        smoke (default with --model tiny) or none (DESIGN defaults: 128 channels, 16 hint tokens, 2048 prompt tokens)
  --data SPEC       default: synthetic for the smoke preset, else ${SHARED_ARC2} (or arc-agi-2)
  --batch_size N    examples per batch (default: the preset's / trainer's)
  --amp_dtype T     fp16, bf16, none (CUDA; default fp16 like the trainer)
  --qwen_train Q    lora (default), full, frozen
  --warmup N        untimed batches first (default 3 on the CPU, 5 on CUDA)
  --batches N       timed batches (default 20 on the CPU, 30 on CUDA)
  --threads N       LibTorch CPU threads (default LibTorch's)
  --seed N          seed (default 0)
  --out FILE        also write the JSON to FILE`;

const { values: v } = parseArgs({
  options: {
    device: { type: "string" }, model: { type: "string" }, preset: { type: "string" }, data: { type: "string" }, batch_size: { type: "string" },
    amp_dtype: { type: "string" }, qwen_train: { type: "string" }, warmup: { type: "string" }, batches: { type: "string" }, threads: { type: "string" },
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
const cfg: TrainConfig = {
  ...DEFAULTS,
  ...(presetName === "none" ? {} : PRESETS[presetName]),
  device,
  model: modelName,
  data: v.data ?? defaultData,
  seed: int("seed", v.seed, 0),
  ...(v.batch_size ? { batch_size: int("batch_size", v.batch_size, 1, 1) } : {}),
  ...(v.amp_dtype ? { amp_dtype: v.amp_dtype as TrainConfig["amp_dtype"] } : {}),
  ...(v.qwen_train ? { qwen_train: v.qwen_train as TrainConfig["qwen_train"] } : {}),
};
if (!["fp16", "bf16", "none"].includes(cfg.amp_dtype)) fail(`--amp_dtype must be fp16, bf16 or none`);
if (!["lora", "full", "frozen"].includes(cfg.qwen_train)) fail(`--qwen_train must be lora, full or frozen`);
if (!cuda && cfg.amp_dtype === "fp16") cfg.amp_dtype = "none"; // as validateConfig does
const warmup = int("warmup", v.warmup, cuda ? 5 : 3);
const batches = int("batches", v.batches, cuda ? 30 : 20, 1);

const mach = machine();
const sync = () => cuda && torch.cuda.synchronize(devIndex);
const rssGiB = () => process.resourceUsage().maxRSS / 2 ** 20; // maxRSS is in KiB

// ---- build -------------------------------------------------------------------------------------------
const tBuild = performance.now();
torch.manualSeed(cfg.seed);
const ds = await loadDataset(cfg.data);
// All training pairs (the epoch the reference counts), in the trainer's shuffled order for epoch 0.
const examples = trainingExamples(ds.training);
if (examples.length === 0) fail(`--data ${cfg.data}: no training examples`);
const order = epochOrder(examples.length, cfg.seed, 0);
let qwen: { model: Qwen2ForCausalLM; tokenizer: QwenTokenizer } | undefined;
if (modelName === "qwen-1.5b-random") {
  // Real shapes, random weights (no download): the same compute as the real model. The tiny tokenizer has
  // Qwen2.5's vocabulary (ids below 151665), so prompts have the real lengths.
  qwen = { model: Qwen2ForCausalLM.fromConfig(QWEN25_1_5B_CONFIG, { dtype: "bfloat16", device, seed: cfg.seed }), tokenizer: QwenTokenizer.tiny() };
}
const sys = await buildSystem(systemConfig(cfg), { quiet: true, qwen });
const qwenParams = qwenTrainable(sys);
const agentParams = [...sys.agent.parameters(), ...sys.refiner.upParameters()];
const groups = [{ name: "agent", params: agentParams, lr: cfg.agent_lr }];
if (qwenParams.length) groups.push({ name: "qwen", params: qwenParams, lr: cfg.qwen_lr });
const opt = new torch.AdamW(groups, { weightDecay: cfg.weight_decay });
const policyParams = sys.refiner.policyParameters();
const autocast = cfg.amp_dtype === "none" ? null : { device: (cuda ? "cuda" : "cpu") as "cpu" | "cuda", dtype: (cfg.amp_dtype === "fp16" ? "float16" : "bfloat16") as DType };
const scaler = new torch.GradScaler({ device, enabled: cuda && cfg.amp_dtype === "fp16" });
sync();
const buildS = (performance.now() - tBuild) / 1000;
const count = (ps: torch.Tensor[]) => ps.reduce((a, p) => a + p.numel(), 0);

// ---- the loop ----------------------------------------------------------------------------------------
const totalBatches = cfg.epochs * Math.ceil(examples.length / cfg.batch_size);
let cursor = 0;
let promptTokens = 0;
let cells = 0;
let skipped = 0;
let oom: string | null = null;
function batch(step: number, timed: boolean): void {
  const lambda = sizeWeight(step, totalBatches);
  for (let i = 0; i < cfg.batch_size; i++) {
    const ex = examples[order[cursor++ % order.length]];
    torch.scope(() => {
      const r = trainExample(sys, ex, { sizeWeight: lambda, autocast });
      if (r.loss) scaler.scale(r.loss.div(cfg.batch_size)).backward();
      r.policyLoss.div(cfg.batch_size).backward();
      if (timed) {
        promptTokens += r.logs.promptTokens;
        cells += ex.kind === "test" ? 0 : ex.task.train[ex.index].output.length * ex.task.train[ex.index].output[0].length;
        if (!r.logs.finite) skipped++;
      }
    });
  }
  scaler.unscale_(opt);
  if (qwenParams.length) torch.gradNorm(qwenParams);
  torch.clipGradNorm(opt.params(), cfg.clip);
  scaler.step(opt);
  scaler.update();
  torch.clipGradNorm(policyParams, cfg.clip);
  sys.refiner.optimizer.step();
  opt.zeroGrad();
  sys.refiner.optimizer.zeroGrad();
}

let seconds = 0;
let liveBefore = 0;
try {
  if (cuda) torch.cuda.resetPeakMemoryStats(devIndex);
  for (let s = 0; s < warmup; s++) batch(s, false);
  sync();
  liveBefore = torch.liveTensors();
  const t0 = performance.now();
  for (let s = 0; s < batches; s++) batch(warmup + s, true);
  sync();
  seconds = (performance.now() - t0) / 1000;
} catch (e) {
  if (!(e instanceof torch.TorchError && /out of memory/i.test(e.message))) throw e;
  oom = e.message;
}

const timedExamples = batches * cfg.batch_size;
const sPerExample = seconds / timedExamples;
const mem = cuda ? torch.cuda.memoryStats(devIndex) : null;
const comparable = cuda && modelName !== "tiny" && presetName === "none" && examples.length === ARC_AGI_2_TRAINING_PAIRS;
const result = {
  bench: "train",
  config: {
    device, model: modelName, preset: presetName, data: cfg.data, batch_size: cfg.batch_size, qwen_train: cfg.qwen_train, amp_dtype: cfg.amp_dtype,
    agent_channels: cfg.agent_channels, agent_steps: cfg.agent_steps, hint_tokens: cfg.hint_tokens, max_prompt_tokens: cfg.max_prompt_tokens, lora_rank: cfg.lora_rank,
  },
  params: { qwen: sys.qwen.numParameters(), qwen_trainable: count(qwenParams), agent: count(agentParams), policy: count(policyParams) },
  warmup_batches: warmup,
  timed_batches: oom ? 0 : batches,
  timed_examples: oom ? 0 : timedExamples,
  seconds: oom ? null : seconds,
  batches_per_s: oom ? null : batches / seconds,
  examples_per_s: oom ? null : timedExamples / seconds,
  ms_per_example: oom ? null : sPerExample * 1e3,
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
};
const json = JSON.stringify(result, null, 1);
console.log(json);
if (v.out) {
  mkdirSync(dirname(v.out), { recursive: true });
  writeFileSync(v.out, json + "\n");
}
process.exit(oom ? 1 : 0);
