// The console's view of a run: one line per batch window, one per validation, a summary per epoch.
import type { MetricsSink, MetricRecord } from "./sink";

/** A number as Python's "%.2e" prints it (2.34e-04), the form of Qwen_grad in the batch line. */
export function pythonExp(v: number): string {
  const [m, e] = v.toExponential(2).split("e");
  const exp = Number(e);
  return `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
}

const signed = (v: number, digits: number) => (v >= 0 ? "+" : "") + v.toFixed(digits);
const num = (r: MetricRecord, k: string): number => (typeof r[k] === "number" ? (r[k] as number) : 0);

/** The batch line: each metric's mean over the window since the last line (not the epoch's running mean). */
export function batchLine(r: MetricRecord): string {
  return (
    `[batch ${String(r.step).padStart(4)}] window means: efe ${num(r, "efe").toFixed(3)} | d_acc ${signed(num(r, "d_acc"), 3)} | qwen_grad ${pythonExp(num(r, "qwen_grad"))} | ` +
    `mask ${num(r, "mask").toFixed(3)} | d_size ${num(r, "d_size").toFixed(2)} | rl_reward ${signed(num(r, "rl_reward"), 3)}${num(r, "skipped") ? ` | skipped ${num(r, "skipped")}` : ""}`
  );
}

export function validationLine(r: MetricRecord): string {
  const n = num(r, "examples");
  return `val: exact ${num(r, "exact").toFixed(4)} (${num(r, "exact_count")}/${n}) | pass2 ${num(r, "pass2").toFixed(4)} (${num(r, "pass2_count")}/${n}) | cell_acc ${num(r, "cell_acc").toFixed(4)} | accuracy_delta ${signed(num(r, "accuracy_delta"), 4)} | ${num(r, "seconds").toFixed(1)} s`;
}

/** The epoch's summary: each metric's mean over the epoch, by its metric name. */
export function epochSummary(r: MetricRecord): string[] {
  return [
    `=== epoch ${r.epoch}/${r.epochs}: means over the epoch ===`,
    `  efe              ${num(r, "efe").toFixed(4)}`,
    `  rl_reward        ${signed(num(r, "rl_reward"), 4)}   (baseline ${num(r, "baseline").toFixed(4)})`,
    `  qwen_grad        ${pythonExp(num(r, "qwen_grad"))}`,
    `  size_weight      ${num(r, "size_weight").toFixed(3)}`,
    // The share of reads that found a neighbour (cosine >= 0.5): near 1 from the start would mean the
    // keys do not tell tasks apart.
    `  theta            ${num(r, "theta").toFixed(4)}   (memory ${num(r, "memory")} entries, memory_writes ${num(r, "memory_writes")}, memory_hit_rate ${num(r, "memory_hit_rate").toFixed(2)})`,
    `  mask             ${num(r, "mask").toFixed(4)}`,
    `  d_acc / d_size   ${signed(num(r, "d_acc"), 4)} / ${num(r, "d_size").toFixed(2)}${num(r, "skipped") ? `   (skipped ${num(r, "skipped")} non-finite)` : ""}`,
  ];
}

export class ConsoleSink implements MetricsSink {
  constructor(private readonly out: (line: string) => void) {}

  write(r: MetricRecord): void {
    if (r.type === "batch") this.out(batchLine(r));
    else if (r.type === "val") this.out(validationLine(r));
    else if (r.type === "epoch") for (const line of epochSummary(r)) this.out(line);
  }
}
