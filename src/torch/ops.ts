// Free functions over several tensors (torch.cat, torch.where, ...) and autograd switches.
import { N } from "./native";
import { Tensor, wrap } from "./tensor";

const handles = (ts: Tensor[]): number[] => ts.map((t) => t?._h);

export const cat = (ts: Tensor[], dim = 0): Tensor => wrap(N.cat(handles(ts), dim));
export const stack = (ts: Tensor[], dim = 0): Tensor => wrap(N.stack(handles(ts), dim));
/** where(cond, a, b): a where cond is true, else b (b may be a number). */
export const where = (cond: Tensor, a: Tensor, b: Tensor | number): Tensor =>
  wrap(typeof b === "number" ? N.whereS(cond?._h, a?._h, b) : N.where(cond?._h, a?._h, b?._h));
export const matmul = (a: Tensor, b: Tensor): Tensor => wrap(N.matmul(a?._h, b?._h));
export const einsum = (equation: string, ...ts: Tensor[]): Tensor => wrap(N.einsum(equation, handles(ts)));
export const outer = (a: Tensor, b: Tensor): Tensor => wrap(N.outer(a?._h, b?._h));
export const maximum = (a: Tensor, b: Tensor): Tensor => wrap(N.maximum(a?._h, b?._h));
export const minimum = (a: Tensor, b: Tensor): Tensor => wrap(N.minimum(a?._h, b?._h));
export const atan2 = (a: Tensor, b: Tensor): Tensor => wrap(N.atan2(a?._h, b?._h));
/** Samples `n` indices per row from the (unnormalised) probabilities. */
export const multinomial = (probs: Tensor, n: number, replacement = false): Tensor => wrap(N.multinomial(probs?._h, n, replacement));
export const bernoulli = (probs: Tensor): Tensor => wrap(N.bernoulli(probs?._h));
export const triu = (t: Tensor, k = 0): Tensor => t.triu(k);
export const tril = (t: Tensor, k = 0): Tensor => t.tril(k);

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
  const r: (number | null)[] = N.autogradGrad(handles(outs), handles(inputs), opts.gradOutputs && handles(opts.gradOutputs), opts.retainGraph, opts.createGraph ?? false);
  return r.map((x) => (x === null ? null : wrap(x)));
}

