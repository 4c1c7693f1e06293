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

/** The batch line: the window's means since the last one (EFE_Loss is the window mean, not the running one). */
export function batchLine(r: MetricRecord): string {
  return (
    `[Batch ${String(r.step).padStart(4)}] EFE_Loss: ${num(r, "efe").toFixed(3)} | d_acc: ${signed(num(r, "d_acc"), 3)} | Qwen_grad: ${pythonExp(num(r, "qwen_grad"))} | ` +
    `Mask: ${num(r, "mask").toFixed(3)} | d_size: ${num(r, "d_size").toFixed(2)} | RL: ${signed(num(r, "rl_reward"), 3)}${num(r, "skipped") ? ` | skipped: ${num(r, "skipped")}` : ""}`
  );
}

export function validationLine(r: MetricRecord): string {
  const n = num(r, "examples");
  return `Val Accuracy: ${num(r, "exactFirst").toFixed(4)} (${num(r, "exactFirstCount")}/${n}) | pass@2: ${num(r, "pass2").toFixed(4)} (${num(r, "pass2Count")}/${n}) | cell acc: ${num(r, "cellAcc").toFixed(4)} | accuracy delta: ${signed(num(r, "accuracyDelta"), 4)} | ${num(r, "seconds").toFixed(1)} s`;
}

export function epochSummary(r: MetricRecord): string[] {
  return [
    `=== Epoch ${r.epoch}/${r.epochs} ===`,
    `  EFE loss (avg)     ${num(r, "efe").toFixed(4)}`,
    `  RL reward (avg)    ${signed(num(r, "rl_reward"), 4)}   (baseline ${num(r, "baseline").toFixed(4)})`,
    `  Qwen grad norm     ${pythonExp(num(r, "qwen_grad"))}`,
    `  Size weight        ${num(r, "size_weight").toFixed(3)}`,
    // The share of reads that found a neighbour (cosine >= 0.5): near 1 from the start would mean the
    // keys do not tell tasks apart.
    `  Memory threshold   ${num(r, "theta").toFixed(4)}   (${num(r, "memory")} entries, ${num(r, "memory_writes")} writes, read hit rate ${num(r, "memory_hit_rate").toFixed(2)})`,
    `  Mask ratio         ${num(r, "mask").toFixed(4)}`,
    `  d_acc / d_size     ${signed(num(r, "d_acc"), 4)} / ${num(r, "d_size").toFixed(2)}${num(r, "skipped") ? `   (skipped ${num(r, "skipped")} non-finite)` : ""}`,
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
