// The few glibc functions the runtime calls directly (through Bun's FFI): setenv, for settings that C
// libraries read from the C environment (Bun's process.env does not write it), and malloc_trim. Null
// where there is no glibc (musl, macOS): callers then leave things as they are.
import { FFIType, dlopen } from "bun:ffi";

export interface Libc {
  /** setenv(3) without overwriting: a value already in the C environment wins. */
  setenvDefault(name: string, value: string): void;
  /** malloc_trim(3): true when memory was released. */
  mallocTrim(pad: number): boolean;
}

let cached: Libc | null | undefined;

export function libc(): Libc | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.platform !== "linux") return cached;
  try {
    const lib = dlopen("libc.so.6", {
      setenv: { args: [FFIType.cstring, FFIType.cstring, FFIType.i32], returns: FFIType.i32 },
      malloc_trim: { args: [FFIType.u64], returns: FFIType.i32 },
    });
    const c = (s: string) => Buffer.from(`${s}\0`);
    cached = {
      setenvDefault: (name, value) => void lib.symbols.setenv(c(name), c(value), 0),
      mallocTrim: (pad) => lib.symbols.malloc_trim(pad) === 1,
    };
  } catch {
    cached = null;
  }
  return cached;
}
