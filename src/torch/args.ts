// Arguments on their way to the addon. Every tensor argument crosses through one of the checked-handle
// functions here, so a non-Tensor fails with the op and the argument's position instead of reaching
// LibTorch as a stray number. A disposed Tensor passes its handle (-1) on: the addon reports it as
// "argument i is a disposed tensor". They test for Handle (memory.ts), the base every Tensor has, so that
// the generated methods (tensor.generated.ts) can use them without importing tensor.ts.
import { Handle } from "./memory";
import { TorchError } from "./native";

/** A shape given as one array or as separate numbers: view(2, 3) or view([2, 3]). */
export type ShapeArgs = (number | number[])[];

export const flatShape = (s: ShapeArgs): number[] => (s.length === 1 && Array.isArray(s[0]) ? (s[0] as number[]) : (s as number[]));

/** The native handle of a tensor argument; a clear error for anything else. */
export function handleOf(x: Handle | null | undefined, what = "argument"): number {
  if (x instanceof Handle) return x._h;
  throw new TorchError(`${what} must be a Tensor, got ${x === null ? "null" : typeof x}`);
}
export const handleOrNone = (x: Handle | null | undefined, what?: string): number | undefined => (x == null ? undefined : handleOf(x, what));

// "(got T)" names the type of the handle found in the value, as the addon's decoder words it: for
// anything but a Tensor that is undefined.
const notATensor = (x: unknown, op: string, where: string | number): TorchError =>
  new TorchError(`${op}: argument ${where} must be a Tensor (got ${x === null ? "undefined" : typeof (x as { _h?: unknown } | undefined)?._h})`);

/** Argument `i` of native op `op`: a Tensor's handle. */
export function arg(x: Handle, op: string, i: number): number {
  if (x instanceof Handle) return x._h;
  throw notATensor(x, op, i);
}
/** An optional tensor argument: null and undefined are absent. */
export const argOpt = (x: Handle | null | undefined, op: string, i: number): number | undefined => (x == null ? undefined : arg(x, op, i));
/** A tensor-or-number argument: the number itself, or the Tensor (the addon reads its handle, as a number there is a Scalar). */
export function tensorOrScalar(x: Handle | number | boolean, op: string, i: number): Handle | number | boolean {
  if (typeof x === "number" || typeof x === "boolean" || x instanceof Handle) return x;
  throw notATensor(x, op, i);
}
/** A list of tensors: their handles. */
export function handles(xs: Handle[], op: string, i: number): number[] {
  if (!Array.isArray(xs)) throw new TorchError(`${op}: argument ${i} must be an array of Tensors (got ${xs === null ? "null" : typeof xs})`);
  return xs.map((x, k) => {
    if (x instanceof Handle) return x._h;
    throw notATensor(x, op, `${i}[${k}]`);
  });
}
/** A list of tensors or nulls (advanced indexing: null takes a whole dimension). */
export function optHandles(xs: (Handle | null)[], op: string, i: number): (number | null)[] {
  if (!Array.isArray(xs)) throw new TorchError(`${op}: argument ${i} must be an array of Tensors or nulls (got ${xs === null ? "null" : typeof xs})`);
  return xs.map((x, k) => {
    if (x == null) return null;
    if (x instanceof Handle) return x._h;
    throw notATensor(x, op, `${i}[${k}]`);
  });
}
/** Dimensions given as one number or an array. */
export function dimsArg(d: number | number[]): number[];
export function dimsArg(d: number | number[] | undefined): number[] | undefined;
export function dimsArg(d: number | number[] | undefined): number[] | undefined {
  return d === undefined ? undefined : Array.isArray(d) ? d : [d];
}
