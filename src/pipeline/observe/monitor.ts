// What a training run leaves for people to watch: metrics.jsonl, TensorBoard event files, and
// report.html after each validation. The trainer hands every record to log() and every validation
// to validated(); batchExtras() adds what the loop itself does not track (the EFE's terms, learning
// rates, examples/s, memory use).
import type { ExampleEval } from "../eval/evaluate";
import type { ExampleLogs } from "../system/training-step";
import { writeDashboard, writeValidationGallery } from "./report-html";
import { appendMetrics, readMetrics } from "../run/run-folder";
import { type EventWriter, openEventWriter } from "./tensorboard";
import * as cuda from "../../torch/cuda";

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
const emptyTerms = () => ({ n: 0, risk: 0, ambiguity: 0, complexity: 0, size_ce: 0, soft_reward: 0 });

export class RunMonitor {
  private readonly tb: EventWriter | null;
  private readonly now: () => number;
  private readonly cudaIndex: number | null;
  private lastStep: number;
  private lastTime: number;
  /** Seconds spent validating since the last batch record (left out of examples/s). */
  private pausedSeconds = 0;
  /**
   * Sums of the EFE's terms over the finite examples since the last batch record. Kept here, not in the
   * trainer's checkpointed window, so after a resume the first record averages the examples trained
   * since the resume.
   */
  private terms = emptyTerms();

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

  /** One trained example's logs (for the EFE's terms). */
  example(l: ExampleLogs): void {
    if (!l.finite) return;
    const s = this.terms;
    s.n++;
    s.risk += l.risk;
    s.ambiguity += l.ambiguity;
    s.complexity += l.complexity;
    s.size_ce += l.sizeCe;
    s.soft_reward += l.softReward;
  }

  /**
   * The EFE's terms (risk, ambiguity, complexity, size cross-entropy) and the soft reward averaged since
   * the previous batch record, learning rates, examples/s, process and GPU memory in MiB.
   */
  batchExtras(step: number): Record<string, number> {
    const t = this.now();
    const seconds = t - this.lastTime - this.pausedSeconds;
    const out: Record<string, number> = {};
    const { n, ...sums } = this.terms;
    if (n > 0) for (const [k, v] of Object.entries(sums)) out[k] = v / n;
    this.terms = emptyTerms();
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
