// Ours against PyTorch-from-Python on this CPU, in one run: bench/ops.ts (per-op overhead beside
// op_overhead.py) and several rounds of bench/qwen.ts --hf (Qwen2 forward+backward beside
// transformers' qwen_hf.py on the same torch), medians per length and the ratio of medians. A round
// runs both sides back to back, so a drift of the machine's speed hits both.
//
//   PYTHON=~/.cache/arc-efe/venv-pip-cpu/bin/python bun bench/compare-cpu.ts --out bench/results/compare-cpu-2.13.json
//
// $PYTHON must have torch (the same version the addon was built against) and transformers.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { machine } from "./machine";

const { values: v } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" }, size: { type: "string", default: "small" }, threads: { type: "string", default: "2" },
    tokens: { type: "string", default: "128,512" }, out: { type: "string" }, shared: { type: "string" },
  },
});
const here = import.meta.dir;
const shared = v.shared ?? join(here, "..", "..", "shared", "bench");
const rounds = Number(v.rounds);

const jsonLines = (text: string) => text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
function bun(args: string[]): string {
  const r = spawnSync(process.execPath, args, { encoding: "utf8", cwd: join(here, ".."), timeout: 1_800_000 });
  if (r.status !== 0) throw new Error(`bun ${args.join(" ")} failed (${r.status}): ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`);
  return r.stdout;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const ops = JSON.parse(bun([join(here, "ops.ts"), "--device", "cpu"]));
const qwenRounds: { round: number; impl: string; tokens: number; ms: number }[] = [];
for (let r = 0; r < rounds; r++) {
  const lines = jsonLines(
    bun([join(here, "qwen.ts"), "--device", "cpu", "--size", v.size!, "--dtype", "float32", "--threads", v.threads!, "--tokens", v.tokens!, "--hf", "--hf_script", join(shared, "qwen_hf.py")]),
  );
  for (const l of lines) if (l.impl && typeof l.ms === "number") qwenRounds.push({ round: r + 1, impl: l.impl, tokens: l.tokens, ms: l.ms });
}
const lengths = v.tokens!.split(",").map(Number);
const qwen = lengths.map((T) => {
  const ours = median(qwenRounds.filter((q) => q.impl === "arc-efe" && q.tokens === T).map((q) => q.ms));
  const hf = median(qwenRounds.filter((q) => q.impl === "hf-transformers" && q.tokens === T).map((q) => q.ms));
  return { tokens: T, ours_ms_median: ours, hf_ms_median: hf, speed_ratio_ours_vs_hf: hf / ours };
});
const result = {
  bench: "compare-cpu",
  machine: machine(),
  omp_wait_policy: process.env.OMP_WAIT_POLICY ?? "PASSIVE (the addon's default)",
  ops: { us: ops.us, python_add_us_median: ops.python_add_us_median, ratio_add_scoped_vs_python: ops.ratio_add_scoped_vs_python, rounds: ops.rounds, python: ops.python },
  qwen: { size: v.size, dtype: "float32", threads: Number(v.threads), rounds: qwenRounds, medians: qwen },
  note: "speed_ratio > 1: ours faster; ratio_add_scoped_vs_python < 1: ours cheaper per op",
};
const text = JSON.stringify(result, null, 2);
if (v.out) writeFileSync(v.out, `${text}\n`);
console.log(text);
