// The loss's logged terms, named in one place: which number is which in the device vector a batch brings to
// the host, the field it becomes in an example's logs, and its one name in every sink (console,
// metrics.jsonl, TensorBoard, report.html).
//
// Adding a term: compute its tensor in efe.ts (`scalars` or `perStep`) and add its entry here. The logs,
// the batch record's window mean, the sinks and report.html's "Loss terms" chart follow from this table.
import * as torch from "../../torch";
import type { Tensor } from "../../torch";

export interface TermSpec {
  /** Its name in metrics.jsonl, TensorBoard (train/<metric>) and report.html: snake_case. */
  metric: string;
  /** Its label on a chart and in the console. */
  label: string;
  /** Averaged over the examples of a logging window into the batch record. */
  windowMean: boolean;
  /** Drawn on report.html's "Loss terms" chart. */
  chart: boolean;
}

/** One number per example, in the order the loss is built (the total last). */
export const EXAMPLE_TERMS = {
  sizeCe: { metric: "size_ce", label: "size cross-entropy", windowMean: true, chart: true },
  softReward: { metric: "soft_reward", label: "soft reward", windowMean: true, chart: false },
  maskRatio: { metric: "mask", label: "mask ratio", windowMean: false, chart: false },
  efe: { metric: "efe", label: "EFE", windowMean: false, chart: false },
  loss: { metric: "loss", label: "total", windowMean: false, chart: false },
} as const satisfies Record<string, TermSpec>;

/**
 * One number per refinement step; an example's logs hold their mean over the steps from `fromStep` (the
 * complexity term compares a step with the one before, so the first step has none).
 */
export const STEP_TERMS = {
  risk: { metric: "risk", label: "risk", windowMean: true, chart: true, fromStep: 0 },
  ambiguity: { metric: "ambiguity", label: "ambiguity", windowMean: true, chart: true, fromStep: 0 },
  complexity: { metric: "complexity", label: "complexity", windowMean: true, chart: true, fromStep: 1 },
  G: { metric: "g", label: "G (a step's free energy)", windowMean: false, chart: false, fromStep: 0 },
} as const satisfies Record<string, TermSpec & { fromStep: number }>;

export type ExampleTerm = keyof typeof EXAMPLE_TERMS;
export type StepTerm = keyof typeof STEP_TERMS;
/** An example's logged terms: every per-example term, and each per-step term's mean. */
export type TermValues = Record<ExampleTerm | StepTerm, number>;
/** The terms as the host reads them back: per-step terms keep their [T] values. */
export type HostTerms = Record<ExampleTerm, number> & Record<StepTerm, number[]>;

const exampleNames = Object.keys(EXAMPLE_TERMS) as ExampleTerm[];
const stepNames = Object.keys(STEP_TERMS) as StepTerm[];

/** Every term with its spec in the order the loss is built (per-step terms, then the per-example ones, the total last). */
export const ALL_TERMS: readonly (TermSpec & { name: ExampleTerm | StepTerm })[] = [
  ...stepNames.map((name) => ({ name, ...STEP_TERMS[name] })),
  ...exampleNames.map((name) => ({ name, ...EXAMPLE_TERMS[name] })),
];

/** The detached vector of every logged number: the per-example terms, then each per-step term's [T] values. */
export function packTerms(scalars: Record<ExampleTerm, Tensor>, perStep: Record<StepTerm, Tensor>): Tensor {
  return torch.cat([...exampleNames.map((n) => scalars[n].view(1)), ...stepNames.map((n) => perStep[n])]).detach();
}

/** packTerms' vector read back on the host (`steps` = T). */
export function unpackTerms(v: readonly number[], steps: number): HostTerms {
  const out: Record<string, number | number[]> = {};
  exampleNames.forEach((n, i) => (out[n] = v[i]));
  stepNames.forEach((n, i) => (out[n] = v.slice(exampleNames.length + i * steps, exampleNames.length + (i + 1) * steps)));
  return out as HostTerms;
}

/** An example's logged values: per-step terms as their mean from their `fromStep`. */
export function termValues(t: HostTerms): TermValues {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  const out: Record<string, number> = {};
  for (const n of exampleNames) out[n] = t[n];
  for (const n of stepNames) out[n] = mean(t[n].slice(STEP_TERMS[n].fromStep));
  return out as TermValues;
}

/** The label of an example's first term that is not finite, in the order the loss is built, or null. */
export function firstNonFiniteTerm(t: Partial<TermValues>): string | null {
  return ALL_TERMS.find((s) => t[s.name] !== undefined && !Number.isFinite(t[s.name]))?.label ?? null;
}
