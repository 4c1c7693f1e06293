// The hint's decoding, alone: prefill and per-step cost of generate() over a left-padded batch, for each
// decode path (the growing cache of before, the static cache eager, the static cache replayed as a CUDA
// graph), with the native calls one decode step makes. One JSON object on stdout.
//
//   bun bench/decode.ts --device cpu            Qwen2.5-1.5B's structure (28 layers, 12 heads, 2 KV heads) at small widths
//   bun bench/decode.ts --device cuda           Qwen2.5-1.5B's shapes, random bf16 weights, autocast bf16 (the trainer's)
//   bun bench/decode.ts --device cuda --lora_rank 0 --lengths 800 --hf   what ../shared/bench/hf_stages.py measures, beside it
import { parseArgs } from "node:util";
import * as torch from "../src/torch.ts";
import type { Device } from "../src/torch.ts";
import { QWEN25_1_5B_CONFIG, Qwen2ForCausalLM, type Qwen2Config } from "../src/models/qwen2.ts";
import { QWEN2_LORA_TARGETS, applyLora } from "../src/models/lora.ts";
import { releaseDecodeGraphs, staticDecodeStep } from "../src/models/decode-step.ts";
import { machine, pythonReference } from "./machine.ts";

const USAGE = `Usage: bun bench/decode.ts [options]
  --device D        cpu, cuda, cuda:N (default cuda when available)
  --batch B         rows (default 16)
  --lengths L,...   prompt lengths, cycled over the rows, left-padded to the longest (default 600,700,800,900,1000
                    on CUDA, 40,60,80,100 on the CPU)
  --new_tokens N    tokens generated (default 16)
  --lora_rank R     LoRA rank on every projection (default 16; 0 = none)
  --reps N          timed generate calls per path (default 5 on CUDA, 2 on the CPU)
  --hf              also run ../shared/bench/hf_stages.py's generate (equal-length prompts of the longest length,
                    no LoRA) in this run and report the ratio ($PYTHON picks its interpreter)
  --hf_script P     path of hf_stages.py (default ../shared/bench/hf_stages.py)`;
const { values: v } = parseArgs({
  options: {
    device: { type: "string" }, batch: { type: "string" }, lengths: { type: "string" }, new_tokens: { type: "string" },
    lora_rank: { type: "string" }, reps: { type: "string" }, hf: { type: "boolean" }, hf_script: { type: "string" }, help: { type: "boolean", short: "h" },
  },
});
if (v.help) {
  console.log(USAGE);
  process.exit(0);
}
const fail = (m: string): never => {
  console.error(`bench/decode: ${m}`);
  process.exit(2);
};
const device = (v.device ?? (torch.cuda.isAvailable() ? "cuda" : "cpu")) as Device;
if (!/^(cpu|cuda(:\d+)?)$/.test(device)) fail(`--device must be cpu, cuda or cuda:N, got "${device}"`);
const cuda = device !== "cpu";
if (cuda && !torch.cuda.isAvailable()) fail(`--device ${device}: CUDA is not available`);
const int = (s: string | undefined, d: number, name: string, min = 1): number => {
  const n = s === undefined ? d : Number(s);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got ${s}`);
  return n;
};
const B = int(v.batch, 16, "batch");
const lengths = (v.lengths ?? (cuda ? "600,700,800,900,1000" : "40,60,80,100")).split(",").map(Number);
if (!lengths.every((n) => Number.isInteger(n) && n >= 1)) fail("--lengths must list positive integers");
const newTokens = int(v.new_tokens, 16, "new_tokens", 2);
const rank = int(v.lora_rank, 16, "lora_rank", 0);
const reps = int(v.reps, cuda ? 5 : 2, "reps");

// Qwen2.5-1.5B's structure; on the CPU at widths two cores run in seconds (the layer count, heads and the
// number of ops per step, which is what a decode step's host cost depends on, are the real model's).
const cfg: Qwen2Config = cuda
  ? QWEN25_1_5B_CONFIG
  : { ...QWEN25_1_5B_CONFIG, vocabSize: 4096, hiddenSize: 192, intermediateSize: 512, headDim: 16, dtype: "float32" };
torch.manualSeed(0);
const model = Qwen2ForCausalLM.fromConfig(cfg, { device, seed: 0 });
if (rank > 0) applyLora(model, { rank, alpha: 2 * rank, targets: QWEN2_LORA_TARGETS });
// LoRA B starts at zero; random values make the adapters' arithmetic real.
torch.noGrad(() => {
  for (const [n, p] of model.namedParameters()) if (n.includes("lora_B")) p.normal_(0, 0.02);
});
const T = Math.max(...lengths);
const rows = Array.from({ length: B }, (_, i) => lengths[i % lengths.length]);
const ids = rows.map((n, i) => [...Array(T - n).fill(0), ...Array.from({ length: n }, (_, k) => 1 + ((i * 7919 + k * 104729) % (cfg.vocabSize - 1)))]);
const mask = rows.some((n) => n < T) ? rows.map((n) => [...Array(T - n).fill(0), ...Array(n).fill(1)]) : null;
const ac = cuda ? { device: "cuda" as const, dtype: "bfloat16" as const } : null;
const run = <R>(fn: () => R): R => (ac ? torch.autocast(ac, fn) : fn());
const sync = () => (cuda ? torch.cuda.synchronize() : undefined);

// Each path with LoRA merged for the call (generate's default on CUDA) and, where adapters exist, unmerged.
type Path = { cache: "static" | "dynamic"; cudaGraphs: "auto" | "off"; mergeAdapters?: "on" | "off" };
const graphs = cuda && torch.cuda.graphsSupported();
const paths: Record<string, Path> = {
  dynamic: { cache: "dynamic", cudaGraphs: "off", mergeAdapters: "off" },
  static_eager: { cache: "static", cudaGraphs: "off", mergeAdapters: "off" },
  ...(graphs ? { static_graph: { cache: "static", cudaGraphs: "auto", mergeAdapters: "off" } as Path } : {}),
  ...(rank > 0 ? { static_eager_merged: { cache: "static", cudaGraphs: "off", mergeAdapters: "on" } as Path } : {}),
  ...(rank > 0 && graphs ? { static_graph_merged: { cache: "static", cudaGraphs: "auto", mergeAdapters: "on" } as Path } : {}),
};
// generate's default: merged adapters on CUDA only.
const best = cuda && rank > 0 ? (graphs ? "static_graph_merged" : "static_eager_merged") : graphs ? "static_graph" : "static_eager";
const gen = (p: Path, n: number) => run(() => model.generate(ids, { maxNewTokens: n, attentionMask: mask, eosTokenIds: [], ...p }));
const timeMs = (fn: () => unknown): number => {
  fn(); // warm-up (a graph's capture happens here)
  sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  sync();
  return (performance.now() - t0) / reps;
};

const result: Record<string, unknown> = {
  bench: "decode", machine: machine(), device, batch: B, prompt_lengths: rows, padded_length: T, new_tokens: newTokens, lora_rank: rank,
  model: cuda ? "Qwen2.5-1.5B shapes, random weights, bf16, autocast bf16" : `Qwen2.5-1.5B structure at hidden ${cfg.hiddenSize}, float32`,
};
const tokens: Record<string, number[][]> = {};
if (cuda) torch.cuda.resetPeakMemoryStats();
const prefillMs = timeMs(() => gen(paths.static_eager, 1));
if (rank > 0) result.prefill_ms_merged = timeMs(() => gen(paths.static_eager_merged, 1));
result.prefill_ms = prefillMs;
for (const [name, p] of Object.entries(paths)) {
  const ms = timeMs(() => (tokens[name] = gen(p, newTokens)));
  result[`generate_ms_${name}`] = ms;
  result[`decode_step_ms_${name}`] = (ms - (name.endsWith("merged") ? (result.prefill_ms_merged as number) : prefillMs)) / (newTokens - 1);
}
result.cuda_graph = graphs;
result.default_path = best; // what generate does by default here
result.decode_step_ms = result[`decode_step_ms_${best}`];
// Unmerged paths compute the same numbers in another order; merged ones round W + scaling B A once (bf16).
result.same_tokens_unmerged_paths = Object.entries(tokens).filter(([n]) => !n.endsWith("merged")).every(([, t]) => JSON.stringify(t) === JSON.stringify(tokens.dynamic));
if (cuda) result.cuda_peak_gib = torch.cuda.memoryStats().peakAllocated / 2 ** 30;

// Native calls of one decode step: the static step alone (eager), and the growing-cache step of before.
torch.noGrad(() =>
  torch.scope(() => {
    model.eval();
    const m = mask ? torch.tensor(mask, { dtype: "int64", device }) : null;
    const st = staticDecodeStep(model, { batch: B, promptLength: T, maxNew: 2, mask: m, useGraphs: false });
    run(() => {
      st.cache.writeIndex = torch.arange(0, T, 1, { device });
      model.forward({ inputIds: torch.tensor(ids, { dtype: "int64", device }), attentionMask: m, pastKeyValues: st.cache, logitsToKeep: 1 });
      st.cache.writeIndex = null;
      const fed = torch.ones([B, 1], { dtype: "int64", device });
      result.native_calls_per_decode_step = torch.countNativeCalls(() => st.step(fed)).calls;
    });
    st.release();
    const dyn = model.forward({ inputIds: torch.tensor(ids, { dtype: "int64", device }), attentionMask: m, useCache: true, logitsToKeep: 1 });
    const m2 = m ? torch.cat([m, torch.ones([B, 1], { dtype: "int64", device })], 1) : null;
    const fed = torch.ones([B, 1], { dtype: "int64", device });
    run(() => {
      result.native_calls_per_decode_step_dynamic = torch.countNativeCalls(() =>
        model.forward({ inputIds: fed, attentionMask: m2, padded: m2 !== null, pastKeyValues: dyn.pastKeyValues, useCache: true, logitsToKeep: 1 }),
      ).calls;
    });
    (dyn.pastKeyValues as unknown as { dispose(): void }).dispose();
  }),
);
releaseDecodeGraphs(model);

if (v.hf && cuda) {
  // transformers' generate (no LoRA, equal-length prompts of T tokens, B rows, the same new tokens).
  const hf = pythonReference(v.hf_script ?? new URL("../../shared/bench/hf_stages.py", import.meta.url).pathname, ["--device", "cuda", "--prompt_tokens", String(T), "--new_tokens", String(newTokens), "--batch_sizes", String(B), "--reps", "3"]);
  result.hf = hf;
  const hfMs = hf?.[`generate_B${B}_ms`];
  if (typeof hfMs === "number") result.ratio_generate_vs_hf = (result[`generate_ms_${best}`] as number) / hfMs;
}
console.log(JSON.stringify(result));
