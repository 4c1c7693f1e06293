// Download of the public ARC datasets: once, as the GitHub archive of the repository, into a cache folder.
// The archive goes to a `.partial` file renamed when complete, and is unpacked into a temporary folder
// renamed into place, so an interrupted download or unpack never leaves a half dataset that looks whole.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { unzipSync } from "fflate";
import { fsyncDir, renameInto, writeFileSynced } from "../util/durable";
import { progress } from "../util/progress.ts";
import { ArcDataError } from "./errors.ts";

export const DATASETS = {
  "arc-agi-1": { repo: "fchollet/ARC-AGI", branch: "master" },
  "arc-agi-2": { repo: "arcprize/ARC-AGI-2", branch: "main" },
} as const;
export type DatasetName = keyof typeof DATASETS;

export const DEFAULT_URL_BASE = "https://github.com";

export interface DownloadOptions {
  /** Cache root; default `$ARC_DATA_DIR`, else `$XDG_CACHE_HOME/arc-efe/data`, else `~/.cache/arc-efe/data`. */
  cacheDir?: string;
  /** Replaces `https://github.com` in the archive URL; default `$ARC_DATA_URL_BASE` (tests point it at a local server). */
  urlBase?: string;
  /** Download again even when the dataset is cached. */
  force?: boolean;
  /** Never touch the network (default: `ARC_DATA_OFFLINE=1`); a missing dataset is then an error. */
  offline?: boolean;
  /** Abort when no bytes arrive for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** Where progress goes (default stderr), plain lines instead of a bar, or nothing. */
  stream?: NodeJS.WriteStream;
  plain?: boolean;
  quiet?: boolean;
}

export function dataCacheDir(opts: DownloadOptions = {}): string {
  if (opts.cacheDir) return opts.cacheDir;
  if (process.env.ARC_DATA_DIR) return process.env.ARC_DATA_DIR;
  const xdg = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(xdg, "arc-efe", "data");
}

export function archiveUrl(name: DatasetName, urlBase = process.env.ARC_DATA_URL_BASE || DEFAULT_URL_BASE): string {
  const { repo, branch } = DATASETS[name];
  return `${urlBase.replace(/\/+$/, "")}/${repo}/archive/refs/heads/${branch}.zip`;
}

const hasJson = (dir: string) => existsSync(dir) && readdirSync(dir).some((n) => n.endsWith(".json"));
// The folder is renamed into place only once fully unpacked, so task files in it mean it is complete.
const isComplete = (dir: string) => hasJson(path.join(dir, "training")) || hasJson(path.join(dir, "evaluation"));

/** The cached dataset folder (with training/ and evaluation/), or null when it is not there yet. */
export function cachedDataset(name: DatasetName, opts: DownloadOptions = {}): string | null {
  const dest = path.join(dataCacheDir(opts), name);
  return isComplete(dest) ? dest : null;
}

/** How to get the data without this command; part of every download error. */
function manualHelp(name: DatasetName, dest: string): string {
  const { repo, branch } = DATASETS[name];
  return (
    `To get it by hand: download https://github.com/${repo}/archive/refs/heads/${branch}.zip on a machine with ` +
    `internet, unpack it, and pass --data /path/to/${repo.split("/")[1]}-${branch}/data; or copy its data/training ` +
    `and data/evaluation folders to ${dest}/ (set ARC_DATA_DIR to choose the cache folder).`
  );
}

/** Make sure the dataset is in the cache (downloading it if needed) and return its folder. */
export async function downloadDataset(name: DatasetName, opts: DownloadOptions = {}): Promise<string> {
  if (!Object.hasOwn(DATASETS, name)) throw new ArcDataError(`unknown dataset "${name}" (known: ${Object.keys(DATASETS).join(", ")})`);
  const root = dataCacheDir(opts);
  const dest = path.join(root, name);
  if (!opts.force) {
    const cached = cachedDataset(name, opts);
    if (cached) return cached;
  }
  const zipFile = path.join(root, `${name}.zip`);
  // A previous run may have downloaded the archive and stopped before unpacking it: unpack that one.
  if (!opts.force && existsSync(zipFile)) {
    try {
      unpackInto(readFileSync(zipFile), dest, false);
      rmSync(zipFile, { force: true });
      return dest;
    } catch {
      rmSync(zipFile, { force: true }); // corrupt: fetch it again
    }
  }
  const offline = opts.offline ?? process.env.ARC_DATA_OFFLINE === "1";
  if (offline) throw new ArcDataError(`${name} is not in ${root} and downloads are off (ARC_DATA_OFFLINE=1). ${manualHelp(name, dest)}`);

  const url = archiveUrl(name, opts.urlBase);
  mkdirSync(root, { recursive: true });
  await fetchToFile(url, name, zipFile, dest, opts);
  let zip: Uint8Array;
  try {
    zip = readFileSync(zipFile);
    unpackInto(zip, dest, opts.force ?? false);
  } catch (e) {
    rmSync(zipFile, { force: true });
    throw new ArcDataError(`could not unpack ${name} from ${url}: ${(e as Error).message}. ${manualHelp(name, dest)}`);
  }
  rmSync(zipFile, { force: true }); // the unpacked folder is the cache; the archive is not needed again
  return dest;
}

async function fetchToFile(url: string, name: DatasetName, zipFile: string, dest: string, opts: DownloadOptions): Promise<void> {
  const fail = (why: string) => new ArcDataError(`could not download ${name} from ${url}: ${why}. ${manualHelp(name, dest)}`);
  const stream = opts.stream ?? process.stderr;
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), idleMs);
  const partial = `${zipFile}.${process.pid}.partial`; // per process: two concurrent downloads do not collide
  let fd = -1;
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: abort.signal, redirect: "follow" });
    } catch (e) {
      throw fail(abort.signal.aborted ? `no answer for ${idleMs / 1000} s` : (e as Error).message);
    }
    if (!res.ok || !res.body) throw fail(`HTTP ${res.status} ${res.statusText}`.trim());
    const total = Number(res.headers.get("content-length")) || 0;
    if (!opts.quiet) stream.write(`Downloading ${name} from ${url} into ${dest}${total ? "" : " (size unknown)"}\n`);
    // GitHub archives often come without a length: then only the final line is printed, never a fake percentage.
    const bar = progress(total, { label: `Downloading ${name}`, unit: "bytes", stream, quiet: opts.quiet, plain: opts.plain ?? (total ? undefined : true) });
    fd = openSync(partial, "w");
    let got = 0;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        clearTimeout(timer);
        timer = setTimeout(() => abort.abort(), idleMs);
        writeSync(fd, value);
        got += value.byteLength;
        bar.update(got);
      }
    } catch (e) {
      throw fail(abort.signal.aborted ? `no data for ${idleMs / 1000} s after ${got} bytes` : (e as Error).message);
    } finally {
      bar.stop();
    }
    if (total && got !== total) throw fail(`got ${got} of ${total} bytes`);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameInto(partial, zipFile);
  } finally {
    clearTimeout(timer);
    if (fd >= 0) closeSync(fd);
    rmSync(partial, { force: true });
  }
}

// `<prefix>data/training/<id>.json`; the prefix is the archive's top folder (`ARC-AGI-2-main/`).
const TASK_ENTRY = /^(.*?)data\/(training|evaluation)\/([A-Za-z0-9_.-]+\.json)$/;

/**
 * Unpack the task files of a repository archive into `dest/{training,evaluation}` (plus the LICENSE, which
 * the Apache licence asks to keep with the data). Returns the number of tasks per split.
 */
export function unpackInto(zip: Uint8Array, dest: string, replace: boolean): { training: number; evaluation: number } {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(zip, { filter: (f) => TASK_ENTRY.test(f.name) || /^[^/]*\/?LICENSE[^/]*$/.test(f.name) });
  } catch (e) {
    throw new ArcDataError(`not a readable zip archive (${(e as Error).message})`);
  }
  // Several data/ folders (e.g. a copy in a docs folder): keep the one with the most tasks, shortest path on ties.
  const byPrefix = new Map<string, number>();
  for (const n of Object.keys(files)) {
    const m = TASK_ENTRY.exec(n);
    if (m) byPrefix.set(m[1]!, (byPrefix.get(m[1]!) ?? 0) + 1);
  }
  const prefix = [...byPrefix].sort((a, b) => b[1] - a[1] || a[0].length - b[0].length)[0]?.[0];
  if (prefix === undefined) throw new ArcDataError("the archive has no data/training or data/evaluation folder with task files");
  const tmp = `${dest}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const count = { training: 0, evaluation: 0 };
  try {
    mkdirSync(path.join(tmp, "training"), { recursive: true });
    mkdirSync(path.join(tmp, "evaluation"), { recursive: true });
    for (const [n, data] of Object.entries(files)) {
      const m = TASK_ENTRY.exec(n);
      if (m && m[1] === prefix) {
        writeFileSynced(path.join(tmp, m[2]!, m[3]!), data);
        count[m[2] as "training" | "evaluation"]++;
      } else if (!m && n.startsWith(prefix.split("/")[0] ?? "")) {
        writeFileSynced(path.join(tmp, path.basename(n)), data);
      }
    }
    if (replace) rmSync(dest, { recursive: true, force: true });
    if (existsSync(dest)) {
      // Another process finished first (or an incomplete folder is in the way): keep a complete one.
      if (isComplete(dest)) return count;
      rmSync(dest, { recursive: true, force: true });
    }
    for (const d of ["training", "evaluation", "."]) fsyncDir(path.join(tmp, d));
    renameInto(tmp, dest);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return count;
}
