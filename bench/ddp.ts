// Data-parallel training on this machine: the trainer's examples/s with 1 and 2 ranks (scripts/train.ts
// itself, 1 LibTorch thread per process, rates from its own metrics.jsonl timestamps), the scaling ratio,
// and the time of one all-reduce (avg, 25 MiB buckets) of a gradient set shaped like Qwen2.5-1.5B's
// parameters, over Gloo on 127.0.0.1. One JSON object on stdout.
//
//   bun bench/ddp.ts                                   both parts (the all-reduce needs ~2 x 6.2 GB of memory)
//   bun bench/ddp.ts --params 0.25                     the all-reduce of a quarter of those parameters
//   bun bench/ddp.ts --skip_allreduce --batches 40
//   bun bench/ddp.ts --out bench/results/ddp-cpu-$(date +%F).json
//
// On a GPU machine (bench/gpu-checks.sh): --device cuda --backend nccl --ranks 1 --group_of_one: the
// all-reduce over NCCL on the GPU, and the trainer in a group of one over NCCL against no group (the
// overhead). NCCL refuses two ranks on one GPU, so one GPU measures a group of one.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { QWEN25_1_5B_CONFIG } from "../src/models/qwen2";
import { readMetrics } from "../src/pipeline/run/run-folder";
import * as torch from "../src/torch";
import { freePort } from "../src/util/ports";
import { machine } from "./machine";

const ROOT = join(import.meta.dir, "..");
const USAGE = `Usage: bun bench/ddp.ts [options]
  --device D         cpu (default) or cuda
  --batch_size N     examples per rank per batch (default 4): 2 ranks train a global batch of 2N
  --batches N        batches each run trains (default 30; the first --warmup are not timed)
  --warmup N         untimed batches (default 5)
  --params F         the all-reduce's gradient set: this fraction of Qwen2.5-1.5B's parameters (default 1)
  --bucket_mb N      all-reduce bucket size in MiB (default 25, PyTorch DDP's)
  --backend B        gloo (default) or nccl (tensors on cuda:LOCAL_RANK)
  --ranks N          processes of the all-reduce (default 2)
  --group_of_one     the trainer's part: a group of one (--dist_backend B, WORLD_SIZE=1) against no group,
                     instead of 1 against 2 ranks
  --skip_train / --skip_allreduce
  --out FILE         also write the JSON to FILE`;

/** Qwen2.5-1.5B's trainable parameters by checkpoint name (lm_head is tied to embed_tokens). */
function qwenShapes(): [string, number[]][] {
  const c = QWEN25_1_5B_CONFIG;
  const kv = c.numKeyValueHeads * c.headDim;
  const out: [string, number[]][] = [["model.embed_tokens.weight", [c.vocabSize, c.hiddenSize]]];
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [`${p}input_layernorm.weight`, [c.hiddenSize]],
      [`${p}self_attn.q_proj.weight`, [c.hiddenSize, c.hiddenSize]],
      [`${p}self_attn.q_proj.bias`, [c.hiddenSize]],
      [`${p}self_attn.k_proj.weight`, [kv, c.hiddenSize]],
      [`${p}self_attn.k_proj.bias`, [kv]],
      [`${p}self_attn.v_proj.weight`, [kv, c.hiddenSize]],
      [`${p}self_attn.v_proj.bias`, [kv]],
      [`${p}self_attn.o_proj.weight`, [c.hiddenSize, c.hiddenSize]],
      [`${p}post_attention_layernorm.weight`, [c.hiddenSize]],
      [`${p}mlp.gate_proj.weight`, [c.intermediateSize, c.hiddenSize]],
      [`${p}mlp.up_proj.weight`, [c.intermediateSize, c.hiddenSize]],
      [`${p}mlp.down_proj.weight`, [c.hiddenSize, c.intermediateSize]],
    );
  }
  out.push(["model.norm.weight", [c.hiddenSize]]);
  return out;
}
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

// ---- worker: one rank of the all-reduce measurement (started by the main process below) ----------

function allReduceWorker(fraction: number, bucketMb: number, reps: number, backend: "gloo" | "nccl"): void {
  torch.setNumThreads(1);
  torch.distributed.initProcessGroup({ backend, timeoutMs: 600_000 });
  const device = torch.distributed.device();
  // The first `fraction` of the parameter list (whole tensors), float32 like gradients after unscale.
  const shapes = qwenShapes();
  const total = shapes.reduce((a, [, s]) => a + numel(s), 0);
  const picked: number[][] = [];
  let n = 0;
  for (const [, s] of shapes) {
    if (n >= fraction * total) break;
    picked.push(s);
    n += numel(s);
  }
  const grads = picked.map((s) => torch.keep(torch.full(s, torch.distributed.rank() + 1, { device })));
  const sync = () => (device === "cpu" ? undefined : torch.cuda.synchronize());
  const times: number[] = [];
  for (let i = 0; i <= reps; i++) {
    torch.distributed.barrier();
    sync();
    const t0 = performance.now();
    torch.distributed.allReduce(grads, { op: "avg", bucketBytes: bucketMb * 2 ** 20 });
    sync();
    if (i > 0) times.push((performance.now() - t0) / 1000); // the first is warm-up (connections, pages)
  }
  // The average of 1..W is (W + 1) / 2 everywhere: a wrong reduction would not pass for a fast one.
  const check = grads[0].flatten().narrow(0, 0, 1).item();
  if (torch.distributed.rank() === 0) process.stdout.write(`${JSON.stringify({ params: n, tensors: grads.length, bytes: n * 4, seconds: times, check })}\n`);
  torch.distributed.destroyProcessGroup();
}

// ---- main ---------------------------------------------------------------------------------------


/** Runs `argv` as `world` ranks (the launcher's environment); resolves with rank 0's stdout. */
async function ranks(world: number, argv: string[]): Promise<string> {
  const port = await freePort();
  const procs = Array.from({ length: world }, (_, r) =>
    spawn(process.execPath, argv, {
      cwd: ROOT,
      env: { ...process.env, WORLD_SIZE: String(world), RANK: String(r), LOCAL_RANK: String(r), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const outs = procs.map((p) => {
    let s = "";
    p.stdout!.on("data", (d) => (s += d));
    p.stderr!.on("data", (d) => (s += d));
    return new Promise<string>((resolve, reject) => p.on("exit", (code) => (code === 0 ? resolve(s) : reject(new Error(`rank exited ${code}:\n${s.slice(-2000)}`)))));
  });
  return (await Promise.all(outs))[0]!;
}

/** The trainer's examples/s over batches warmup+1..batches, from its metrics.jsonl. */
async function trainerRate(world: number, o: { device: string; batchSize: number; batches: number; warmup: number; backend?: string }): Promise<Record<string, unknown>> {
  const runDir = mkdtempSync(join(tmpdir(), "arc-bench-ddp-"));
  try {
    const args = [
      join(ROOT, "scripts", "train.ts"), "--preset", "smoke", "--device", o.device, "--quiet", "--num_threads", "1",
      "--batch_size", String(o.batchSize), "--max_batches", String(o.batches), "--log_every", "1", "--val_max", "0",
      "--ckpt_every", String(o.batches + 1), "--tensorboard", "false", "--run_dir", runDir,
      ...(o.backend ? ["--dist_backend", o.backend] : []),
    ];
    const t0 = performance.now();
    if (world === 1 && !o.backend) {
      const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`train.ts exited ${r.status}:\n${r.stderr.slice(-2000)}`);
    } else await ranks(world, args);
    const wall = (performance.now() - t0) / 1000;
    const run = join(runDir, readdirSync(runDir).find((n) => n.startsWith("arc_"))!);
    const recs = readMetrics(run).filter((r) => r.type === "batch");
    const at = (step: number) => Date.parse(recs.find((r) => r.step === step)!.time);
    const seconds = (at(o.batches) - at(o.warmup)) / 1000;
    const examples = (o.batches - o.warmup) * o.batchSize * world;
    return { world, group: o.backend ?? (world > 1 ? "gloo" : "none"), batch_per_rank: o.batchSize, global_batch: o.batchSize * world, timed_batches: o.batches - o.warmup, examples, seconds, examples_per_s: examples / seconds, wall_s_with_startup: wall };
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      device: { type: "string", default: "cpu" },
      batch_size: { type: "string", default: "4" },
      batches: { type: "string", default: "30" },
      warmup: { type: "string", default: "5" },
      params: { type: "string", default: "1" },
      bucket_mb: { type: "string", default: "25" },
      reps: { type: "string", default: "3" },
      skip_train: { type: "boolean", default: false },
      skip_allreduce: { type: "boolean", default: false },
      backend: { type: "string", default: "gloo" },
      ranks: { type: "string", default: "2" },
      group_of_one: { type: "boolean", default: false },
      worker: { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (v.help) return void console.log(USAGE);
  const num = (name: keyof typeof v, min: number): number => {
    const n = Number(v[name]);
    if (!(n >= min)) throw new Error(`--${name} must be a number >= ${min}, got ${v[name]}`);
    return n;
  };
  const fraction = num("params", 1e-6);
  const bucketMb = num("bucket_mb", 1);
  const reps = num("reps", 1);
  const backend = v.backend as "gloo" | "nccl";
  if (backend !== "gloo" && backend !== "nccl") throw new Error(`--backend must be gloo or nccl, got ${v.backend}`);
  const world = num("ranks", 1);
  if (v.worker) return allReduceWorker(fraction, bucketMb, reps, backend);

  const result: Record<string, unknown> = { bench: "ddp", date: new Date().toISOString(), machine: machine() };
  if (!v.skip_train) {
    const o = { device: v.device!, batchSize: num("batch_size", 1), batches: num("batches", 2), warmup: num("warmup", 1) };
    if (o.warmup >= o.batches) throw new Error("--warmup must be below --batches");
    const config = "scripts/train.ts --preset smoke (tiny Qwen, synthetic data), 1 LibTorch thread per process, no validation or checkpoint in the timed batches";
    const one = await trainerRate(1, o);
    if (v.group_of_one) {
      const grouped = await trainerRate(1, { ...o, backend });
      // What a process group costs a run of one: < 1 is the share of speed the collectives take.
      result.trainer = { config, one, grouped, ratio: (grouped.examples_per_s as number) / (one.examples_per_s as number) };
    } else {
      const two = await trainerRate(2, o);
      // Weak scaling: 2 ranks with the same per-rank batch; 2.0 would be perfect.
      result.trainer = { config, one, two, scaling: (two.examples_per_s as number) / (one.examples_per_s as number) };
    }
  }
  if (!v.skip_allreduce) {
    const out = await ranks(world, [import.meta.path, "--worker", "--params", String(fraction), "--bucket_mb", String(bucketMb), "--reps", String(reps), "--backend", backend]);
    const m = JSON.parse(out.trim().split("\n").filter((l) => l.startsWith("{")).at(-1)!);
    if (m.check !== (world + 1) / 2) throw new Error(`all-reduce check: expected ${(world + 1) / 2}, got ${m.check}`);
    const best = Math.min(...m.seconds);
    result.allreduce = {
      backend, ranks: world, op: "avg", dtype: "float32", bucket_mib: bucketMb,
      set: `Qwen2.5-1.5B's parameters${fraction < 1 ? ` (the first ${fraction} of them)` : ""}`,
      params: m.params, tensors: m.tensors, gb: m.bytes / 1e9, seconds: m.seconds, best_s: best,
      // Bytes of the set per second, and NCCL's "bus bandwidth" convention (x 2(n-1)/n) for comparison.
      algo_gb_per_s: m.bytes / 1e9 / best,
      bus_gb_per_s: ((m.bytes / 1e9) * 2 * (world - 1)) / world / best,
    };
  }
  const json = JSON.stringify(result, null, 2);
  console.log(json);
  if (v.out) {
    mkdirSync(dirname(v.out), { recursive: true });
    writeFileSync(v.out, `${json}\n`);
  }
}

await main();
