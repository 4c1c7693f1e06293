// Tensor metadata, data in and out of JS (typed arrays), and autograd.
#include "common.h"

#include <atomic>

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

#include <cstring>

using arc::Args;

namespace {

size_t elemSize(at::ScalarType t) { return c10::elementSize(t); }  // bytes per element

// Which typed array a dtype's raw bytes travel in.
napi_typedarray_type typedArrayFor(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return napi_float32_array;
    case at::kDouble: return napi_float64_array;
    case at::kInt: return napi_int32_array;
    case at::kLong: return napi_bigint64_array;
    case at::kShort: return napi_int16_array;
    case at::kChar: return napi_int8_array;
    case at::kByte: case at::kBool: return napi_uint8_array;
    case at::kHalf: case at::kBFloat16: return napi_uint16_array;
    default: throw std::runtime_error(std::string("dtype ") + c10::toString(t) + " has no typed-array form");
  }
}

size_t typedArrayElementSize(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    default: return 8;
  }
}

// A contiguous CPU copy of `t`'s bytes in a new typed array.
napi_value bytesToTypedArray(napi_env env, const at::Tensor& src) {
  arc::countHostRead();
  auto t = src.detach().to(at::kCPU).contiguous();
  auto kind = typedArrayFor(t.scalar_type());
  size_t n = static_cast<size_t>(t.numel());
  size_t bytes = n * elemSize(t.scalar_type());
  void* data = nullptr;
  napi_value ab, arr;
  if (napi_create_arraybuffer(env, bytes, &data, &ab) != napi_ok) throw std::runtime_error("could not allocate an ArrayBuffer of " + std::to_string(bytes) + " bytes");
  if (bytes) std::memcpy(data, t.data_ptr(), bytes);
  napi_create_typedarray(env, kind, n, ab, 0, &arr);
  return arr;
}

}  // namespace

namespace {
std::atomic<int64_t> hostReadCount{0};
}
void arc::countHostRead() { hostReadCount.fetch_add(1, std::memory_order_relaxed); }

// syncCount() -> host reads so far (see countHostRead); resetSyncCount() sets it to 0.
OP(syncCount, return hostReadCount.load(std::memory_order_relaxed);)
OP(resetSyncCount, hostReadCount.store(0, std::memory_order_relaxed);)

// ---- metadata -------------------------------------------------------------------------------------
OP(shape, auto s = a.t(0).sizes(); return std::vector<int64_t>(s.begin(), s.end());)
OP(strides, auto s = a.t(0).strides(); return std::vector<int64_t>(s.begin(), s.end());)
OP(dtype, return static_cast<int64_t>(a.t(0).scalar_type());)
OP(device, auto& t = a.t(0); return static_cast<int64_t>(t.is_cuda() ? t.device().index() : -1);)
OP(numel, return a.t(0).numel();)
OP(dim, return a.t(0).dim();)
OP(isContiguous, return a.t(0).is_contiguous();)
OP(nbytes, auto& t = a.t(0); return static_cast<int64_t>(t.numel() * t.element_size());)
OP(describe, auto& t = a.t(0); return std::string(t.toString()) + " " + c10::str(t.sizes());)

// ---- data in and out ------------------------------------------------------------------------------
// fromTypedArray(array, shape, dtype, device): copies the typed array's bytes into a new tensor of
// `dtype`; the array's element width must match the dtype's (JS picks the array kind).
OP(fromTypedArray,
   napi_typedarray_type kind; size_t len; void* data; napi_value ab; size_t off;
   bool isTa = false;
   napi_is_typedarray(a.env, a.argv[0], &isTa);
   if (!isTa) a.bad(0, "a typed array");
   napi_get_typedarray_info(a.env, a.argv[0], &kind, &len, &data, &ab, &off);
   auto shape = a.ints(1);
   auto dt = a.dtype(2);
   int64_t numel = 1;
   for (auto s : shape) {
     if (s < 0) throw arc::ArgError("shape has a negative size");
     numel *= s;
   }
   if (numel != static_cast<int64_t>(len))
     throw arc::ArgError("data has " + std::to_string(len) + " elements but shape " + c10::str(at::IntArrayRef(shape)) + " needs " + std::to_string(numel));
   if (typedArrayElementSize(kind) != elemSize(dt))
     throw arc::ArgError(std::string("typed array element size does not match dtype ") + c10::toString(dt));
   auto t = at::empty(shape, at::TensorOptions().dtype(dt));
   if (len) std::memcpy(t.data_ptr(), data, len * elemSize(dt));
   auto dev = a.device(3);
   return dev.is_cpu() ? t : t.to(dev);)

// toTypedArray(t): the tensor's values as a typed array (raw bytes for float16/bfloat16).
OP(toTypedArray, return bytesToTypedArray(a.env, a.t(0));)

OP(item,
   auto& t = a.t(0);
   if (t.numel() != 1) throw arc::ArgError("item() needs a tensor with one element, this one has " + std::to_string(t.numel()));
   arc::countHostRead();
   auto s = t.item();
   if (s.isBoolean()) return arc::toJs(a.env, s.toBool());
   return arc::toJs(a.env, s.toDouble());)

// ---- autograd -------------------------------------------------------------------------------------
OP(requiresGrad, return a.t(0).requires_grad();)
OP(setRequiresGrad, a.t(0).set_requires_grad(a.b(1));)
OP(isLeaf, return a.t(0).is_leaf();)
OP(gradFn, auto& fn = a.t(0).grad_fn(); return fn ? fn->name() : std::string();)
OP(grad, return a.t(0).grad();)
// The gradient's dtype code, or -1 without one: optimizers ask which parameters to step without
// making (and freeing) a handle to every gradient.
OP(gradDtype, auto& g = a.t(0).grad(); return static_cast<int64_t>(g.defined() ? static_cast<int>(g.scalar_type()) : -1);)
OP(setGrad, auto& t = a.t(0); if (a.has(1)) t.mutable_grad() = a.t(1); else t.mutable_grad().reset();)
OP(retainGrad, a.t(0).retain_grad();)
OP(backward,
   auto& t = a.t(0);
   auto g = a.ot(1);
   bool create = a.b(3, false);
   t.backward(g.has_value() ? *g : at::Tensor(), a.has(2) ? c10::optional<bool>(a.b(2)) : c10::nullopt, create);)
// Gradients of outputs w.r.t. inputs without touching .grad (torch.autograd.grad).
OP(autogradGrad,
   auto outs = a.tensors(0);
   auto ins = a.tensors(1);
   std::vector<at::Tensor> gos;
   if (a.has(2)) gos = a.tensors(2);
   return torch::autograd::grad(outs, ins, gos, a.has(3) ? c10::optional<bool>(a.b(3)) : c10::nullopt, a.b(4, false), /*allow_unused=*/true);)
OP(zeroGrad, for (auto& p : a.tensors(0)) p.mutable_grad().reset();)
OP(isGradEnabled, return at::GradMode::is_enabled();)
OP(setGradEnabled, at::GradMode::set_enabled(a.b(0));)

// Replace a tensor's data in place, keeping its identity (and leaf status): `param.data = other`.
OP(setData, a.t(0).set_data(a.t(1));)
