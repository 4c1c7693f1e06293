// Running the project's scripts as a user would, for subprocess tests: the paths, a temporary folder
// per test file with a fresh subfolder per case, and one synchronous run with its output and status.
import { afterAll } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..", "..");
export const TRAIN = join(ROOT, "scripts", "train.ts");
export const EVAL = join(ROOT, "scripts", "eval.ts");
/** Flags every CPU subprocess run takes. */
export const CPU = ["--device", "cpu", "--quiet"];

/** A temporary folder removed after the file's tests; `fresh(name)` makes a new subfolder in it. */
export function tempFolders(prefix: string): (name: string) => string {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  let counter = 0;
  return (name) => {
    const d = join(tmp, `${name}-${++counter}`);
    mkdirSync(d, { recursive: true });
    return d;
  };
}

export interface Result {
  code: number | null;
  out: string;
  err: string;
  ms: number;
}

/** Runs a script with Bun from the project root and waits for it (`env`: variables added to this process's). */
export function runScript(script: string, args: string[], timeoutMs: number, env?: Record<string, string>): Result {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [script, ...args], { cwd: ROOT, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20, ...(env ? { env: { ...process.env, ...env } } : {}) });
  return { code: r.status, out: r.stdout ?? "", err: r.stderr ?? "", ms: performance.now() - t0 };
}
