// Training kernels that loop over many parameters in one native call: gradient clipping, the Adam/AdamW
// update, and GradScaler's unscale/update. One call per parameter group keeps JS overhead out of the
// optimizer step.
#include "common.h"

#include <cmath>
#include <map>
#include <string>
#include <tuple>

using arc::Args;

namespace {

std::vector<at::Tensor> gradsOf(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> gs;
  gs.reserve(params.size());
  for (auto& p : params)
    if (p.grad().defined()) gs.push_back(p.grad());
  return gs;
}

// Tensors split by (device, dtype), in first-seen order: the multi-tensor kernels take one of each per
// call (as torch.optim groups them).
struct Key {
  int type, index, dtype;
  bool operator<(const Key& o) const { return std::tie(type, index, dtype) < std::tie(o.type, o.index, o.dtype); }
};
Key keyOf(const at::Tensor& t) {
  return {static_cast<int>(t.device().type()), static_cast<int>(t.device().index()), static_cast<int>(t.scalar_type())};
}
std::vector<std::vector<at::Tensor>> byDeviceAndDtype(const std::vector<at::Tensor>& ts) {
  std::map<Key, size_t> where;
  std::vector<std::vector<at::Tensor>> groups;
  for (auto& t : ts) {
    auto [it, fresh] = where.emplace(keyOf(t), groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(t);
  }
  return groups;
}

// The parameters of one (device, dtype) that have a gradient, with their state and step counts.
struct AdamBucket {
  std::vector<at::Tensor> p, g, m, v;
  std::vector<double> steps;
};
struct AdamHyper {
  double lr, b1, b2, eps, wd;
  bool decoupled;
};

enum class AdamKernel { Fused, Foreach, Loop };
const char* kernelName(AdamKernel k) {
  return k == AdamKernel::Fused ? "fused" : k == AdamKernel::Foreach ? "foreach" : "loop";
}
// Without a fused kernel, as torch.optim chooses: _foreach_* on CUDA, where one launch per op instead of
// one per tensor is the gain; the loop on the CPU, where _foreach_* is itself a loop with more passes
// (mul + add for lerp, a list of denominators) and measured slower (1.13, 1000 tensors: 31-40 ms a step
// against 24-25 ms).
AdamKernel unfusedKernel(c10::DeviceType dev) {
  return dev == c10::DeviceType::CUDA ? AdamKernel::Foreach : AdamKernel::Loop;
}
AdamKernel bestKernel(c10::DeviceType dev) {
  return compat::hasFusedAdam(dev) ? AdamKernel::Fused : unfusedKernel(dev);
}

// PyTorch's single-tensor Adam/AdamW, one parameter at a time: the reference the others must match.
void adamLoop(AdamBucket& b, const AdamHyper& h) {
  for (size_t i = 0; i < b.p.size(); ++i) {
    auto& p = b.p[i];
    auto g = b.g[i];
    if (h.wd != 0) {
      if (h.decoupled) p.mul_(1 - h.lr * h.wd);
      else g = g.add(p, h.wd);
    }
    b.m[i].lerp_(g, 1 - h.b1);
    b.v[i].mul_(h.b2).addcmul_(g, g, 1 - h.b2);
    double bc1 = 1 - std::pow(h.b1, b.steps[i]);
    double bc2 = 1 - std::pow(h.b2, b.steps[i]);
    auto denom = (b.v[i].sqrt() / std::sqrt(bc2)).add_(h.eps);
    p.addcdiv_(b.m[i], denom, -h.lr / bc1);
  }
}

// The same update as a few _foreach_* calls (torch.optim's multi-tensor Adam); the bias corrections are
// per parameter because step counts are.
void adamForeach(AdamBucket& b, const AdamHyper& h) {
  auto g = b.g;
  if (h.wd != 0) {
    if (h.decoupled) at::_foreach_mul_(b.p, 1 - h.lr * h.wd);
    else g = at::_foreach_add(b.g, b.p, h.wd);
  }
  at::_foreach_mul_(b.m, h.b1);
  at::_foreach_add_(b.m, g, 1 - h.b1);
  at::_foreach_mul_(b.v, h.b2);
  at::_foreach_addcmul_(b.v, g, g, 1 - h.b2);
  std::vector<at::Scalar> bc2Sqrt, negStepSize;
  for (double s : b.steps) {
    bc2Sqrt.emplace_back(std::sqrt(1 - std::pow(h.b2, s)));
    negStepSize.emplace_back(-h.lr / (1 - std::pow(h.b1, s)));
  }
  auto denom = at::_foreach_sqrt(b.v);
  at::_foreach_div_(denom, bc2Sqrt);
  at::_foreach_add_(denom, h.eps);
  at::_foreach_addcdiv_(b.p, b.m, denom, negStepSize);
}

// The fused kernels walk each tensor's memory as one flat run, so they want every tensor of a parameter
// contiguous (as parameters, their grads and their state almost always are); "auto" sends any other
// bucket to the unfused kernel, which takes any strides.
bool allContiguous(const AdamBucket& b) {
  for (size_t i = 0; i < b.p.size(); ++i)
    if (!b.p[i].is_contiguous() || !b.g[i].is_contiguous() || !b.m[i].is_contiguous() || !b.v[i].is_contiguous())
      return false;
  return true;
}

// One fused kernel call. Its step counts live on the device as float32 scalars; parameters that share a
// count share one scalar (usually all of them), so a step costs one small fill, not one per parameter.
void adamFused(AdamBucket& b, const AdamHyper& h) {
  std::map<double, at::Tensor> stepTensor;
  std::vector<at::Tensor> steps;
  steps.reserve(b.steps.size());
  auto opts = b.p[0].options().dtype(at::kFloat);
  for (double s : b.steps) {
    auto it = stepTensor.find(s);
    if (it == stepTensor.end()) it = stepTensor.emplace(s, at::full({}, s, opts)).first;
    steps.push_back(it->second);
  }
  compat::fusedAdam(h.decoupled, b.p, b.g, b.m, b.v, steps, h.lr, h.b1, h.b2, h.wd, h.eps);
}

}  // namespace

// clipGradNorm(params, maxNorm, normType=2) -> total norm (as torch.nn.utils.clip_grad_norm_):
// the norm of all gradients together; every gradient is scaled by min(1, maxNorm / (total + 1e-6)).
// One _foreach_norm per (device, dtype), the clip on the device, and one host read: the returned total.
OP(clipGradNorm,
   at::NoGradGuard ng;
   auto grads = gradsOf(a.tensors(0));
   double maxNorm = a.d(1);
   double normType = a.d(2, 2.0);
   if (grads.empty()) return 0.0;
   auto dev = grads[0].device();
   auto groups = byDeviceAndDtype(grads);
   std::vector<at::Tensor> norms;
   norms.reserve(grads.size());
   for (auto& group : groups)
     for (auto& n : at::_foreach_norm(group, normType)) norms.push_back(n.to(dev, at::kFloat));
   auto stacked = at::stack(norms);
   auto total = std::isinf(normType) ? stacked.max() : at::linalg_vector_norm(stacked, normType);
   if (!std::isinf(maxNorm)) {  // maxNorm = inf only measures (a NaN total must not reach the grads)
     auto coef = at::clamp_max(maxNorm / (total + 1e-6), 1.0);
     for (auto& group : groups) compat::foreachMulByTensor(group, coef.to(group[0].device(), group[0].scalar_type()));
   }
   arc::countHostRead();
   return total.item<double>();)

// adamStep(params, expAvg, expAvgSq, steps, lr, beta1, beta2, eps, weightDecay, decoupled, kernel="auto"):
// Adam/AdamW over one parameter group. `steps[i]` is the step count after this update (>= 1).
// decoupled=true is AdamW (param *= 1 - lr*wd); false is Adam's L2 term (grad += wd*param).
// Parameters without a gradient are skipped. kernel: "auto" (adamKernel's choice per device), or
// "fused" / "foreach" / "loop" to force one (tests compare them).
OP(adamStep,
   at::NoGradGuard ng;
   auto params = a.tensors(0);
   auto m = a.tensors(1);
   auto v = a.tensors(2);
   auto steps = a.doubles(3);
   AdamHyper h{a.d(4), a.d(5), a.d(6), a.d(7), a.d(8), a.b(9)};
   std::string kernel = a.has(10) ? a.str(10) : "auto";
   if (kernel != "auto" && kernel != "fused" && kernel != "foreach" && kernel != "loop")
     throw arc::ArgError("kernel must be \"auto\", \"fused\", \"foreach\" or \"loop\", not \"" + kernel + "\"");
   if (m.size() != params.size() || v.size() != params.size() || steps.size() != params.size())
     throw arc::ArgError("params, state and steps must have the same length");
   std::map<Key, AdamBucket> buckets;
   for (size_t i = 0; i < params.size(); ++i) {
     auto g = params[i].grad();
     if (!g.defined()) continue;
     auto& b = buckets[keyOf(params[i])];
     b.p.push_back(params[i]);
     b.g.push_back(g);
     b.m.push_back(m[i]);
     b.v.push_back(v[i]);
     b.steps.push_back(steps[i]);
   }
   for (auto& [key, b] : buckets) {
     auto dev = b.p[0].device().type();
     AdamKernel k = kernel == "auto" ? (bestKernel(dev) == AdamKernel::Fused && !allContiguous(b) ? unfusedKernel(dev) : bestKernel(dev))
                  : kernel == "fused" ? AdamKernel::Fused : kernel == "foreach" ? AdamKernel::Foreach : AdamKernel::Loop;
     if (k == AdamKernel::Fused && !compat::hasFusedAdam(dev))
       throw arc::ArgError("this LibTorch has no fused Adam kernel for " + c10::DeviceTypeName(dev, true));
     if (k == AdamKernel::Fused) adamFused(b, h);
     else if (k == AdamKernel::Foreach) adamForeach(b, h);
     else adamLoop(b, h);
   })

// adamKernel(device) -> "fused" | "foreach" | "loop": the kernel adamStep uses for parameters there.
OP(adamKernel, return std::string(kernelName(bestKernel(a.device(0).type())));)

// ampUnscale(params, foundInf, invScale): grads *= invScale; foundInf = 1 if any grad has inf/NaN.
// LibTorch's fused kernel on CUDA, and on the CPU from 2.3 (compat::kHasCpuAmpKernels); before that the
// CPU takes the same steps by hand.
OP(ampUnscale,
   at::NoGradGuard ng;
   auto grads = gradsOf(a.tensors(0));
   auto& foundInf = a.t(1);
   auto& invScale = a.t(2);
   if (grads.empty()) return;
   if (foundInf.is_cuda() || compat::kHasCpuAmpKernels) {
     // The kernel takes one device and one dtype per call (as torch.amp.GradScaler groups them).
     std::map<at::ScalarType, std::vector<at::Tensor>> byDtype;
     std::vector<at::Tensor> other;
     for (auto& g : grads) {
       if (g.device() == foundInf.device()) byDtype[g.scalar_type()].push_back(g);
       else other.push_back(g);
     }
     for (auto& [dtype, same] : byDtype) at::_amp_foreach_non_finite_check_and_unscale_(same, foundInf, invScale);
     for (auto& g : other) {
       foundInf.copy_(at::maximum(foundInf, (~at::isfinite(g).all()).to(foundInf.device(), at::kFloat)));
       g.mul_(invScale.to(g.device()));
     }
   } else {
     for (auto& g : grads) {
       auto bad = at::logical_not(at::isfinite(g)).any().to(foundInf.device(), foundInf.scalar_type());
       foundInf.copy_(at::maximum(foundInf, bad));
       g.mul_(invScale.to(g.device(), g.scalar_type() == at::kDouble ? at::kDouble : at::kFloat));
     }
   })

// ampUpdateScale(scale, growthTracker, foundInf, growthFactor, backoffFactor, growthInterval):
// torch.amp.GradScaler.update's rule, in place on the scale and growth-tracker tensors (LibTorch's kernel
// where it has one for the device, else by hand); no host read either way.
OP(ampUpdateScale,
   at::NoGradGuard ng;
   auto& scale = a.t(0);
   auto& tracker = a.t(1);
   auto& foundInf = a.t(2);
   double growth = a.d(3), backoff = a.d(4);
   int64_t interval = a.i64(5);
   if (scale.is_cuda() || compat::kHasCpuAmpKernels) {
     at::_amp_update_scale_(scale, tracker, foundInf, growth, backoff, interval);
     return;
   }
   // By hand, on the device: reading foundInf or the tracker here would be two host reads a step.
   auto found = foundInf.reshape({}).gt(0);
   auto next = tracker + 1;
   auto grow = next.eq(interval).logical_and(found.logical_not());
   scale.copy_(at::where(found, scale.mul(backoff), at::where(grow, scale.mul(growth), scale)));
   tracker.copy_(at::where(found.logical_or(grow), at::zeros_like(next), next));)
