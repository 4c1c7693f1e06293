// What a training run leaves for people to watch. The trainer hands every record to log() and every
// validation to validated(); the monitor passes them to its sinks (sink.ts: the console, metrics.jsonl,
// TensorBoard, report.html) and adds to each batch record what the loop itself does not track:
// the loss terms' window means (objective/terms.ts), learning rates, examples/s and memory use.
import * as cuda from "../../torch/cuda";
import type { ExampleEval } from "../eval/evaluate";
import { ALL_TERMS } from "../objective/terms";
import type { ExampleLogs } from "../system/training-step";
import { ConsoleSink } from "./console-sink";
import { JsonlSink } from "./jsonl-sink";
import { ReportSink } from "./report-sink";
import type { MetricRecord, MetricsSink } from "./sink";
import { TensorBoardSink } from "./tensorboard-sink";

export interface MonitorOptions {
  /** The step training starts or resumes at. */
  step: number;
  resumed: boolean;
  /** Examples per batch (for examples/s). */
  batchSize: number;
  /** Optimizers whose groups' learning rates are logged as lr_<group> (`name` overrides a single group's name). */
  optimizers: { name?: string; opt: { paramGroups: { name: string; lr: number }[] } }[];
  /** The console's lines (the batch line, validation, the epoch summary). */
  out: (line: string) => void;
  /** Where a failure to write a report goes (it never stops training). */
  warn: (line: string) => void;
  now?: () => number;
}

/** The sinks of a run: the console, metrics.jsonl, TensorBoard (unless --tensorboard false) and report.html. */
export function runSinks(runDir: string, config: { tensorboard?: string }, o: Pick<MonitorOptions, "step" | "resumed" | "out" | "warn">): MetricsSink[] {
  return [
    new ConsoleSink(o.out),
    new JsonlSink(runDir),
    ...(config.tensorboard === "false" ? [] : [new TensorBoardSink(runDir, config as Record<string, unknown>, o.resumed ? o.step : undefined)]),
    new ReportSink(runDir, o.warn),
  ];
}

const MIB = 1024 * 1024;
/** The terms averaged over a logging window's examples, by metric name. */
const WINDOW_TERMS = ALL_TERMS.filter((t) => t.windowMean);
const emptyTerms = () => ({ n: 0, sums: Object.fromEntries(WINDOW_TERMS.map((t) => [t.metric, 0])) as Record<string, number> });

export class RunMonitor {
  private readonly now: () => number;
  private readonly cudaIndex: number | null;
  private lastStep: number;
  private lastTime: number;
  /** Seconds spent validating since the last batch record (left out of examples/s). */
  private pausedSeconds = 0;
  /**
   * Sums of the loss terms over the finite examples since the last batch record. Kept here, not in the
   * trainer's checkpointed window, so after a resume the first record averages the examples trained
   * since the resume.
   */
  private terms = emptyTerms();
  /** Sums of each group's gradient norm (before clipping) over the optimizer steps since the last batch record. */
  private gradNorms: { n: number; sums: Record<string, number> } = { n: 0, sums: {} };

  constructor(device: string, private readonly sinks: MetricsSink[], private readonly o: MonitorOptions) {
    this.now = o.now ?? (() => performance.now() / 1000);
    this.lastStep = o.step;
    this.lastTime = this.now();
    const m = /^cuda(?::(\d+))?$/.exec(device);
    this.cudaIndex = m ? Number(m[1] ?? 0) : null;
  }

  /** Hands a record to every sink. */
  log(record: MetricRecord): void {
    for (const s of this.sinks) s.write(record);
  }

  /** One trained example's logs (for the loss terms' window means). */
  example(l: ExampleLogs): void {
    if (!l.finite) return;
    this.terms.n++;
    for (const t of WINDOW_TERMS) this.terms.sums[t.metric] += l[t.name];
  }

  /** One optimizer step's gradient norms before clipping, by group, and their total. */
  optimizerStep(norms: { groups: Record<string, number>; total: number }): void {
    this.gradNorms.n++;
    for (const [g, v] of [...Object.entries(norms.groups), ["total", norms.total] as const]) this.gradNorms.sums[g] = (this.gradNorms.sums[g] ?? 0) + v;
  }

  /**
   * The loss terms and gradient norms (grad_norm_<group>, grad_norm_total) averaged since the previous batch record, learning rates, examples/s, process and GPU
   * memory in MiB.
   */
  batchExtras(step: number): Record<string, number> {
    const t = this.now();
    const seconds = t - this.lastTime - this.pausedSeconds;
    const out: Record<string, number> = {};
    const { n, sums } = this.terms;
    if (n > 0) for (const [k, v] of Object.entries(sums)) out[k] = v / n;
    this.terms = emptyTerms();
    if (this.gradNorms.n > 0) for (const [g, v] of Object.entries(this.gradNorms.sums)) out[`grad_norm_${g}`] = v / this.gradNorms.n;
    this.gradNorms = { n: 0, sums: {} };
    for (const { name, opt } of this.o.optimizers)
      for (const g of opt.paramGroups) out[`lr_${name && opt.paramGroups.length === 1 ? name : g.name}`] = g.lr;
    if (seconds > 0 && step > this.lastStep) out.examples_per_s = ((step - this.lastStep) * this.o.batchSize) / seconds;
    out.rss_mb = process.memoryUsage().rss / MIB;
    if (this.cudaIndex !== null) {
      const m = cuda.memoryStats(this.cudaIndex);
      out.gpu_alloc_mb = m.allocated / MIB;
      out.gpu_peak_mb = m.peakAllocated / MIB;
    }
    this.lastStep = step;
    this.lastTime = t;
    this.pausedSeconds = 0;
    return out;
  }

  /** After a validation (its record already logged): its examples to the sinks that show them. */
  validated(step: number, results: ExampleEval[], seconds: number): void {
    this.pausedSeconds += seconds;
    for (const s of this.sinks) s.validated?.(step, results, seconds);
  }

  /** For the progress bar: allocated / peak GPU memory on CUDA, nothing on the CPU. */
  barExtra(): string {
    if (this.cudaIndex === null) return "";
    const m = cuda.memoryStats(this.cudaIndex);
    return `GPU ${(m.allocated / 1024 ** 3).toFixed(2)}/${(m.peakAllocated / 1024 ** 3).toFixed(2)} GiB`;
  }

  close(): void {
    for (const s of this.sinks) s.close?.();
  }
}
