// Numeric assertions for tensors and arrays.
import { expect } from "bun:test";

/** Every element of `actual` within atol + rtol*|expected| of `expected` (nested arrays allowed). */
export function expectClose(actual: unknown, expected: unknown, atol = 1e-6, rtol = 1e-5, path = ""): void {
  if (Array.isArray(expected)) {
    expect(Array.isArray(actual)).toBe(true);
    expect((actual as unknown[]).length).toBe(expected.length);
    expected.forEach((e, i) => expectClose((actual as unknown[])[i], e, atol, rtol, `${path}[${i}]`));
    return;
  }
  const a = Number(actual);
  const e = Number(expected);
  if (Number.isNaN(e)) {
    expect(Number.isNaN(a)).toBe(true);
    return;
  }
  if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) throw new Error(`value at ${path || "[]"} is ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
}
