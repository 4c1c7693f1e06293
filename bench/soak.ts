// Memory over a long training run: the real trainer (src/pipeline/trainer/trainer.ts, in this process) on the
// smoke preset for 300 batches, sampling every 50 batches the resident set size, the JS heap, and the
// number of live tensors. Live tensors flat while RSS climbs means memory held outside the tensors
// (the C allocator's free lists, JS garbage, caches): the JSON says which. One JSON object on stdout;
// "flat" says whether the memory in use (RSS after a GC and malloc_trim at each sample) grew by at most
// --bound MiB after warm-up with the live tensors unchanged; rss_mib is RSS as the trainer left it.
//
// What held memory (2026-12-01, 2-core VM): glibc kept the pages LibTorch freed in its arenas (RSS
// 572 -> 681 MiB with 206 live tensors throughout), and 8 MiB hash buffers plus other dead Buffers
// waited for a late GC. The trainer now collects and calls malloc_trim after each checkpoint
// (src/util/malloc.ts) and hashes with one reused buffer.
//
//   bun bench/soak.ts                               300 smoke batches, a sample every 50
//   bun bench/soak.ts --batches 600 --every 100 --out bench/results/soak-cpu-$(date +%F).json
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULTS, PRESETS, type TrainConfig } from "../src/pipeline/config/train-config";
import { train } from "../src/pipeline/trainer/trainer";
import * as torch from "../src/torch";
import { releaseFreeMemory } from "../src/util/malloc";
import { machine } from "./machine";

const { values } = parseArgs({
  options: {
    batches: { type: "string", default: "300" },
    every: { type: "string", default: "50" },
    bound: { type: "string", default: "64" },
    out: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log("Usage: bun bench/soak.ts [--batches 300] [--every 50] [--bound 64] [--out FILE]\n  --bound  MiB the memory in use may grow after warm-up (flat: true/false in the JSON)");
  process.exit(0);
}
const batches = Number(values.batches);
const every = Number(values.every);
const bound = Number(values.bound);

const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
/** RssAnon and RssFile of /proc/self/status (anonymous memory is what allocators hold). */
function procStatus(): { rss_anon_mib: number | null; rss_file_mib: number | null } {
  try {
    const s = require("node:fs").readFileSync("/proc/self/status", "utf8") as string;
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
    return { rss_anon_mib: mib(kb("RssAnon") * 1024), rss_file_mib: mib(kb("RssFile") * 1024) };
  } catch {
    return { rss_anon_mib: null, rss_file_mib: null };
  }
}

interface Sample {
  batch: number;
  /** RSS as the trainer left it: live memory plus free pages the allocator still holds. */
  rss_mib: number;
  /** RSS after a full GC and malloc_trim done here: the memory really in use. */
  rss_floor_mib: number;
  rss_anon_mib: number | null;
  rss_file_mib: number | null;
  heap_used_mib: number;
  live_tensors: number;
}
const samples: Sample[] = [];
const sample = (batch: number) => {
  const m = process.memoryUsage();
  const rest = { ...procStatus(), heap_used_mib: mib(m.heapUsed), live_tensors: torch.liveTensors() };
  releaseFreeMemory();
  samples.push({ batch, rss_mib: mib(m.rss), rss_floor_mib: mib(process.memoryUsage().rss), ...rest });
};

const runDir = mkdtempSync(join(tmpdir(), "arc-soak-"));
const cfg: TrainConfig = {
  ...DEFAULTS,
  ...PRESETS.smoke,
  device: "cpu",
  max_batches: batches,
  log_every: every,
  run_dir: runDir,
  quiet: true,
};
const t0 = performance.now();
sample(0);
try {
  await train(cfg, {}, {
    out: (line) => {
      const m = /^\[batch +(\d+)\]/.exec(line);
      if (m) sample(Number(m[1]));
    },
    err: () => {},
  });
} finally {
  rmSync(runDir, { recursive: true, force: true });
}
const seconds = (performance.now() - t0) / 1000;

// Growth after warm-up: the first sample after batch 0 holds the one-time costs (model, caches, the
// first checkpoint's buffers), so the trend is measured from there.
const warm = samples.find((s) => s.batch > 0) ?? samples[0];
const last = samples.at(-1)!;
const after = samples.filter((s) => s.batch >= warm.batch).map((s) => s.rss_mib);
const floors = samples.filter((s) => s.batch >= warm.batch).map((s) => s.rss_floor_mib);
const growth = Math.round((last.rss_floor_mib - warm.rss_floor_mib) * 10) / 10;
const result = {
  bench: "soak",
  what: `the trainer on --preset smoke for ${batches} batches (checkpoint every ${cfg.ckpt_every}), sampled every ${every}`,
  machine: machine(),
  malloc_env: { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? null, MALLOC_TRIM_THRESHOLD_: process.env.MALLOC_TRIM_THRESHOLD_ ?? null },
  seconds: Math.round(seconds),
  samples,
  // The trend: what is really held (after GC and trim) at the last sample minus at the first after warm-up.
  rss_floor_growth_after_warmup_mib: growth,
  rss_floor_range_after_warmup_mib: [Math.min(...floors), Math.max(...floors)],
  // Between trims (the trainer's, after each checkpoint) RSS rises by the working set of the batches
  // since: this range is floor plus that working set.
  rss_range_after_warmup_mib: [Math.min(...after), Math.max(...after)],
  flat_within_mib: bound,
  flat: growth <= bound && last.live_tensors === warm.live_tensors,
  live_tensors_change_after_warmup: last.live_tensors - warm.live_tensors,
  heap_growth_after_warmup_mib: Math.round((last.heap_used_mib - warm.heap_used_mib) * 10) / 10,
};
const json = JSON.stringify(result, null, 2);
console.log(json);
if (values.out) writeFileSync(values.out, json + "\n");
