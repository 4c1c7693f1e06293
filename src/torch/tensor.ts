// Tensor: a handle to a LibTorch tensor with PyTorch's method names (camelCase for multi-word names).
import { type DType, type Device, deviceCode, deviceName, dtypeCode, dtypeName } from "./dtype";
import { Handle, track } from "./memory";
import { N, TorchError } from "./native";

export type Shape = number[];
/** A shape given as one array or as separate numbers: view(2, 3) or view([2, 3]). */
export type ShapeArgs = (number | number[])[];

const flatShape = (s: ShapeArgs): number[] => (s.length === 1 && Array.isArray(s[0]) ? (s[0] as number[]) : (s as number[]));

/** A tensor from a native handle, tracked by the current scope. */
export function wrap(h: number): Tensor {
  const t = new Tensor(h);
  track(t);
  return t;
}
export const wrapMaybe = (h: number | null): Tensor | null => (h === null ? null : wrap(h));
export const wrapAll = (hs: number[]): Tensor[] => hs.map(wrap);

/** The native handle of a tensor argument; a clear error for anything else. */
export function h(x: Tensor | null | undefined, what = "argument"): number {
  if (x instanceof Tensor) return x._h;
  throw new TorchError(`${what} must be a Tensor, got ${x === null ? "null" : typeof x}`);
}
const hOpt = (x: Tensor | null | undefined): number | undefined => (x == null ? undefined : h(x));
const dimsArg = (d: number | number[] | undefined): number[] | undefined => (d === undefined ? undefined : Array.isArray(d) ? d : [d]);

export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}
const valuesIndices = (r: number[]): ValuesIndices => ({ values: wrap(r[0]), indices: wrap(r[1]) });

export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

export class Tensor extends Handle {
  declare private _shape?: number[];
  declare private _dtype?: DType;

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
  isContiguous(): boolean {
    return N.isContiguous(this._h);
  }
  stride(): number[] {
    return N.strides(this._h);
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
  clone(): Tensor {
    return wrap(N.clone(this._h));
  }
  detach(): Tensor {
    return wrap(N.detach(this._h));
  }
  contiguous(): Tensor {
    return wrap(N.contiguous(this._h));
  }

  // ---- autograd ----------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return N.requiresGrad(this._h);
  }
  set requiresGrad(v: boolean) {
    N.setRequiresGrad(this._h, v);
  }
  requiresGrad_(v = true): this {
    N.setRequiresGrad(this._h, v);
    return this;
  }
  get isLeaf(): boolean {
    return N.isLeaf(this._h);
  }
  /** Name of the autograd node that made this tensor ("" for leaves). */
  get gradFn(): string {
    return N.gradFn(this._h);
  }
  /** The accumulated gradient (a new handle to it), or null. */
  get grad(): Tensor | null {
    return wrapMaybe(N.grad(this._h));
  }
  set grad(g: Tensor | null) {
    N.setGrad(this._h, hOpt(g));
  }
  retainGrad(): this {
    N.retainGrad(this._h);
    return this;
  }
  backward(gradient?: Tensor | null, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    N.backward(this._h, hOpt(gradient), opts.retainGraph, opts.createGraph ?? false);
  }
  /** `param.data = src` in PyTorch: replaces the data, keeps the tensor (and its leaf status). */
  setData(src: Tensor): this {
    N.setData(this._h, h(src));
    this._invalidate();
    return this;
  }

  // ---- arithmetic (tensor or number) -------------------------------------------------------------
  add(o: Tensor | number, alpha?: number): Tensor {
    if (typeof o === "number") return wrap(N.addS(this._h, alpha === undefined ? o : o * alpha));
    return wrap(alpha === undefined ? N.add(this._h, o?._h) : N.add(this._h, o?._h, alpha));
  }
  sub(o: Tensor | number, alpha?: number): Tensor {
    return wrap(typeof o === "number" ? N.subS(this._h, alpha === undefined ? o : o * alpha) : N.sub(this._h, o?._h, alpha));
  }
  /** o - this */
  rsub(o: number): Tensor {
    return wrap(N.rsubS(this._h, o));
  }
  mul(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.mulS(this._h, o) : N.mul(this._h, o?._h));
  }
  div(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.divS(this._h, o) : N.div(this._h, o?._h));
  }
  /** o / this */
  rdiv(o: number): Tensor {
    return wrap(N.rdivS(this._h, o));
  }
  pow(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.powS(this._h, o) : N.pow(this._h, o?._h));
  }
  remainder(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.remainderS(this._h, o) : N.remainder(this._h, o?._h));
  }
  floorDivide(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.floorDivideS(this._h, o) : N.floorDivide(this._h, o?._h));
  }
  maximum(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.maximumS(this._h, o) : N.maximum(this._h, o?._h));
  }
  minimum(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.minimumS(this._h, o) : N.minimum(this._h, o?._h));
  }
  eq(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.eqS(this._h, o) : N.eq(this._h, o?._h));
  }
  ne(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.neS(this._h, o) : N.ne(this._h, o?._h));
  }
  lt(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.ltS(this._h, o) : N.lt(this._h, o?._h));
  }
  le(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.leS(this._h, o) : N.le(this._h, o?._h));
  }
  gt(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.gtS(this._h, o) : N.gt(this._h, o?._h));
  }
  ge(o: Tensor | number): Tensor {
    return wrap(typeof o === "number" ? N.geS(this._h, o) : N.ge(this._h, o?._h));
  }
  logicalAnd(o: Tensor): Tensor {
    return wrap(N.logicalAnd(this._h, o?._h));
  }
  logicalOr(o: Tensor): Tensor {
    return wrap(N.logicalOr(this._h, o?._h));
  }
  logicalXor(o: Tensor): Tensor {
    return wrap(N.logicalXor(this._h, o?._h));
  }
  /** Same shape and values. */
  equal(o: Tensor): boolean {
    return N.equal(this._h, o?._h);
  }
  allclose(o: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    return N.allclose(this._h, o?._h, rtol, atol);
  }
  lerp(end: Tensor, weight: number): Tensor {
    return wrap(N.lerp(this._h, end?._h, weight));
  }
  addcmul(t1: Tensor, t2: Tensor, value = 1): Tensor {
    return wrap(N.addcmul(this._h, t1?._h, t2?._h, value));
  }
  addcdiv(t1: Tensor, t2: Tensor, value = 1): Tensor {
    return wrap(N.addcdiv(this._h, t1?._h, t2?._h, value));
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return wrap(N.clamp(this._h, min ?? undefined, max ?? undefined));
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return wrap(N.maskedFill(this._h, mask?._h, value));
  }

  // ---- unary -------------------------------------------------------------------------------------
  neg(): Tensor { return wrap(N.neg(this._h)); }
  exp(): Tensor { return wrap(N.exp(this._h)); }
  log(): Tensor { return wrap(N.log(this._h)); }
  log1p(): Tensor { return wrap(N.log1p(this._h)); }
  log2(): Tensor { return wrap(N.log2(this._h)); }
  expm1(): Tensor { return wrap(N.expm1(this._h)); }
  sqrt(): Tensor { return wrap(N.sqrt(this._h)); }
  rsqrt(): Tensor { return wrap(N.rsqrt(this._h)); }
  abs(): Tensor { return wrap(N.abs(this._h)); }
  sign(): Tensor { return wrap(N.sign(this._h)); }
  tanh(): Tensor { return wrap(N.tanh(this._h)); }
  sigmoid(): Tensor { return wrap(N.sigmoid(this._h)); }
  relu(): Tensor { return wrap(N.relu(this._h)); }
  sin(): Tensor { return wrap(N.sin(this._h)); }
  cos(): Tensor { return wrap(N.cos(this._h)); }
  floor(): Tensor { return wrap(N.floor(this._h)); }
  ceil(): Tensor { return wrap(N.ceil(this._h)); }
  round(): Tensor { return wrap(N.round(this._h)); }
  trunc(): Tensor { return wrap(N.trunc(this._h)); }
  reciprocal(): Tensor { return wrap(N.reciprocal(this._h)); }
  square(): Tensor { return wrap(N.square(this._h)); }
  erf(): Tensor { return wrap(N.erf(this._h)); }
  logicalNot(): Tensor { return wrap(N.logicalNot(this._h)); }
  isnan(): Tensor { return wrap(N.isnan(this._h)); }
  isinf(): Tensor { return wrap(N.isinf(this._h)); }
  isfinite(): Tensor { return wrap(N.isfinite(this._h)); }
  nanToNum(nan = 0, posinf?: number, neginf?: number): Tensor { return wrap(N.nanToNum(this._h, nan, posinf, neginf)); }

  // ---- reductions --------------------------------------------------------------------------------
  sum(dim?: number | number[], keepdim = false, dtype?: DType): Tensor {
    return wrap(N.sum(this._h, dimsArg(dim), keepdim, dtypeCode(dtype)));
  }
  mean(dim?: number | number[], keepdim = false, dtype?: DType): Tensor {
    return wrap(N.mean(this._h, dimsArg(dim), keepdim, dtypeCode(dtype)));
  }
  prod(dim?: number, keepdim = false): Tensor {
    return wrap(N.prod(this._h, dim, keepdim));
  }
  amax(dim?: number | number[], keepdim = false): Tensor {
    return wrap(N.amax(this._h, dimsArg(dim), keepdim));
  }
  amin(dim?: number | number[], keepdim = false): Tensor {
    return wrap(N.amin(this._h, dimsArg(dim), keepdim));
  }
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
  argmax(dim?: number, keepdim = false): Tensor {
    return wrap(N.argmax(this._h, dim, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return wrap(N.argmin(this._h, dim, keepdim));
  }
  /** The p-norm over `dim` (all elements when omitted), as torch.linalg.vector_norm. */
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return wrap(N.norm(this._h, p, dimsArg(dim), keepdim));
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return wrap(N.logsumexp(this._h, dimsArg(dim), keepdim));
  }
  var(dim?: number | number[], unbiased = true, keepdim = false): Tensor {
    return wrap(N.var(this._h, dimsArg(dim), unbiased, keepdim));
  }
  std(dim?: number | number[], unbiased = true, keepdim = false): Tensor {
    return wrap(N.std(this._h, dimsArg(dim), unbiased, keepdim));
  }
  all(dim?: number, keepdim = false): Tensor {
    return wrap(N.all(this._h, dim, keepdim));
  }
  any(dim?: number, keepdim = false): Tensor {
    return wrap(N.any(this._h, dim, keepdim));
  }
  cumsum(dim: number, dtype?: DType): Tensor {
    return wrap(N.cumsum(this._h, dim, dtypeCode(dtype)));
  }
  countNonzero(dim?: number): Tensor {
    return wrap(N.countNonzero(this._h, dim));
  }
  softmax(dim: number, dtype?: DType): Tensor {
    return wrap(N.softmax(this._h, dim, dtypeCode(dtype)));
  }
  logSoftmax(dim: number, dtype?: DType): Tensor {
    return wrap(N.logSoftmax(this._h, dim, dtypeCode(dtype)));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): ValuesIndices {
    return valuesIndices(N.topk(this._h, k, dim, largest, sorted));
  }
  sort(dim = -1, descending = false): ValuesIndices {
    return valuesIndices(N.sort(this._h, dim, descending));
  }
  argsort(dim = -1, descending = false): Tensor {
    return wrap(N.argsort(this._h, dim, descending));
  }

  // ---- linear algebra ----------------------------------------------------------------------------
  matmul(o: Tensor): Tensor {
    return wrap(N.matmul(this._h, o?._h));
  }
  mm(o: Tensor): Tensor {
    return wrap(N.mm(this._h, o?._h));
  }
  bmm(o: Tensor): Tensor {
    return wrap(N.bmm(this._h, o?._h));
  }

  // ---- shape and indexing ------------------------------------------------------------------------
  view(...shape: ShapeArgs): Tensor {
    return wrap(N.view(this._h, flatShape(shape)));
  }
  reshape(...shape: ShapeArgs): Tensor {
    return wrap(N.reshape(this._h, flatShape(shape)));
  }
  permute(...dims: ShapeArgs): Tensor {
    return wrap(N.permute(this._h, flatShape(dims)));
  }
  transpose(d0: number, d1: number): Tensor {
    return wrap(N.transpose(this._h, d0, d1));
  }
  /** Transpose of a 2-d tensor. */
  t(): Tensor {
    return wrap(N.transpose(this._h, 0, 1));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(N.unsqueeze(this._h, dim));
  }
  squeeze(dim?: number): Tensor {
    return wrap(N.squeeze(this._h, dim));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return wrap(N.flatten(this._h, startDim, endDim));
  }
  expand(...shape: ShapeArgs): Tensor {
    return wrap(N.expand(this._h, flatShape(shape)));
  }
  expandAs(o: Tensor): Tensor {
    return this.expand(o.shape);
  }
  repeat(...times: ShapeArgs): Tensor {
    return wrap(N.repeat(this._h, flatShape(times)));
  }
  repeatInterleave(repeats: number, dim?: number): Tensor {
    return wrap(N.repeatInterleave(this._h, repeats, dim));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(N.narrow(this._h, dim, start, length));
  }
  /** self[..., start:end:step, ...] along `dim` (end exclusive, negatives count from the end). */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return wrap(N.slice(this._h, dim, start, end, step));
  }
  select(dim: number, index: number): Tensor {
    return wrap(N.select(this._h, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(N.indexSelect(this._h, dim, index?._h));
  }
  /** Advanced indexing: self[i0, i1, ...] with index tensors (null = the whole dimension). */
  index(indices: (Tensor | null)[]): Tensor {
    return wrap(N.index(this._h, indices.map((t) => (t === null ? null : t?._h))));
  }
  gather(dim: number, index: Tensor): Tensor {
    return wrap(N.gather(this._h, dim, index?._h));
  }
  scatter(dim: number, index: Tensor, src: Tensor | number): Tensor {
    return wrap(typeof src === "number" ? N.scatterS(this._h, dim, index?._h, src) : N.scatter(this._h, dim, index?._h, src?._h));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(N.scatterAdd(this._h, dim, index?._h, src?._h));
  }
  maskedSelect(mask: Tensor): Tensor {
    return wrap(N.maskedSelect(this._h, mask?._h));
  }
  nonzero(): Tensor {
    return wrap(N.nonzero(this._h));
  }
  split(size: number | number[], dim = 0): Tensor[] {
    return wrapAll(Array.isArray(size) ? N.splitSizes(this._h, size, dim) : N.split(this._h, size, dim));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return wrapAll(N.chunk(this._h, chunks, dim));
  }
  flip(...dims: ShapeArgs): Tensor {
    return wrap(N.flip(this._h, flatShape(dims)));
  }
  roll(shifts: number | number[], dims: number | number[]): Tensor {
    return wrap(N.roll(this._h, dimsArg(shifts), dimsArg(dims)));
  }
  triu(diagonal = 0): Tensor {
    return wrap(N.triu(this._h, diagonal));
  }
  tril(diagonal = 0): Tensor {
    return wrap(N.tril(this._h, diagonal));
  }

  // ---- in place ----------------------------------------------------------------------------------
  add_(o: Tensor | number, alpha?: number): this {
    if (typeof o === "number") N.addS_(this._h, alpha === undefined ? o : o * alpha);
    else N.add_(this._h, o?._h, alpha);
    return this;
  }
  sub_(o: Tensor | number, alpha?: number): this {
    if (typeof o === "number") N.addS_(this._h, -(alpha === undefined ? o : o * alpha));
    else N.sub_(this._h, o?._h, alpha);
    return this;
  }
  mul_(o: Tensor | number): this {
    if (typeof o === "number") N.mulS_(this._h, o);
    else N.mul_(this._h, o?._h);
    return this;
  }
  div_(o: Tensor | number): this {
    if (typeof o === "number") N.divS_(this._h, o);
    else N.div_(this._h, o?._h);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this {
    N.clamp_(this._h, min ?? undefined, max ?? undefined);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    N.lerp_(this._h, end?._h, weight);
    return this;
  }
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    N.addcmul_(this._h, t1?._h, t2?._h, value);
    return this;
  }
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this {
    N.addcdiv_(this._h, t1?._h, t2?._h, value);
    return this;
  }
  maskedFill_(mask: Tensor, value: number): this {
    N.maskedFill_(this._h, mask?._h, value);
    return this;
  }
  copy_(src: Tensor): this {
    N.copy_(this._h, src?._h);
    return this;
  }
  fill_(value: number | boolean): this {
    N.fill_(this._h, value);
    return this;
  }
  zero_(): this {
    N.zero_(this._h);
    return this;
  }
  uniform_(low = 0, high = 1): this {
    N.uniform_(this._h, low, high);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    N.normal_(this._h, mean, std);
    return this;
  }
  indexPut_(indices: (Tensor | null)[], values: Tensor, accumulate = false): this {
    N.indexPut_(this._h, indices.map((t) => (t === null ? null : t?._h)), values?._h, accumulate);
    return this;
  }
  scatter_(dim: number, index: Tensor, src: Tensor): this {
    N.scatter_(this._h, dim, index?._h, src?._h);
    return this;
  }
}
