// Training kernels that loop over many parameters in one native call: gradient clipping, the Adam/AdamW
// update, and GradScaler's unscale/update. One call per parameter group keeps JS overhead out of the
// optimizer step.
#include "common.h"

#include <cmath>
#include <map>

using arc::Args;

namespace {

std::vector<at::Tensor> gradsOf(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> gs;
  gs.reserve(params.size());
  for (auto& p : params)
    if (p.grad().defined()) gs.push_back(p.grad());
  return gs;
}

}  // namespace

// clipGradNorm(params, maxNorm, normType=2) -> total norm (as torch.nn.utils.clip_grad_norm_):
// the norm of all gradients together; every gradient is scaled by min(1, maxNorm / (total + 1e-6)).
OP(clipGradNorm,
   at::NoGradGuard ng;
   auto grads = gradsOf(a.tensors(0));
   double maxNorm = a.d(1);
   double normType = a.d(2, 2.0);
   if (grads.empty()) return 0.0;
   auto dev = grads[0].device();
   std::vector<at::Tensor> norms;
   norms.reserve(grads.size());
   bool inf = std::isinf(normType);
   for (auto& g : grads) {
     auto n = inf ? g.abs().max() : at::linalg_vector_norm(g, normType);
     norms.push_back(n.to(dev, at::kFloat));
   }
   auto stacked = at::stack(norms);
   auto total = inf ? stacked.max() : at::linalg_vector_norm(stacked, normType);
   if (!std::isinf(maxNorm)) {  // maxNorm = inf only measures (a NaN total must not reach the grads)
     auto coef = at::clamp_max(maxNorm / (total + 1e-6), 1.0);
     for (auto& g : grads) g.mul_(coef.to(g.device(), g.scalar_type()));
   }
   return total.item<double>();)

// adamStep(params, expAvg, expAvgSq, steps, lr, beta1, beta2, eps, weightDecay, decoupled):
// PyTorch's single-tensor Adam/AdamW. `steps[i]` is the step count after this update (>= 1).
// decoupled=true is AdamW (param *= 1 - lr*wd); false is Adam's L2 term (grad += wd*param).
OP(adamStep,
   at::NoGradGuard ng;
   auto params = a.tensors(0);
   auto m = a.tensors(1);
   auto v = a.tensors(2);
   auto steps = a.doubles(3);
   double lr = a.d(4), b1 = a.d(5), b2 = a.d(6), eps = a.d(7), wd = a.d(8);
   bool decoupled = a.b(9);
   if (m.size() != params.size() || v.size() != params.size() || steps.size() != params.size())
     throw arc::ArgError("params, state and steps must have the same length");
   for (size_t i = 0; i < params.size(); ++i) {
     auto& p = params[i];
     auto g = p.grad();
     if (!g.defined()) continue;
     if (wd != 0) {
       if (decoupled) p.mul_(1 - lr * wd);
       else g = g.add(p, wd);
     }
     m[i].lerp_(g, 1 - b1);
     v[i].mul_(b2).addcmul_(g, g, 1 - b2);
     double bc1 = 1 - std::pow(b1, steps[i]);
     double bc2 = 1 - std::pow(b2, steps[i]);
     double stepSize = lr / bc1;
     auto denom = (v[i].sqrt() / std::sqrt(bc2)).add_(eps);
     p.addcdiv_(m[i], denom, -stepSize);
   })

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
// where it has one for the device, else by hand).
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
   if (foundInf.item<double>() > 0) {
     scale.mul_(backoff);
     tracker.zero_();
   } else {
     int64_t t = tracker.item<int64_t>() + 1;
     if (t == interval) {
       scale.mul_(growth);
       tracker.zero_();
     } else {
       tracker.fill_(t);
     }
   })
