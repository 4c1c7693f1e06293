// Normalisation layers: RMSNorm (as Qwen2/LLaMA compute it), LayerNorm, GroupNorm.
import { F, type Tensor, ones, zeros } from "../torch";
import type { FactoryOptions } from "./layers";
import { Module } from "./module";

/**
 * Normalises in the weight's dtype and returns the input's: under autocast a bfloat16/float16 activation
 * meets float32 weights (CUDA autocast does this cast itself; LibTorch 1.13's CPU autocast does not, and
 * the kernels refuse mixed dtypes). Normalisation statistics want the wider type anyway.
 */
function inWeightDtype(x: Tensor, weight: Tensor | null, f: (v: Tensor) => Tensor): Tensor {
  if (!weight || weight.dtype === x.dtype) return f(x);
  return f(x.to(weight.dtype)).to(x.dtype);
}

/**
 * RMSNorm as transformers' Qwen2RMSNorm: normalise in float32, cast back to the input dtype, then
 * multiply by the weight (so a bf16 model matches transformers bit for bit).
 */
export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-6, opts: FactoryOptions = {}) {
    super();
    this.weight = this.registerParameter("weight", ones([dim], opts));
  }
  forward(x: Tensor): Tensor {
    // One native call for the seven ops (float, pow, mean, add, rsqrt, mul, cast back, times the weight).
    return F.rmsNorm(x, this.weight, this.eps);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly normalizedShape: number[];
  constructor(normalizedShape: number | number[], readonly eps = 1e-5, opts: FactoryOptions & { elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    this.normalizedShape = Array.isArray(normalizedShape) ? normalizedShape : [normalizedShape];
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? this.registerParameter("weight", ones(this.normalizedShape, opts)) : null;
    this.bias = affine && opts.bias !== false ? this.registerParameter("bias", zeros(this.normalizedShape, opts)) : null;
  }
  forward(x: Tensor): Tensor {
    return inWeightDtype(x, this.weight, (v) => F.layerNorm(v, this.normalizedShape, this.weight, this.bias, this.eps));
  }
}

export class GroupNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(readonly numGroups: number, readonly numChannels: number, readonly eps = 1e-5, opts: FactoryOptions & { affine?: boolean } = {}) {
    super();
    const affine = opts.affine ?? true;
    this.weight = affine ? this.registerParameter("weight", ones([numChannels], opts)) : null;
    this.bias = affine ? this.registerParameter("bias", zeros([numChannels], opts)) : null;
  }
  forward(x: Tensor): Tensor {
    return inWeightDtype(x, this.weight, (v) => F.groupNorm(v, this.numGroups, this.weight, this.bias, this.eps));
  }
}
