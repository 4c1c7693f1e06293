// Returning freed C heap memory to the system. LibTorch's CPU tensors live in glibc malloc's heap; a
// training step frees as much as it allocates, but glibc keeps freed chunks in per-thread arenas and
// gives them back only from the top of a heap, so the resident set creeps up while the number of live
// tensors stays flat. malloc_trim(0) releases the free pages of every arena (madvise), which makes RSS
// track what is really in use. Elsewhere than glibc (musl, macOS) this does nothing.
import { libc } from "./libc";

/**
 * Gives the C heap's free pages back to the system; true when glibc released any. A full JS garbage
 * collection runs first: Buffers and typed arrays that are already garbage (file reads, hashing, tensor
 * data copied out for logs) hold C memory the JS collector does not count, so it would otherwise wait.
 */
export function releaseFreeMemory(): boolean {
  Bun.gc(true);
  return libc()?.mallocTrim(0) ?? false;
}
