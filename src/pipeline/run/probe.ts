// Whether a folder a command will write can be written: a real probe write (permission bits say nothing
// about a read-only mount or, for root, nothing at all). A file of its own, loading no LibTorch, so a
// command line can check its output folder before anything else loads.
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { UsageError } from "../config/train-config";

/** The nearest folder at or above `path` that exists (what a `mkdir -p path` would start from). */
export function nearestExisting(path: string): string {
  let p = resolve(path);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/**
 * Makes `dir` (mkdir -p) and writes, fsyncs and removes a small probe file in it. `what` names the flag
 * or folder in the error, e.g. "--backup_dir /mnt/b".
 */
export function probeWritable(dir: string, what: string): void {
  const at = nearestExisting(dir);
  if (!statSync(at).isDirectory()) throw new UsageError(`${what}: ${at} is a file, not a folder`);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UsageError(`${what}: cannot create ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const probe = join(dir, `.write-probe-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    const fd = openSync(probe, "wx");
    try {
      writeSync(fd, "probe\n");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new UsageError(`${what}: ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  } finally {
    try {
      unlinkSync(probe);
    } catch {}
  }
}

