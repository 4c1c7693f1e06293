// Hugging Face Hub downloads into huggingface_hub's own cache layout, so a model that Python
// (transformers, huggingface-cli) already downloaded is used as is, and the reverse.
//
//   <cache>/models--<org>--<name>/
//     blobs/<etag>                        file contents, named by etag (sha256 for LFS files)
//     snapshots/<commit>/<filename>       relative symlink -> ../../blobs/<etag>
//     refs/<revision>                     the commit hash a branch/tag resolved to
//     .no_exist/<commit>/<filename>       empty marker: the file does not exist at that commit
//
// <cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub. $HF_TOKEN (or the token file `huggingface-cli login` writes) is sent as
// a bearer token; $HF_ENDPOINT replaces https://huggingface.co; $HF_HUB_OFFLINE=1 forbids requests.
//
// Unlike huggingface_hub, a file already in the cache for the revision's cached commit is returned
// without asking the Hub whether the branch moved (pass `refresh: true` to ask).
//
// This file knows the cache and the Hub, not which files a repo needs: resolveSnapshot fills a snapshot
// with what a SnapshotLayout names (a model folder's layout is models/files.ts).
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, copyFileSync, lstatSync, unlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { createHash, type Hash } from "node:crypto";
import { homedir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fsyncFile, renameInto, writeFileAtomic } from "./util/durable";
import { progress } from "./util/progress.ts";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

export type HubErrorCode =
  | "offline" // no request allowed or possible, and the file is not in the cache
  | "unauthorized" // 401: private, gated, missing repo, or a refused token
  | "gated" // 403 gated repository
  | "repo-not-found"
  | "revision-not-found"
  | "entry-not-found"
  | "http" // any other HTTP error
  | "bad-response" // the Hub's answer lacks commit/etag/size
  | "size-mismatch"
  | "checksum-mismatch"
  | "interrupted" // the connection broke during a download; a rerun resumes it
  | "not-a-folder"; // a local path that does not exist

export interface HubErrorInfo {
  repoId?: string;
  filename?: string;
  /** For offline errors: the snapshot folder the files belong in ("<commit>" when no commit is known). */
  folder?: string;
  /** For offline errors: the files missing. */
  missing?: string[];
  /** HTTP status, when an answer came. */
  status?: number;
  /** For offline errors: why no request could be made. */
  reason?: string;
}

export class HubError extends Error {
  override name = "HubError";
  readonly repoId?: string;
  readonly filename?: string;
  readonly folder?: string;
  readonly missing?: string[];
  readonly status?: number;
  readonly reason?: string;
  constructor(message: string, readonly code: HubErrorCode, info: HubErrorInfo = {}) {
    super(message);
    Object.assign(this, info);
  }
}

export interface HubOptions {
  /** Branch, tag or commit hash. Default "main". */
  revision?: string;
  /** Default: hfCacheDir(). */
  cacheDir?: string;
  /** Bearer token; false sends none. Default: $HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, or the token file. */
  token?: string | false;
  /** Default: $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  /** No requests at all. Default: $HF_HUB_OFFLINE. */
  offline?: boolean;
  /** No progress bar. */
  quiet?: boolean;
  /** Ask the Hub even when the cache already has the file for the cached commit of `revision`. */
  refresh?: boolean;
  /** Check the sha256 of LFS downloads against their etag. Default true. */
  verify?: boolean;
  /** Where the progress bar goes (default stderr). */
  progressStream?: NodeJS.WriteStream;
  /** Timeout of the metadata (HEAD) request in ms. Default $HF_HUB_ETAG_TIMEOUT s or 10 s. */
  timeoutMs?: number;
}

const env = () => process.env;

function isTrue(v: string | undefined): boolean {
  return v !== undefined && ["1", "on", "yes", "true"].includes(v.trim().toLowerCase());
}

function hfHome(): string {
  const e = env();
  if (e.HF_HOME) return e.HF_HOME;
  return join(e.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface");
}

/** The hub cache folder, as huggingface_hub computes it. */
export function hfCacheDir(): string {
  const e = env();
  return e.HF_HUB_CACHE || e.HUGGINGFACE_HUB_CACHE || join(hfHome(), "hub");
}

/** The token huggingface_hub would use, or undefined. */
export function hfToken(): string | undefined {
  const e = env();
  const t = e.HF_TOKEN || e.HUGGING_FACE_HUB_TOKEN;
  if (t && t.trim()) return t.trim();
  const path = e.HF_TOKEN_PATH || join(hfHome(), "token");
  try {
    const s = readFileSync(path, "utf8").trim();
    return s || undefined;
  } catch {
    return undefined;
  }
}

export function hfEndpoint(): string {
  return (env().HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, "");
}

export function hfOffline(): boolean {
  return isTrue(env().HF_HUB_OFFLINE) || isTrue(env().TRANSFORMERS_OFFLINE);
}

/** "Qwen/Qwen2.5-1.5B-Instruct" -> "models--Qwen--Qwen2.5-1.5B-Instruct". */
export function repoFolderName(repoId: string): string {
  return ["models", ...repoId.split("/")].join("--");
}

/** The cache folder of a model repo. */
export function repoCacheDir(repoId: string, cacheDir = hfCacheDir()): string {
  return join(cacheDir, repoFolderName(repoId));
}

export function isCommitHash(s: string): boolean {
  return /^[0-9a-f]{40}$/.test(s);
}

function checkRepoId(repoId: string): void {
  if (!/^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(repoId) || repoId.includes("--") || repoId.includes("..") || repoId.endsWith(".git")) {
    throw new HubError(`not a Hugging Face model id (org/name) nor an existing folder: ${JSON.stringify(repoId)}`, "not-a-folder", { repoId });
  }
}

function readRef(storage: string, revision: string): string | null {
  if (isCommitHash(revision)) return revision;
  try {
    const c = readFileSync(join(storage, "refs", revision), "utf8").trim();
    return c || null;
  } catch {
    return null;
  }
}

/** Where a file is in the cache (following refs/<revision>), or null. No request. */
export function cachedFile(repoId: string, filename: string, opts: Pick<HubOptions, "revision" | "cacheDir"> = {}): string | null {
  const storage = repoCacheDir(repoId, opts.cacheDir ?? hfCacheDir());
  const commit = readRef(storage, opts.revision ?? "main");
  if (!commit) return null;
  const p = join(storage, "snapshots", commit, filename);
  return existsSync(p) ? p : null; // existsSync follows the symlink: a dangling one is absent
}

function knownMissing(storage: string, commit: string, filename: string): boolean {
  return existsSync(join(storage, ".no_exist", commit, filename));
}

function encodePath(filename: string): string {
  return filename.split("/").map(encodeURIComponent).join("/");
}

function fillHelp(repoId: string, storage: string, commit: string | null, revision: string, files: string[]): string {
  const folder = join(storage, "snapshots", commit ?? "<commit>");
  const rev = revision !== "main" ? ` --revision ${revision}` : "";
  return [
    `Folder to fill: ${folder}` +
      (commit ? "" : `  (<commit>: the repo's 40-hex commit id, also written into ${join(storage, "refs", revision)})`) +
      "; plain files are fine there.",
    `Missing: ${files.join(", ")}`,
    `To fill it: on a machine with internet run \`huggingface-cli download ${repoId}${rev}\` and copy the resulting ` +
      `${repoFolderName(repoId)} folder (blobs/, snapshots/, refs/) into ${dirname(storage)}; or run ` +
      `\`huggingface-cli download ${repoId}${rev} --local-dir DIR\` (or copy the files into DIR) and pass DIR instead of the model id.`,
  ].join("\n");
}

function offlineError(repoId: string, storage: string, revision: string, files: string[], why: string): HubError {
  const commit = readRef(storage, revision);
  const folder = join(storage, "snapshots", commit ?? "<commit>");
  return new HubError(
    `${repoId}@${revision}: ${files.length === 1 ? `${files[0]} is` : "model files are"} not in the Hugging Face cache and ${why}.\n` +
      fillHelp(repoId, storage, commit, revision, files),
    "offline",
    { repoId, filename: files.length === 1 ? files[0] : undefined, folder, missing: files, reason: why },
  );
}

interface Ctx {
  repoId: string;
  revision: string;
  cacheDir: string;
  storage: string;
  token: string | undefined;
  endpoint: string;
  offline: boolean;
  quiet: boolean;
  refresh: boolean;
  verify: boolean;
  progressStream?: NodeJS.WriteStream;
  timeoutMs: number;
}

function context(repoId: string, opts: HubOptions): Ctx {
  checkRepoId(repoId);
  const cacheDir = resolve(opts.cacheDir ?? hfCacheDir());
  const etagTimeout = Number(env().HF_HUB_ETAG_TIMEOUT);
  return {
    repoId,
    revision: opts.revision ?? "main",
    cacheDir,
    storage: join(cacheDir, repoFolderName(repoId)),
    token: opts.token === false ? undefined : (opts.token ?? hfToken()),
    endpoint: (opts.endpoint ?? hfEndpoint()).replace(/\/+$/, ""),
    offline: opts.offline ?? hfOffline(),
    quiet: opts.quiet ?? false,
    refresh: opts.refresh ?? false,
    verify: opts.verify ?? true,
    progressStream: opts.progressStream,
    timeoutMs: opts.timeoutMs ?? (etagTimeout > 0 ? etagTimeout * 1000 : 10_000),
  };
}

function baseHeaders(ctx: Ctx): Record<string, string> {
  const h: Record<string, string> = { "User-Agent": "arc-efe/0.1 (bun)", "Accept-Encoding": "identity" };
  if (ctx.token) h.Authorization = `Bearer ${ctx.token}`;
  return h;
}

class NetworkError extends Error {}

function httpError(ctx: Ctx, filename: string, url: string, r: Response): HubError {
  const code = r.headers.get("x-error-code") ?? "";
  const msg = r.headers.get("x-error-message");
  const detail = msg ? ` (${msg})` : "";
  const where = `${ctx.repoId}@${ctx.revision}/${filename}`;
  if (code === "GatedRepo") {
    return new HubError(
      `${where}: ${ctx.repoId} is a gated repository${detail}. Accept its terms on ${ctx.endpoint}/${ctx.repoId} and set HF_TOKEN to a token of that account.`,
      "gated", { repoId: ctx.repoId, filename, status: r.status });
  }
  if (code === "RepoNotFound" || (r.status === 401 && !code)) {
    const tok = ctx.token ? "A token was sent (HF_TOKEN or the token file); check that it can read this repository." : "No token was sent: set HF_TOKEN if the repository is private or gated.";
    return new HubError(
      `${where}: ${r.status} from ${url}${detail}: repository ${ctx.repoId} does not exist, or it is private or gated. Check the id. ${tok}`,
      r.status === 401 ? "unauthorized" : "repo-not-found", { repoId: ctx.repoId, filename, status: r.status });
  }
  if (code === "RevisionNotFound") {
    return new HubError(`${where}: revision ${JSON.stringify(ctx.revision)} does not exist in ${ctx.repoId}${detail}.`, "revision-not-found", { repoId: ctx.repoId, filename, status: r.status });
  }
  if (code === "EntryNotFound" || r.status === 404) {
    return new HubError(`${where}: ${filename} does not exist in ${ctx.repoId} at ${ctx.revision}${detail} (${r.status} from ${url}).`, "entry-not-found", { repoId: ctx.repoId, filename, status: r.status });
  }
  if (r.status === 401 || r.status === 403) {
    return new HubError(`${where}: ${r.status} from ${url}${detail}. Set HF_TOKEN to a token that can read ${ctx.repoId}.`, "unauthorized", { repoId: ctx.repoId, filename, status: r.status });
  }
  return new HubError(`${where}: HTTP ${r.status} ${r.statusText} from ${url}${detail}.`, "http", { repoId: ctx.repoId, filename, status: r.status });
}

interface FileMeta {
  commit: string;
  etag: string;
  size: number;
  /** Where to GET the contents (the redirect target for LFS files). */
  location: string;
}

function normalizeEtag(e: string | null): string | null {
  if (!e) return null;
  return e.replace(/^W\//, "").replace(/^"+|"+$/g, "") || null;
}

async function fetchNet(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const err = e as Error & { code?: string };
    throw new NetworkError(`${new URL(url).origin}: ${err.code ?? err.message.split("\n")[0]}`);
  }
}

/** HEAD the resolve URL like huggingface_hub: relative redirects (renamed repos) are followed, absolute ones (CDN) are not. */
async function headMeta(ctx: Ctx, filename: string): Promise<FileMeta> {
  const url = `${ctx.endpoint}/${ctx.repoId}/resolve/${encodeURIComponent(ctx.revision)}/${encodePath(filename)}`;
  let current = url;
  let r: Response | undefined;
  for (let hop = 0; hop < 10; hop++) {
    r = await fetchNet(current, { method: "HEAD", headers: baseHeaders(ctx), redirect: "manual", signal: AbortSignal.timeout(ctx.timeoutMs) });
    const loc = r.headers.get("location");
    if (r.status >= 300 && r.status < 400 && loc && (loc.startsWith("/") && !loc.startsWith("//"))) {
      current = new URL(loc, current).toString();
      continue;
    }
    break;
  }
  r = r!;
  if (r.status >= 400) {
    const err = httpError(ctx, filename, url, r);
    const commit = r.headers.get("x-repo-commit");
    if (err.code === "entry-not-found" && commit && isCommitHash(commit)) {
      // Remember the absence, as huggingface_hub does, so offline runs know the file is optional.
      writeFileAtomic(join(ctx.storage, ".no_exist", commit, filename), "", { mkdir: true });
    }
    throw err;
  }
  const commit = r.headers.get("x-repo-commit");
  const etag = normalizeEtag(r.headers.get("x-linked-etag") ?? r.headers.get("etag"));
  const sizeStr = r.headers.get("x-linked-size") ?? r.headers.get("content-length");
  const size = sizeStr === null ? NaN : Number(sizeStr);
  if (!commit || !etag || !Number.isSafeInteger(size) || size < 0) {
    throw new HubError(
      `${ctx.repoId}/${filename}: ${current} answered without ${!commit ? "X-Repo-Commit" : !etag ? "an ETag" : "a size"}; is ${ctx.endpoint} a Hugging Face Hub? (HF_ENDPOINT)`,
      "bad-response", { repoId: ctx.repoId, filename, status: r.status });
  }
  const loc = r.status >= 300 && r.status < 400 ? r.headers.get("location") : null;
  return { commit, etag, size, location: loc ? new URL(loc, current).toString() : current };
}

function linkIntoSnapshot(blob: string, pointer: string): void {
  mkdirSync(dirname(pointer), { recursive: true });
  try {
    lstatSync(pointer);
    unlinkSync(pointer); // a stale or dangling entry
  } catch {}
  try {
    symlinkSync(relative(dirname(pointer), blob), pointer);
  } catch {
    copyFileSync(blob, pointer); // file systems without symlinks, as huggingface_hub does
  }
}

async function hashFile(path: string, h: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
}

const inFlight = new Map<string, Promise<void>>();

/** GET `meta.location` into `blob` via `blob.incomplete`, resuming a partial file with a Range request. */
async function downloadBlob(ctx: Ctx, filename: string, meta: FileMeta, blob: string): Promise<void> {
  const tmp = `${blob}.incomplete`;
  mkdirSync(dirname(blob), { recursive: true });
  let have = existsSync(tmp) ? statSync(tmp).size : 0;
  if (have > meta.size) {
    rmSync(tmp, { force: true });
    have = 0;
  }
  const sha = ctx.verify && /^[0-9a-f]{64}$/.test(meta.etag) ? createHash("sha256") : null;
  const headers = baseHeaders(ctx);
  // The token goes only to the Hub's own host, not to a CDN on another host (as huggingface_hub).
  if (new URL(meta.location).host !== new URL(ctx.endpoint).host) delete headers.Authorization;
  const label = filename;

  const get = async (from: number): Promise<Response> => {
    const h = { ...headers };
    if (from > 0) h.Range = `bytes=${from}-`;
    try {
      return await fetchNet(meta.location, { headers: h, redirect: "follow" });
    } catch (e) {
      if (e instanceof NetworkError) throw new HubError(`${ctx.repoId}/${filename}: download failed: ${e.message}. Rerun to resume.`, "interrupted", { repoId: ctx.repoId, filename });
      throw e;
    }
  };

  let r: Response | null = null;
  if (have < meta.size || meta.size === 0) {
    r = await get(have);
    if (have > 0 && r.status === 206) {
      const m = /bytes\s+(\d+)-/.exec(r.headers.get("content-range") ?? "");
      if (!m || Number(m[1]) !== have) {
        await r.body?.cancel();
        have = 0;
        r = await get(0);
      }
    } else if (have > 0 && r.status === 416) {
      await r.body?.cancel();
      have = 0;
      r = await get(0);
    } else if (r.status === 200) {
      have = 0; // the server ignored the Range header: start over
    }
    if (r.status !== 200 && r.status !== 206) {
      await r.body?.cancel();
      throw httpError(ctx, filename, meta.location, r);
    }
  }
  if (sha && have > 0) await hashFile(tmp, sha);

  let written = have;
  if (r) {
    const bar = progress(meta.size, { label, unit: "bytes", quiet: ctx.quiet, stream: ctx.progressStream });
    bar.update(written);
    const fh = await open(tmp, have > 0 ? "a" : "w");
    let pending: Promise<unknown> = Promise.resolve(); // one write in flight while the next chunk arrives
    try {
      if (r.body) {
        for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
          await pending;
          pending = fh.write(chunk);
          sha?.update(chunk);
          written += chunk.length;
          if (written > meta.size) break;
          bar.update(written);
        }
      }
      await pending;
    } catch (e) {
      await pending.catch(() => {});
      await fh.close();
      bar.stop();
      throw new HubError(
        `${ctx.repoId}/${filename}: download interrupted after ${written} of ${meta.size} bytes (${(e as Error).message.split("\n")[0]}); ` +
          `the partial file ${tmp} is kept and a rerun resumes it.`,
        "interrupted", { repoId: ctx.repoId, filename },
      );
    }
    await fh.close();
    bar.stop();
  }
  const got = statSync(tmp).size;
  if (got !== meta.size) {
    rmSync(tmp, { force: true });
    throw new HubError(
      `${ctx.repoId}/${filename}: size mismatch: the Hub announced ${meta.size} bytes, the download has ${got}. The partial file was removed; rerun to retry.`,
      "size-mismatch", { repoId: ctx.repoId, filename },
    );
  }
  if (sha) {
    const digest = sha.digest("hex");
    if (digest !== meta.etag) {
      rmSync(tmp, { force: true });
      throw new HubError(
        `${ctx.repoId}/${filename}: checksum mismatch: sha256 ${digest}, expected ${meta.etag}. The download was removed; rerun to retry.`,
        "checksum-mismatch", { repoId: ctx.repoId, filename },
      );
    }
  }
  // Complete and verified: under its final name only now (fsynced first, so a power cut cannot leave a
  // blob that is whole by name and short on disk).
  fsyncFile(tmp);
  renameInto(tmp, blob);
}

interface Downloaded {
  path: string;
  commit: string;
}

async function download(ctx: Ctx, filename: string): Promise<Downloaded> {
  if (!ctx.refresh) {
    const commit = readRef(ctx.storage, ctx.revision);
    if (commit) {
      const p = join(ctx.storage, "snapshots", commit, filename);
      if (existsSync(p)) return { path: p, commit };
    }
  }
  if (ctx.offline) throw offlineError(ctx.repoId, ctx.storage, ctx.revision, [filename], "HF_HUB_OFFLINE is set (no requests)");
  let meta: FileMeta;
  try {
    meta = await headMeta(ctx, filename);
  } catch (e) {
    const network = e instanceof NetworkError || (e as Error)?.name === "TimeoutError";
    if (!network) throw e;
    // No connection: the cache is all there is (as huggingface_hub).
    const commit = readRef(ctx.storage, ctx.revision);
    const p = commit ? join(ctx.storage, "snapshots", commit, filename) : null;
    if (commit && p && existsSync(p)) return { path: p, commit };
    const why = e instanceof NetworkError ? e.message : `${ctx.endpoint} did not answer within ${ctx.timeoutMs} ms`;
    throw offlineError(ctx.repoId, ctx.storage, ctx.revision, [filename], `the Hub cannot be reached (${why})`);
  }
  if (ctx.revision !== meta.commit) writeFileAtomic(join(ctx.storage, "refs", ctx.revision), meta.commit, { mkdir: true });
  const pointer = join(ctx.storage, "snapshots", meta.commit, filename);
  if (existsSync(pointer)) return { path: pointer, commit: meta.commit };
  const blob = join(ctx.storage, "blobs", meta.etag);
  if (!existsSync(blob)) {
    let p = inFlight.get(blob);
    if (!p) {
      p = downloadBlob(ctx, filename, meta, blob).finally(() => inFlight.delete(blob));
      inFlight.set(blob, p);
    }
    await p;
  }
  linkIntoSnapshot(blob, pointer);
  return { path: pointer, commit: meta.commit };
}

/**
 * The local path of `filename` from model repo `repoId` (snapshots/<commit>/<filename> in the cache),
 * downloading it first when the cache lacks it.
 */
export async function hfHubDownload(repoId: string, filename: string, opts: HubOptions = {}): Promise<string> {
  return (await download(context(repoId, opts), filename)).path;
}

function looksLikePath(s: string): boolean {
  return s.startsWith("/") || s.startsWith("./") || s.startsWith("../") || s.startsWith("~") || s === "." || s === ".." || /^[A-Za-z]:[\\/]/.test(s);
}

/**
 * What a snapshot folder must hold, for one kind of repo (models/files.ts has a model folder's): the
 * files it needs, those fetched when the repo has them, and at most one file that comes either whole or
 * sharded (an index file naming its shards).
 */
export interface SnapshotLayout {
  files: string[];
  optionalFiles: string[];
  sharded?: {
    single: string;
    index: string;
    /** The shard file names an index file names. */
    shards: (indexPath: string) => string[];
    /** The error when the repo has neither `single` nor `index` (after "<repo>@<revision>: "). */
    none: string;
  };
}

/**
 * A local folder holding `layout`'s files: `idOrPath` itself when it is a folder, else the cache
 * snapshot of Hub repo `idOrPath`, filled with the layout's required files, its optional ones when the
 * repo has them, and its sharded file (whole, or the index and its shards). All files come from one
 * commit. A complete cached snapshot is returned with no request.
 */
export async function resolveSnapshot(idOrPath: string, layout: SnapshotLayout, opts: HubOptions = {}): Promise<string> {
  const expanded = idOrPath.startsWith("~/") ? join(homedir(), idOrPath.slice(2)) : idOrPath;
  if (existsSync(expanded) && statSync(expanded).isDirectory()) return expanded;
  if (looksLikePath(idOrPath)) throw new HubError(`model folder ${idOrPath} does not exist`, "not-a-folder");
  const ctx = context(idOrPath, opts);
  const required = layout.files;
  const optional = layout.optionalFiles;
  const sharded = layout.sharded;

  // What the cached snapshot of the revision lacks (all of it when there is none).
  const missingIn = (commit: string | null): { required: string[]; optional: string[] } => {
    const has = (f: string) => commit !== null && existsSync(join(ctx.storage, "snapshots", commit, f));
    const absent = (f: string) => commit !== null && knownMissing(ctx.storage, commit, f);
    const req = required.filter((f) => !has(f));
    const opt = optional.filter((f) => !has(f) && !absent(f));
    if (sharded) {
      if (has(sharded.single)) {
        // whole
      } else if (has(sharded.index)) {
        req.push(...sharded.shards(join(ctx.storage, "snapshots", commit!, sharded.index)).filter((f) => !has(f)));
      } else if (absent(sharded.single)) {
        req.push(sharded.index);
      } else {
        req.push(sharded.single);
      }
    }
    return { required: req, optional: opt };
  };

  let commit = ctx.refresh ? null : readRef(ctx.storage, ctx.revision);
  let todo = missingIn(commit);
  if (commit && todo.required.length === 0 && todo.optional.length === 0) return join(ctx.storage, "snapshots", commit);
  if (ctx.offline) {
    if (commit && todo.required.length === 0) return join(ctx.storage, "snapshots", commit);
    throw offlineError(ctx.repoId, ctx.storage, ctx.revision, todo.required.length ? todo.required : todo.optional, "HF_HUB_OFFLINE is set (no requests)");
  }

  // Download what is missing, all from one commit: the first answer pins the branch to a commit.
  const fetchOne = async (f: string): Promise<Downloaded> => {
    const c = commit ? { ...ctx, revision: commit, refresh: false } : ctx;
    try {
      const d = await download(c, f);
      commit ??= d.commit;
      return d;
    } catch (e) {
      if (e instanceof HubError && e.code === "offline") {
        // Name everything still missing, not just this file.
        const m = missingIn(commit ?? readRef(ctx.storage, ctx.revision));
        throw offlineError(ctx.repoId, ctx.storage, ctx.revision, m.required.length ? m.required : [f], e.reason ?? "the Hub cannot be used");
      }
      throw e;
    }
  };
  const notFound = (e: unknown) => e instanceof HubError && e.code === "entry-not-found";

  // Required files first (shards of a cached index come with the sharded file below).
  for (const f of todo.required.filter((f) => required.includes(f))) await fetchOne(f);
  for (const f of todo.optional) {
    try {
      await fetchOne(f);
    } catch (e) {
      if (!notFound(e)) throw e;
    }
  }
  if (sharded) {
    const snap = () => join(ctx.storage, "snapshots", commit!);
    let index: string | null = commit && existsSync(join(snap(), sharded.index)) ? join(snap(), sharded.index) : null;
    if (!index && !(commit && existsSync(join(snap(), sharded.single)))) {
      try {
        await fetchOne(sharded.single);
      } catch (e) {
        if (!notFound(e)) throw e;
        try {
          index = (await fetchOne(sharded.index)).path;
        } catch (e2) {
          if (!notFound(e2)) throw e2;
          throw new HubError(`${ctx.repoId}@${ctx.revision}: ${sharded.none}`, "entry-not-found", { repoId: ctx.repoId, filename: sharded.single });
        }
      }
    }
    if (index) for (const shard of sharded.shards(index)) await fetchOne(shard);
  }
  commit ??= readRef(ctx.storage, ctx.revision);
  if (!commit) {
    // Nothing was asked for and nothing is cached: pin the revision with one metadata request.
    commit = (await fetchOne(required[0] ?? "config.json")).commit;
  }
  todo = missingIn(commit);
  if (todo.required.length > 0) {
    throw new HubError(`${ctx.repoId}: still missing after download: ${todo.required.join(", ")}`, "entry-not-found", { repoId: ctx.repoId });
  }
  return join(ctx.storage, "snapshots", commit!);
}

/** Download the given files of a repo (all required) and return the snapshot folder. */
export async function snapshotDownload(repoId: string, files: string[], opts: HubOptions = {}): Promise<string> {
  return resolveSnapshot(repoId, { files, optionalFiles: [] }, opts);
}
