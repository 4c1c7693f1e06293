// Checkpoints that survive crashes: the folder format, the crash-safe write protocol, verification and
// loading. Which folders to keep (pruning, best/) is retention.ts, what `--checkpoint` names is
// resolve.ts and the second copy is backup.ts; they all write through this file's protocol.
//
// A checkpoint is a folder <run>/checkpoints/step_000000050/ holding
//   model.safetensors, optimizer.safetensors (+ any extra tensor files, e.g. rng.safetensors),
//   state.json (anything JSON: epoch, batch, data order, GradScaler, memory, baseline, metrics, config),
//   manifest.json (written last): {format, version, step, epoch, created, files: {name: {bytes, sha256}}}.
//
// Versions: the manifest's version says which shape state.json has; every version migrations.ts can bring
// forward verifies and loads (as today's shape), one from a newer build is refused, naming its version.
//
// Write protocol: everything goes into checkpoints/.tmp-step_000000050-<pid>-<rand>/, every file and the
// folder are fsynced, the folder is renamed to its final name and checkpoints/ is fsynced. A crash at any
// moment leaves either no folder under the final name or a complete one. An existing folder of the same
// name is first renamed aside (.old-…) and removed once the new one is in place; removal renames a folder
// aside (.del-…) before deleting it, so a half-deleted folder never carries a final name either. Readers
// ignore dot-folders; the next writer removes the ones whose writer is gone (and puts back an .old-…
// folder whose replacement never arrived).
//
//   const dir = saveCheckpoint(run.dir, { step, epoch, tensors: { model, optimizer, rng }, state });
//   const ck = latestVerifiedCheckpoint(run.dir, { onSkip: (d, why) => console.warn(`skipping ${d}: ${why}`) });
//   const { state, tensors } = loadCheckpoint(ck.dir, { device: "cuda" });   // tensors live in the current torch.scope
import { randomBytes } from "node:crypto";
import { constants as fsConstants, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import * as torch from "../../torch";
import { fsyncDir, fsyncFile, installFolder, namesIn, removeFolder, sha256File, writeFileSynced } from "../../util/durable";
import { isDir } from "../../util/fs";
import { pidAlive } from "../../util/process";
import { checkpointsDir } from "./run-folder";
import { migrateState, versionProblem } from "./migrations";

export const CHECKPOINT_FORMAT = "arc-efe-checkpoint";
/** The version this build writes; older ones are read through migrations.ts, which says what each added. */
export const CHECKPOINT_VERSION = 2;
export const MANIFEST = "manifest.json";
export const STATE = "state.json";

export interface FileEntry {
  bytes: number;
  sha256: string;
}
/** What made checkpoints/best/ the best (kept in its manifest; retention.ts writes it). */
export interface BestRecord {
  metric: string;
  value: number;
  /** Step of the checkpoint that holds this value. */
  step: number;
  higherIsBetter: boolean;
  updated: string;
}
export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  step: number;
  epoch: number;
  /** ISO time the checkpoint was written. */
  created: string;
  /** Every file of the checkpoint except manifest.json, with its size and sha256 (hex). */
  files: Record<string, FileEntry>;
  /** Only in checkpoints/best/: what made it the best. */
  best?: BestRecord;
}
export type VerifyResult = { ok: true; manifest: CheckpointManifest } | { ok: false; reason: string };
export interface CheckpointRef {
  step: number;
  dir: string;
}
export type TensorFiles = Record<string, Record<string, torch.Tensor>>;

// ---- names -----------------------------------------------------------------------------------------

const STEP_RE = /^step_(\d+)$/;
/** Dot-folders of the write protocol: .tmp-<name>-<pid>-<rand>, .old-<name>-…, .del-<name>-…. */
const AUX_RE = /^\.(tmp|old|del)-(.+)-(\d+)-([0-9a-f]+)$/;
const FILE_STEM_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
/** A leftover dot-folder this old is removed even when a process with its pid runs (the pid was reused). */
const STALE_MS = 3 * 3600 * 1000;

/** `step_000000050`: the folder name of a global step (zero-padded to 9 digits so names sort by step). */
export function stepDirName(step: number): string {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`checkpoint step must be a non-negative integer, got ${step}`);
  return `step_${String(step).padStart(9, "0")}`;
}

/** The step of a final-named step folder, or null for anything else (best/, .tmp-…, files). */
export function parseStepDir(name: string): number | null {
  const m = STEP_RE.exec(name);
  return m ? Number(m[1]) : null;
}

const rand = () => randomBytes(4).toString("hex");
const auxName = (kind: "tmp" | "old" | "del", name: string) => `.${kind}-${name}-${process.pid}-${rand()}`;

// ---- file helpers ----------------------------------------------------------------------------------

function fileEntry(path: string): FileEntry {
  return { bytes: statSync(path).size, sha256: sha256File(path) };
}

/** Moves a finished (fsynced) temporary folder to its final name, an existing one set aside as .old-… meanwhile. */
const installDir = (tmp: string, final: string): void => installFolder(tmp, final, join(dirname(final), auxName("old", basename(final))));

/** Renames a folder aside (.del-…) then deletes it, so no half-deleted folder keeps a final name. */
export const removeCheckpointFolder = (dir: string): void => removeFolder(dir, join(dirname(dir), auxName("del", basename(dir))));

/**
 * Removes the write protocol's leftovers in a checkpoints folder: .tmp-/.del- folders of writers that are
 * gone (killed mid-write) and .old- folders whose replacement is in place. An .old- folder whose
 * replacement never arrived (a crash between the two renames) is put back under its name if it verifies.
 * Folders of a live writer (another process) are left alone unless hours old. Returns what was removed.
 */
export function cleanupLeftovers(dir: string): string[] {
  const names = namesIn(dir);
  const removed: string[] = [];
  for (const n of names) {
    const m = AUX_RE.exec(n);
    if (!m) continue;
    const path = join(dir, n);
    const [, kind, target, pidStr] = m;
    const pid = Number(pidStr);
    let stale = false;
    try {
      stale = Date.now() - statSync(path).mtimeMs > STALE_MS;
    } catch {
      continue;
    }
    if (pid !== process.pid && pidAlive(pid) && !stale) continue;
    if (kind === "old" && !existsSync(join(dir, target)) && verifyCheckpoint(path).ok) {
      renameSync(path, join(dir, target));
      fsyncDir(dir);
      continue;
    }
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

/**
 * The write protocol for one folder `<parent>/<name>`: the leftovers in `parent` are cleaned, `fill`
 * writes into a fresh .tmp-… folder there, which is fsynced and renamed to its final name (an existing
 * folder of that name set aside meanwhile). On any error the temporary folder is removed and the error
 * rethrown. Returns the final path.
 */
export function writeCheckpointFolder(parent: string, name: string, fill: (tmp: string) => void): string {
  mkdirSync(parent, { recursive: true });
  cleanupLeftovers(parent);
  const tmp = join(parent, auxName("tmp", name));
  mkdirSync(tmp);
  try {
    fill(tmp);
    fsyncDir(tmp);
    installDir(tmp, join(parent, name));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return join(parent, name);
}

/**
 * Copies every file of `src`'s manifest into `dst`, fsyncing each copy. Where the file system can
 * (btrfs, XFS), the copy is a reflink: instant, sharing blocks copy-on-write, so a later write to either
 * file still leaves the other as it was; elsewhere it is a plain copy.
 */
export function copyCheckpointFiles(src: string, dst: string, manifest: CheckpointManifest): void {
  for (const name of Object.keys(manifest.files)) {
    const to = join(dst, name);
    copyFileSync(join(src, name), to, fsConstants.COPYFILE_FICLONE);
    fsyncFile(to);
  }
}

// ---- JSON state ------------------------------------------------------------------------------------

function stateJson(state: unknown): string {
  const walk = (v: unknown, path: string, depth: number): void => {
    if (v instanceof torch.Handle)
      throw new Error(`checkpoint state: ${path} is a tensor; pass tensors as a file (tensors: { rng: {...} }), not in state`);
    if (typeof v === "bigint") throw new Error(`checkpoint state: ${path} is a BigInt, which JSON cannot hold (use a string)`);
    if (v === null || typeof v !== "object" || depth > 64 || ArrayBuffer.isView(v)) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`, depth + 1));
    else for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`, depth + 1);
  };
  walk(state, "state", 0);
  const compact = JSON.stringify(state ?? {});
  // Readable when small; compact when large (a data order of 100k indices, memory tables).
  return (compact.length < 1 << 20 ? JSON.stringify(state ?? {}, null, 2) : compact) + "\n";
}

// ---- save ------------------------------------------------------------------------------------------

export interface SaveCheckpointOptions {
  /** Global step; names the folder (step_000000050). */
  step: number;
  epoch?: number;
  /**
   * Tensor files: each key becomes `<key>.safetensors` (model, optimizer, rng, ...). Names inside a file
   * are the caller's (e.g. `agent.conv.weight`, `agent.state.3.exp_avg`). Tensors may live on any device.
   */
  tensors: TensorFiles;
  /** More tensor files, the same as extra keys of `tensors`. */
  files?: TensorFiles;
  /** Anything JSON, written to state.json. */
  state?: unknown;
  /** String metadata put in every safetensors header (besides `format: "pt"`). */
  metadata?: Record<string, string>;
}

/**
 * Writes a checkpoint folder with the temp-folder + fsync + rename protocol and returns its final path
 * (`<runDir>/checkpoints/step_…`). Leftovers of killed writers are cleaned first; a folder of the same
 * step (a step re-run after resume) is replaced safely.
 */
export function saveCheckpoint(runDir: string, opts: SaveCheckpointOptions): string {
  const name = stepDirName(opts.step);
  const epoch = opts.epoch ?? 0;
  if (!Number.isFinite(epoch)) throw new Error(`checkpoint epoch must be a number, got ${epoch}`);
  const files: TensorFiles = { ...opts.tensors };
  for (const [k, v] of Object.entries(opts.files ?? {})) {
    if (k in files) throw new Error(`checkpoint tensor file "${k}" is given twice (in tensors and in files)`);
    files[k] = v;
  }
  for (const [k, v] of Object.entries(files)) {
    if (!FILE_STEM_RE.test(k) || k === "state" || k === "manifest")
      throw new Error(`checkpoint tensor file name "${k}" is not allowed (letters, digits, "_", "-"; not "state" or "manifest")`);
    if (v === null || typeof v !== "object") throw new Error(`checkpoint tensor file "${k}" must be a {name: Tensor} record`);
  }
  const state = stateJson(opts.state);

  return writeCheckpointFolder(checkpointsDir(runDir), name, (tmp) => {
    const entries: Record<string, FileEntry> = {};
    for (const [stem, tensors] of Object.entries(files)) {
      const file = `${stem}.safetensors`;
      torch.safetensors.saveFile(join(tmp, file), tensors, { format: "pt", ...opts.metadata });
      entries[file] = fileEntry(join(tmp, file));
    }
    writeFileSynced(join(tmp, STATE), state);
    entries[STATE] = fileEntry(join(tmp, STATE));
    const manifest: CheckpointManifest = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      step: opts.step,
      epoch,
      created: new Date().toISOString(),
      files: entries,
    };
    writeFileSynced(join(tmp, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
  });
}

// ---- list, verify ----------------------------------------------------------------------------------

/** Final-named step folders of a run, oldest step first (dot-folders and best/ are not listed). */
export function listCheckpoints(runDir: string): CheckpointRef[] {
  const ck = checkpointsDir(runDir);
  const names = namesIn(ck);
  const out: CheckpointRef[] = [];
  for (const n of names) {
    const step = parseStepDir(n);
    if (step !== null && isDir(join(ck, n))) out.push({ step, dir: join(ck, n) });
  }
  return out.sort((a, b) => a.step - b.step);
}

export interface VerifyOptions {
  /** Check sha256 too (default true); false checks presence and sizes only. */
  hash?: boolean;
}

/** Reads and checks manifest.json's shape; returns it or the reason it is unusable. */
export function readManifest(dir: string): VerifyResult {
  const path = join(dir, MANIFEST);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { ok: false, reason: isDir(dir) ? `${MANIFEST} is missing (the checkpoint was never finished)` : "the folder does not exist" };
    return { ok: false, reason: `${MANIFEST} cannot be read (${(e as Error).message})` };
  }
  let m: any;
  try {
    m = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: `${MANIFEST} is not valid JSON (${(e as Error).message})` };
  }
  if (m === null || typeof m !== "object" || Array.isArray(m)) return { ok: false, reason: `${MANIFEST} is not a JSON object` };
  if (m.format !== CHECKPOINT_FORMAT) return { ok: false, reason: `${MANIFEST} has format ${JSON.stringify(m.format)}, expected "${CHECKPOINT_FORMAT}"` };
  const tooNew = versionProblem(m.version, CHECKPOINT_VERSION);
  if (tooNew) return { ok: false, reason: `${MANIFEST} ${tooNew}` };
  if (!Number.isSafeInteger(m.step) || m.step < 0) return { ok: false, reason: `${MANIFEST} has no valid "step"` };
  if (m.files === null || typeof m.files !== "object" || Array.isArray(m.files)) return { ok: false, reason: `${MANIFEST} has no "files" table` };
  for (const [name, e] of Object.entries<any>(m.files)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) || name === MANIFEST)
      return { ok: false, reason: `${MANIFEST} lists an invalid file name ${JSON.stringify(name)}` };
    if (e === null || typeof e !== "object" || !Number.isSafeInteger(e.bytes) || e.bytes < 0 || typeof e.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(e.sha256))
      return { ok: false, reason: `${MANIFEST} has a malformed entry for ${name}` };
  }
  return { ok: true, manifest: m as CheckpointManifest };
}

/**
 * Checks a checkpoint folder: manifest.json present and well-formed, every file it lists present with the
 * listed size and sha256. The reason names the file and what is wrong with it.
 */
export function verifyCheckpoint(dir: string, opts: VerifyOptions = {}): VerifyResult {
  const r = readManifest(dir);
  if (!r.ok) return r;
  for (const [name, e] of Object.entries(r.manifest.files)) {
    const path = join(dir, name);
    let size: number;
    try {
      const st = statSync(path);
      if (!st.isFile()) return { ok: false, reason: `${name} is not a file` };
      size = st.size;
    } catch {
      return { ok: false, reason: `${name} is missing` };
    }
    if (size !== e.bytes)
      return { ok: false, reason: `${name} has ${size} bytes, the manifest says ${e.bytes} (${size < e.bytes ? "truncated" : "grown"})` };
    if (opts.hash !== false) {
      let sha: string;
      try {
        sha = sha256File(path);
      } catch (err) {
        return { ok: false, reason: `${name} cannot be read (${(err as Error).message})` };
      }
      if (sha !== e.sha256) return { ok: false, reason: `${name} is corrupt: sha256 ${sha.slice(0, 12)}… differs from the manifest's ${e.sha256.slice(0, 12)}…` };
    }
  }
  return r;
}

export interface LatestOptions {
  /** Called for every newer checkpoint that fails verification (the caller prints it). */
  onSkip?: (dir: string, reason: string) => void;
  /** Why a verified checkpoint still cannot serve the caller (e.g. it holds no weights), or null. */
  unusable?: (manifest: CheckpointManifest) => string | null;
}

/** A checkpoint folder to try: a step folder (its step from the name) or another one (best/: step null). */
export interface CandidateRef {
  dir: string;
  step: number | null;
}

/**
 * The first of `candidates` (in their order) that verifies (sizes and sha256), whose manifest's step is
 * its folder name's (step folders), and that `unusable` accepts; each one that fails goes to `onSkip`
 * with the reason. Candidates are verified only when reached: what follows an intact one is not read.
 */
export function firstVerified<C extends CandidateRef>(candidates: Iterable<C>, opts: LatestOptions = {}): (C & { manifest: CheckpointManifest }) | null {
  for (const c of candidates) {
    const v = verifyCheckpoint(c.dir);
    let why = v.ok ? null : v.reason;
    if (v.ok && c.step !== null && v.manifest.step !== c.step) why = `${MANIFEST} says step ${v.manifest.step}, the folder name says ${c.step}`;
    if (v.ok && why === null) why = opts.unusable?.(v.manifest) ?? null;
    if (v.ok && why === null) return { ...c, manifest: v.manifest };
    opts.onSkip?.(c.dir, why!);
  }
  return null;
}

/** The newest step folder that verifies (sizes and sha256); corrupt newer ones go to `onSkip`. */
export function latestVerifiedCheckpoint(runDir: string, opts: LatestOptions = {}): (CheckpointRef & { manifest: CheckpointManifest }) | null {
  return firstVerified(listCheckpoints(runDir).reverse(), opts);
}

export interface LoadCheckpointOptions {
  device?: torch.Device;
  /** Verify sizes and sha256 first (default true). */
  verify?: boolean;
  /** Load only these tensor files (stems: "model", "optimizer", ...); default all. */
  files?: string[];
}
export interface LoadedCheckpoint {
  dir: string;
  manifest: CheckpointManifest;
  /** state.json, parsed and brought to CHECKPOINT_VERSION's shape (migrations.ts). */
  state: any;
  /** One record per tensor file, keyed by its stem: tensors.model, tensors.optimizer, tensors.rng, ... */
  tensors: TensorFiles;
}

/** A checkpoint's state.json ({} when it has none), parsed and migrated to CHECKPOINT_VERSION's shape. */
function stateOf(dir: string, manifest: CheckpointManifest): any {
  if (!(STATE in manifest.files)) return {};
  let state: unknown;
  try {
    state = JSON.parse(readFileSync(join(dir, STATE), "utf8"));
  } catch (e) {
    throw new Error(`checkpoint ${dir}: ${STATE} is not valid JSON (${(e as Error).message})`);
  }
  return migrateState(state, manifest, CHECKPOINT_VERSION);
}

/**
 * A checkpoint's state.json as loadCheckpoint gives it (migrated), without verifying the files or loading
 * tensors: for a quick look (the run's world size) before the checkpoint is chosen. Throws when the
 * manifest or state.json cannot be read.
 */
export function readCheckpointState(dir: string): any {
  const r = readManifest(dir);
  if (!r.ok) throw new Error(`checkpoint ${dir} is unusable: ${r.reason}`);
  return stateOf(dir, r.manifest);
}

/**
 * Loads a checkpoint (verified first: a corrupt one throws, naming the file); the state of an older
 * version is migrated (migrations.ts). Tensors are created in the
 * current torch.scope (freed at its end unless torch.keep-ed): copy them into modules/optimizers there.
 */
export function loadCheckpoint(dir: string, opts: LoadCheckpointOptions = {}): LoadedCheckpoint {
  const v = opts.verify === false ? readManifest(dir) : verifyCheckpoint(dir);
  if (!v.ok) throw new Error(`checkpoint ${dir} is unusable: ${v.reason}`);
  const manifest = v.manifest;
  const state = stateOf(dir, manifest);
  const stems = Object.keys(manifest.files).filter((f) => f.endsWith(".safetensors")).map((f) => f.slice(0, -".safetensors".length));
  if (opts.files) {
    const missing = opts.files.filter((f) => !stems.includes(f));
    if (missing.length) throw new Error(`checkpoint ${dir} has no ${missing.map((m) => `${m}.safetensors`).join(", ")} (it has ${stems.map((s) => `${s}.safetensors`).join(", ") || "no tensor files"})`);
  }
  const tensors: TensorFiles = {};
  try {
    for (const stem of opts.files ?? stems) tensors[stem] = torch.safetensors.loadFile(join(dir, `${stem}.safetensors`), { device: opts.device });
  } catch (e) {
    for (const rec of Object.values(tensors)) for (const t of Object.values(rec)) t.dispose();
    throw e;
  }
  return { dir, manifest, state, tensors };
}

/** Total bytes of a checkpoint's files (for logs). */
export function checkpointBytes(manifest: CheckpointManifest): number {
  return Object.values(manifest.files).reduce((a, e) => a + e.bytes, 0);
}
