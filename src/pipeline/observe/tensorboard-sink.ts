// TensorBoard: each record's numbers as scalars in <run>/tb/ (tensorboard.ts writes the event files).
import { readMetrics } from "../run/run-folder";
import type { MetricsSink, MetricRecord } from "./sink";
import { type EventWriter, openEventWriter } from "./tensorboard";

export class TensorBoardSink implements MetricsSink {
  private readonly tb: EventWriter;

  /** `resumeStep`: events past it (a crashed run's) are cut off; a run without an event file yet gets its metrics.jsonl first. */
  constructor(runDir: string, config: Record<string, unknown>, resumeStep: number | undefined) {
    this.tb = openEventWriter(runDir, { resumeStep, config, backfill: () => readMetrics(runDir) });
  }

  get path(): string {
    return this.tb.path;
  }

  write(r: MetricRecord): void {
    this.tb.writeRecord(r);
  }

  close(): void {
    this.tb.close();
  }
}
