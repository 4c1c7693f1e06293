// Types of libtorch.mjs (plain JavaScript so that `npm install` can run it with Node before Bun exists).
export class LibTorchError extends Error {}
export const SYSTEM_LIB_DIRS: string[];
export interface FoundLibTorch { how: string; torchDir: string }
export interface LibTorchInfo { torchDir: string; root: string; libDir: string; caffe2Dir: string; version: string; cuda: boolean; cudaVersion: string | null }
export function torchDirUnder(prefix: string): string | null;
export function pythonTorchPrefix(python?: string): string | null;
export function findLibTorch(env?: Record<string, string | undefined>, opts?: { systemLibDirs?: string[]; pythonPrefix?: string | null; recorded?: string | null }): FoundLibTorch;
export function describeLibTorch(torchDir: string): LibTorchInfo;
export function findCudaToolkit(env?: Record<string, string | undefined>): { how: string; root: string } | null;
export function findPipNvidiaLib(torchRoot: string, name: string): string | null;
export function neededLibraries(addon: string): string[];
