// Module entry and the shared machinery declared in common.h: handle table, argument decoding,
// result encoding, errors. The op bindings themselves live in ops.cc, training.cc, io.cc, runtime.cc.
#include "common.h"

#include <torch/cuda.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace arc {

uint64_t nativeCalls = 0;  // JS calls one thread at a time: a plain counter

// ---- handle table -------------------------------------------------------------------------------
HandleTable& handles() {
  static HandleTable table;
  return table;
}

double put(at::Tensor t) {
  auto& H = handles();
  uint32_t idx;
  if (!H.freeList.empty()) {
    idx = H.freeList.back();
    H.freeList.pop_back();
  } else {
    if (H.slots.size() >= (1u << 24)) throw std::runtime_error("too many live tensors (16M): dispose tensors or use torch.scope()");
    idx = static_cast<uint32_t>(H.slots.size());
    H.slots.emplace_back();
  }
  Slot& s = H.slots[idx];
  s.t = std::move(t);
  s.used = true;
  ++H.live;
  return static_cast<double>(idx) + static_cast<double>(s.gen) * kGenScale;
}

static bool decode(double h, uint32_t& idx, uint32_t& gen) {
  if (!(h >= 0) || h > 4.0e15) return false;
  auto u = static_cast<uint64_t>(h);
  if (static_cast<double>(u) != h) return false;  // not an integer
  idx = static_cast<uint32_t>(u & 0xFFFFFFu);
  gen = static_cast<uint32_t>(u >> 24);
  return true;
}

at::Tensor& get(double h, const char* op, size_t argIndex) {
  auto& H = handles();
  uint32_t idx, gen;
  if (h < 0) throw ArgError("argument " + std::to_string(argIndex) + " is a disposed tensor");
  if (!decode(h, idx, gen) || idx >= H.slots.size() || !H.slots[idx].used || H.slots[idx].gen != gen)
    throw ArgError("argument " + std::to_string(argIndex) + " is not a live tensor (disposed or invalid handle)");
  return H.slots[idx].t;
}

bool release(double h) {
  auto& H = handles();
  uint32_t idx, gen;
  if (!decode(h, idx, gen) || idx >= H.slots.size()) return false;
  Slot& s = H.slots[idx];
  if (!s.used || s.gen != gen) return false;
  s.t = at::Tensor();
  s.used = false;
  s.gen = (s.gen + 1) & ((1u << 28) - 1);
  H.freeList.push_back(idx);
  --H.live;
  return true;
}

// ---- errors -------------------------------------------------------------------------------------
static napi_ref gErrorClass = nullptr;

void setErrorClass(napi_env env, napi_value ctor) {
  if (gErrorClass) napi_delete_reference(env, gErrorClass);
  napi_create_reference(env, ctor, 1, &gErrorClass);
}

std::string firstLine(const char* what) {
  std::string s(what ? what : "");
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

void throwTorchError(napi_env env, const std::string& msg) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;  // a JS exception (e.g. from a getter) is already on its way
  napi_value jsMsg, err, ctor;
  napi_create_string_utf8(env, msg.c_str(), msg.size(), &jsMsg);
  if (gErrorClass && napi_get_reference_value(env, gErrorClass, &ctor) == napi_ok && ctor &&
      napi_new_instance(env, ctor, 1, &jsMsg, &err) == napi_ok) {
    napi_throw(env, err);
  } else {
    napi_throw_error(env, "TORCH_ERROR", msg.c_str());
  }
}

// ---- argument decoding --------------------------------------------------------------------------
Args::Args(napi_env e, napi_callback_info info, const char* name) : env(e), op(name) {
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc > 12) argc = 12;
}

bool Args::has(size_t i) const {
  if (i >= argc) return false;
  napi_valuetype ty;
  napi_typeof(env, argv[i], &ty);
  return ty != napi_undefined && ty != napi_null;
}

void Args::bad(size_t i, const char* expected) const {
  const char* got = "nothing";
  if (i < argc) {
    napi_valuetype ty;
    napi_typeof(env, argv[i], &ty);
    static const char* names[] = {"undefined", "null", "boolean", "number", "string", "symbol", "object", "function", "external", "bigint"};
    got = ty <= napi_bigint ? names[ty] : "unknown";
  }
  throw ArgError("argument " + std::to_string(i) + " must be " + expected + " (got " + got + ")");
}

at::Tensor& Args::t(size_t i) const {
  double h;
  if (i >= argc) bad(i, "a Tensor");
  if (napi_get_value_double(env, argv[i], &h) != napi_ok) {
    napi_valuetype ty;
    napi_value field;
    napi_typeof(env, argv[i], &ty);
    if (ty != napi_object || napi_get_named_property(env, argv[i], "_h", &field) != napi_ok ||
        napi_get_value_double(env, field, &h) != napi_ok)
      bad(i, "a Tensor");
  }
  return get(h, op, i);
}

bool Args::isScalar(size_t i) const {
  if (i >= argc) return false;
  napi_valuetype ty;
  napi_typeof(env, argv[i], &ty);
  return ty == napi_number || ty == napi_boolean;
}

at::Scalar jsScalar(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

c10::optional<at::Tensor> Args::ot(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return t(i);
}

double Args::d(size_t i) const {
  double v;
  if (i >= argc || napi_get_value_double(env, argv[i], &v) != napi_ok) bad(i, "a number");
  return v;
}

c10::optional<double> Args::od(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return d(i);
}

int64_t Args::i64(size_t i) const {
  double v = d(i);
  if (v != std::floor(v) || std::fabs(v) > 9007199254740992.0) bad(i, "an integer");
  return static_cast<int64_t>(v);
}

c10::optional<int64_t> Args::oi(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return i64(i);
}

bool Args::b(size_t i) const {
  bool v;
  if (i >= argc || napi_get_value_bool(env, argv[i], &v) != napi_ok) bad(i, "a boolean");
  return v;
}

at::Scalar Args::s(size_t i) const {
  if (i < argc) {
    napi_valuetype ty;
    napi_typeof(env, argv[i], &ty);
    if (ty == napi_boolean) return at::Scalar(b(i));
    if (ty == napi_number) {
      double v;
      napi_get_value_double(env, argv[i], &v);
      return jsScalar(v);
    }
  }
  bad(i, "a number or boolean");
}

c10::optional<at::Scalar> Args::os(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return s(i);
}

template <class T, class F>
static std::vector<T> readArray(const Args& a, size_t i, const char* expected, F&& item) {
  bool isArr = false;
  if (i >= a.argc || napi_is_array(a.env, a.argv[i], &isArr) != napi_ok || !isArr) a.bad(i, expected);
  uint32_t n;
  napi_get_array_length(a.env, a.argv[i], &n);
  std::vector<T> out;
  out.reserve(n);
  for (uint32_t k = 0; k < n; ++k) {
    napi_value el;
    napi_get_element(a.env, a.argv[i], k, &el);
    out.push_back(item(el, k));
  }
  return out;
}

std::vector<int64_t> Args::ints(size_t i) const {
  return readArray<int64_t>(*this, i, "an array of integers", [&](napi_value el, uint32_t k) {
    double v;
    if (napi_get_value_double(env, el, &v) != napi_ok || v != std::floor(v))
      throw ArgError("argument " + std::to_string(i) + "[" + std::to_string(k) + "] must be an integer");
    return static_cast<int64_t>(v);
  });
}

std::vector<double> Args::doubles(size_t i) const {
  return readArray<double>(*this, i, "an array of numbers", [&](napi_value el, uint32_t k) {
    double v;
    if (napi_get_value_double(env, el, &v) != napi_ok)
      throw ArgError("argument " + std::to_string(i) + "[" + std::to_string(k) + "] must be a number");
    return v;
  });
}

std::vector<at::Tensor> Args::tensors(size_t i) const {
  return readArray<at::Tensor>(*this, i, "an array of Tensors", [&](napi_value el, uint32_t k) {
    double h;
    if (napi_get_value_double(env, el, &h) != napi_ok)
      throw ArgError("argument " + std::to_string(i) + "[" + std::to_string(k) + "] must be a Tensor");
    return get(h, op, i);
  });
}

c10::List<c10::optional<at::Tensor>> Args::optTensors(size_t i) const {
  c10::List<c10::optional<at::Tensor>> out;
  auto items = readArray<c10::optional<at::Tensor>>(*this, i, "an array of Tensors or nulls", [&](napi_value el, uint32_t k) -> c10::optional<at::Tensor> {
    napi_valuetype ty;
    napi_typeof(env, el, &ty);
    if (ty == napi_null || ty == napi_undefined) return c10::nullopt;
    double h;
    if (napi_get_value_double(env, el, &h) != napi_ok)
      throw ArgError("argument " + std::to_string(i) + "[" + std::to_string(k) + "] must be a Tensor or null");
    return get(h, op, i);
  });
  for (auto& x : items) out.push_back(x);
  return out;
}

std::string Args::str(size_t i) const {
  size_t len;
  if (i >= argc || napi_get_value_string_utf8(env, argv[i], nullptr, 0, &len) != napi_ok) bad(i, "a string");
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, argv[i], s.data(), len + 1, &len);
  return s;
}

static bool validDtype(int64_t v) {
  switch (static_cast<at::ScalarType>(v)) {
    case at::kByte: case at::kChar: case at::kShort: case at::kInt: case at::kLong: case at::kHalf:
    case at::kFloat: case at::kDouble: case at::kBool: case at::kBFloat16:
      return true;
    default:
      return false;
  }
}

at::ScalarType Args::dtype(size_t i) const {
  int64_t v = i64(i);
  if (!validDtype(v)) throw ArgError("argument " + std::to_string(i) + " is not a supported dtype code (" + std::to_string(v) + ")");
  return static_cast<at::ScalarType>(v);
}

c10::optional<at::ScalarType> Args::odtype(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return dtype(i);
}

at::Device Args::device(size_t i) const {
  if (!has(i)) return at::Device(at::kCPU);
  int64_t v = i64(i);
  if (v < 0) return at::Device(at::kCPU);
  if (!torch::cuda::is_available())
    throw std::runtime_error("CUDA device cuda:" + std::to_string(v) + " requested but CUDA is not available (this LibTorch build or machine has no GPU)");
  if (v >= static_cast<int64_t>(torch::cuda::device_count()))
    throw std::runtime_error("CUDA device cuda:" + std::to_string(v) + " requested but only " + std::to_string(torch::cuda::device_count()) + " device(s) exist");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(v));
}

at::TensorOptions Args::opts(size_t dtypeIdx, size_t deviceIdx) const {
  auto o = at::TensorOptions().device(device(deviceIdx));
  if (has(dtypeIdx)) o = o.dtype(dtype(dtypeIdx));
  else o = o.dtype(at::kFloat);
  return o;
}

// ---- result encoding ----------------------------------------------------------------------------
napi_value undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}
napi_value toJs(napi_env env, const at::Tensor& t) {
  napi_value v;
  if (!t.defined()) {
    napi_get_null(env, &v);
    return v;
  }
  napi_create_double(env, put(t), &v);
  return v;
}
napi_value toJs(napi_env env, double x) {
  napi_value v;
  napi_create_double(env, x, &v);
  return v;
}
napi_value toJs(napi_env env, bool x) {
  napi_value v;
  napi_get_boolean(env, x, &v);
  return v;
}
napi_value toJs(napi_env env, int64_t x) {
  napi_value v;
  napi_create_double(env, static_cast<double>(x), &v);
  return v;
}
napi_value toJs(napi_env env, const std::string& s) {
  napi_value v;
  napi_create_string_utf8(env, s.c_str(), s.size(), &v);
  return v;
}
napi_value toJs(napi_env env, napi_value v) { return v; }
napi_value toJs(napi_env env, const std::vector<at::Tensor>& ts) {
  napi_value arr;
  napi_create_array_with_length(env, ts.size(), &arr);
  for (size_t i = 0; i < ts.size(); ++i) napi_set_element(env, arr, i, toJs(env, ts[i]));
  return arr;
}
napi_value toJs(napi_env env, const std::vector<int64_t>& xs) {
  napi_value arr;
  napi_create_array_with_length(env, xs.size(), &arr);
  for (size_t i = 0; i < xs.size(); ++i) napi_set_element(env, arr, i, toJs(env, xs[i]));
  return arr;
}
napi_value toJs(napi_env env, const std::tuple<at::Tensor, at::Tensor>& v) {
  return toJs(env, std::vector<at::Tensor>{std::get<0>(v), std::get<1>(v)});
}

// ---- registration -------------------------------------------------------------------------------
std::vector<Export>& exportsList() {
  static std::vector<Export> list;
  return list;
}
Registrar::Registrar(const char* name, napi_callback fn) { exportsList().push_back({name, fn}); }

}  // namespace arc

using arc::Args;

// Handles and errors.
OP(setErrorClass, arc::setErrorClass(a.env, a.argv[0]);)
OP(dispose, return arc::release(a.d(0));)
OP(liveTensors, return static_cast<int64_t>(arc::handles().live);)

// glibc serves blocks over 128 KiB with fresh mmaps and trims freed heap memory back to the OS, so a
// tensor of a few hundred KiB costs page faults on every allocation; tensors freed in batches (scopes)
// defeat glibc's adaptive threshold. Keeping freed memory for reuse made a tiny Qwen2 forward 6x faster
// on a 2-core VM. ARC_TORCH_MALLOC=default leaves glibc's settings alone.
static void tuneMalloc() {
#if defined(__GLIBC__)
  const char* m = std::getenv("ARC_TORCH_MALLOC");
  if (m && std::string(m) == "default") return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
#endif
}

// NNPACK (a CPU convolution library LibTorch may pick for large batches) cannot initialise on some CPUs,
// and then each convolution that tries it logs "Could not initialize NNPACK! Reason: Unsupported hardware"
// on stderr, a line per call in every script's output (seen on this project's AMD EPYC machines with
// LibTorch 2.13; asking whether it is available logs the same line). It is switched off at load, as
// torch.backends.nnpack.set_flags(False) does in Python: LibTorch's other CPU convolution kernels are used.
static void quietNnpack() {
#if ARC_TORCH_AT_LEAST(2, 0)
  at::globalContext().setUserEnabledNNPACK(false);
#endif
}

static napi_value Init(napi_env env, napi_value exports) {
  tuneMalloc();
  quietNnpack();
  auto& list = arc::exportsList();
  std::vector<napi_property_descriptor> props;
  props.reserve(list.size());
  for (auto& e : list) props.push_back({e.name, nullptr, e.fn, nullptr, nullptr, nullptr, napi_enumerable, nullptr});
  napi_define_properties(env, exports, props.size(), props.data());
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
// Frees a batch of handles in one call (scope exits free many tensors at once).
OP(disposeMany,
   bool isArr = false;
   napi_is_array(a.env, a.argv[0], &isArr);
   if (!isArr) a.bad(0, "an array of handles");
   uint32_t n;
   napi_get_array_length(a.env, a.argv[0], &n);
   int64_t freed = 0;
   for (uint32_t k = 0; k < n; ++k) {
     napi_value el;
     double h;
     napi_get_element(a.env, a.argv[0], k, &el);
     if (napi_get_value_double(a.env, el, &h) == napi_ok && arc::release(h)) ++freed;
   }
   return freed;)
