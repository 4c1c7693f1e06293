// metrics.jsonl: every record as one JSON line, the run's own history (resume cuts it back to the
// checkpoint's step; report.html and TensorBoard's backfill read it).
import { appendMetrics } from "../run/run-folder";
import type { MetricsSink, MetricRecord } from "./sink";

export class JsonlSink implements MetricsSink {
  constructor(private readonly runDir: string) {}

  write(r: MetricRecord): void {
    appendMetrics(this.runDir, r);
  }
}
