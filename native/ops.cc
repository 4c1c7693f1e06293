// Tensor ops, named as in PyTorch. Their OP() lines are generated from the op table (native/ops.spec.ts)
// by scripts/gen-ops.ts into ops.generated.inc; this file holds what those bodies share.
#include "common.h"

#include <torch/nn/functional/upsampling.h>

using arc::Args;
using IntRef = at::IntArrayRef;

namespace {
// An optional list of dimensions: absent means every dimension (a reduction over all elements).
at::OptionalIntArrayRef dimsOrAll(const Args& a, size_t i, std::vector<int64_t>& store) {
  if (!a.has(i)) return c10::nullopt;
  store = a.ints(i);
  return IntRef(store);
}
}  // namespace

#include "ops.generated.inc"
