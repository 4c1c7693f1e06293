// Free functions over several tensors (torch.cat, torch.where, ...) and autograd switches. The ones that
// only forward to one native op are generated (ops.generated.ts).
import { N } from "./native";
import { handles } from "./args";
import { type Tensor, wrapMaybe } from "./tensor";

export { atan2, bernoulli, cat, einsum, matmul, maximum, minimum, multinomial, outer, stack, tril, triu, where } from "./ops.generated";

// ---- autograd switches ----------------------------------------------------------------------------
export const isGradEnabled = (): boolean => N.isGradEnabled();

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev: boolean = N.isGradEnabled();
  N.setGradEnabled(enabled);
  try {
    return fn();
  } finally {
    N.setGradEnabled(prev);
  }
}
/** Runs fn without recording operations for autograd (torch.no_grad). */
export const noGrad = <T>(fn: () => T): T => withGradMode(false, fn);
/** Runs fn with gradient recording on, even inside noGrad (torch.enable_grad). */
export const enableGrad = <T>(fn: () => T): T => withGradMode(true, fn);

/** torch.autograd.grad: gradients of outputs w.r.t. inputs (null where an input is unused). */
export function grad(
  outputs: Tensor | Tensor[],
  inputs: Tensor[],
  opts: { gradOutputs?: Tensor[]; retainGraph?: boolean; createGraph?: boolean } = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const op = "autogradGrad";
  const r = N.autogradGrad(handles(outs, op, 0), handles(inputs, op, 1), opts.gradOutputs && handles(opts.gradOutputs, op, 2), opts.retainGraph, opts.createGraph ?? false);
  return r.map(wrapMaybe);
}
