// Where a run's numbers go. The trainer hands every record (a batch window, an epoch, a validation) to each
// sink in turn, and every validation's per-example results to the sinks that show examples. A sink is
// one file: the console, metrics.jsonl, TensorBoard and report.html are the ones a run has
// (sinks.ts makes them); W&B or CSV would be one more file and one line there.
import type { ExampleEval } from "../eval/evaluate";

/** A record of the run: `type` says what it is (batch, epoch, val); the rest are its numbers by their metric names. */
export interface MetricRecord {
  type: string;
  step: number;
  [name: string]: unknown;
}

export interface MetricsSink {
  write(record: MetricRecord): void;
  /** After a validation (its record already written): the examples themselves. */
  validated?(step: number, results: ExampleEval[], seconds: number): void;
  close?(): void;
}
