// Files and folders that survive a crash or a power cut: written under a temporary name, fsynced, renamed
// into place, and the folder holding them fsynced, so a reader sees the old version or the new one, never
// half of one. Every writer of the project (checkpoints, run files, the Hub cache, datasets, safetensors)
// goes through these.
import { createHash } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname, resolve as resolvePath } from "node:path";

/** fsyncs a file or folder by path: a folder's fsync makes a rename or a new entry in it survive a power cut. */
function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
/** fsyncs a folder (its entries: a rename into it, a new file). */
export const fsyncDir = fsyncPath;
/** fsyncs a file already written (by native code, or by a stream that is closed). */
export const fsyncFile = fsyncPath;

/** Writes a whole file and fsyncs it (no rename: for files inside a folder that is itself renamed in). */
export function writeFileSynced(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, "w");
  try {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Renames a finished (fsynced) file or folder to its final name and fsyncs the folder it lands in. */
export function renameInto(from: string, to: string): void {
  renameSync(from, to);
  fsyncDir(dirname(to));
}

/**
 * Replaces `path` atomically with what `write(tmp)` writes to `<path>.tmp-<pid>`: the temporary file is
 * fsynced (unless `synced`: the writer did it), renamed over `path` and the folder fsynced. A writer that
 * throws leaves no temporary file behind and `path` untouched.
 */
export function replaceFile(path: string, write: (tmp: string) => void, opts: { synced?: boolean; mkdir?: boolean } = {}): void {
  if (opts.mkdir) mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    write(tmp);
    if (!opts.synced) fsyncFile(tmp);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw e;
  }
  fsyncDir(dirname(path));
}

/** Replaces `path` atomically with `data` (see replaceFile); `mkdir` makes its folder first. */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mkdir?: boolean } = {}): void {
  replaceFile(path, (tmp) => writeFileSynced(tmp, data), { synced: true, mkdir: opts.mkdir });
}

/**
 * Moves a finished (fsynced) temporary folder to its final name. An existing folder there is renamed to
 * `aside` first and removed once the new one is in place (put back if the move fails); the parent is fsynced.
 */
export function installFolder(tmp: string, final: string, aside: string): void {
  let moved = false;
  try {
    renameSync(final, aside);
    moved = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  try {
    renameSync(tmp, final);
  } catch (e) {
    if (moved) renameSync(aside, final);
    throw e;
  }
  fsyncDir(dirname(final));
  if (moved) rmSync(aside, { recursive: true, force: true });
}

/** Renames a folder to `aside`, fsyncs, then deletes it: no half-deleted folder keeps its final name. */
export function removeFolder(dir: string, aside: string): void {
  renameSync(dir, aside);
  fsyncDir(dirname(dir));
  rmSync(aside, { recursive: true, force: true });
}

/** The read buffer of sha256File, made once: a fresh 8 MiB per file hashed was garbage the GC saw late. */
let hashBuffer: Buffer | null = null;

/** sha256 (hex) of a file, read in 8 MiB pieces so multi-GB files need no more memory than that. */
export function sha256File(path: string): string {
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = (hashBuffer ??= Buffer.allocUnsafe(8 << 20));
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(n === buf.length ? buf : buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

/** A folder's entry names, or none when it cannot be read (missing, not a folder): listings of run and
 * checkpoint folders treat an absent folder as an empty one. */
export function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Why a file cannot be written at `path` (null: it can), found before any work: its folder must exist and
 * take a probe file (a real write: permission bits say nothing of a read-only mount), and the path must not
 * be a folder. An existing file is left as it is.
 */
export function outputFileProblem(path: string): string | null {
  const dir = dirname(resolvePath(path));
  try {
    if (existsSync(path) && statSync(path).isDirectory()) return `${path} is a folder`;
    if (!existsSync(dir)) return `its folder ${dir} does not exist`;
    if (!statSync(dir).isDirectory()) return `${dir} is not a folder`;
    const probe = `${dir}/.write-probe-${process.pid}-${Date.now().toString(36)}`;
    closeSync(openSync(probe, "wx"));
    unlinkSync(probe);
    return null;
  } catch (e) {
    return `${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
}
