// The non-finite guard (issue 26): which tensors of a set hold NaN or inf (one host read for the whole
// set), which loss term of an example went non-finite, and the error that stops a diverged run (exit
// code 3 in scripts/train.ts). A checkpoint is never written from non-finite weights, and eval.ts and
// test-time training refuse them.
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { type TermValues, firstNonFiniteTerm } from "../objective/terms";

/** A run stopped because its numbers went non-finite (scripts/train.ts exits 3 with its one-line message). */
export class NonFiniteError extends Error {}

/** The names of the floating-point tensors in `tensors` that hold a NaN or an inf, in order (one host read). */
export function nonFiniteTensors(tensors: Record<string, Tensor>): string[] {
  const names = Object.keys(tensors).filter((k) => /^(float|bfloat)/.test(tensors[k].dtype));
  if (names.length === 0) return [];
  const ok = torch.scope(() =>
    torch.noGrad(() => torch.stack(names.map((k) => tensors[k].detach().isfinite().all().to({ device: "cpu" }))).to({ dtype: "int32" }).tolist() as number[]),
  );
  return names.filter((_, i) => !ok[i]);
}

/** "agent.x (and 12 more tensors)": the first bad name and how many others. */
export function describeTensors(bad: string[]): string {
  return bad.length === 0 ? "" : `${bad[0]}${bad.length > 1 ? ` (and ${bad.length - 1} more tensor${bad.length > 2 ? "s" : ""})` : ""}`;
}

/** The parameter group of a checkpoint tensor name (agent.*, refiner.*, qwen.*). */
export const tensorGroup = (name: string): string => name.split(".")[0];

/** The loss term of an example that went non-finite first, in the order the loss is built ("total" when none of the parts is). */
export function nonFiniteTerm(l: Partial<TermValues>): string {
  return firstNonFiniteTerm(l) ?? "total";
}
