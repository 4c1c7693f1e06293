// Tensor ops, named as in PyTorch. One line each: decode arguments, call ATen, return the result.
// Variants taking a JS number instead of a tensor carry an `S` suffix (addS = add(tensor, scalar)).
#include "common.h"

#include <torch/nn/functional/upsampling.h>

using arc::Args;
using IntRef = at::IntArrayRef;

namespace {
at::OptionalIntArrayRef dimsOrAll(const Args& a, size_t i, std::vector<int64_t>& store) {
  if (!a.has(i)) return c10::nullopt;
  store = a.ints(i);
  return IntRef(store);
}
}  // namespace

// ---- creation -----------------------------------------------------------------------------------
OP(empty, auto s = a.ints(0); return at::empty(s, a.opts(1, 2));)
OP(zeros, auto s = a.ints(0); return at::zeros(s, a.opts(1, 2));)
OP(ones, auto s = a.ints(0); return at::ones(s, a.opts(1, 2));)
OP(full, auto s = a.ints(0); return at::full(s, a.s(1), a.opts(2, 3));)
OP(arange, return at::arange(a.s(0), a.s(1), a.s(2), a.opts(3, 4));)
OP(linspace, return at::linspace(a.s(0), a.s(1), a.i64(2), a.opts(3, 4));)
OP(eye, return at::eye(a.i64(0), a.opts(1, 2));)
OP(rand, auto s = a.ints(0); return at::rand(s, a.opts(1, 2));)
OP(randn, auto s = a.ints(0); return at::randn(s, a.opts(1, 2));)
OP(randint, auto s = a.ints(2); auto o = a.has(3) ? a.opts(3, 4) : a.opts(3, 4).dtype(at::kLong);
   return at::randint(a.i64(0), a.i64(1), s, o);)
OP(scalarTensor, return at::scalar_tensor(a.s(0), a.opts(1, 2));)
OP(zerosLike, return at::zeros_like(a.t(0));)
OP(onesLike, return at::ones_like(a.t(0));)
OP(fullLike, return at::full_like(a.t(0), a.s(1));)
OP(randnLike, return at::randn_like(a.t(0));)
OP(randLike, return at::rand_like(a.t(0));)
OP(emptyLike, return at::empty_like(a.t(0));)

// ---- conversion and copies ----------------------------------------------------------------------
// A copy from an accelerator to the CPU waits for the device like a host read, so syncCount() counts it.
OP(to, auto& t = a.t(0); auto dt = a.has(1) ? a.dtype(1) : t.scalar_type();
   auto dev = a.has(2) ? a.device(2) : t.device(); if (!t.device().is_cpu() && dev.is_cpu()) arc::countHostRead();
   return t.to(dev, dt, /*non_blocking=*/false, /*copy=*/a.b(3, false));)
OP(clone, return a.t(0).clone();)
OP(detach, return a.t(0).detach();)
OP(contiguous, return a.t(0).contiguous();)
OP(copy_, if (a.t(0).device().is_cpu() && !a.t(1).device().is_cpu()) arc::countHostRead(); a.t(0).copy_(a.t(1));)
OP(fill_, a.t(0).fill_(a.s(1));)
OP(zero_, a.t(0).zero_();)
OP(uniform_, a.t(0).uniform_(a.d(1), a.d(2));)
OP(normal_, a.t(0).normal_(a.d(1), a.d(2));)
OP(bernoulli, return at::bernoulli(a.t(0));)
OP(multinomial, return at::multinomial(a.t(0), a.i64(1), a.b(2, false));)

// ---- elementwise: tensor (op) tensor --------------------------------------------------------------
OP(add, return a.has(2) ? at::add(a.t(0), a.t(1), a.s(2)) : at::add(a.t(0), a.t(1));)
OP(sub, return a.has(2) ? at::sub(a.t(0), a.t(1), a.s(2)) : at::sub(a.t(0), a.t(1));)
OP(mul, return at::mul(a.t(0), a.t(1));)
OP(div, return at::div(a.t(0), a.t(1));)
OP(pow, return at::pow(a.t(0), a.t(1));)
OP(remainder, return at::remainder(a.t(0), a.t(1));)
OP(maximum, return at::maximum(a.t(0), a.t(1));)
OP(minimum, return at::minimum(a.t(0), a.t(1));)
OP(eq, return at::eq(a.t(0), a.t(1));)
OP(ne, return at::ne(a.t(0), a.t(1));)
OP(lt, return at::lt(a.t(0), a.t(1));)
OP(le, return at::le(a.t(0), a.t(1));)
OP(gt, return at::gt(a.t(0), a.t(1));)
OP(ge, return at::ge(a.t(0), a.t(1));)
OP(logicalAnd, return at::logical_and(a.t(0), a.t(1));)
OP(logicalOr, return at::logical_or(a.t(0), a.t(1));)
OP(logicalXor, return at::logical_xor(a.t(0), a.t(1));)
OP(atan2, return at::atan2(a.t(0), a.t(1));)
OP(floorDivide, return at::div(a.t(0), a.t(1), "floor");)
OP(equal, arc::countHostRead(); return at::equal(a.t(0), a.t(1));)
OP(allclose, arc::countHostRead(); return at::allclose(a.t(0), a.t(1), a.d(2, 1e-5), a.d(3, 1e-8));)

// ---- elementwise: tensor (op) number ---------------------------------------------------------------
OP(addS, return at::add(a.t(0), a.s(1));)
OP(subS, return at::sub(a.t(0), a.s(1));)
OP(rsubS, return at::rsub(a.t(0), a.s(1));)
OP(mulS, return at::mul(a.t(0), a.s(1));)
OP(divS, return at::div(a.t(0), a.s(1));)
OP(rdivS, return at::mul(at::reciprocal(a.t(0)), a.s(1));)
OP(powS, return at::pow(a.t(0), a.s(1));)
OP(rpowS, return at::pow(a.s(1), a.t(0));)
OP(remainderS, return at::remainder(a.t(0), a.s(1));)
OP(floorDivideS, return at::div(a.t(0), at::scalar_tensor(a.s(1), a.t(0).options()), "floor");)
OP(eqS, return at::eq(a.t(0), a.s(1));)
OP(neS, return at::ne(a.t(0), a.s(1));)
OP(ltS, return at::lt(a.t(0), a.s(1));)
OP(leS, return at::le(a.t(0), a.s(1));)
OP(gtS, return at::gt(a.t(0), a.s(1));)
OP(geS, return at::ge(a.t(0), a.s(1));)
OP(maximumS, return at::clamp_min(a.t(0), a.s(1));)
OP(minimumS, return at::clamp_max(a.t(0), a.s(1));)

// ---- elementwise: unary ---------------------------------------------------------------------------
OP(neg, return at::neg(a.t(0));)
OP(exp, return at::exp(a.t(0));)
OP(log, return at::log(a.t(0));)
OP(log1p, return at::log1p(a.t(0));)
OP(expm1, return at::expm1(a.t(0));)
OP(log2, return at::log2(a.t(0));)
OP(sqrt, return at::sqrt(a.t(0));)
OP(rsqrt, return at::rsqrt(a.t(0));)
OP(abs, return at::abs(a.t(0));)
OP(sign, return at::sign(a.t(0));)
OP(tanh, return at::tanh(a.t(0));)
OP(sigmoid, return at::sigmoid(a.t(0));)
OP(logSigmoid, return at::log_sigmoid(a.t(0));)
OP(softplus, return at::softplus(a.t(0), a.s(1), a.s(2));)
OP(relu, return at::relu(a.t(0));)
OP(gelu, return at::gelu(a.t(0), a.has(1) ? a.str(1) : std::string("none"));)
OP(silu, return at::silu(a.t(0));)
OP(sin, return at::sin(a.t(0));)
OP(cos, return at::cos(a.t(0));)
OP(floor, return at::floor(a.t(0));)
OP(ceil, return at::ceil(a.t(0));)
OP(round, return at::round(a.t(0));)
OP(trunc, return at::trunc(a.t(0));)
OP(reciprocal, return at::reciprocal(a.t(0));)
OP(square, return at::square(a.t(0));)
OP(erf, return at::erf(a.t(0));)
OP(logicalNot, return at::logical_not(a.t(0));)
OP(isnan, return at::isnan(a.t(0));)
OP(isinf, return at::isinf(a.t(0));)
OP(isfinite, return at::isfinite(a.t(0));)
OP(nanToNum, return at::nan_to_num(a.t(0), a.od(1), a.od(2), a.od(3));)
OP(clamp, return at::clamp(a.t(0), a.os(1), a.os(2));)
OP(where, return at::where(a.t(0), a.t(1), a.t(2));)
OP(whereS, return at::where(a.t(0), a.t(1), a.s(2));)
OP(maskedFill, return at::masked_fill(a.t(0), a.t(1), a.s(2));)
OP(lerp, return at::lerp(a.t(0), a.t(1), a.s(2));)
OP(addcmul, return at::addcmul(a.t(0), a.t(1), a.t(2), a.s(3));)
OP(addcdiv, return at::addcdiv(a.t(0), a.t(1), a.t(2), a.s(3));)

// ---- in place -------------------------------------------------------------------------------------
OP(add_, if (a.has(2)) a.t(0).add_(a.t(1), a.s(2)); else a.t(0).add_(a.t(1));)
OP(sub_, if (a.has(2)) a.t(0).sub_(a.t(1), a.s(2)); else a.t(0).sub_(a.t(1));)
OP(mul_, a.t(0).mul_(a.t(1));)
OP(div_, a.t(0).div_(a.t(1));)
OP(addS_, a.t(0).add_(a.s(1));)
OP(mulS_, a.t(0).mul_(a.s(1));)
OP(divS_, a.t(0).div_(a.s(1));)
OP(clamp_, a.t(0).clamp_(a.os(1), a.os(2));)
OP(maskedFill_, a.t(0).masked_fill_(a.t(1), a.s(2));)
OP(lerp_, a.t(0).lerp_(a.t(1), a.s(2));)
OP(addcmul_, a.t(0).addcmul_(a.t(1), a.t(2), a.s(3));)
OP(addcdiv_, a.t(0).addcdiv_(a.t(1), a.t(2), a.s(3));)
OP(indexPut_, a.t(0).index_put_(a.optTensors(1), a.t(2), a.b(3, false));)
OP(scatter_, a.t(0).scatter_(a.i64(1), a.t(2), a.t(3));)

// ---- reductions -----------------------------------------------------------------------------------
OP(sum, std::vector<int64_t> d; auto dims = dimsOrAll(a, 1, d); bool keep = a.b(2, false);
   return dims ? at::sum(a.t(0), dims, keep, a.odtype(3)) : at::sum(a.t(0), a.odtype(3));)
OP(mean, std::vector<int64_t> d; auto dims = dimsOrAll(a, 1, d); bool keep = a.b(2, false);
   return dims ? at::mean(a.t(0), dims, keep, a.odtype(3)) : at::mean(a.t(0), a.odtype(3));)
OP(prod, return a.has(1) ? at::prod(a.t(0), a.i64(1), a.b(2, false)) : at::prod(a.t(0));)
OP(amax, auto d = a.has(1) ? a.ints(1) : std::vector<int64_t>{}; return at::amax(a.t(0), d, a.b(2, false));)
OP(amin, auto d = a.has(1) ? a.ints(1) : std::vector<int64_t>{}; return at::amin(a.t(0), d, a.b(2, false));)
OP(maxDim, return at::max(a.t(0), a.i64(1), a.b(2, false));)
OP(minDim, return at::min(a.t(0), a.i64(1), a.b(2, false));)
OP(max, return at::max(a.t(0));)
OP(min, return at::min(a.t(0));)
OP(argmax, return at::argmax(a.t(0), a.oi(1), a.b(2, false));)
OP(argmin, return at::argmin(a.t(0), a.oi(1), a.b(2, false));)
OP(norm, std::vector<int64_t> d; auto dims = dimsOrAll(a, 2, d);
   return at::linalg_vector_norm(a.t(0), a.s(1), dims, a.b(3, false), a.odtype(4));)
OP(logsumexp, auto d = a.ints(1); return at::logsumexp(a.t(0), d, a.b(2, false));)
OP(var, std::vector<int64_t> d; auto dims = dimsOrAll(a, 1, d); return at::var(a.t(0), dims, a.b(2, true), a.b(3, false));)
OP(std, std::vector<int64_t> d; auto dims = dimsOrAll(a, 1, d); return at::std(a.t(0), dims, a.b(2, true), a.b(3, false));)
OP(all, return a.has(1) ? at::all(a.t(0), a.i64(1), a.b(2, false)) : at::all(a.t(0));)
OP(any, return a.has(1) ? at::any(a.t(0), a.i64(1), a.b(2, false)) : at::any(a.t(0));)
OP(cumsum, return at::cumsum(a.t(0), a.i64(1), a.odtype(2));)
OP(countNonzero, return a.has(1) ? at::count_nonzero(a.t(0), c10::optional<int64_t>(a.i64(1))) : at::count_nonzero(a.t(0));)
OP(softmax, return at::softmax(a.t(0), a.i64(1), a.odtype(2));)
OP(logSoftmax, return at::log_softmax(a.t(0), a.i64(1), a.odtype(2));)

// ---- linear algebra -------------------------------------------------------------------------------
OP(matmul, return at::matmul(a.t(0), a.t(1));)
OP(mm, return at::mm(a.t(0), a.t(1));)
OP(bmm, return at::bmm(a.t(0), a.t(1));)
OP(linear, return at::linear(a.t(0), a.t(1), a.ot(2));)
OP(outer, return at::outer(a.t(0), a.t(1));)
OP(einsum, return at::einsum(a.str(0), a.tensors(1));)

// ---- shape and indexing ---------------------------------------------------------------------------
OP(view, auto s = a.ints(1); return a.t(0).view(s);)
OP(reshape, auto s = a.ints(1); return a.t(0).reshape(s);)
OP(permute, auto s = a.ints(1); return a.t(0).permute(s);)
OP(transpose, return a.t(0).transpose(a.i64(1), a.i64(2));)
OP(unsqueeze, return a.t(0).unsqueeze(a.i64(1));)
OP(squeeze, return a.has(1) ? a.t(0).squeeze(a.i64(1)) : a.t(0).squeeze();)
OP(flatten, return a.t(0).flatten(a.i64(1, 0), a.i64(2, -1));)
OP(expand, auto s = a.ints(1); return a.t(0).expand(s);)
OP(repeat, auto s = a.ints(1); return a.t(0).repeat(s);)
OP(repeatInterleave, return at::repeat_interleave(a.t(0), a.i64(1), a.oi(2));)
OP(cat, return at::cat(a.tensors(0), a.i64(1, 0));)
OP(stack, return at::stack(a.tensors(0), a.i64(1, 0));)
OP(split, return at::split(a.t(0), a.i64(1), a.i64(2, 0));)
OP(splitSizes, auto s = a.ints(1); return at::split_with_sizes(a.t(0), s, a.i64(2, 0));)
OP(chunk, return at::chunk(a.t(0), a.i64(1), a.i64(2, 0));)
OP(narrow, return a.t(0).narrow(a.i64(1), a.i64(2), a.i64(3));)
OP(slice, return a.t(0).slice(a.i64(1), a.oi(2), a.oi(3), a.i64(4, 1));)
OP(select, return a.t(0).select(a.i64(1), a.i64(2));)
OP(indexSelect, return at::index_select(a.t(0), a.i64(1), a.t(2));)
OP(index, return at::index(a.t(0), a.optTensors(1));)
OP(gather, return at::gather(a.t(0), a.i64(1), a.t(2));)
OP(scatter, return at::scatter(a.t(0), a.i64(1), a.t(2), a.t(3));)
OP(scatterS, return at::scatter(a.t(0), a.i64(1), a.t(2), a.s(3));)
OP(scatterAdd, return at::scatter_add(a.t(0), a.i64(1), a.t(2), a.t(3));)
OP(maskedSelect, return at::masked_select(a.t(0), a.t(1));)
OP(nonzero, return at::nonzero(a.t(0));)
OP(flip, auto d = a.ints(1); return at::flip(a.t(0), d);)
OP(roll, auto s = a.ints(1); auto d = a.ints(2); return at::roll(a.t(0), s, d);)
OP(triu, return at::triu(a.t(0), a.i64(1, 0));)
OP(tril, return at::tril(a.t(0), a.i64(1, 0));)
OP(pad, auto p = a.ints(1); return at::constant_pad_nd(a.t(0), p, a.has(2) ? a.s(2) : at::Scalar(0));)
OP(topk, return at::topk(a.t(0), a.i64(1), a.i64(2, -1), a.b(3, true), a.b(4, true));)
OP(sort, return at::sort(a.t(0), a.i64(1, -1), a.b(2, false));)
OP(argsort, return std::get<1>(at::sort(a.t(0), a.i64(1, -1), a.b(2, false)));)
OP(oneHot, return at::one_hot(a.t(0), a.i64(1, -1));)

// ---- neural network functions ---------------------------------------------------------------------
OP(embedding, return at::embedding(a.t(0), a.t(1), a.i64(2, -1));)
OP(conv2d, auto st = a.ints(3); auto pd = a.ints(4); auto dl = a.ints(5);
   return at::conv2d(a.t(0), a.t(1), a.ot(2), st, pd, dl, a.i64(6, 1));)
OP(groupNorm, return at::group_norm(a.t(0), a.i64(1), a.ot(2), a.ot(3), a.d(4, 1e-5));)
OP(layerNorm, auto s = a.ints(1); return at::layer_norm(a.t(0), s, a.ot(2), a.ot(3), a.d(4, 1e-5));)
OP(dropout, return at::dropout(a.t(0), a.d(1), a.b(2));)
OP(crossEntropy, return at::cross_entropy_loss(a.t(0), a.t(1), a.ot(2), a.i64(3, 1), a.i64(4, -100), a.d(5, 0.0));)
OP(nllLoss, return at::nll_loss(a.t(0), a.t(1), a.ot(2), a.i64(3, 1), a.i64(4, -100));)
OP(mseLoss, return at::mse_loss(a.t(0), a.t(1), a.i64(2, 1));)
OP(klDiv, return at::kl_div(a.t(0), a.t(1), a.i64(2, 1), a.b(3, false));)
OP(bceWithLogits, return at::binary_cross_entropy_with_logits(a.t(0), a.t(1), a.ot(2), a.ot(3), a.i64(4, 1));)
OP(interpolate, namespace F = torch::nn::functional; auto size = a.ints(1); auto mode = a.str(2);
   auto o = F::InterpolateFuncOptions().size(size);
   if (mode == "nearest") o = o.mode(torch::kNearest);
   else if (mode == "bilinear") o = o.mode(torch::kBilinear).align_corners(a.b(3, false));
   else throw arc::ArgError("mode must be \"nearest\" or \"bilinear\", not \"" + mode + "\"");
   return F::interpolate(a.t(0), o);)
OP(scaledDotProductAttention,
   return compat::sdpa(a.t(0), a.t(1), a.t(2), a.ot(3), a.d(4, 0.0), a.b(5, false), a.od(6));)
OP(hasFusedAttention, return compat::kHasSdpa;)
OP(hasCpuAmpKernels, return compat::kHasCpuAmpKernels;)
