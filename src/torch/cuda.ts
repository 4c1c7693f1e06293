// torch.cuda: availability, synchronisation, memory statistics.
import { N } from "./native";

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
export const resetPeakMemoryStats = (device = 0): void => N.cudaResetPeakMemoryStats(device);
export const emptyCache = (): void => N.cudaEmptyCache();
