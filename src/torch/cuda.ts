// torch.cuda: availability, synchronisation, memory statistics.
import { N, TorchError } from "./native";

export const isAvailable = (): boolean => N.cudaIsAvailable();
export const deviceCount = (): number => N.cudaDeviceCount();
/** Waits for all kernels on the device (-1: the current one). No-op without CUDA. */
export const synchronize = (device = -1): void => N.cudaSynchronize(device);

export interface MemoryStats {
  allocated: number;
  reserved: number;
  peakAllocated: number;
  peakReserved: number;
}
/** Caching-allocator statistics in bytes (all zero without CUDA). */
export function memoryStats(device = 0): MemoryStats {
  const [allocated, reserved, peakAllocated, peakReserved] = N.cudaMemoryStats(device) as number[];
  return { allocated, reserved, peakAllocated, peakReserved };
}
/** The device's free and total memory in bytes, as the driver reports them (zeros without CUDA). */
export function memInfo(device = 0): { free: number; total: number } {
  const [free, total] = N.cudaMemInfo(device) as number[];
  return { free, total };
}
export const resetPeakMemoryStats = (device = 0): void => N.cudaResetPeakMemoryStats(device);
export const emptyCache = (): void => N.cudaEmptyCache();

/** Whether CUDA graphs can be captured here (a CUDA build on LibTorch >= 2.1, and a GPU). */
export const graphsSupported = (): boolean => N.cudaGraphsSupported();

/**
 * A CUDA graph (torch.cuda.CUDAGraph): the kernels that `fn` queues, captured once and replayed with one
 * launch. `capture(fn)` first runs `fn` eagerly on the capture stream (lazy initialisations such as cuBLAS
 * workspaces happen outside the capture), then records it; the tensors `fn` returns are the graph's
 * static outputs, overwritten by every replay. Inputs are the tensors `fn` read, at their addresses:
 * update them in place (copy_, add_, indexFill_) between replays. Inside `fn` nothing may read back to
 * the host or create a tensor from host data (that would synchronise a capturing stream, which fails).
 * Autocast's cast cache is off while capturing, so weight casts are recorded as kernels and a replay
 * after an optimizer step reads the updated weights.
 */
export class CUDAGraph {
  private id: number | null = null;
  constructor(readonly device = 0) {}

  /** Warm-up run, then capture; returns fn's result from the capture (the static outputs). */
  capture<T>(fn: () => T): T {
    if (this.id !== null) throw new TorchError("CUDAGraph.capture: this graph was already captured");
    const id = N.cudaGraphBegin(this.device) as number;
    try {
      fn(); // eager, on the side stream: its results are dropped by the caller's scope
      N.cudaGraphCaptureStart(id);
      const out = fn();
      N.cudaGraphEnd(id);
      this.id = id;
      return out;
    } catch (e) {
      N.cudaGraphAbort(id);
      throw e;
    }
  }
  get captured(): boolean {
    return this.id !== null;
  }
  replay(): void {
    if (this.id === null) throw new TorchError("CUDAGraph.replay: nothing captured");
    N.cudaGraphReplay(this.id);
  }
  dispose(): void {
    if (this.id !== null) N.cudaGraphFree(this.id);
    this.id = null;
  }
}
