// Shared machinery of the addon: the tensor handle table, argument decoding from JS values, result
// encoding, and the OP() macro that turns one C++ expression into a Node-API function that never lets a
// C++ exception escape (every failure becomes a JS TorchError).
//
// Tensors cross into JS as handles: plain numbers `slot + generation * 2^24`. A number is far cheaper to
// create and pass than a wrapped object; the generation makes a stale handle (after dispose) an error
// instead of a silent alias of whatever tensor reuses the slot.
#pragma once
#include <node_api.h>
#include "compat.h"

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace arc {

// ---- handle table -------------------------------------------------------------------------------
struct Slot {
  at::Tensor t;
  uint32_t gen = 0;
  bool used = false;
};
struct HandleTable {
  std::vector<Slot> slots;
  std::vector<uint32_t> freeList;
  size_t live = 0;
};
HandleTable& handles();

constexpr double kGenScale = 16777216.0;  // 2^24 slots
double put(at::Tensor t);                 // new handle (the table owns one reference)
at::Tensor& get(double h, const char* op, size_t argIndex);
bool release(double h);                   // false when the handle was already released

// ---- errors -------------------------------------------------------------------------------------
// Thrown for bad arguments from JS; reported like LibTorch's own errors.
struct ArgError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
void throwTorchError(napi_env env, const std::string& msg);
void setErrorClass(napi_env env, napi_value ctor);
std::string firstLine(const char* what);

// ---- host reads ---------------------------------------------------------------------------------
// Every native call that reads tensor data to the host (item, toTypedArray, equal, a norm returned as a
// number, a safetensors save) counts one: on CUDA each is a device synchronisation, so their number per
// training step is what keeps a GPU busy or idle. JS reads it with syncCount().
void countHostRead();

// ---- native calls -------------------------------------------------------------------------------
// Every call from JS into the addon counts one (invoke below): on a GPU each is a few microseconds of
// host time that must stay below the kernels it launches, so a decode step's count is a figure the
// benchmarks report. JS reads it with nativeCallCount().
extern uint64_t nativeCalls;

// ---- argument decoding --------------------------------------------------------------------------
struct Args {
  napi_env env;
  const char* op;
  size_t argc = 12;
  napi_value argv[12];

  Args(napi_env e, napi_callback_info info, const char* name);
  bool has(size_t i) const;  // present and neither undefined nor null
  [[noreturn]] void bad(size_t i, const char* expected) const;

  // A tensor argument is a handle or an object carrying one in `_h` (a JS Tensor, for arguments that
  // may also be a number: a number is never a handle there).
  at::Tensor& t(size_t i) const;
  bool isScalar(size_t i) const;  // a JS number or boolean
  c10::optional<at::Tensor> ot(size_t i) const;
  double d(size_t i) const;
  double d(size_t i, double dflt) const { return has(i) ? d(i) : dflt; }
  c10::optional<double> od(size_t i) const;
  int64_t i64(size_t i) const;
  int64_t i64(size_t i, int64_t dflt) const { return has(i) ? i64(i) : dflt; }
  c10::optional<int64_t> oi(size_t i) const;
  bool b(size_t i) const;
  bool b(size_t i, bool dflt) const { return has(i) ? b(i) : dflt; }
  at::Scalar s(size_t i) const;
  c10::optional<at::Scalar> os(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  std::vector<double> doubles(size_t i) const;
  std::vector<at::Tensor> tensors(size_t i) const;
  c10::List<c10::optional<at::Tensor>> optTensors(size_t i) const;
  std::string str(size_t i) const;
  at::ScalarType dtype(size_t i) const;
  c10::optional<at::ScalarType> odtype(size_t i) const;
  at::Device device(size_t i) const;  // -1 = cpu, k >= 0 = cuda:k
  at::TensorOptions opts(size_t dtypeIdx, size_t deviceIdx) const;
};

// A JS number as a Scalar: integer-valued numbers are integer scalars, so int tensors stay int (as
// Python ints do).
at::Scalar jsScalar(double v);

// ---- result encoding ----------------------------------------------------------------------------
napi_value undefined(napi_env env);
napi_value toJs(napi_env env, const at::Tensor& t);  // undefined tensor -> null
napi_value toJs(napi_env env, double v);
napi_value toJs(napi_env env, bool v);
napi_value toJs(napi_env env, int64_t v);
napi_value toJs(napi_env env, const std::string& v);
napi_value toJs(napi_env env, const std::vector<at::Tensor>& v);
napi_value toJs(napi_env env, const std::vector<int64_t>& v);
napi_value toJs(napi_env env, napi_value v);
napi_value toJs(napi_env env, const std::tuple<at::Tensor, at::Tensor>& v);

template <class F>
napi_value invoke(napi_env env, napi_callback_info info, const char* name, F&& f) {
  ++nativeCalls;
  try {
    Args a(env, info, name);
    if constexpr (std::is_void_v<decltype(f(a))>) {
      f(a);
      return undefined(env);
    } else {
      return toJs(env, f(a));
    }
  } catch (const c10::Error& e) {
    throwTorchError(env, std::string(name) + ": " + firstLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throwTorchError(env, std::string(name) + ": " + firstLine(e.what()));
  } catch (...) {
    throwTorchError(env, std::string(name) + ": unknown native error");
  }
  return nullptr;
}

// ---- registration -------------------------------------------------------------------------------
struct Registrar {
  Registrar(const char* name, napi_callback fn);
};
struct Export {
  const char* name;
  napi_callback fn;
};
std::vector<Export>& exportsList();

}  // namespace arc

// OP(name, statements...): defines and registers native function `name`; `a` is the Args.
#define OP(name, ...)                                                                        \
  static napi_value arc_op_##name(napi_env env, napi_callback_info info) {                  \
    return arc::invoke(env, info, #name, [&](arc::Args& a) { __VA_ARGS__ });                \
  }                                                                                          \
  static arc::Registrar arc_reg_##name(#name, arc_op_##name);
