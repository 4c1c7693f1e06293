// The typed face of the native LibTorch addon, shaped like PyTorch:
//   import * as torch from "./torch";
//   const x = torch.randn([2, 3], { requiresGrad: true });
//   const y = torch.scope(() => torch.F.gelu(x.matmul(w)).sum());
//   y.backward();
// Tensors are freed by torch.scope() / t.dispose() (a finalizer is only a safety net).
export { TorchError, N as native } from "./torch/native";
export { type DType, type Device, deviceCode, isFloating, ELEMENT_SIZE, normalizeDevice } from "./torch/dtype";
export { Handle, scope, keep, dispose, liveTensors } from "./torch/memory";
export { Tensor, type Shape, type ValuesIndices, type TypedArray } from "./torch/tensor";
export {
  type TensorOptions, tensor, fromTypedArray, zeros, ones, empty, full, rand, randn, randint, normal, arange, linspace, eye,
  scalarTensor, zerosLike, onesLike, fullLike, randnLike, randLike, emptyLike,
} from "./torch/creation";
export {
  cat, stack, where, matmul, einsum, outer, maximum, minimum, atan2, multinomial, bernoulli, triu, tril,
  noGrad, enableGrad, isGradEnabled, grad,
} from "./torch/ops";
export { autocast, getAutocastDtype, isAutocastEnabled, type AutocastOptions } from "./torch/autocast";
export { GradScaler, type GradScalerOptions, type GradScalerState } from "./torch/amp";
export { Adam, AdamW, clipGradNorm, gradNorm, adamKernel, type AdamKernel, type ParamGroupSpec, type OptimizerState } from "./torch/optim";
export { manualSeed, getRngState, setRngState } from "./torch/random";
export { checkpoint, pendingCheckpoints, clearCheckpoints } from "./torch/checkpoint";
export * as F from "./torch/functional";
export * as cuda from "./torch/cuda";
export * as distributed from "./torch/distributed";
export * as safetensors from "./torch/safetensors";

import { N } from "./torch/native";
/** LibTorch's version string (e.g. "1.13.0") and whether the addon was built with CUDA. */
export const version = (): { libtorch: string; cuda: boolean } => ({ libtorch: N.version(), cuda: N.builtWithCuda() });
export const setNumThreads = (n: number): void => N.setNumThreads(n);
export const getNumThreads = (): number => N.getNumThreads();
/**
 * Native calls so far that read tensor data to the host (item, data/tolist, equal, clipGradNorm's norm, a
 * safetensors save, ...): on CUDA each one waits for the device.
 */
export const syncCount = (): number => N.syncCount();
export const resetSyncCount = (): void => N.resetSyncCount();
/** Calls from JS into the native addon so far (each op, each query): the host cost a GPU waits on. */
export const nativeCallCount = (): number => N.nativeCallCount();
/** fn's result and how many native calls it made (this count's own read excluded). */
export function countNativeCalls<T>(fn: () => T): { result: T; calls: number } {
  const before = N.nativeCallCount() as number;
  const result = fn();
  return { result, calls: (N.nativeCallCount() as number) - before - 1 };
}
/** fn's result and how many host reads it made. */
export function countSyncs<T>(fn: () => T): { result: T; syncs: number } {
  const before = N.syncCount() as number;
  const result = fn();
  return { result, syncs: (N.syncCount() as number) - before };
}
