// CUDA graphs: capture a sequence of ops queued from JS once, then replay it with one launch. A decode
// step of Qwen2.5-1.5B is ~3,000 small kernels whose launches (each a native call from JS, then a CUDA
// launch) cost several times the GPU work; replayed as one graph they cost one call.
//
// The protocol (src/torch/cuda.ts, CUDAGraph, drives it):
//   id = cudaGraphBegin(device)   the device's current stream becomes a side stream (capture needs a
//                                 non-default stream) that first waits for the work queued before it;
//                                 autocast's weight-cast cache is switched off (a cast cached before the
//                                 capture would be read by every replay long after its tensor was freed)
//   ... a warm-up run of the ops, eager, on that stream (lazy initialisations happen outside the capture)
//   cudaGraphCaptureStart(id)     begin capturing (thread-local mode: other threads, e.g. NCCL's watchdog,
//                                 may keep using CUDA)
//   ... the ops, recorded, not run (nothing may read back to the host)
//   cudaGraphEnd(id)              end the capture, restore the stream and the cache setting
//   cudaGraphReplay(id)           run it on the current stream; cudaGraphFree(id) releases it
// A replay reads the tensors the capture saw, at their addresses: inputs are updated in place, outputs
// are overwritten. Every graph has its own memory pool, released with the graph.
#include "common.h"

#include <memory>
#include <unordered_map>

#if defined(ARC_WITH_CUDA) && ARC_TORCH_AT_LEAST(2, 1)
#define ARC_GRAPHS 1
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>
#endif

namespace {
#ifdef ARC_GRAPHS
struct GraphSlot {
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  c10::DeviceIndex device = 0;
  c10::optional<c10::cuda::CUDAStream> previous;
  c10::optional<c10::cuda::CUDAStream> side;
  bool cacheWas = true;
  bool open = false;       // between cudaGraphBegin and cudaGraphEnd (side stream current)
  bool capturing = false;  // between cudaGraphCaptureStart and cudaGraphEnd
  bool ready = false;      // captured: can replay
};
std::unordered_map<int64_t, GraphSlot>& table() {
  static std::unordered_map<int64_t, GraphSlot> t;
  return t;
}
int64_t nextId = 1;
GraphSlot& slot(int64_t id) {
  auto it = table().find(id);
  if (it == table().end()) throw arc::ArgError("no CUDA graph " + std::to_string(id) + " (freed, or never begun)");
  return it->second;
}
// Back to the stream that was current before cudaGraphBegin, after everything queued on the side stream.
void close(GraphSlot& s) {
  if (!s.open) return;
  at::cuda::CUDAEvent done;
  done.record(*s.side);
  done.block(*s.previous);
  c10::cuda::setCurrentCUDAStream(*s.previous);
  at::autocast::set_autocast_cache_enabled(s.cacheWas);
  s.open = false;
}
#endif
[[noreturn]] void unsupported() {
  throw std::runtime_error("CUDA graphs need a CUDA build of the addon against LibTorch >= 2.1");
}
}  // namespace

#ifdef ARC_GRAPHS
OP(cudaGraphsSupported, return torch::cuda::is_available();)
OP(cudaGraphBegin,
   auto dev = static_cast<c10::DeviceIndex>(a.i64(0));
   for (auto& [id, s] : table())
     if (s.open) throw std::runtime_error("cudaGraphBegin: graph " + std::to_string(id) + " is still open (one capture at a time)");
   c10::cuda::set_device(dev);
   GraphSlot s;
   s.device = dev;
   s.graph = std::make_unique<at::cuda::CUDAGraph>();
   s.previous = c10::cuda::getCurrentCUDAStream(dev);
   s.side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, dev);
   at::cuda::CUDAEvent before;
   before.record(*s.previous);
   before.block(*s.side);
   c10::cuda::setCurrentCUDAStream(*s.side);
   s.cacheWas = at::autocast::is_autocast_cache_enabled();
   at::autocast::set_autocast_cache_enabled(false);
   s.open = true;
   const int64_t id = nextId++;
   table().emplace(id, std::move(s));
   return id;)
OP(cudaGraphCaptureStart,
   auto& s = slot(a.i64(0));
   if (!s.open || s.capturing || s.ready) throw std::runtime_error("cudaGraphCaptureStart: the graph is not open for capture");
   s.graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
   s.capturing = true;)
OP(cudaGraphEnd,
   const int64_t id = a.i64(0);
   auto& s = slot(id);
   try {
     if (s.capturing) {
       s.capturing = false;
       s.graph->capture_end();
       s.ready = true;
     }
     close(s);
   } catch (...) {
     close(s);
     table().erase(id);
     throw;
   })
OP(cudaGraphAbort,
   const int64_t id = a.i64(0);
   auto it = table().find(id);
   if (it == table().end()) return;
   auto& s = it->second;
   if (s.capturing) {
     s.capturing = false;
     try { s.graph->capture_end(); } catch (...) {}  // an invalidated capture ends with an error: expected here
   }
   try { close(s); } catch (...) {}
   table().erase(it);)
OP(cudaGraphReplay,
   auto& s = slot(a.i64(0));
   if (!s.ready) throw std::runtime_error("cudaGraphReplay: the graph was not captured");
   s.graph->replay();)
OP(cudaGraphFree, table().erase(a.i64(0));)
#else
OP(cudaGraphsSupported, return false;)
OP(cudaGraphBegin, (void)a; unsupported();)
OP(cudaGraphCaptureStart, (void)a; unsupported();)
OP(cudaGraphEnd, (void)a; unsupported();)
OP(cudaGraphAbort, (void)a;)
OP(cudaGraphReplay, (void)a; unsupported();)
OP(cudaGraphFree, (void)a;)
#endif
