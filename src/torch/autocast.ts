// Automatic mixed precision scopes (torch.autocast): ops inside run in float16/bfloat16 where LibTorch's
// autocast lists say so. Scoped, nestable; the cast cache is cleared when the outermost scope ends.
import { type DType, dtypeCode, dtypeName } from "./dtype";
import { N, TorchError } from "./native";

export interface AutocastOptions {
  /** "cuda" (default dtype float16) or "cpu" (default dtype bfloat16). */
  device: "cpu" | "cuda";
  dtype?: DType;
  enabled?: boolean;
}

export function autocast<T>(opts: AutocastOptions, fn: () => T): T {
  const dev = opts.device;
  if (dev !== "cpu" && dev !== "cuda") throw new TorchError(`autocast: device must be "cpu" or "cuda", not "${dev}"`);
  if (dev === "cuda" && (opts.enabled ?? true) && !N.cudaIsAvailable()) throw new TorchError("autocast: CUDA requested but CUDA is not available");
  const dtype = opts.dtype ?? (dev === "cuda" ? "float16" : "bfloat16");
  if (dtype !== "float16" && dtype !== "bfloat16") throw new TorchError(`autocast: dtype must be float16 or bfloat16, not ${dtype}`);
  const prevEnabled: boolean = N.autocastEnabled(dev);
  const prevDtype: number = N.autocastDtype(dev);
  N.setAutocast(dev, opts.enabled ?? true, dtypeCode(dtype));
  N.autocastIncrementNesting();
  try {
    return fn();
  } finally {
    if (N.autocastDecrementNesting() === 0) N.autocastClearCache();
    N.setAutocast(dev, prevEnabled, prevDtype);
  }
}

export const isAutocastEnabled = (device: "cpu" | "cuda"): boolean => N.autocastEnabled(device);
/** The dtype autocast uses on a device type (whether or not it is enabled there). */
export const getAutocastDtype = (device: "cpu" | "cuda"): DType => dtypeName(N.autocastDtype(device));
