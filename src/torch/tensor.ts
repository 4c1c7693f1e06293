// Tensor: a handle to a LibTorch tensor with PyTorch's method names (camelCase for multi-word names).
// The methods that only forward to one native op are generated from the op table (native/ops.spec.ts)
// into TensorOps (tensor.generated.ts), the base class, which gets the Tensor of each result from `_wrap`
// so that it needs nothing from this file; what is here adds meaning: metadata, values out, conversion
// by name, autograd, overloads.
import { type DType, type Device, deviceCode, deviceName, dtypeCode, dtypeName } from "./dtype";
import { handleOf, handleOrNone } from "./args";
import { track } from "./memory";
import { N, TorchError } from "./native";
import { TensorOps } from "./tensor.generated";

export type Shape = number[];

/** A tensor from a native handle, tracked by the current scope. */
export function wrap(h: number): Tensor {
  const t = new Tensor(h);
  track(t);
  return t;
}
export const wrapMaybe = (h: number | null): Tensor | null => (h === null ? null : wrap(h));
export const wrapAll = (hs: number[]): Tensor[] => hs.map(wrap);

export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}
export const valuesIndices = (r: [number, number]): ValuesIndices => ({ values: wrap(r[0]), indices: wrap(r[1]) });

export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

/** Runs after every Tensor.backward (torch.checkpoint's tape drains there; set by checkpoint.ts). */
let afterBackward: ((retainGraph: boolean, createGraph: boolean) => void) | null = null;
export function setAfterBackward(fn: ((retainGraph: boolean, createGraph: boolean) => void) | null): void {
  afterBackward = fn;
}

export class Tensor extends TensorOps<Tensor> {
  /**
   * The last gradient read, handed out again while it still is the gradient. Weak, so that a cached
   * gradient keeps no memory alive that the reads of old (a new handle each) would not have.
   */
  declare private _grad?: WeakRef<Tensor>;
  declare private _shape?: number[];
  declare private _dtype?: DType;

  /** What the generated methods (TensorOps) make of a native result: a Tensor in the current scope. */
  protected override _wrap(handle: number): Tensor {
    return wrap(handle);
  }

  // ---- metadata ----------------------------------------------------------------------------------
  get shape(): Shape {
    return (this._shape ??= N.shape(this._h));
  }
  size(dim?: number): number | Shape {
    if (dim === undefined) return this.shape;
    const s = this.shape;
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new TorchError(`size: dimension ${dim} out of range for a ${s.length}-d tensor`);
    return s[d];
  }
  get ndim(): number {
    return this.shape.length;
  }
  dim(): number {
    return this.shape.length;
  }
  numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get dtype(): DType {
    return (this._dtype ??= dtypeName(N.dtype(this._h)));
  }
  get device(): Device {
    return deviceName(N.device(this._h));
  }
  get isCuda(): boolean {
    return N.device(this._h) >= 0;
  }
  /** Bytes of data (numel x element size). */
  get nbytes(): number {
    return N.nbytes(this._h);
  }
  /** Forget cached metadata after the data was replaced in place (setData). */
  private _invalidate(): void {
    this._shape = undefined;
    this._dtype = undefined;
  }

  // ---- values out --------------------------------------------------------------------------------
  item(): number {
    const v = N.item(this._h);
    return typeof v === "boolean" ? Number(v) : v;
  }
  /** The values as a typed array (a copy). float16/bfloat16 are converted to float32. */
  data(): TypedArray {
    if (this.dtype === "float16" || this.dtype === "bfloat16") {
      const f = N.to(this._h, 6);
      try {
        return N.toTypedArray(f) as Float32Array;
      } finally {
        N.dispose(f);
      }
    }
    return N.toTypedArray(this._h);
  }
  /** The values as nested arrays of numbers (int64 converted to number). */
  tolist(): any {
    const flat = Array.from(this.data() as ArrayLike<number | bigint>, (v) => (typeof v === "bigint" ? Number(v) : v));
    const s = this.shape;
    if (s.length === 0) return flat[0];
    const build = (dim: number, off: number): any => {
      const stride = s.slice(dim + 1).reduce((a, b) => a * b, 1);
      if (dim === s.length - 1) return flat.slice(off, off + s[dim]);
      return Array.from({ length: s[dim] }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }
  override toString(): string {
    return `tensor(${JSON.stringify(this.numel() <= 64 ? this.tolist() : `[${this.shape.join("x")}]`)}, dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- conversion --------------------------------------------------------------------------------
  /** to("cuda"), to("float16"), to({device, dtype, copy}). */
  to(target: Device | DType | { device?: Device; dtype?: DType; copy?: boolean }): Tensor {
    let dtype: DType | undefined;
    let device: Device | undefined;
    let copy = false;
    if (typeof target === "string") {
      if (target === "cpu" || target.startsWith("cuda")) device = target as Device;
      else dtype = target as DType;
    } else {
      ({ dtype, device, copy = false } = target);
    }
    return wrap(N.to(this._h, dtypeCode(dtype), device === undefined ? undefined : deviceCode(device), copy));
  }
  cpu(): Tensor {
    return this.to("cpu");
  }
  cuda(index = 0): Tensor {
    return this.to(`cuda:${index}`);
  }
  float(): Tensor {
    return this.to("float32");
  }
  double(): Tensor {
    return this.to("float64");
  }
  half(): Tensor {
    return this.to("float16");
  }
  bfloat16(): Tensor {
    return this.to("bfloat16");
  }
  long(): Tensor {
    return this.to("int64");
  }
  int(): Tensor {
    return this.to("int32");
  }
  bool(): Tensor {
    return this.to("bool");
  }

  // ---- autograd ----------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return N.requiresGrad(this._h);
  }
  set requiresGrad(v: boolean) {
    N.setRequiresGrad(this._h, v);
  }
  get isLeaf(): boolean {
    return N.isLeaf(this._h);
  }
  /** Name of the autograd node that made this tensor ("" for leaves). */
  get gradFn(): string {
    return N.gradFn(this._h);
  }
  /**
   * The accumulated gradient, or null. Reads return the same Tensor while it is still the gradient (one
   * handle, not one per read); after backward replaces the gradient, or once that Tensor was disposed
   * (by its scope or by hand), a read makes a new one.
   */
  get grad(): Tensor | null {
    let cached = this._grad?.deref();
    if (cached?.isDisposed) cached = undefined;
    const g = N.gradCached(this._h, cached?._h);
    if (g === null) {
      this._grad = undefined;
      return null;
    }
    if (cached !== undefined && g === cached._h) return cached;
    const t = wrap(g);
    this._grad = new WeakRef(t);
    return t;
  }
  set grad(g: Tensor | null) {
    N.setGrad(this._h, handleOrNone(g, "grad"));
    this._grad = undefined;
  }
  /**
   * Backpropagates from this tensor (a non-scalar needs `gradient`). Then runs the checkpoint tape
   * (torch.checkpoint): segments whose outputs got gradients are recomputed and backpropagated too.
   */
  backward(gradient?: Tensor | null, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    N.backward(this._h, handleOrNone(gradient, "backward: gradient"), opts.retainGraph, opts.createGraph ?? false);
    afterBackward?.(opts.retainGraph ?? opts.createGraph ?? false, opts.createGraph ?? false);
  }
  /** `param.data = src` in PyTorch: replaces the data, keeps the tensor (and its leaf status). */
  setData(src: Tensor): this {
    N.setData(this._h, handleOf(src, "setData: src"));
    this._invalidate();
    return this;
  }

  // ---- overloads and compositions ---------------------------------------------------------------
  /** max() over everything; max(dim) gives {values, indices}. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): ValuesIndices;
  max(dim?: number, keepdim = false): Tensor | ValuesIndices {
    return dim === undefined ? wrap(N.max(this._h)) : valuesIndices(N.maxDim(this._h, dim, keepdim));
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): ValuesIndices;
  min(dim?: number, keepdim = false): Tensor | ValuesIndices {
    return dim === undefined ? wrap(N.min(this._h)) : valuesIndices(N.minDim(this._h, dim, keepdim));
  }
  /** Transpose of a 2-d tensor. */
  t(): Tensor {
    return wrap(N.transpose(this._h, 0, 1));
  }
  expandAs(o: Tensor): Tensor {
    return this.expand(o.shape);
  }
  /** Pieces of `size` along dim, or of the given sizes when `size` is an array. */
  split(size: number | number[], dim = 0): Tensor[] {
    return wrapAll(Array.isArray(size) ? N.splitSizes(this._h, size, dim) : N.split(this._h, size, dim));
  }
}
