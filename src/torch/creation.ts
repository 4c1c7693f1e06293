// Making tensors: from JS data and typed arrays, and the factory functions (zeros, arange, randn, ...).
import { DTYPE_CODE, type DType, type Device, deviceCode, dtypeCode } from "./dtype";
import { N, TorchError } from "./native";
import type { ShapeArgs } from "./args";
import { Tensor, type TypedArray, wrap } from "./tensor";

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

const withGrad = (t: Tensor, o?: TensorOptions): Tensor => (o?.requiresGrad ? t.requiresGrad_(true) : t);

/** Shapes may be given as numbers or one array, with an options object last. */
function shapeAndOpts(args: (number | number[] | TensorOptions)[]): [number[], TensorOptions | undefined] {
  let opts: TensorOptions | undefined;
  if (args.length && typeof args[args.length - 1] === "object" && !Array.isArray(args[args.length - 1])) {
    opts = args[args.length - 1] as TensorOptions;
    args = args.slice(0, -1);
  }
  const shape = args.length === 1 && Array.isArray(args[0]) ? (args[0] as number[]) : (args as number[]);
  return [shape, opts];
}

type NestedNumbers = number | boolean | NestedNumbers[];

function inferShape(data: NestedNumbers): number[] {
  const shape: number[] = [];
  let cur: NestedNumbers = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
    if (cur === undefined) break;
  }
  return shape;
}

function flatten(data: NestedNumbers, shape: number[], dim: number, out: number[], path: string): void {
  if (dim === shape.length) {
    if (typeof data === "boolean") out.push(data ? 1 : 0);
    else if (typeof data === "number") out.push(data);
    else throw new TorchError(`tensor(): element at ${path || "[]"} is ${Array.isArray(data) ? "an array" : typeof data}, expected a number`);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[dim]) {
    throw new TorchError(`tensor(): ragged data at ${path || "[]"}: expected ${shape[dim]} elements, got ${Array.isArray(data) ? data.length : typeof data}`);
  }
  for (let i = 0; i < data.length; i++) flatten(data[i], shape, dim + 1, out, `${path}[${i}]`);
}

function typedArrayFor(values: ArrayLike<number>, dtype: DType): TypedArray {
  switch (dtype) {
    case "float32": return Float32Array.from(values);
    case "float64": return Float64Array.from(values);
    case "int32": return Int32Array.from(values);
    case "int16": return Int16Array.from(values);
    case "int8": return Int8Array.from(values);
    case "uint8": case "bool": return Uint8Array.from(values);
    case "int64": return BigInt64Array.from(Array.from(values, (v) => BigInt(Math.trunc(v))));
    default: return Float32Array.from(values); // float16/bfloat16: converted after upload
  }
}

const TYPED_DTYPE: [new (...a: any[]) => TypedArray, DType][] = [
  [Float32Array, "float32"], [Float64Array, "float64"], [Int32Array, "int32"], [BigInt64Array, "int64"],
  [Int16Array, "int16"], [Int8Array, "int8"], [Uint8Array, "uint8"],
];

/** A tensor from a typed array (copied). The array kind fixes the dtype unless `dtype` converts it. */
export function fromTypedArray(data: TypedArray, shape: number[], opts: TensorOptions = {}): Tensor {
  const native = TYPED_DTYPE.find(([C]) => data instanceof C)?.[1];
  if (!native) throw new TorchError("fromTypedArray: unsupported array type (use Float32Array, Float64Array, Int32Array, BigInt64Array, Int16Array, Int8Array or Uint8Array)");
  let t = wrap(N.fromTypedArray(data, shape, DTYPE_CODE[native], deviceCode(opts.device)));
  if (opts.dtype && opts.dtype !== native) {
    const c = t.to(opts.dtype);
    t.dispose();
    t = c;
  }
  return withGrad(t, opts);
}

/**
 * torch.tensor: from a number, nested arrays of numbers/booleans, or a typed array (1-d).
 * The dtype defaults to float32 (int64 only when asked, as numbers carry no int/float distinction).
 */
export function tensor(data: NestedNumbers | TypedArray, opts: TensorOptions = {}): Tensor {
  if (ArrayBuffer.isView(data)) return fromTypedArray(data as TypedArray, [(data as TypedArray).length], opts);
  const shape = inferShape(data as NestedNumbers);
  const flat: number[] = [];
  flatten(data as NestedNumbers, shape, 0, flat, "");
  const dtype = opts.dtype ?? (typeof (Array.isArray(data) ? flat.length && firstLeaf(data) : data) === "boolean" ? "bool" : "float32");
  const upload: DType = dtype === "float16" || dtype === "bfloat16" ? "float32" : dtype;
  return fromTypedArray(typedArrayFor(flat, upload), shape, { ...opts, dtype });
}

function firstLeaf(d: NestedNumbers): NestedNumbers {
  let cur = d;
  while (Array.isArray(cur) && cur.length) cur = cur[0];
  return cur;
}

type ShapeFactory = (...args: (number | number[] | TensorOptions)[]) => Tensor;
/** zeros(2, 3), zeros([2, 3]), zeros([2, 3], { dtype, device, requiresGrad }): the native op `name`. */
const shapeFactory = (name: "zeros" | "ones" | "empty" | "rand" | "randn"): ShapeFactory => (...args) => {
  const [s, o] = shapeAndOpts(args);
  return withGrad(wrap(N[name](s, dtypeCode(o?.dtype), deviceCode(o?.device))), o);
};
export const zeros = shapeFactory("zeros");
export const ones = shapeFactory("ones");
export const empty = shapeFactory("empty");
/** Uniform samples in [0, 1). */
export const rand = shapeFactory("rand");
/** Standard normal samples. */
export const randn = shapeFactory("randn");
export function full(shape: number[], value: number | boolean, opts?: TensorOptions): Tensor {
  return withGrad(wrap(N.full(shape, value, dtypeCode(opts?.dtype), deviceCode(opts?.device))), opts);
}
/** Integers uniformly in [low, high); int64 unless a dtype is given. */
export function randint(low: number, high: number, shape: number[], opts?: TensorOptions): Tensor {
  return wrap(N.randint(low, high, shape, dtypeCode(opts?.dtype), deviceCode(opts?.device)));
}
/** arange(end) or arange(start, end, step); int64 when every bound is an integer and no dtype is given. */
export function arange(start: number, end?: number, step = 1, opts?: TensorOptions): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const ints = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  const dtype = opts?.dtype ?? (ints ? "int64" : "float32");
  return wrap(N.arange(start, end, step, dtypeCode(dtype), deviceCode(opts?.device)));
}
export function linspace(start: number, end: number, steps: number, opts?: TensorOptions): Tensor {
  return wrap(N.linspace(start, end, steps, dtypeCode(opts?.dtype), deviceCode(opts?.device)));
}
export function eye(n: number, opts?: TensorOptions): Tensor {
  return wrap(N.eye(n, dtypeCode(opts?.dtype), deviceCode(opts?.device)));
}
/** A 0-d tensor. */
export function scalarTensor(v: number | boolean, opts?: TensorOptions): Tensor {
  return withGrad(wrap(N.scalarTensor(v, dtypeCode(opts?.dtype), deviceCode(opts?.device))), opts);
}
export { emptyLike, fullLike, onesLike, randLike, randnLike, zerosLike } from "./ops.generated";

export type { ShapeArgs };

/** Normal samples of a given shape: mean + std * randn (torch.normal(mean, std, size)). */
export function normal(mean: number, std: number, shape: number[], opts?: TensorOptions): Tensor {
  return wrap(N.empty(shape, dtypeCode(opts?.dtype), deviceCode(opts?.device))).normal_(mean, std);
}
