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

// One block of eager attention: q [..., n, d] against the first `keys` keys; `causalDiag` is the
// diagonal of the causal mask on this block (tril), or nothing for no causal mask.
inline at::Tensor eagerAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const c10::optional<at::Tensor>& mask,
                                 double dropout, c10::optional<int64_t> causalDiag, double scale) {
  auto scores = at::matmul(q, k.transpose(-2, -1));
  scores.mul_(scale);  // in place: matmul's backward needs its inputs, not its output
  if (causalDiag.has_value()) {
    auto keep = at::ones({q.size(-2), k.size(-2)}, q.options().dtype(at::kBool)).tril(*causalDiag);
    scores.masked_fill_(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask.has_value() && mask->defined()) {
    if (mask->scalar_type() == at::kBool)
      scores.masked_fill_(mask->logical_not(), -std::numeric_limits<double>::infinity());
    else
      scores = scores + *mask;
  }
  auto probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  if (dropout > 0) probs = at::dropout(probs, dropout, true);
  return at::matmul(probs, v);
}

inline at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const c10::optional<at::Tensor>& mask, double dropout, bool causal,
                       c10::optional<double> scale) {
#if ARC_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, mask, dropout, causal, scale);
#else
  // Plain path, the same math transformers' "eager" attention uses. A large attention runs in blocks:
  // one batch row and up to kBlock queries at a time, so each [heads, block, keys] score tensor stays in
  // cache (one [B, H, T, T] tensor of an 8 x 900-token batch is 100 MB, and streaming it through memory
  // at every elementwise step cost more than the matmuls: 8 rows took 16x one row), and a causal block
  // reads only the keys it can see.
  double s = scale.has_value() ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const int64_t L = q.size(-2), S = k.size(-2);
  constexpr int64_t kBlock = 256;
  constexpr int64_t kWhole = int64_t(1) << 20;  // score elements below which one pass is cheapest
  if (q.dim() != 4 || q.numel() / std::max<int64_t>(q.size(-1), 1) * S <= kWhole)
    return eagerAttention(q, k, v, mask, dropout, causal ? c10::optional<int64_t>(S - L) : c10::nullopt, s);
  bool maskDefined = mask.has_value() && mask->defined();
  std::vector<at::Tensor> rows;
  for (int64_t b = 0; b < q.size(0); ++b) {
    auto qb = q.select(0, b), kb = k.select(0, b), vb = v.select(0, b);
    c10::optional<at::Tensor> mb;
    if (maskDefined) {
      auto m = mask->dim() == 4 ? (mask->size(0) == 1 ? mask->select(0, 0) : mask->select(0, b)) : *mask;
      mb = m;
    }
    std::vector<at::Tensor> blocks;
    for (int64_t q0 = 0; q0 < L; q0 += kBlock) {
      const int64_t n = std::min(kBlock, L - q0);
      // Query i (global) sees keys j <= i + S - L under the causal mask: this block needs q0 + n + S - L of them.
      const int64_t keys = causal ? std::min(S, q0 + n + S - L) : S;
      c10::optional<at::Tensor> mblock;
      if (mb) {
        auto m = *mb;
        if (m.size(-2) != 1) m = m.narrow(-2, q0, n);
        if (m.size(-1) != 1) m = m.narrow(-1, 0, keys);
        mblock = m;
      }
      blocks.push_back(eagerAttention(qb.narrow(-2, q0, n), kb.narrow(-2, 0, keys), vb.narrow(-2, 0, keys), mblock, dropout,
                                      causal ? c10::optional<int64_t>(q0 + S - L) : c10::nullopt, s));
    }
    rows.push_back(blocks.size() == 1 ? blocks[0] : at::cat(blocks, -2));
  }
  return at::stack(rows, 0);
#endif
}

// Whether scaled_dot_product_attention takes enable_gqa (keys/values with fewer heads than queries): 2.5.
constexpr bool kHasGqaSdpa = ARC_TORCH_AT_LEAST(2, 5);

// Grouped-query attention: q [B, H, T, D], k/v [B, KV, S, D] with H a multiple of KV; query head h reads
// KV head h / (H / KV) (transformers' repeat_kv order). Without a causal flag the H / KV query heads of a
// KV head are folded into its query positions (they read the same keys under the same mask row), so no
// copy of the keys and values is made: over a static cache that copy was the whole cache, every layer,
// every decode step. A causal pass with no mask uses SDPA's own enable_gqa where the version has it
// (the fused flash kernel), else the keys and values are repeated as transformers does.
inline at::Tensor gqaAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const c10::optional<at::Tensor>& mask, double dropout, bool causal,
                               c10::optional<double> scale) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "gqaAttention: query, key and value must be [batch, heads, seq, dim]");
  const int64_t H = q.size(1), KV = k.size(1);
  if (H == KV) return sdpa(q, k, v, mask, dropout, causal, scale);
  TORCH_CHECK(KV > 0 && H % KV == 0 && v.size(1) == KV, "gqaAttention: query heads (", H, ") must be a multiple of key/value heads (", KV, ", ", v.size(1), ")");
  const int64_t rep = H / KV, B = q.size(0), T = q.size(2), D = q.size(3), S = k.size(2);
  const bool masked = mask.has_value() && mask->defined();
  if (!causal && (!masked || (mask->dim() == 4 && mask->size(1) == 1))) {
    auto qf = q.reshape({B, KV, rep * T, D});
    c10::optional<at::Tensor> mf;
    if (masked) {
      const auto& m = *mask;  // [B or 1, 1, T or 1, S]
      mf = m.unsqueeze(2).expand({m.size(0), 1, rep, T, m.size(3)}).reshape({m.size(0), 1, rep * T, m.size(3)});
    }
    return sdpa(qf, k, v, mf, dropout, false, scale).reshape({B, H, T, v.size(3)});
  }
#if ARC_TORCH_AT_LEAST(2, 5)
  if (!masked) return at::scaled_dot_product_attention(q, k, v, mask, dropout, causal, scale, /*enable_gqa=*/true);
#endif
  auto kr = k.unsqueeze(2).expand({B, KV, rep, S, k.size(3)}).reshape({B, H, S, k.size(3)});
  auto vr = v.unsqueeze(2).expand({B, KV, rep, S, v.size(3)}).reshape({B, H, S, v.size(3)});
  return sdpa(q, kr, vr, mask, dropout, causal, scale);
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
