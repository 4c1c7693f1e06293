// Differences between the LibTorch versions the addon builds against: 1.13 (Debian bookworm, CPU)
// and 2.x (pip / download builds, CUDA). Everything version-dependent lives here.
#pragma once
#include <ATen/ATen.h>
#include <torch/version.h>
#include <ATen/autocast_mode.h>

#define ARC_TORCH_AT_LEAST(maj, min) \
  (TORCH_VERSION_MAJOR > (maj) || (TORCH_VERSION_MAJOR == (maj) && TORCH_VERSION_MINOR >= (min)))

namespace compat {

// Autocast state per device type. 2.4 made the per-device functions the API and deprecated the
// cpu/gpu-named ones (later releases drop them).
inline bool autocastEnabled(c10::DeviceType dev) {
#if ARC_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(dev);
#else
  return dev == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
inline void setAutocastEnabled(c10::DeviceType dev, bool on) {
#if ARC_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(dev, on);
#else
  if (dev == c10::DeviceType::CUDA) at::autocast::set_enabled(on); else at::autocast::set_cpu_enabled(on);
#endif
}
inline at::ScalarType autocastDtype(c10::DeviceType dev) {
#if ARC_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(dev);
#else
  return dev == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
inline void setAutocastDtype(c10::DeviceType dev, at::ScalarType t) {
#if ARC_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(dev, t);
#else
  if (dev == c10::DeviceType::CUDA) at::autocast::set_autocast_gpu_dtype(t); else at::autocast::set_autocast_cpu_dtype(t);
#endif
}

// Whether at::scaled_dot_product_attention (fused flash / memory-efficient kernels) exists. 1.13 has
// only a private prototype, so the caller uses the plain softmax(QK^T/sqrt(d) + mask) V path there.
constexpr bool kHasSdpa = ARC_TORCH_AT_LEAST(2, 1);

// Whether the GradScaler kernels (_amp_foreach_non_finite_check_and_unscale_, _amp_update_scale_) have
// CPU implementations; before 2.3 they are CUDA-only and the caller takes the same steps by hand.
constexpr bool kHasCpuAmpKernels = ARC_TORCH_AT_LEAST(2, 3);

inline at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const c10::optional<at::Tensor>& mask, double dropout, bool causal,
                       c10::optional<double> scale) {
#if ARC_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, mask, dropout, causal, scale);
#else
  // Plain path, the same math transformers' "eager" attention uses.
  double s = scale.has_value() ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = at::matmul(q, k.transpose(-2, -1)) * s;
  if (causal) {
    auto L = q.size(-2), S = k.size(-2);
    auto keep = at::ones({L, S}, q.options().dtype(at::kBool)).tril(S - L);
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask.has_value() && mask->defined()) {
    if (mask->scalar_type() == at::kBool)
      scores = scores.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity());
    else
      scores = scores + *mask;
  }
  auto probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  if (dropout > 0) probs = at::dropout(probs, dropout, true);
  return at::matmul(probs, v);
#endif
}

// The multi-tensor Adam/AdamW kernels. The fused ones (one pass over every tensor of a dtype and device,
// state_steps read on the device) are CUDA kernels from 2.1 and have CPU kernels from 2.4. The _foreach_*
// ops every supported version has (1.13 included) are the fallback.
inline bool hasFusedAdam(c10::DeviceType dev) {
  if (dev == c10::DeviceType::CUDA) return ARC_TORCH_AT_LEAST(2, 1);
  if (dev == c10::DeviceType::CPU) return ARC_TORCH_AT_LEAST(2, 4);
  return false;
}
// One fused Adam (decoupled=false, L2 weight decay) or AdamW step over tensors of one dtype and device;
// `steps` holds each parameter's step count after this update as a float32 scalar on that device.
inline void fusedAdam(bool decoupled, at::TensorList p, at::TensorList g, at::TensorList m, at::TensorList v,
                      at::TensorList steps, double lr, double b1, double b2, double wd, double eps) {
#if ARC_TORCH_AT_LEAST(2, 1)
  if (decoupled) at::_fused_adamw_(p, g, m, v, {}, steps, lr, b1, b2, wd, eps, /*amsgrad=*/false, /*maximize=*/false);
  else at::_fused_adam_(p, g, m, v, {}, steps, lr, b1, b2, wd, eps, /*amsgrad=*/false, /*maximize=*/false);
#else
  (void)decoupled, (void)p, (void)g, (void)m, (void)v, (void)steps, (void)lr, (void)b1, (void)b2, (void)wd, (void)eps;
  throw std::logic_error("this LibTorch has no fused Adam kernel");
#endif
}

// grads *= coef (a 0-dim tensor on the grads' device and dtype) without reading coef on the host: one
// _foreach_mul_ from 2.1 (its Tensor overload), a loop of mul_ before.
inline void foreachMulByTensor(at::TensorList grads, const at::Tensor& coef) {
#if ARC_TORCH_AT_LEAST(2, 1)
  at::_foreach_mul_(grads, coef);
#else
  for (const auto& g : grads) g.mul_(coef);
#endif
}

}  // namespace compat
