// The op table: every function the native addon exports, with its arguments and result. From it
// scripts/gen-ops.ts writes
//   native/ops.generated.inc        the OP() lines of the ops whose C++ body is given here (`cc`),
//   src/torch/native.generated.ts   the typed interface of the addon (`N`),
//   src/torch/tensor.generated.ts   the Tensor methods that only forward (`method`),
//   src/torch/functional.generated.ts, src/torch/ops.generated.ts  the same for F and torch (`F`, `torch`).
// Ops without `cc` live in another native file (`in`); the table still types them.
//
// A signature reads `name(arg: Type, ...) -> Result`, arguments in the order the native call takes them.
//   Tensor, Tensor?       a tensor handle (? : may be absent)
//   Tensor|Scalar         a tensor or a JS number; the C++ body asks `a.isScalar(i)`
//   Scalar, Scalar?       a number or boolean (integer-valued numbers are integer scalars)
//   int, int?, float, float?, bool, bool?, str, str?, "a"|"b" (a string of these)
//   int[], int[]?, float[], Tensor[], (Tensor?)[]
//   dims, dims?           int[] natively; a wrapper takes one number or an array
//   dtype, dtype?, device?  codes natively; a wrapper takes DType / Device names
//   any                   passed through untouched (a typed array, a class, ...)
//   ...name: int[]        (last) a wrapper takes a shape as numbers or one array: view(2, 3), view([2, 3])
//   ...name: Tensor[]     (last) a wrapper takes the tensors as separate arguments
//   `= value` is the default a wrapper fills in (natively the argument is then optional).
// Results: Tensor, Tensor?, Tensor[], (Tensor?)[], (Tensor,Tensor) (values and indices), void, bool,
// int, float, str, int[], any. A wrapper of a `void` method returns `this` (in-place ops chain).
//
// Wrappers: `method` makes a Tensor method (the first argument is `this`), `F` a torch.nn.functional
// function, `torch` a torch.* function; each is `true` or {name, order (the wrapper's argument order
// when PyTorch's differs from the native one), omit (trailing native arguments the wrapper leaves out)}.
// A wrapper converts each argument by its type (a Tensor to its checked handle, a DType to its code, ...)
// and the result (a handle to a tracked Tensor). Options objects, overloads, a choice between ops and
// compositions of ops stay hand-written in src/torch.

export interface WrapperSpec {
  name?: string;
  order?: string[];
  omit?: string[];
}
export interface OpSpec {
  sig: string;
  /** The C++ statements of the OP() body; `a` is the Args. */
  cc?: string;
  /** The native file that defines an op without `cc`. */
  in?: string;
  /** A comment for the generated OP() line (why, not what). */
  note?: string;
  method?: true | WrapperSpec;
  F?: true | WrapperSpec;
  torch?: true | WrapperSpec;
}
export interface OpGroup {
  title: string;
  note?: string;
  ops: OpSpec[];
}

type Opts = Omit<OpSpec, "sig" | "cc">;
const op = (sig: string, cc: string, opts: Opts = {}): OpSpec => ({ sig, cc, ...opts });
const ext = (file: string, sig: string, opts: Opts = {}): OpSpec => ({ sig, in: file, ...opts });
const M = { method: true } as const;
const MF = { method: true, F: true } as const;
const MT = { method: true, torch: true } as const;
const T = { torch: true } as const;

export const groups: OpGroup[] = [
  {
    title: "creation",
    ops: [
      op("empty(shape: int[], dtype: dtype?, device: device?) -> Tensor", `auto s = a.ints(0); return at::empty(s, a.opts(1, 2));`),
      op("zeros(shape: int[], dtype: dtype?, device: device?) -> Tensor", `auto s = a.ints(0); return at::zeros(s, a.opts(1, 2));`),
      op("ones(shape: int[], dtype: dtype?, device: device?) -> Tensor", `auto s = a.ints(0); return at::ones(s, a.opts(1, 2));`),
      op("full(shape: int[], value: Scalar, dtype: dtype?, device: device?) -> Tensor", `auto s = a.ints(0); return at::full(s, a.s(1), a.opts(2, 3));`),
      op("arange(start: Scalar, end: Scalar, step: Scalar, dtype: dtype?, device: device?) -> Tensor", `return at::arange(a.s(0), a.s(1), a.s(2), a.opts(3, 4));`),
      op("linspace(start: Scalar, end: Scalar, steps: int, dtype: dtype?, device: device?) -> Tensor", `return at::linspace(a.s(0), a.s(1), a.i64(2), a.opts(3, 4));`),
      op("eye(n: int, dtype: dtype?, device: device?) -> Tensor", `return at::eye(a.i64(0), a.opts(1, 2));`),
      op("rand(shape: int[], dtype: dtype?, device: device?) -> Tensor", `auto s = a.ints(0); return at::rand(s, a.opts(1, 2));`),
      op("randn(shape: int[], dtype: dtype?, device: device?) -> Tensor", `auto s = a.ints(0); return at::randn(s, a.opts(1, 2));`),
      op("randint(low: int, high: int, shape: int[], dtype: dtype?, device: device?) -> Tensor",
        `auto s = a.ints(2); auto o = a.has(3) ? a.opts(3, 4) : a.opts(3, 4).dtype(at::kLong);
   return at::randint(a.i64(0), a.i64(1), s, o);`),
      op("scalarTensor(value: Scalar, dtype: dtype?, device: device?) -> Tensor", `return at::scalar_tensor(a.s(0), a.opts(1, 2));`),
      op("zerosLike(input: Tensor) -> Tensor", `return at::zeros_like(a.t(0));`, T),
      op("onesLike(input: Tensor) -> Tensor", `return at::ones_like(a.t(0));`, T),
      op("fullLike(input: Tensor, value: Scalar) -> Tensor", `return at::full_like(a.t(0), a.s(1));`, T),
      op("randnLike(input: Tensor) -> Tensor", `return at::randn_like(a.t(0));`, T),
      op("randLike(input: Tensor) -> Tensor", `return at::rand_like(a.t(0));`, T),
      op("emptyLike(input: Tensor) -> Tensor", `return at::empty_like(a.t(0));`, T),
    ],
  },
  {
    title: "conversion and copies",
    ops: [
      op("to(self: Tensor, dtype: dtype?, device: device?, copy: bool?) -> Tensor",
        `auto& t = a.t(0); auto dt = a.has(1) ? a.dtype(1) : t.scalar_type();
   auto dev = a.has(2) ? a.device(2) : t.device(); if (!t.device().is_cpu() && dev.is_cpu()) arc::countHostRead();
   return t.to(dev, dt, /*non_blocking=*/false, /*copy=*/a.b(3, false));`,
        { note: "A copy from an accelerator to the CPU waits for the device like a host read, so syncCount() counts it." }),
      op("clone(self: Tensor) -> Tensor", `return a.t(0).clone();`, M),
      op("detach(self: Tensor) -> Tensor", `return a.t(0).detach();`, M),
      op("contiguous(self: Tensor) -> Tensor", `return a.t(0).contiguous();`, M),
      op("copy_(self: Tensor, src: Tensor) -> void", `if (a.t(0).device().is_cpu() && !a.t(1).device().is_cpu()) arc::countHostRead(); a.t(0).copy_(a.t(1));`, M),
      op("fill_(self: Tensor, value: Scalar) -> void", `a.t(0).fill_(a.s(1));`, M),
      op("zero_(self: Tensor) -> void", `a.t(0).zero_();`, M),
      op("uniform_(self: Tensor, low: float = 0, high: float = 1) -> void", `a.t(0).uniform_(a.d(1), a.d(2));`, M),
      op("normal_(self: Tensor, mean: float = 0, std: float = 1) -> void", `a.t(0).normal_(a.d(1), a.d(2));`, M),
      op("bernoulli(probs: Tensor) -> Tensor", `return at::bernoulli(a.t(0));`, T),
      op("multinomial(probs: Tensor, n: int, replacement: bool = false) -> Tensor", `return at::multinomial(a.t(0), a.i64(1), a.b(2, false));`, T),
    ],
  },
  {
    title: "elementwise: tensor (op) tensor or number",
    note: "A JS number is a Scalar (integer-valued numbers are integer scalars, so int tensors stay int).",
    ops: [
      op("add(self: Tensor, other: Tensor|Scalar, alpha: Scalar?) -> Tensor",
        `if (a.isScalar(1)) return at::add(a.t(0), a.has(2) ? arc::jsScalar(a.d(1) * a.d(2)) : a.s(1));
   return a.has(2) ? at::add(a.t(0), a.t(1), a.s(2)) : at::add(a.t(0), a.t(1));`, M),
      op("sub(self: Tensor, other: Tensor|Scalar, alpha: Scalar?) -> Tensor",
        `if (a.isScalar(1)) return at::sub(a.t(0), a.has(2) ? arc::jsScalar(a.d(1) * a.d(2)) : a.s(1));
   return a.has(2) ? at::sub(a.t(0), a.t(1), a.s(2)) : at::sub(a.t(0), a.t(1));`, M),
      op("rsub(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::rsub(a.t(0), a.s(1)) : at::rsub(a.t(0), a.t(1));`,
        { method: true, note: "other - self" }),
      op("mul(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::mul(a.t(0), a.s(1)) : at::mul(a.t(0), a.t(1));`, M),
      op("div(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::div(a.t(0), a.s(1)) : at::div(a.t(0), a.t(1));`, M),
      op("rdiv(self: Tensor, other: Tensor|Scalar) -> Tensor",
        `return a.isScalar(1) ? at::mul(at::reciprocal(a.t(0)), a.s(1)) : at::div(a.t(1), a.t(0));`, { method: true, note: "other / self" }),
      op("pow(self: Tensor, exponent: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::pow(a.t(0), a.s(1)) : at::pow(a.t(0), a.t(1));`, M),
      op("rpow(self: Tensor, base: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::pow(a.s(1), a.t(0)) : at::pow(a.t(1), a.t(0));`, { note: "base ** self" }),
      op("remainder(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::remainder(a.t(0), a.s(1)) : at::remainder(a.t(0), a.t(1));`, M),
      op("floorDivide(self: Tensor, other: Tensor|Scalar) -> Tensor",
        `if (a.isScalar(1)) return at::div(a.t(0), at::scalar_tensor(a.s(1), a.t(0).options()), "floor");
   return at::div(a.t(0), a.t(1), "floor");`,
        { method: true, note: "A number divisor takes self's dtype first (floorDivide(int, 2.5) divides by 2)." }),
      op("maximum(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::clamp_min(a.t(0), a.s(1)) : at::maximum(a.t(0), a.t(1));`, MT),
      op("minimum(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::clamp_max(a.t(0), a.s(1)) : at::minimum(a.t(0), a.t(1));`, MT),
      op("eq(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::eq(a.t(0), a.s(1)) : at::eq(a.t(0), a.t(1));`, M),
      op("ne(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::ne(a.t(0), a.s(1)) : at::ne(a.t(0), a.t(1));`, M),
      op("lt(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::lt(a.t(0), a.s(1)) : at::lt(a.t(0), a.t(1));`, M),
      op("le(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::le(a.t(0), a.s(1)) : at::le(a.t(0), a.t(1));`, M),
      op("gt(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::gt(a.t(0), a.s(1)) : at::gt(a.t(0), a.t(1));`, M),
      op("ge(self: Tensor, other: Tensor|Scalar) -> Tensor", `return a.isScalar(1) ? at::ge(a.t(0), a.s(1)) : at::ge(a.t(0), a.t(1));`, M),
      op("logicalAnd(self: Tensor, other: Tensor) -> Tensor", `return at::logical_and(a.t(0), a.t(1));`, M),
      op("logicalOr(self: Tensor, other: Tensor) -> Tensor", `return at::logical_or(a.t(0), a.t(1));`, M),
      op("logicalXor(self: Tensor, other: Tensor) -> Tensor", `return at::logical_xor(a.t(0), a.t(1));`, M),
      op("atan2(self: Tensor, other: Tensor) -> Tensor", `return at::atan2(a.t(0), a.t(1));`, T),
      op("equal(self: Tensor, other: Tensor) -> bool", `arc::countHostRead(); return at::equal(a.t(0), a.t(1));`, { method: true, note: "Same shape and values." }),
      op("allclose(self: Tensor, other: Tensor, rtol: float = 1e-5, atol: float = 1e-8) -> bool",
        `arc::countHostRead(); return at::allclose(a.t(0), a.t(1), a.d(2, 1e-5), a.d(3, 1e-8));`, M),
      op("where(condition: Tensor, input: Tensor, other: Tensor|Scalar) -> Tensor",
        `return a.isScalar(2) ? at::where(a.t(0), a.t(1), a.s(2)) : at::where(a.t(0), a.t(1), a.t(2));`,
        { torch: true, note: "input where condition is true, else other" }),
      op("maskedFill(self: Tensor, mask: Tensor, value: Scalar) -> Tensor", `return at::masked_fill(a.t(0), a.t(1), a.s(2));`, M),
      op("lerp(self: Tensor, end: Tensor, weight: Scalar) -> Tensor", `return at::lerp(a.t(0), a.t(1), a.s(2));`, M),
      op("addcmul(self: Tensor, tensor1: Tensor, tensor2: Tensor, value: Scalar = 1) -> Tensor", `return at::addcmul(a.t(0), a.t(1), a.t(2), a.s(3));`, M),
      op("addcdiv(self: Tensor, tensor1: Tensor, tensor2: Tensor, value: Scalar = 1) -> Tensor", `return at::addcdiv(a.t(0), a.t(1), a.t(2), a.s(3));`, M),
      op("clamp(self: Tensor, min: Scalar?, max: Scalar?) -> Tensor", `return at::clamp(a.t(0), a.os(1), a.os(2));`, M),
    ],
  },
  {
    title: "elementwise: unary",
    ops: [
      op("neg(self: Tensor) -> Tensor", `return at::neg(a.t(0));`, M),
      op("exp(self: Tensor) -> Tensor", `return at::exp(a.t(0));`, M),
      op("log(self: Tensor) -> Tensor", `return at::log(a.t(0));`, M),
      op("log1p(self: Tensor) -> Tensor", `return at::log1p(a.t(0));`, M),
      op("expm1(self: Tensor) -> Tensor", `return at::expm1(a.t(0));`, M),
      op("log2(self: Tensor) -> Tensor", `return at::log2(a.t(0));`, M),
      op("sqrt(self: Tensor) -> Tensor", `return at::sqrt(a.t(0));`, M),
      op("rsqrt(self: Tensor) -> Tensor", `return at::rsqrt(a.t(0));`, M),
      op("abs(self: Tensor) -> Tensor", `return at::abs(a.t(0));`, M),
      op("sign(self: Tensor) -> Tensor", `return at::sign(a.t(0));`, M),
      op("tanh(self: Tensor) -> Tensor", `return at::tanh(a.t(0));`, MF),
      op("sigmoid(self: Tensor) -> Tensor", `return at::sigmoid(a.t(0));`, MF),
      op("logSigmoid(input: Tensor) -> Tensor", `return at::log_sigmoid(a.t(0));`, { F: true }),
      op("softplus(input: Tensor, beta: Scalar = 1, threshold: Scalar = 20) -> Tensor", `return at::softplus(a.t(0), a.s(1), a.s(2));`, { F: true }),
      op("relu(self: Tensor) -> Tensor", `return at::relu(a.t(0));`, MF),
      op(`gelu(input: Tensor, approximate: "none"|"tanh" = "none") -> Tensor`, `return at::gelu(a.t(0), a.has(1) ? a.str(1) : std::string("none"));`,
        { F: true, note: `approximate "none" is the erf form (PyTorch's default)` }),
      op("silu(input: Tensor) -> Tensor", `return at::silu(a.t(0));`, { F: true }),
      op("sin(self: Tensor) -> Tensor", `return at::sin(a.t(0));`, M),
      op("cos(self: Tensor) -> Tensor", `return at::cos(a.t(0));`, M),
      op("floor(self: Tensor) -> Tensor", `return at::floor(a.t(0));`, M),
      op("ceil(self: Tensor) -> Tensor", `return at::ceil(a.t(0));`, M),
      op("round(self: Tensor) -> Tensor", `return at::round(a.t(0));`, M),
      op("trunc(self: Tensor) -> Tensor", `return at::trunc(a.t(0));`, M),
      op("reciprocal(self: Tensor) -> Tensor", `return at::reciprocal(a.t(0));`, M),
      op("square(self: Tensor) -> Tensor", `return at::square(a.t(0));`, M),
      op("erf(self: Tensor) -> Tensor", `return at::erf(a.t(0));`, M),
      op("logicalNot(self: Tensor) -> Tensor", `return at::logical_not(a.t(0));`, M),
      op("isnan(self: Tensor) -> Tensor", `return at::isnan(a.t(0));`, M),
      op("isinf(self: Tensor) -> Tensor", `return at::isinf(a.t(0));`, M),
      op("isfinite(self: Tensor) -> Tensor", `return at::isfinite(a.t(0));`, M),
      op("nanToNum(self: Tensor, nan: float? = 0, posinf: float?, neginf: float?) -> Tensor", `return at::nan_to_num(a.t(0), a.od(1), a.od(2), a.od(3));`, M),
    ],
  },
  {
    title: "in place",
    ops: [
      op("add_(self: Tensor, other: Tensor|Scalar, alpha: Scalar?) -> void",
        `if (a.isScalar(1)) a.t(0).add_(a.has(2) ? arc::jsScalar(a.d(1) * a.d(2)) : a.s(1));
   else if (a.has(2)) a.t(0).add_(a.t(1), a.s(2)); else a.t(0).add_(a.t(1));`, M),
      op("sub_(self: Tensor, other: Tensor|Scalar, alpha: Scalar?) -> void",
        `if (a.isScalar(1)) a.t(0).add_(arc::jsScalar(-(a.has(2) ? a.d(1) * a.d(2) : a.d(1))));
   else if (a.has(2)) a.t(0).sub_(a.t(1), a.s(2)); else a.t(0).sub_(a.t(1));`,
        { method: true, note: "A number is added negated: add_(-(other * alpha)), with the product in doubles as for add." }),
      op("mul_(self: Tensor, other: Tensor|Scalar) -> void", `if (a.isScalar(1)) a.t(0).mul_(a.s(1)); else a.t(0).mul_(a.t(1));`, M),
      op("div_(self: Tensor, other: Tensor|Scalar) -> void", `if (a.isScalar(1)) a.t(0).div_(a.s(1)); else a.t(0).div_(a.t(1));`, M),
      op("clamp_(self: Tensor, min: Scalar?, max: Scalar?) -> void", `a.t(0).clamp_(a.os(1), a.os(2));`, M),
      op("maskedFill_(self: Tensor, mask: Tensor, value: Scalar) -> void", `a.t(0).masked_fill_(a.t(1), a.s(2));`, M),
      op("lerp_(self: Tensor, end: Tensor, weight: Scalar) -> void", `a.t(0).lerp_(a.t(1), a.s(2));`, M),
      op("addcmul_(self: Tensor, tensor1: Tensor, tensor2: Tensor, value: Scalar = 1) -> void", `a.t(0).addcmul_(a.t(1), a.t(2), a.s(3));`, M),
      op("addcdiv_(self: Tensor, tensor1: Tensor, tensor2: Tensor, value: Scalar = 1) -> void", `a.t(0).addcdiv_(a.t(1), a.t(2), a.s(3));`, M),
      op("indexPut_(self: Tensor, indices: (Tensor?)[], values: Tensor, accumulate: bool = false) -> void",
        `a.t(0).index_put_(a.optTensors(1), a.t(2), a.b(3, false));`, M),
      op("scatter_(self: Tensor, dim: int, index: Tensor, src: Tensor) -> void", `a.t(0).scatter_(a.i64(1), a.t(2), a.t(3));`, M),
      op("indexCopy_(self: Tensor, dim: int, index: Tensor, source: Tensor) -> void", `a.t(0).index_copy_(a.i64(1), a.t(2), a.t(3));`, M),
      op("indexFill_(self: Tensor, dim: int, index: Tensor, value: Scalar) -> void", `a.t(0).index_fill_(a.i64(1), a.t(2), a.s(3));`, M),
    ],
  },
  {
    title: "reductions",
    ops: [
      op("sum(self: Tensor, dim: dims?, keepdim: bool = false, dtype: dtype?) -> Tensor",
        `std::vector<int64_t> d; auto dims = dimsOrAll(a, 1, d); bool keep = a.b(2, false);
   return dims ? at::sum(a.t(0), dims, keep, a.odtype(3)) : at::sum(a.t(0), a.odtype(3));`, M),
      op("mean(self: Tensor, dim: dims?, keepdim: bool = false, dtype: dtype?) -> Tensor",
        `std::vector<int64_t> d; auto dims = dimsOrAll(a, 1, d); bool keep = a.b(2, false);
   return dims ? at::mean(a.t(0), dims, keep, a.odtype(3)) : at::mean(a.t(0), a.odtype(3));`, M),
      op("prod(self: Tensor, dim: int?, keepdim: bool = false) -> Tensor", `return a.has(1) ? at::prod(a.t(0), a.i64(1), a.b(2, false)) : at::prod(a.t(0));`, M),
      op("amax(self: Tensor, dim: dims?, keepdim: bool = false) -> Tensor",
        `auto d = a.has(1) ? a.ints(1) : std::vector<int64_t>{}; return at::amax(a.t(0), d, a.b(2, false));`, M),
      op("amin(self: Tensor, dim: dims?, keepdim: bool = false) -> Tensor",
        `auto d = a.has(1) ? a.ints(1) : std::vector<int64_t>{}; return at::amin(a.t(0), d, a.b(2, false));`, M),
      op("maxDim(self: Tensor, dim: int, keepdim: bool = false) -> (Tensor,Tensor)", `return at::max(a.t(0), a.i64(1), a.b(2, false));`),
      op("minDim(self: Tensor, dim: int, keepdim: bool = false) -> (Tensor,Tensor)", `return at::min(a.t(0), a.i64(1), a.b(2, false));`),
      op("max(self: Tensor) -> Tensor", `return at::max(a.t(0));`),
      op("min(self: Tensor) -> Tensor", `return at::min(a.t(0));`),
      op("argmax(self: Tensor, dim: int?, keepdim: bool = false) -> Tensor", `return at::argmax(a.t(0), a.oi(1), a.b(2, false));`, M),
      op("argmin(self: Tensor, dim: int?, keepdim: bool = false) -> Tensor", `return at::argmin(a.t(0), a.oi(1), a.b(2, false));`, M),
      op("norm(self: Tensor, p: Scalar = 2, dim: dims?, keepdim: bool = false, dtype: dtype?) -> Tensor",
        `std::vector<int64_t> d; auto dims = dimsOrAll(a, 2, d);
   return at::linalg_vector_norm(a.t(0), a.s(1), dims, a.b(3, false), a.odtype(4));`,
        { method: { omit: ["dtype"] }, note: "The p-norm over dim (all elements when omitted), as torch.linalg.vector_norm." }),
      op("logsumexp(self: Tensor, dim: dims, keepdim: bool = false) -> Tensor", `auto d = a.ints(1); return at::logsumexp(a.t(0), d, a.b(2, false));`, M),
      op("var(self: Tensor, dim: dims?, unbiased: bool = true, keepdim: bool = false) -> Tensor",
        `std::vector<int64_t> d; auto dims = dimsOrAll(a, 1, d); return at::var(a.t(0), dims, a.b(2, true), a.b(3, false));`, M),
      op("std(self: Tensor, dim: dims?, unbiased: bool = true, keepdim: bool = false) -> Tensor",
        `std::vector<int64_t> d; auto dims = dimsOrAll(a, 1, d); return at::std(a.t(0), dims, a.b(2, true), a.b(3, false));`, M),
      op("all(self: Tensor, dim: int?, keepdim: bool = false) -> Tensor", `return a.has(1) ? at::all(a.t(0), a.i64(1), a.b(2, false)) : at::all(a.t(0));`, M),
      op("any(self: Tensor, dim: int?, keepdim: bool = false) -> Tensor", `return a.has(1) ? at::any(a.t(0), a.i64(1), a.b(2, false)) : at::any(a.t(0));`, M),
      op("cumsum(self: Tensor, dim: int, dtype: dtype?) -> Tensor", `return at::cumsum(a.t(0), a.i64(1), a.odtype(2));`, M),
      op("countNonzero(self: Tensor, dim: int?) -> Tensor",
        `return a.has(1) ? at::count_nonzero(a.t(0), c10::optional<int64_t>(a.i64(1))) : at::count_nonzero(a.t(0));`, M),
      op("softmax(self: Tensor, dim: int, dtype: dtype?) -> Tensor", `return at::softmax(a.t(0), a.i64(1), a.odtype(2));`, MF),
      op("logSoftmax(self: Tensor, dim: int, dtype: dtype?) -> Tensor", `return at::log_softmax(a.t(0), a.i64(1), a.odtype(2));`, MF),
    ],
  },
  {
    title: "linear algebra",
    ops: [
      op("matmul(self: Tensor, other: Tensor) -> Tensor", `return at::matmul(a.t(0), a.t(1));`, MT),
      op("mm(self: Tensor, other: Tensor) -> Tensor", `return at::mm(a.t(0), a.t(1));`, M),
      op("bmm(self: Tensor, other: Tensor) -> Tensor", `return at::bmm(a.t(0), a.t(1));`, M),
      op("linear(input: Tensor, weight: Tensor, bias: Tensor?) -> Tensor", `return at::linear(a.t(0), a.t(1), a.ot(2));`, { F: true }),
      op("outer(self: Tensor, other: Tensor) -> Tensor", `return at::outer(a.t(0), a.t(1));`, T),
      op("einsum(equation: str, ...operands: Tensor[]) -> Tensor", `return at::einsum(a.str(0), a.tensors(1));`, T),
    ],
  },
  {
    title: "shape and indexing",
    ops: [
      op("view(self: Tensor, ...shape: int[]) -> Tensor", `auto s = a.ints(1); return a.t(0).view(s);`, M),
      op("reshape(self: Tensor, ...shape: int[]) -> Tensor", `auto s = a.ints(1); return a.t(0).reshape(s);`, M),
      op("permute(self: Tensor, ...dims: int[]) -> Tensor", `auto s = a.ints(1); return a.t(0).permute(s);`, M),
      op("transpose(self: Tensor, dim0: int, dim1: int) -> Tensor", `return a.t(0).transpose(a.i64(1), a.i64(2));`, M),
      op("unsqueeze(self: Tensor, dim: int) -> Tensor", `return a.t(0).unsqueeze(a.i64(1));`, M),
      op("squeeze(self: Tensor, dim: int?) -> Tensor", `return a.has(1) ? a.t(0).squeeze(a.i64(1)) : a.t(0).squeeze();`, M),
      op("flatten(self: Tensor, startDim: int = 0, endDim: int = -1) -> Tensor", `return a.t(0).flatten(a.i64(1, 0), a.i64(2, -1));`, M),
      op("expand(self: Tensor, ...shape: int[]) -> Tensor", `auto s = a.ints(1); return a.t(0).expand(s);`, M),
      op("repeat(self: Tensor, ...times: int[]) -> Tensor", `auto s = a.ints(1); return a.t(0).repeat(s);`, M),
      op("repeatInterleave(self: Tensor, repeats: int, dim: int?) -> Tensor", `return at::repeat_interleave(a.t(0), a.i64(1), a.oi(2));`, M),
      op("cat(tensors: Tensor[], dim: int = 0) -> Tensor", `return at::cat(a.tensors(0), a.i64(1, 0));`, T),
      op("stack(tensors: Tensor[], dim: int = 0) -> Tensor", `return at::stack(a.tensors(0), a.i64(1, 0));`, T),
      op("split(self: Tensor, size: int, dim: int = 0) -> Tensor[]", `return at::split(a.t(0), a.i64(1), a.i64(2, 0));`),
      op("splitSizes(self: Tensor, sizes: int[], dim: int = 0) -> Tensor[]", `auto s = a.ints(1); return at::split_with_sizes(a.t(0), s, a.i64(2, 0));`),
      op("chunk(self: Tensor, chunks: int, dim: int = 0) -> Tensor[]", `return at::chunk(a.t(0), a.i64(1), a.i64(2, 0));`, M),
      op("narrow(self: Tensor, dim: int, start: int, length: int) -> Tensor", `return a.t(0).narrow(a.i64(1), a.i64(2), a.i64(3));`, M),
      op("slice(self: Tensor, dim: int, start: int?, end: int?, step: int = 1) -> Tensor", `return a.t(0).slice(a.i64(1), a.oi(2), a.oi(3), a.i64(4, 1));`,
        { method: true, note: "self[..., start:end:step, ...] along dim (end exclusive, negatives count from the end)." }),
      op("select(self: Tensor, dim: int, index: int) -> Tensor", `return a.t(0).select(a.i64(1), a.i64(2));`, M),
      op("indexSelect(self: Tensor, dim: int, index: Tensor) -> Tensor", `return at::index_select(a.t(0), a.i64(1), a.t(2));`, M),
      op("index(self: Tensor, indices: (Tensor?)[]) -> Tensor", `return at::index(a.t(0), a.optTensors(1));`,
        { method: true, note: "Advanced indexing: self[i0, i1, ...] with index tensors (null = the whole dimension)." }),
      op("gather(self: Tensor, dim: int, index: Tensor) -> Tensor", `return at::gather(a.t(0), a.i64(1), a.t(2));`, M),
      op("scatter(self: Tensor, dim: int, index: Tensor, src: Tensor|Scalar) -> Tensor",
        `return a.isScalar(3) ? at::scatter(a.t(0), a.i64(1), a.t(2), a.s(3)) : at::scatter(a.t(0), a.i64(1), a.t(2), a.t(3));`, M),
      op("scatterAdd(self: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor", `return at::scatter_add(a.t(0), a.i64(1), a.t(2), a.t(3));`, M),
      op("maskedSelect(self: Tensor, mask: Tensor) -> Tensor", `return at::masked_select(a.t(0), a.t(1));`, M),
      op("nonzero(self: Tensor) -> Tensor", `return at::nonzero(a.t(0));`, M),
      op("flip(self: Tensor, ...dims: int[]) -> Tensor", `auto d = a.ints(1); return at::flip(a.t(0), d);`, M),
      op("roll(self: Tensor, shifts: dims, dims: dims) -> Tensor", `auto s = a.ints(1); auto d = a.ints(2); return at::roll(a.t(0), s, d);`, M),
      op("triu(self: Tensor, diagonal: int = 0) -> Tensor", `return at::triu(a.t(0), a.i64(1, 0));`, MT),
      op("tril(self: Tensor, diagonal: int = 0) -> Tensor", `return at::tril(a.t(0), a.i64(1, 0));`, MT),
      op("pad(input: Tensor, padding: int[], value: Scalar = 0) -> Tensor",
        `auto p = a.ints(1); return at::constant_pad_nd(a.t(0), p, a.has(2) ? a.s(2) : at::Scalar(0));`,
        { F: true, note: "Constant padding; padding lists (before, after) pairs starting from the last dimension, as F.pad." }),
      op("topk(self: Tensor, k: int, dim: int = -1, largest: bool = true, sorted: bool = true) -> (Tensor,Tensor)",
        `return at::topk(a.t(0), a.i64(1), a.i64(2, -1), a.b(3, true), a.b(4, true));`, M),
      op("sort(self: Tensor, dim: int = -1, descending: bool = false) -> (Tensor,Tensor)", `return at::sort(a.t(0), a.i64(1, -1), a.b(2, false));`, M),
      op("argsort(self: Tensor, dim: int = -1, descending: bool = false) -> Tensor", `return std::get<1>(at::sort(a.t(0), a.i64(1, -1), a.b(2, false)));`, M),
      op("oneHot(indices: Tensor, numClasses: int = -1) -> Tensor", `return at::one_hot(a.t(0), a.i64(1, -1));`, { F: true }),
    ],
  },
  {
    title: "neural network functions",
    ops: [
      op("embedding(weight: Tensor, indices: Tensor, paddingIdx: int = -1) -> Tensor", `return at::embedding(a.t(0), a.t(1), a.i64(2, -1));`,
        { F: { order: ["indices", "weight", "paddingIdx"] } }),
      op("conv2d(input: Tensor, weight: Tensor, bias: Tensor?, stride: int[], padding: int[], dilation: int[], groups: int = 1) -> Tensor",
        `auto st = a.ints(3); auto pd = a.ints(4); auto dl = a.ints(5);
   return at::conv2d(a.t(0), a.t(1), a.ot(2), st, pd, dl, a.i64(6, 1));`),
      op("groupNorm(input: Tensor, numGroups: int, weight: Tensor?, bias: Tensor?, eps: float = 1e-5) -> Tensor",
        `return at::group_norm(a.t(0), a.i64(1), a.ot(2), a.ot(3), a.d(4, 1e-5));`, { F: true }),
      op("layerNorm(input: Tensor, normalizedShape: int[], weight: Tensor?, bias: Tensor?, eps: float = 1e-5) -> Tensor",
        `auto s = a.ints(1); return at::layer_norm(a.t(0), s, a.ot(2), a.ot(3), a.d(4, 1e-5));`, { F: true }),
      op("dropout(input: Tensor, p: float = 0.5, training: bool = true) -> Tensor", `return at::dropout(a.t(0), a.d(1), a.b(2));`, { F: true }),
      op("crossEntropy(input: Tensor, target: Tensor, weight: Tensor?, reduction: int?, ignoreIndex: int?, labelSmoothing: float?) -> Tensor",
        `return at::cross_entropy_loss(a.t(0), a.t(1), a.ot(2), a.i64(3, 1), a.i64(4, -100), a.d(5, 0.0));`),
      op("nllLoss(input: Tensor, target: Tensor, weight: Tensor?, reduction: int?, ignoreIndex: int?) -> Tensor",
        `return at::nll_loss(a.t(0), a.t(1), a.ot(2), a.i64(3, 1), a.i64(4, -100));`),
      op("mseLoss(input: Tensor, target: Tensor, reduction: int?) -> Tensor", `return at::mse_loss(a.t(0), a.t(1), a.i64(2, 1));`),
      op("klDiv(input: Tensor, target: Tensor, reduction: int?, logTarget: bool?) -> Tensor", `return at::kl_div(a.t(0), a.t(1), a.i64(2, 1), a.b(3, false));`),
      op("bceWithLogits(input: Tensor, target: Tensor, weight: Tensor?, posWeight: Tensor?, reduction: int?) -> Tensor",
        `return at::binary_cross_entropy_with_logits(a.t(0), a.t(1), a.ot(2), a.ot(3), a.i64(4, 1));`),
      op(`interpolate(input: Tensor, size: int[], mode: str, alignCorners: bool?) -> Tensor`,
        `namespace F = torch::nn::functional; auto size = a.ints(1); auto mode = a.str(2);
   auto o = F::InterpolateFuncOptions().size(size);
   if (mode == "nearest") o = o.mode(torch::kNearest);
   else if (mode == "bilinear") o = o.mode(torch::kBilinear).align_corners(a.b(3, false));
   else throw arc::ArgError("mode must be \\"nearest\\" or \\"bilinear\\", not \\"" + mode + "\\"");
   return F::interpolate(a.t(0), o);`),
      op("scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, attnMask: Tensor?, dropoutP: float?, isCausal: bool?, scale: float?) -> Tensor",
        `return compat::sdpa(a.t(0), a.t(1), a.t(2), a.ot(3), a.d(4, 0.0), a.b(5, false), a.od(6));`),
      op("hasFusedAttention() -> bool", `return compat::kHasSdpa;`),
      op("hasGqaAttention() -> bool", `return compat::kHasGqaSdpa;`),
      op("hasCpuAmpKernels() -> bool", `return compat::kHasCpuAmpKernels;`),
    ],
  },
  {
    title: "transformer blocks",
    note: "One native call each for what a decoder layer does many times a step (a decode step of a 28-layer model with LoRA made ~3,500 calls as separate ops). The arithmetic is the same ops in the same order as the composition each replaces.",
    ops: [
      op("rmsNorm(input: Tensor, weight: Tensor, eps: float) -> Tensor",
        `auto& x = a.t(0); auto& w = a.t(1); const bool f32 = x.scalar_type() == at::kFloat;
   auto xf = f32 ? x : x.to(at::kFloat);
   auto normed = xf.mul(at::rsqrt(xf.pow(2).mean(-1, true).add(a.d(2))));
   return w.mul(f32 ? normed : normed.to(x.scalar_type()));`,
        { F: true, note: "transformers' Qwen2RMSNorm: statistics in float32, cast back to the input dtype, then times the weight." }),
      op("rotaryEmbedding(input: Tensor, cos: Tensor, sin: Tensor) -> Tensor",
        `auto& x = a.t(0); const int64_t half = x.size(-1) / 2;
   auto rot = at::cat({x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)}, -1);
   return x.mul(a.t(1)).add(rot.mul(a.t(2)));`,
        { F: true, note: "x * cos + rotate_half(x) * sin (transformers' apply_rotary_pos_emb for one tensor)." }),
      op("loraLinear(input: Tensor, weight: Tensor, bias: Tensor?, loraA: Tensor, loraB: Tensor, scaling: float, dropoutP: float, training: bool) -> Tensor",
        `auto& x = a.t(0); auto& A = a.t(3);
   auto y = at::linear(x, a.t(1), a.ot(2));
   // The input goes to the adapter's dtype only outside autocast: under autocast the linear casts it to the
   // autocast dtype anyway, and a bf16 -> fp32 -> bf16 round trip is exact, so skipping it changes no number
   // and saves a widened copy of the input that backward would keep.
   const bool cast = x.scalar_type() != A.scalar_type() && !compat::autocastEnabled(x.device().type());
   auto h = cast ? x.to(A.scalar_type()) : x;
   if (a.b(7) && a.d(6) > 0) h = at::dropout(h, a.d(6), true);
   auto out = y.add(at::linear(at::linear(h, A), a.t(4)).mul(a.d(5)));
   return out.scalar_type() == y.scalar_type() ? out : out.to(y.scalar_type());`,
        { F: true, note: "PEFT's LoRA Linear: W x + b + scaling * B(A(dropout(x))), returned in the base output's dtype." }),
      op("gqaAttention(query: Tensor, key: Tensor, value: Tensor, attnMask: Tensor?, dropoutP: float?, isCausal: bool?, scale: float?) -> Tensor",
        `return compat::gqaAttention(a.t(0), a.t(1), a.t(2), a.ot(3), a.d(4, 0.0), a.b(5, false), a.od(6));`,
        { note: "Attention whose keys/values have fewer heads (grouped-query): query head h reads KV head h / (H / KV), with no copy of them per query head." }),
    ],
  },
  {
    title: "autograd",
    ops: [
      op("gradCached(self: Tensor, cached: Tensor?) -> Tensor?",
        `auto& g = a.t(0).grad();
   if (g.defined() && a.has(1) && a.t(1).is_same(g)) return a.argv[1];
   return arc::toJs(a.env, g);`,
        { note: "self's gradient: the handle `cached` again while it still is that gradient, else a new handle (null without one)." }),
    ],
  },
  {
    title: "handles, metadata and data (binding.cc, tensor.cc)",
    ops: [
      ext("binding.cc", "setErrorClass(ctor: any) -> void"),
      ext("binding.cc", "dispose(handle: float) -> bool"),
      ext("binding.cc", "disposeMany(handles: float[]) -> int"),
      ext("binding.cc", "liveTensors() -> int"),
      ext("tensor.cc", "syncCount() -> int"),
      ext("tensor.cc", "resetSyncCount() -> void"),
      op("nativeCallCount() -> int", `return static_cast<int64_t>(arc::nativeCalls);`, { note: "Calls into the addon so far, this one included (common.h)." }),
      ext("tensor.cc", "shape(self: Tensor) -> int[]"),
      ext("tensor.cc", "strides(self: Tensor) -> int[]", { method: { name: "stride" } }),
      ext("tensor.cc", "dtype(self: Tensor) -> int"),
      ext("tensor.cc", "device(self: Tensor) -> int"),
      ext("tensor.cc", "numel(self: Tensor) -> int"),
      ext("tensor.cc", "dim(self: Tensor) -> int"),
      ext("tensor.cc", "isContiguous(self: Tensor) -> bool", M),
      ext("tensor.cc", "nbytes(self: Tensor) -> int"),
      ext("tensor.cc", "describe(self: Tensor) -> str"),
      ext("tensor.cc", "fromTypedArray(data: any, shape: int[], dtype: dtype, device: device?) -> Tensor"),
      ext("tensor.cc", "toTypedArray(self: Tensor) -> any"),
      ext("tensor.cc", "item(self: Tensor) -> any"),
    ],
  },
  {
    title: "autograd (tensor.cc)",
    ops: [
      ext("tensor.cc", "requiresGrad(self: Tensor) -> bool"),
      ext("tensor.cc", "setRequiresGrad(self: Tensor, requiresGrad: bool = true) -> void", { method: { name: "requiresGrad_" } }),
      ext("tensor.cc", "isLeaf(self: Tensor) -> bool"),
      ext("tensor.cc", "gradFn(self: Tensor) -> str"),
      ext("tensor.cc", "grad(self: Tensor, cached: float?) -> Tensor?"),
      ext("tensor.cc", "gradDtype(self: Tensor) -> int"),
      ext("tensor.cc", "setGrad(self: Tensor, grad: Tensor?) -> void"),
      ext("tensor.cc", "retainGrad(self: Tensor) -> void", M),
      ext("tensor.cc", "backward(self: Tensor, gradient: Tensor?, retainGraph: bool?, createGraph: bool?) -> void"),
      ext("tensor.cc", "autogradGrad(outputs: Tensor[], inputs: Tensor[], gradOutputs: Tensor[]?, retainGraph: bool?, createGraph: bool?) -> (Tensor?)[]"),
      ext("tensor.cc", "zeroGrad(params: Tensor[]) -> void"),
      ext("tensor.cc", "isGradEnabled() -> bool"),
      ext("tensor.cc", "setGradEnabled(enabled: bool) -> void"),
      ext("tensor.cc", "setData(self: Tensor, src: Tensor) -> void"),
    ],
  },
  {
    title: "optimizers and AMP (training.cc)",
    ops: [
      ext("training.cc", "clipGradNorm(params: Tensor[], maxNorm: float, normType: float) -> float"),
      ext("training.cc", "adamStep(params: Tensor[], expAvg: Tensor[], expAvgSq: Tensor[], steps: float[], lr: float, beta1: float, beta2: float, eps: float, weightDecay: float, decoupled: bool, kernel: str?) -> void"),
      ext("training.cc", "adamKernel(device: device?) -> str"),
      ext("training.cc", "ampUnscale(params: Tensor[], foundInf: Tensor, invScale: Tensor) -> void"),
      ext("training.cc", "ampUpdateScale(scale: Tensor, growthTracker: Tensor, foundInf: Tensor, growthFactor: float, backoffFactor: float, growthInterval: int) -> void"),
    ],
  },
  {
    title: "safetensors (io.cc)",
    ops: [
      ext("io.cc", "safetensorsLoad(path: str, dataStart: int, spec: any, device: device?) -> Tensor[]"),
      ext("io.cc", "safetensorsSave(path: str, header: str, tensors: Tensor[]) -> void"),
    ],
  },
  {
    title: "RNG, autocast, threads, CUDA (runtime.cc)",
    ops: [
      ext("runtime.cc", "manualSeed(seed: int) -> void"),
      ext("runtime.cc", "getRngState(device: device?) -> Tensor"),
      ext("runtime.cc", "setRngState(device: device?, state: Tensor) -> void"),
      ext("runtime.cc", `autocastEnabled(device: "cpu"|"cuda") -> bool`),
      ext("runtime.cc", `autocastDtype(device: "cpu"|"cuda") -> int`),
      ext("runtime.cc", `setAutocast(device: "cpu"|"cuda", enabled: bool, dtype: dtype?) -> void`),
      ext("runtime.cc", "autocastIncrementNesting() -> int"),
      ext("runtime.cc", "autocastDecrementNesting() -> int"),
      ext("runtime.cc", "autocastClearCache() -> void"),
      ext("runtime.cc", "setNumThreads(n: int) -> void"),
      ext("runtime.cc", "getNumThreads() -> int"),
      ext("runtime.cc", "version() -> str"),
      ext("runtime.cc", "builtWithCuda() -> bool"),
      ext("runtime.cc", "cudaIsAvailable() -> bool"),
      ext("runtime.cc", "cudaDeviceCount() -> int"),
      ext("runtime.cc", "cudaSynchronize(device: int?) -> void"),
      ext("runtime.cc", "cudaMemoryStats(device: int?) -> int[]"),
      ext("runtime.cc", "cudaMemInfo(device: int?) -> int[]"),
      ext("runtime.cc", "cudaResetPeakMemoryStats(device: int?) -> void"),
      ext("runtime.cc", "cudaEmptyCache() -> void"),
      ext("graphs.cc", "cudaGraphsSupported() -> bool"),
      ext("graphs.cc", "cudaGraphBegin(device: int) -> int"),
      ext("graphs.cc", "cudaGraphCaptureStart(graph: int) -> void"),
      ext("graphs.cc", "cudaGraphEnd(graph: int) -> void"),
      ext("graphs.cc", "cudaGraphAbort(graph: int) -> void"),
      ext("graphs.cc", "cudaGraphReplay(graph: int) -> void"),
      ext("graphs.cc", "cudaGraphFree(graph: int) -> void"),
    ],
  },
  {
    title: "torch.distributed (distributed.cc)",
    ops: [
      ext("distributed.cc", "distInit(backend: str, rank: int, worldSize: int, masterAddr: str, masterPort: int, timeoutMs: int, agentStore: bool, prefix: str, device: int) -> void"),
      ext("distributed.cc", "distDestroy() -> void"),
      ext("distributed.cc", "distIsInitialized() -> bool"),
      ext("distributed.cc", "distRank() -> int"),
      ext("distributed.cc", "distWorldSize() -> int"),
      ext("distributed.cc", "distBackends() -> int[]"),
      ext("distributed.cc", "distAllReduce(tensors: Tensor[], op: str, bucketBytes: int) -> void"),
      ext("distributed.cc", "distBroadcast(tensors: Tensor[], src: int, bucketBytes: int) -> void"),
      ext("distributed.cc", "distBarrier() -> void"),
      ext("distributed.cc", "distAllGather(self: Tensor) -> Tensor[]"),
    ],
  },
];
