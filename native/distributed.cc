// torch.distributed over LibTorch's own c10d: a TCPStore rendezvous and a ProcessGroupGloo (CPU
// tensors) or, in CUDA builds, a ProcessGroupNCCL (tensors on the rank's GPU), driven from JS with
// blocking collectives. No communication code of our own: bucketing of
// many tensors into a few flat buffers is the only thing done here besides calling c10d.
//
// Differences between the LibTorch versions handled here:
//   - 1.13: ProcessGroupGloo derives from c10d::ProcessGroup, its Work is c10d::ProcessGroup::Work;
//     2.x: it derives from c10d::Backend and Work is c10d::Work. Both are used through the concrete
//     class and `auto`, so neither name is spelled.
//   - 2.x's createDefaultDevice / createDeviceForHostname take an extra `lazyInit` argument with a
//     default; called with the common arguments only.
// Gloo's own headers (gloo/*.h, Debian's libgloo-dev) are needed to include ProcessGroupGloo.hpp;
// pip's and the download's LibTorch do not ship them. Without them (ARC_WITH_GLOO unset by CMake) the
// functions exist and say what to install.
//
// Every Work is waited with the group's timeout: a timeout, or a peer that died (Gloo sees its socket
// close), becomes a c10::Error and so a JS TorchError; nothing here waits without a bound. (NCCL's
// collectives run on the GPU: its watchdog aborts one that outlives the timeout, as in PyTorch.)
#include "common.h"

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>

#ifdef ARC_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef ARC_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <torch/cuda.h>
#endif

using arc::Args;

namespace {

// NCCL: CUDA builds whose LibTorch has ProcessGroupNCCL and whose nccl.h was found (CMakeLists.txt).
#ifdef ARC_WITH_NCCL
constexpr bool kHaveNccl = true;
#else
constexpr bool kHaveNccl = false;
#endif

[[noreturn]] void noGloo() {
  throw arc::ArgError(
      "this addon was built without Gloo's headers, so it has no torch.distributed: install them "
      "(Debian/Ubuntu: apt-get install libgloo-dev) and rebuild (npm run build:native)");
}

#ifdef ARC_WITH_GLOO
constexpr bool kHaveGloo = true;

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;  // the gloo backend, or
#ifdef ARC_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // the nccl one
#endif
  int rank = 0;
  int size = 1;
  int device = -1;  // nccl: this rank's CUDA device; gloo: -1 (CPU tensors)
  std::chrono::milliseconds timeout{0};
};

// Calls fn with the group's backend (both have the same collective methods; neither's base class is
// spelled, as it differs between LibTorch versions).
template <class F>
void withBackend(Group& g, F&& fn) {
#ifdef ARC_WITH_NCCL
  if (g.nccl) return fn(g.nccl);
#endif
  fn(g.pg);
}

// The device a group's tensors live on.
at::Device commDevice(const Group& g) {
  return g.device < 0 ? at::Device(at::kCPU) : at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(g.device));
}
// Heap-held and never destroyed at exit: Gloo's threads and the store's server thread may still run
// when the process ends, and tearing them down from a static destructor can hang.
Group* gGroup = nullptr;

Group& group() {
  if (!gGroup)
    throw arc::ArgError("the process group is not initialized (call torch.distributed.initProcessGroup() first)");
  return *gGroup;
}

bool isLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// Waits for one collective with the group's timeout. Work::wait throws on a timeout ("Operation timed
// out!") and rethrows the collective's own error (a closed connection, a Gloo timeout).
template <class W>
void waitFor(W& work, const Group& g) {
  try {
    work->wait(g.timeout);
#ifdef ARC_WITH_NCCL
    // NCCL's wait orders the current stream after the collective; these calls block until it is done.
    if (g.device >= 0) torch::cuda::synchronize(g.device);
#endif
  } catch (const c10::Error& e) {
    throw std::runtime_error("failed on rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + " (timeout " +
                             std::to_string(g.timeout.count()) + " ms; a peer that died, left or stalled ends a collective): " +
                             arc::firstLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw std::runtime_error("failed on rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + " (timeout " +
                             std::to_string(g.timeout.count()) + " ms; a peer that died, left or stalled ends a collective): " +
                             arc::firstLine(e.what()));
  }
}

// Gloo (1.13) has no bfloat16 kernels, and a float16 sum over many ranks loses precision: both travel
// as float32 and are cast back (exact for a broadcast or gather, a float32 reduction otherwise).
at::ScalarType wireType(at::ScalarType t) {
  return (t == at::kBFloat16 || t == at::kHalf) ? at::kFloat : t;
}

void checkDevice(const Group& g, const std::vector<at::Tensor>& ts) {
  const auto want = commDevice(g);
  for (size_t i = 0; i < ts.size(); ++i) {
    if (!ts[i].defined()) throw arc::ArgError("tensor " + std::to_string(i) + " is undefined");
    if (ts[i].device() != want)
      throw arc::ArgError(std::string(g.device < 0 ? "the gloo backend takes CPU tensors" : "the nccl backend takes tensors on this rank's GPU, ") +
                          (g.device < 0 ? "" : want.str()) + "; tensor " + std::to_string(i) + " is on " + ts[i].device().str());
  }
}

// Calls fn(flat) once per bucket: tensors of one dtype (in order of first appearance), flattened into
// buffers of at most bucketBytes (a tensor larger than that has its own), then copies flat back into
// the tensors. fn works in place on a contiguous 1-d tensor of the wire type.
template <class F>
void forEachBucket(const Group& g, const std::vector<at::Tensor>& tensors, int64_t bucketBytes, F&& fn) {
  checkDevice(g, tensors);
  if (bucketBytes < 1) throw arc::ArgError("bucketBytes must be positive");
  at::NoGradGuard noGrad;
  std::vector<at::ScalarType> order;
  std::map<at::ScalarType, std::vector<at::Tensor>> byType;
  for (const auto& t : tensors) {
    auto st = t.scalar_type();
    if (!byType.count(st)) order.push_back(st);
    byType[st].push_back(t);
  }
  for (auto st : order) {
    const auto& ts = byType[st];
    const int64_t elem = static_cast<int64_t>(c10::elementSize(st));
    size_t i = 0;
    while (i < ts.size()) {
      size_t j = i;
      int64_t bytes = 0;
      while (j < ts.size() && (j == i || bytes + ts[j].numel() * elem <= bucketBytes)) bytes += ts[j++].numel() * elem;
      // One contiguous tensor already of the wire type is reduced in place, without copies.
      if (j == i + 1 && ts[i].is_contiguous() && wireType(st) == st) {
        auto flat = ts[i].view({-1});
        fn(flat);
      } else {
        std::vector<at::Tensor> parts;
        for (size_t k = i; k < j; ++k) parts.push_back(ts[k].reshape({-1}));
        auto flat = at::cat(parts).to(wireType(st)).contiguous();
        fn(flat);
        int64_t off = 0;
        for (size_t k = i; k < j; ++k) {
          auto n = ts[k].numel();
          ts[k].copy_(flat.narrow(0, off, n).view(ts[k].sizes()));
          off += n;
        }
      }
      i = j;
    }
  }
}

c10d::ReduceOp reduceOp(const std::string& op) {
  if (op == "sum" || op == "avg") return c10d::ReduceOp::SUM;
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  throw arc::ArgError("op must be \"sum\", \"avg\", \"max\" or \"min\", not \"" + op + "\"");
}

// 2.x's TCPStore serves through libuv by default (TCPStoreOptions::useLibUV). Under Bun the uv_*
// symbols resolve to Bun's own partial libuv (exported for Node-API addons) rather than the one inside
// libtorch, and Bun aborts the process ("unsupported uv function: uv_loop_init"). The classic socket
// backend works everywhere; releases without the option (1.13) have only that one.
template <class O>
auto classicStore(O& o, int) -> decltype(o.useLibUV = false, void()) {
  o.useLibUV = false;
}
template <class O>
void classicStore(O&, long) {}

// agentStore: torchrun's agent already serves a TCPStore at addr:port (TORCHELASTIC_USE_AGENT_STORE),
// so every rank, rank 0 included, is a client of it, under `prefix` (PyTorch's "/worker/attempt_N", so
// a restarted attempt does not read the keys of an earlier one).
void init(const std::string& backend, int64_t rank, int64_t size, const std::string& addr, int64_t port, int64_t timeoutMs,
          bool agentStore, const std::string& prefix, int64_t device) {
  if (backend == "nccl" && !kHaveNccl) throw arc::ArgError("backend \"nccl\": this build has no NCCL (use \"gloo\")");
  if (backend != "gloo" && backend != "nccl") throw arc::ArgError("backend must be \"gloo\" or \"nccl\", not \"" + backend + "\"");
#ifdef ARC_WITH_NCCL
  if (backend == "nccl" && (device < 0 || device >= static_cast<int64_t>(torch::cuda::device_count())))
    throw arc::ArgError("backend \"nccl\": device " + std::to_string(device) + " is not one of this machine's " +
                        std::to_string(torch::cuda::device_count()) + " GPU(s)");
#endif
  if (gGroup) throw arc::ArgError("the process group is already initialized (destroyProcessGroup() first)");
  if (size < 1) throw arc::ArgError("worldSize must be at least 1, not " + std::to_string(size));
  if (rank < 0 || rank >= size)
    throw arc::ArgError("rank " + std::to_string(rank) + " is outside [0, " + std::to_string(size) + ")");
  if (port < 1 || port > 65535) throw arc::ArgError("port " + std::to_string(port) + " is outside 1..65535");
  if (timeoutMs < 1) throw arc::ArgError("timeoutMs must be positive");

  auto g = std::make_unique<Group>();
  g->rank = static_cast<int>(rank);
  g->size = static_cast<int>(size);
  g->timeout = std::chrono::milliseconds(timeoutMs);

  // Rendezvous: rank 0 serves the store and waits for every worker to connect; the others connect
  // (retrying until the timeout).
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(port);
  so.isServer = rank == 0 && !agentStore;
  so.numWorkers = static_cast<std::size_t>(size);
  so.waitWorkers = !agentStore;
  so.timeout = g->timeout;
  classicStore(so, 0);
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(addr, so);
  if (!prefix.empty()) store = c10::make_intrusive<c10d::PrefixStore>(prefix, store);
  g->store = store;

#ifdef ARC_WITH_NCCL
  if (backend == "nccl") {
    g->device = static_cast<int>(device);
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    auto nopts = c10d::ProcessGroupNCCL::Options::create();
    nopts->timeout = g->timeout;
    g->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, g->rank, g->size, nopts);
    gGroup = g.release();
    return;
  }
#endif
  auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout);
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");  // PyTorch's variable: bind to this interface
  if (ifname && *ifname)
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (isLoopback(addr))
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, g->rank, g->size, opts);
  gGroup = g.release();
}

void destroy() {
  delete gGroup;
  gGroup = nullptr;
}

void allReduce(std::vector<at::Tensor> tensors, const std::string& op, int64_t bucketBytes) {
  auto& g = group();
  c10d::AllreduceOptions o;
  o.reduceOp = reduceOp(op);
  o.timeout = g.timeout;
  forEachBucket(g, tensors, bucketBytes, [&](at::Tensor& flat) {
    std::vector<at::Tensor> v{flat};
    withBackend(g, [&](auto& pg) {
      auto work = pg->allreduce(v, o);
      waitFor(work, g);
    });
    // Gloo has no AVG (1.13): a sum divided by the world size; integers divide with floor, like //.
    if (op == "avg") {
      if (at::isFloatingType(flat.scalar_type())) flat.div_(g.size);
      else flat.div_(g.size, "floor");
    }
  });
}

void broadcast(std::vector<at::Tensor> tensors, int64_t src, int64_t bucketBytes) {
  auto& g = group();
  if (src < 0 || src >= g.size)
    throw arc::ArgError("src " + std::to_string(src) + " is outside [0, " + std::to_string(g.size) + ")");
  c10d::BroadcastOptions o;
  o.rootRank = src;
  o.rootTensor = 0;
  o.timeout = g.timeout;
  forEachBucket(g, tensors, bucketBytes, [&](at::Tensor& flat) {
    std::vector<at::Tensor> v{flat};
    withBackend(g, [&](auto& pg) {
      auto work = pg->broadcast(v, o);
      waitFor(work, g);
    });
  });
}

void barrier() {
  auto& g = group();
  c10d::BarrierOptions o;
  o.timeout = g.timeout;
#ifdef ARC_WITH_NCCL
  if (g.device >= 0) o.device_ids = {g.device};  // NCCL's barrier is an all-reduce on this device
#endif
  withBackend(g, [&](auto& pg) {
    auto work = pg->barrier(o);
    waitFor(work, g);
  });
}

std::vector<at::Tensor> rawAllGather(Group& g, const at::Tensor& t) {
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < g.size; ++r) out[0].push_back(at::empty_like(t, at::MemoryFormat::Contiguous));
  std::vector<at::Tensor> in{t};
  c10d::AllgatherOptions o;
  o.timeout = g.timeout;
  withBackend(g, [&](auto& pg) {
    auto work = pg->allgather(out, in, o);
    waitFor(work, g);
  });
  return out[0];
}

std::string describe(const int64_t* meta) {
  std::string s = "[";
  for (int64_t d = 0; d < meta[0]; ++d) s += (d ? ", " : "") + std::to_string(meta[2 + d]);
  return s + "] " + c10::toString(static_cast<at::ScalarType>(meta[1]));
}

// One tensor per rank. Shapes and dtypes are gathered first so that a mismatch is an error on every
// rank (Gloo itself would misread the buffers or wait for bytes that never come).
std::vector<at::Tensor> allGather(const at::Tensor& t) {
  auto& g = group();
  checkDevice(g, {t});
  constexpr int64_t kMaxDims = 16;
  if (t.dim() > kMaxDims) throw arc::ArgError("at most 16 dimensions");
  auto meta = at::full({2 + kMaxDims}, -1, at::kLong);
  auto m = meta.data_ptr<int64_t>();
  m[0] = t.dim();
  m[1] = static_cast<int64_t>(t.scalar_type());
  for (int64_t d = 0; d < t.dim(); ++d) m[2 + d] = t.size(d);
  auto metas = rawAllGather(g, meta.to(commDevice(g)));
  for (int r = 0; r < g.size; ++r) {
    metas[r] = metas[r].cpu();
    auto mr = metas[r].data_ptr<int64_t>();
    if (!std::equal(m, m + 2 + kMaxDims, mr))
      throw arc::ArgError("every rank must pass the same shape and dtype; rank " + std::to_string(g.rank) + " has " +
                          describe(m) + ", rank " + std::to_string(r) + " has " + describe(mr));
  }
  at::NoGradGuard noGrad;
  auto wire = t.detach().to(wireType(t.scalar_type())).contiguous();
  auto parts = rawAllGather(g, wire);
  if (wire.scalar_type() != t.scalar_type())
    for (auto& p : parts) p = p.to(t.scalar_type());
  return parts;
}

#else
constexpr bool kHaveGloo = false;
struct Group {
  int rank = 0;
  int size = 1;
};
Group* gGroup = nullptr;  // never set: without Gloo there is no group
void init(const std::string& backend, int64_t, int64_t, const std::string&, int64_t, int64_t, bool, const std::string&, int64_t) {
  if (backend == "nccl") throw arc::ArgError("backend \"nccl\": this build has no NCCL (use \"gloo\")");
  noGloo();
}
void destroy() {}
void allReduce(std::vector<at::Tensor>, const std::string&, int64_t) { noGloo(); }
void broadcast(std::vector<at::Tensor>, int64_t, int64_t) { noGloo(); }
void barrier() { noGloo(); }
std::vector<at::Tensor> allGather(const at::Tensor&) { noGloo(); }
#endif

bool initialized() { return gGroup != nullptr; }
int64_t rankOf() { return gGroup ? gGroup->rank : -1; }
int64_t sizeOf() { return gGroup ? gGroup->size : -1; }

}  // namespace

// distInit(backend, rank, worldSize, masterAddr, masterPort, timeoutMs, agentStore, prefix, device): blocks until
// every rank joined. device: the CUDA device of an nccl group (-1 for gloo).
OP(distInit, init(a.str(0), a.i64(1), a.i64(2), a.str(3), a.i64(4), a.i64(5), a.b(6), a.str(7), a.i64(8));)
OP(distDestroy, destroy();)
OP(distIsInitialized, return initialized();)
OP(distRank, return rankOf();)
OP(distWorldSize, return sizeOf();)
// [gloo, nccl]: which backends this build has.
OP(distBackends, return std::vector<int64_t>{kHaveGloo ? 1 : 0, kHaveNccl ? 1 : 0};)
OP(distAllReduce, allReduce(a.tensors(0), a.str(1), a.i64(2));)
OP(distBroadcast, broadcast(a.tensors(0), a.i64(1), a.i64(2));)
OP(distBarrier, barrier();)
OP(distAllGather, return allGather(a.t(0));)
