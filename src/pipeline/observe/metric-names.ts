// One name per metric, snake_case, the same in the console, metrics.jsonl, TensorBoard (train/<name>,
// val/<name>, epoch/<name>) and report.html. The training records' names are the loop's (window.ts) and
// the loss terms' (objective/terms.ts); validation's are made here from evaluate()'s summary. Counts and
// durations are recorded but are not plotted as scalars.
import type { EvalSummary } from "../eval/evaluate";
import type { MetricRecord } from "./sink";

/** Validation's metrics: the summary's field, its metric name, and whether it is a count or a duration. */
const VAL_NAMES: readonly [keyof EvalSummary, string][] = [
  ["exactFirst", "exact"],
  ["exactFirstCount", "exact_count"],
  ["pass2", "pass2"],
  ["pass2Count", "pass2_count"],
  ["sizeAcc", "size_acc"],
  ["sizeAccCount", "size_acc_count"],
  ["sizeFromRules", "size_from_rules"],
  ["cellAcc", "cell_acc"],
  ["cellAccBefore", "cell_acc_before"],
  ["accuracyDelta", "accuracy_delta"],
  ["tasksSolved", "tasks_solved"],
  ["tasks", "tasks"],
  ["examples", "examples"],
  ["seconds", "seconds"],
];
const TTT_NAMES: readonly [keyof NonNullable<EvalSummary["ttt"]>, string][] = [
  ["tasks", "ttt_tasks"],
  ["secondsPerTask", "ttt_seconds_per_task"],
  ["gained", "ttt_gained"],
  ["lost", "ttt_lost"],
  ["cellAccWithout", "ttt_cell_acc_without"],
];

/** Recorded, not plotted: counts, durations and positions (TensorBoard gets no scalar for them). */
export const NOT_SCALARS = new Set([
  "exact_count", "pass2_count", "size_acc_count", "size_from_rules", "tasks_solved", "tasks", "examples", "seconds",
  "ttt_tasks", "ttt_seconds_per_task", "ttt_gained", "ttt_lost", "skipped", "epochs",
]);

/** A validation's record under the metric names. */
export function valRecord(step: number, epochsDone: number, s: EvalSummary): MetricRecord {
  const r: MetricRecord = { type: "val", step, epochs_done: epochsDone };
  for (const [field, name] of VAL_NAMES) r[name] = s[field];
  if (s.ttt) for (const [field, name] of TTT_NAMES) r[name] = s.ttt[field];
  return r;
}

/** Validation records written before the names were unified (camelCase keys, ttt nested) under today's names. */
export function withCurrentNames(r: Record<string, unknown>): Record<string, unknown> {
  if (r.type !== "val" || !("exactFirst" in r)) return r;
  const out: Record<string, unknown> = { type: r.type, step: r.step, epochs_done: r.epochs_done };
  for (const [field, name] of VAL_NAMES) if (field in r) out[name] = r[field];
  const ttt = r.ttt as Record<string, unknown> | undefined;
  if (ttt) for (const [field, name] of TTT_NAMES) if (field in ttt) out[name] = ttt[field];
  return out;
}
