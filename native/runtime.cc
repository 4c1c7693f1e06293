// Process-wide state: RNG, autocast, threads, CUDA queries, version.
#include "common.h"

#include <torch/cuda.h>
#include <torch/utils.h>

#ifdef ARC_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

using arc::Args;

namespace {
c10::DeviceType autocastDevice(const Args& a, size_t i) {
  auto s = a.str(i);
  if (s == "cpu") return c10::DeviceType::CPU;
  if (s == "cuda") return c10::DeviceType::CUDA;
  throw arc::ArgError("autocast device must be \"cpu\" or \"cuda\", not \"" + s + "\"");
}
at::Generator generatorFor(const Args& a, size_t i) {
  auto dev = a.device(i);
  return at::globalContext().defaultGenerator(dev);
}

#ifdef ARC_WITH_CUDA
constexpr bool kWithCuda = true;
std::vector<int64_t> cudaStats(int64_t device) {
  if (!torch::cuda::is_available()) return {0, 0, 0, 0};
  auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  constexpr size_t kAll = 0;  // StatType::AGGREGATE
  return {st.allocated_bytes[kAll].current, st.reserved_bytes[kAll].current, st.allocated_bytes[kAll].peak,
          st.reserved_bytes[kAll].peak};
}
void cudaResetPeak(int64_t device) {
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
}
void cudaEmptyCache() {
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::emptyCache();
}
std::vector<int64_t> cudaMemInfo(int64_t device) {
  if (!torch::cuda::is_available()) return {0, 0};
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  size_t free = 0, total = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return {static_cast<int64_t>(free), static_cast<int64_t>(total)};
}
#else
constexpr bool kWithCuda = false;
std::vector<int64_t> cudaStats(int64_t) { return {0, 0, 0, 0}; }
void cudaResetPeak(int64_t) {}
void cudaEmptyCache() {}
std::vector<int64_t> cudaMemInfo(int64_t) { return {0, 0}; }
#endif
}  // namespace

// ---- RNG ------------------------------------------------------------------------------------------
OP(manualSeed, torch::manual_seed(static_cast<uint64_t>(a.i64(0)));)
OP(getRngState, auto g = generatorFor(a, 0); std::lock_guard<std::mutex> lock(g.mutex()); return g.get_state();)
OP(setRngState, auto g = generatorFor(a, 0); std::lock_guard<std::mutex> lock(g.mutex()); g.set_state(a.t(1));)

// ---- autocast -------------------------------------------------------------------------------------
// The JS side keeps the scope discipline (enter, run, restore, clear the cache at the outermost exit).
OP(autocastEnabled, return compat::autocastEnabled(autocastDevice(a, 0));)
OP(autocastDtype, return static_cast<int64_t>(compat::autocastDtype(autocastDevice(a, 0)));)
OP(setAutocast, auto dev = autocastDevice(a, 0); compat::setAutocastEnabled(dev, a.b(1));
   if (a.has(2)) compat::setAutocastDtype(dev, a.dtype(2));)
OP(autocastIncrementNesting, return static_cast<int64_t>(at::autocast::increment_nesting());)
OP(autocastDecrementNesting, return static_cast<int64_t>(at::autocast::decrement_nesting());)
OP(autocastClearCache, at::autocast::clear_cache();)

// ---- threads and version --------------------------------------------------------------------------
OP(setNumThreads, at::set_num_threads(static_cast<int>(a.i64(0)));)
OP(getNumThreads, return static_cast<int64_t>(at::get_num_threads());)
OP(version, return std::string(TORCH_VERSION);)
OP(builtWithCuda, return kWithCuda;)

// ---- CUDA -----------------------------------------------------------------------------------------
OP(cudaIsAvailable, return torch::cuda::is_available();)
OP(cudaDeviceCount, return static_cast<int64_t>(torch::cuda::device_count());)
OP(cudaSynchronize, if (torch::cuda::is_available()) torch::cuda::synchronize(a.i64(0, -1));)
// [allocated, reserved, peakAllocated, peakReserved] bytes on one device; zeros without CUDA.
OP(cudaMemoryStats, return cudaStats(a.i64(0, 0));)
OP(cudaResetPeakMemoryStats, cudaResetPeak(a.i64(0, 0));)
OP(cudaEmptyCache, cudaEmptyCache();)
// [free, total] bytes of one device as the driver reports them (cudaMemGetInfo); zeros without CUDA.
OP(cudaMemInfo, return cudaMemInfo(a.i64(0, 0));)
