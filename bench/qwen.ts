// Qwen2 forward+backward throughput: random weights, causal-LM loss with labels = inputs, one sequence,
// in training mode, gradients accumulated (exactly the loop of ../shared/bench/qwen_hf.py). JSON lines on
// stdout: one per length, then (with --hf) transformers' lines from the same card and the ratios.
//
//   bun bench/qwen.ts --device cuda --hf                 Qwen2.5-1.5B shapes, bf16, 512 and 2048 tokens, vs transformers
//   bun bench/qwen.ts --device cpu --size small          a CPU-sized model (real vocabulary)
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as torch from "../src/torch.ts";
import type { DType, Device } from "../src/torch.ts";
import { QWEN25_1_5B_CONFIG, Qwen2ForCausalLM, TINY_CONFIG, type Qwen2Config } from "../src/models/qwen2.ts";
import { machine } from "./machine.ts";

const SIZES: Record<string, Qwen2Config> = {
  "1.5b": QWEN25_1_5B_CONFIG,
  "0.5b": { ...QWEN25_1_5B_CONFIG, hiddenSize: 896, intermediateSize: 4864, numHiddenLayers: 24, numAttentionHeads: 14, numKeyValueHeads: 2, headDim: 64 },
  small: { ...QWEN25_1_5B_CONFIG, hiddenSize: 256, intermediateSize: 1024, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 64 },
  tiny: TINY_CONFIG,
};

const USAGE = `Usage: bun bench/qwen.ts [options]
  --size S        ${Object.keys(SIZES).join(", ")} (default 1.5b on CUDA, small on CPU); every size has the 151936-token vocabulary
  --device D      cpu, cuda, cuda:N (default cuda when available)
  --dtype T       bfloat16 (default), float32, float16
  --tokens L,...  sequence lengths (default 512,2048 on CUDA, 128,512 on CPU)
  --warmup N      untimed iterations per length (default 3 on CUDA, 1 on CPU)
  --reps N        timed iterations per length (default 10 on CUDA, 2 on CPU)
  --hf            also run ../shared/bench/qwen_hf.py (transformers) first with the same device, size, dtype,
                  lengths, warmup, reps and threads, and print the ratios ($PYTHON picks its interpreter)
  --hf_script P   path of qwen_hf.py (default ../shared/bench/qwen_hf.py)
  --threads N     CPU threads for LibTorch`;

const { values: v } = parseArgs({
  options: {
    size: { type: "string" }, device: { type: "string" }, dtype: { type: "string", default: "bfloat16" }, tokens: { type: "string" },
    warmup: { type: "string" }, reps: { type: "string" }, hf: { type: "boolean" }, hf_script: { type: "string" }, threads: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (v.help) {
  console.log(USAGE);
  process.exit(0);
}
const fail = (msg: string): never => {
  console.error(`bench/qwen: ${msg}`);
  process.exit(2);
};
const device = (v.device ?? (torch.cuda.isAvailable() ? "cuda" : "cpu")) as Device;
if (!/^(cpu|cuda(:\d+)?)$/.test(device)) fail(`--device must be cpu, cuda or cuda:N, got "${device}"`);
const cuda = device !== "cpu";
if (cuda && !torch.cuda.isAvailable()) fail(`--device ${device}: CUDA is not available`);
const sizeName = v.size ?? (cuda ? "1.5b" : "small");
const cfg0 = SIZES[sizeName] ?? fail(`--size must be one of ${Object.keys(SIZES).join(", ")}`);
const dtype = v.dtype as DType;
if (!["bfloat16", "float32", "float16"].includes(dtype)) fail(`--dtype must be bfloat16, float32 or float16`);
const lengths = (v.tokens ?? (cuda ? "512,2048" : "128,512")).split(",").map(Number);
if (!lengths.every((n) => Number.isInteger(n) && n >= 2)) fail(`--tokens must list integers >= 2`);
const warmup = Number(v.warmup ?? (cuda ? 3 : 1));
const reps = Number(v.reps ?? (cuda ? 10 : 2));
if (!Number.isInteger(warmup) || warmup < 0 || !Number.isInteger(reps) || reps < 1) fail("--warmup must be >= 0 and --reps >= 1 (integers)");
if (v.threads) torch.setNumThreads(Number(v.threads));
const devIndex = cuda ? (device === "cuda" ? 0 : Number(device.split(":")[1])) : 0;

const mach = machine();
const env = { device, machine: mach };

// transformers first, in its own process, before this one holds GPU memory.
let hf: Record<string, any>[] = [];
if (v.hf) {
  const script = v.hf_script ?? join(import.meta.dir, "..", "..", "shared", "bench", "qwen_hf.py");
  if (!existsSync(script)) fail(`--hf: ${script} does not exist`);
  const hfArgs = ["--device", device, "--size", sizeName, "--dtype", dtype, "--warmup", String(warmup), "--reps", String(reps)];
  if (v.threads) hfArgs.push("--threads", v.threads);
  const r = spawnSync(process.env.PYTHON ?? "python3", [script, ...hfArgs, ...lengths.map(String)], { encoding: "utf8", timeout: 900_000, env: { ...process.env, CUDA_VISIBLE_DEVICES: process.env.CUDA_VISIBLE_DEVICES } });
  if (r.status !== 0) console.error(`bench/qwen: qwen_hf.py failed (status ${r.status}): ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`);
  hf = (r.stdout ?? "").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  for (const line of hf) console.log(JSON.stringify({ ...line, device, machine: mach }));
}

const cfg: Qwen2Config = { ...cfg0, dtype };
torch.manualSeed(0);
const t0 = performance.now();
// Random init on the device itself (as transformers' `with torch.device("cuda")`).
const model = new Qwen2ForCausalLM(cfg, { device, dtype });
model.initWeights();
model.train();
const initMs = performance.now() - t0;
const params = model.numParameters();
const sync = () => cuda && torch.cuda.synchronize(devIndex);

const ours: Record<string, any>[] = [];
for (const T of lengths) {
  const x = torch.randint(0, cfg.vocabSize, [1, T], { device });
  const step = () =>
    torch.scope(() => {
      const { loss } = model.forward({ inputIds: x, labels: x });
      loss!.backward();
    });
  try {
    for (let i = 0; i < warmup; i++) step();
    sync();
    if (cuda) torch.cuda.resetPeakMemoryStats(devIndex);
    const t1 = performance.now();
    for (let i = 0; i < reps; i++) step();
    sync();
    const dt = (performance.now() - t1) / reps / 1000;
    const peak = cuda ? torch.cuda.memoryStats(devIndex).peakAllocated : process.resourceUsage().maxRSS * 1024;
    const line = {
      impl: "arc-efe", size: sizeName, dtype, tokens: T, ms: dt * 1e3, tok_per_s: T / dt, tflops_6N: (6 * params * T) / dt / 1e12,
      params, [cuda ? "peak_gib" : "peak_rss_gib"]: peak / 2 ** 30, warmup, reps, init_ms: Math.round(initMs), live_tensors: torch.liveTensors(), ...env,
    };
    ours.push(line);
    console.log(JSON.stringify(line));
  } catch (e) {
    console.log(JSON.stringify({ impl: "arc-efe", size: sizeName, dtype, tokens: T, error: (e as Error).message, ...env }));
  } finally {
    x.dispose();
  }
}

if (v.hf) {
  const rows = lengths.map((T) => {
    const a = ours.find((o) => o.tokens === T);
    const b = hf.find((o) => o.tokens === T);
    return { tokens: T, ours_tok_per_s: a?.tok_per_s ?? null, hf_tok_per_s: b?.tok_per_s ?? null, ratio: a && b ? a.tok_per_s / b.tok_per_s : null, ours_peak_gib: a?.peak_gib ?? null, hf_peak_gib: b?.peak_gib ?? null };
  });
  console.log(JSON.stringify({ compare: "arc-efe vs hf-transformers (same process tree, same card)", rows, ok: rows.every((r) => r.ratio !== null && r.ratio >= 1), device, machine: mach }));
}
model.dispose();
