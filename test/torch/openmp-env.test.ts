// Loading the addon sets OpenMP's wait policy to passive in the C environment (what libgomp reads), so
// LibTorch's threads do not spin against each other on a busy machine; a user's own setting wins.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
// The child reads the C environment itself (getenv), not process.env, which Bun keeps apart.
const CHILD = `
import { dlopen, FFIType, CString } from "bun:ffi";
await import(${JSON.stringify(join(ROOT, "src", "torch.ts"))});
const libc = dlopen("libc.so.6", { getenv: { args: [FFIType.cstring], returns: FFIType.ptr } });
const p = libc.symbols.getenv(Buffer.from("OMP_WAIT_POLICY\\0"));
console.log(JSON.stringify({ c: p ? new CString(p).toString() : null, js: process.env.OMP_WAIT_POLICY ?? null }));
`;

function child(extra: Record<string, string>) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "OMP_WAIT_POLICY" && k !== "GOMP_SPINCOUNT") env[k] = v;
  const r = Bun.spawnSync([process.execPath, "-e", CHILD], { env: { ...env, ...extra }, cwd: ROOT });
  expect(r.stderr.toString()).toBe("");
  return JSON.parse(r.stdout.toString());
}

describe("OpenMP wait policy", () => {
  test("passive by default, in the C environment LibTorch's OpenMP reads and in process.env", () => {
    expect(child({})).toEqual({ c: "PASSIVE", js: "PASSIVE" });
  });
  test("a user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone", () => {
    expect(child({ OMP_WAIT_POLICY: "ACTIVE" })).toEqual({ c: "ACTIVE", js: "ACTIVE" });
    expect(child({ GOMP_SPINCOUNT: "1000" })).toEqual({ c: null, js: null });
  });
});
