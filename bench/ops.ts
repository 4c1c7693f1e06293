// Per-op overhead from TypeScript: microseconds per tiny op (the loop of ../shared/bench/op_overhead.py),
// next to PyTorch-from-Python measured in the same run. JSON on stdout.
// Usage: bun bench/ops.ts [--device cpu|cuda] [--iters N] [--no-python]
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as torch from "../src/torch";
import { machine, pythonReference } from "./machine";

const { values } = parseArgs({
  options: { device: { type: "string", default: "cpu" }, iters: { type: "string", default: "50000" }, "no-python": { type: "boolean", default: false } },
});
const device = values.device as torch.Device;
const N = Number(values.iters);
const sync = () => device.startsWith("cuda") && torch.cuda.synchronize();

/** Microseconds per iteration of `body`: the median of 5 runs after a warm-up. */
function time(body: (n: number) => void): number {
  body(2000);
  sync();
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    body(N);
    sync();
    runs.push(((performance.now() - t0) * 1000) / N);
  }
  return runs.sort((a, b) => a - b)[2];
}

const one = torch.keep(torch.full([1], 1.0, { device }));
let acc = torch.keep(torch.zeros([1], { device }));

// The idiom for loops: a scope around a block of work; what the block returns lives on.
const CHUNK = 100;
const addScopedLoop = (n: number) => {
  for (let c = 0; c < n / CHUNK; c++) {
    const next = torch.scope(() => {
      let a = acc;
      for (let i = 0; i < CHUNK; i++) a = a.add(one);
      return a;
    });
    acc.dispose();
    acc = torch.keep(next);
  }
};
const addScoped = time(addScopedLoop);
// Explicit disposal of each intermediate.
const addDispose = time((n) => {
  torch.scope(() => {
    for (let i = 0; i < n; i++) {
      const next = acc.add(one);
      if (i > 0) acc.dispose();
      acc = next;
    }
    acc = torch.keep(acc);
  });
});
const addInplace = time((n) => {
  for (let i = 0; i < n; i++) acc.add_(one);
});
const x = torch.keep(torch.randn([8, 8], { device }));
const mulScoped = time((n) => {
  torch.scope(() => {
    for (let i = 0; i < n; i++) x.mul(x);
  });
});
const matmulScoped = time((n) => {
  torch.scope(() => {
    for (let i = 0; i < n; i++) x.matmul(x);
  });
});
const softmaxScoped = time((n) => {
  torch.scope(() => {
    for (let i = 0; i < n; i++) x.softmax(-1);
  });
});

// The Python reference runs in rounds interleaved with ours (this machine's speed drifts over seconds),
// and the ratio compares medians of the same rounds.
const ROUNDS = 3;
const script = join(import.meta.dir, "..", "..", "shared", "bench", "op_overhead.py");
const rounds: { ts_add_scoped: number; python_add: number | null }[] = [];
let py: Record<string, unknown> | null = null;
for (let r = 0; r < ROUNDS; r++) {
  const ts = r === 0 ? addScoped : time(addScopedLoop);
  py = values["no-python"] ? null : pythonReference(script, [device.startsWith("cuda") ? "cuda" : "cpu"]);
  rounds.push({ ts_add_scoped: ts, python_add: typeof py?.add_us === "number" ? py.add_us : null });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const tsMedian = median(rounds.map((r) => r.ts_add_scoped));
const pyValues = rounds.map((r) => r.python_add).filter((v): v is number => v !== null);
const pyMedian = pyValues.length ? median(pyValues) : null;
console.log(
  JSON.stringify(
    {
      bench: "ops",
      device,
      iters: N,
      machine: machine(),
      us: { add_scoped: tsMedian, add_dispose: addDispose, add_inplace: addInplace, mul_8x8: mulScoped, matmul_8x8: matmulScoped, softmax_8x8: softmaxScoped },
      rounds,
      python: py,
      python_add_us_median: pyMedian,
      ratio_add_scoped_vs_python: pyMedian ? tsMedian / pyMedian : null,
      ratio_add_dispose_vs_python: pyMedian ? addDispose / pyMedian : null,
    },
    null,
    2,
  ),
);
