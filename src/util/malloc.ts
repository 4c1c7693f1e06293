// Returning freed C heap memory to the system. LibTorch's CPU tensors live in glibc malloc's heap; a
// training step frees as much as it allocates, but glibc keeps freed chunks in per-thread arenas and
// gives them back only from the top of a heap, so the resident set creeps up while the number of live
// tensors stays flat. malloc_trim(0) releases the free pages of every arena (madvise), which makes RSS
// track what is really in use. Elsewhere than glibc (musl, macOS) this does nothing.
import { FFIType, dlopen } from "bun:ffi";

let trim: ((pad: number) => number) | null | undefined;

function load(): ((pad: number) => number) | null {
  if (process.platform !== "linux") return null;
  try {
    const lib = dlopen("libc.so.6", { malloc_trim: { args: [FFIType.u64], returns: FFIType.i32 } });
    return (pad: number) => lib.symbols.malloc_trim(pad) as number;
  } catch {
    return null;
  }
}

/**
 * Gives the C heap's free pages back to the system; true when glibc released any. A full JS garbage
 * collection runs first: Buffers and typed arrays that are already garbage (file reads, hashing, tensor
 * data copied out for logs) hold C memory the JS collector does not count, so it would otherwise wait.
 */
export function releaseFreeMemory(): boolean {
  Bun.gc(true);
  if (trim === undefined) trim = load();
  return trim ? trim(0) === 1 : false;
}
