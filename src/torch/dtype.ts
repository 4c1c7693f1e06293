// dtypes and devices: PyTorch's names on the JS side, LibTorch's codes on the native side.
import { TorchError } from "./native";

export type DType = "float32" | "float16" | "bfloat16" | "float64" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";

/** c10::ScalarType codes (stable across LibTorch versions). */
export const DTYPE_CODE: Record<DType, number> = {
  uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15,
};
const CODE_DTYPE: Record<number, DType> = Object.fromEntries(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));

export function dtypeCode(d: DType | undefined): number | undefined {
  if (d === undefined) return undefined;
  const c = DTYPE_CODE[d];
  if (c === undefined) throw new TorchError(`unknown dtype "${String(d)}" (expected one of ${Object.keys(DTYPE_CODE).join(", ")})`);
  return c;
}

export function dtypeName(code: number): DType {
  const d = CODE_DTYPE[code];
  if (d === undefined) throw new TorchError(`unsupported LibTorch dtype code ${code}`);
  return d;
}

export const isFloating = (d: DType) => d === "float32" || d === "float16" || d === "bfloat16" || d === "float64";

/** Bytes per element. */
export const ELEMENT_SIZE: Record<DType, number> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

export type Device = "cpu" | "cuda" | `cuda:${number}`;

/** "cpu" -> -1, "cuda" -> 0, "cuda:k" -> k. */
export function deviceCode(d: Device | string | undefined): number {
  if (d === undefined || d === "cpu") return -1;
  if (d === "cuda") return 0;
  const m = /^cuda:(\d+)$/.exec(d);
  if (m) return Number(m[1]);
  throw new TorchError(`unknown device "${d}" (expected "cpu", "cuda" or "cuda:N")`);
}

export const deviceName = (code: number): Device => (code < 0 ? "cpu" : `cuda:${code}`);

/** Normalises "cuda" to "cuda:0" so devices compare by string. */
export const normalizeDevice = (d: Device | string): Device => deviceName(deviceCode(d));
