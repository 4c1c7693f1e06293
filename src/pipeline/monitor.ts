// What a training run leaves for people to watch: metrics.jsonl, TensorBoard event files, and
// report.html after each validation. The trainer hands every record to log() and every validation
// to validated(); batchExtras() adds what the loop itself does not track (learning rates, examples/s,
// memory use).
import type { ExampleEval } from "./evaluate";
import { writeDashboard, writeValidationGallery } from "./dashboard";
import { appendMetrics, readMetrics } from "./runs";
import { type EventWriter, openEventWriter } from "./tensorboard";
import * as cuda from "../torch/cuda";

export interface MonitorOptions {
  /** The step training starts or resumes at. */
  step: number;
  resumed: boolean;
  /** Examples per batch (for examples/s). */
  batchSize: number;
  /** Optimizers whose groups' learning rates are logged as lr_<group> (`name` overrides a single group's name). */
  optimizers: { name?: string; opt: { paramGroups: { name: string; lr: number }[] } }[];
  /** Where a failure to write a report goes (it never stops training). */
  warn: (line: string) => void;
  now?: () => number;
}

const MIB = 1024 * 1024;

export class RunMonitor {
  private readonly tb: EventWriter | null;
  private readonly now: () => number;
  private readonly cudaIndex: number | null;
  private lastStep: number;
  private lastTime: number;
  /** Seconds spent validating since the last batch record (left out of examples/s). */
  private pausedSeconds = 0;

  constructor(readonly runDir: string, config: { device: string; tensorboard?: string }, private readonly o: MonitorOptions) {
    this.now = o.now ?? (() => performance.now() / 1000);
    this.lastStep = o.step;
    this.lastTime = this.now();
    const m = /^cuda(?::(\d+))?$/.exec(config.device);
    this.cudaIndex = m ? Number(m[1] ?? 0) : null;
    this.tb = config.tensorboard === "false"
      ? null
      : openEventWriter(runDir, {
          resumeStep: o.resumed ? o.step : undefined,
          config: config as unknown as Record<string, unknown>,
          backfill: () => readMetrics(runDir),
        });
  }

  /** The event file being written, or null with `--tensorboard false`. */
  get eventFile(): string | null {
    return this.tb?.path ?? null;
  }

  /** Appends a record to metrics.jsonl and its scalars to the event file. */
  log(record: Record<string, unknown>): void {
    appendMetrics(this.runDir, record);
    this.tb?.writeRecord(record);
  }

  /** Learning rates, examples/s since the previous batch record, process and GPU memory in MiB. */
  batchExtras(step: number): Record<string, number> {
    const t = this.now();
    const seconds = t - this.lastTime - this.pausedSeconds;
    const out: Record<string, number> = {};
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

  /** After a validation (already logged): its grids and a fresh report.html. */
  validated(step: number, results: ExampleEval[], seconds: number): void {
    this.pausedSeconds += seconds;
    try {
      writeValidationGallery(this.runDir, step, results);
      writeDashboard(this.runDir);
    } catch (e) {
      this.o.warn(`could not write ${this.runDir}/report.html: ${(e as Error).message}`);
    }
  }

  /** For the progress bar: allocated / peak GPU memory on CUDA, nothing on the CPU. */
  barExtra(): string {
    if (this.cudaIndex === null) return "";
    const m = cuda.memoryStats(this.cudaIndex);
    return `GPU ${(m.allocated / 1024 ** 3).toFixed(2)}/${(m.peakAllocated / 1024 ** 3).toFixed(2)} GiB`;
  }

  close(): void {
    this.tb?.close();
  }
}
