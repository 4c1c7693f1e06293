// Run folders (docs/pipeline.md, "Checkpoint format"): runs/arc_YYYYMMDD_HHMMSS/ with config.json, metrics.jsonl and checkpoints/.
//
//   const run = createRun("runs", config);          // runs/arc_20250101_120000/ (…_2 if that second is taken)
//   appendMetrics(run.dir, { step: 50, efe_loss: 3.45 });
//   readMetrics(run.dir);                            // a line torn by a crash is skipped
//   latestRun("runs");                               // newest run that has a checkpoint (for --resume)
//
// Folder names use local time, like Python's datetime.now().strftime("%Y%m%d_%H%M%S").
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsyncDir, namesIn, writeFileAtomic, writeFileSynced } from "../../util/durable";
import { isDir } from "../../util/fs";

export const RUN_PREFIX = "arc_";
/** `arc_YYYYMMDD_HHMMSS`, with `_N` (N >= 2) when several runs start in the same second. */
export const RUN_NAME_RE = /^arc_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})(?:_(\d+))?$/;
/** The folder of a run that holds its checkpoints (step folders and best/). */
export const CHECKPOINTS = "checkpoints";
/** `<runDir>/checkpoints`. */
export const checkpointsDir = (runDir: string) => join(runDir, CHECKPOINTS);
/** Final-named checkpoint step folders (temporary ones start with a dot). */
const STEP_DIR_RE = /^step_\d+$/;

export interface Run {
  /** The run folder. */
  dir: string;
  /** Its folder name (e.g. `arc_20250101_120000`). */
  name: string;
  configPath: string;
  metricsPath: string;
  checkpointsDir: string;
}

function runOf(dir: string): Run {
  return {
    dir,
    name: basename(dir),
    configPath: join(dir, "config.json"),
    metricsPath: join(dir, "metrics.jsonl"),
    checkpointsDir: checkpointsDir(dir),
  };
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** `arc_YYYYMMDD_HHMMSS` for a time (local). */
export function runName(date: Date = new Date()): string {
  return `${RUN_PREFIX}${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}_${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
}

export interface CreateRunOptions {
  /** Folder name instead of `arc_YYYYMMDD_HHMMSS` (still made unique with `_N`). */
  name?: string;
  /** The time the name is made from (default now). */
  now?: Date;
}

/**
 * Creates `<baseDir>/arc_YYYYMMDD_HHMMSS/` (or `opts.name`) with config.json, an empty metrics.jsonl and
 * checkpoints/. Folder creation is exclusive, so two runs started in the same second (even by two
 * processes) get distinct folders: the second becomes `…_2`, then `…_3`, ...
 */
export function createRun(baseDir: string, config: unknown, opts: CreateRunOptions = {}): Run {
  const base = opts.name ?? runName(opts.now);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(base))
    throw new Error(`run name ${JSON.stringify(base)} is not a plain folder name (letters, digits, "_", ".", "-")`);
  mkdirSync(baseDir, { recursive: true });
  let dir = "";
  for (let i = 1; ; i++) {
    const candidate = join(baseDir, i === 1 ? base : `${base}_${i}`);
    try {
      mkdirSync(candidate);
      dir = candidate;
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || i >= 10000) throw e;
    }
  }
  const run = runOf(dir);
  mkdirSync(run.checkpointsDir);
  writeFileSynced(run.configPath, JSON.stringify(config ?? {}, null, 2) + "\n");
  writeFileSynced(run.metricsPath, "");
  fsyncDir(dir);
  fsyncDir(baseDir);
  return run;
}

/** An existing run folder (for --run DIR / --resume); throws when `dir` is not one. */
export function openRun(dir: string): Run & { config: unknown } {
  if (!isRunDir(dir)) throw new Error(`${dir} is not a run folder (no config.json or checkpoints/ in it)`);
  const run = runOf(dir);
  let config: unknown = null;
  if (existsSync(run.configPath)) {
    try {
      config = JSON.parse(readFileSync(run.configPath, "utf8"));
    } catch (e) {
      throw new Error(`${run.configPath} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return { ...run, config };
}

function isRunDir(dir: string): boolean {
  return isDir(dir) && (existsSync(join(dir, "config.json")) || existsSync(checkpointsDir(dir)));
}

/** Whether a run has at least one final-named checkpoint (a step folder or best/). */
export function hasCheckpoint(runDir: string): boolean {
  const names = namesIn(checkpointsDir(runDir));
  return names.some((n) => STEP_DIR_RE.test(n) || n === "best");
}

/** Sort key of a run folder: the time in its name (else the folder's mtime), then the `_N` suffix. */
function runKey(dir: string): [number, number] {
  const m = RUN_NAME_RE.exec(basename(dir));
  if (m) {
    const t = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]).getTime();
    return [t, m[7] ? Number(m[7]) : 1];
  }
  let t = 0;
  try {
    t = statSync(dir).mtimeMs;
  } catch {}
  return [t, 1];
}

/** Every run folder under `baseDir`, oldest first (by the time in the name, then the suffix). */
export function listRuns(baseDir: string): string[] {
  const names = namesIn(baseDir);
  const dirs = names.filter((n) => !n.startsWith(".")).map((n) => join(baseDir, n)).filter(isRunDir);
  const keys = new Map(dirs.map((d) => [d, runKey(d)]));
  return dirs.sort((a, b) => {
    const [ta, sa] = keys.get(a)!;
    const [tb, sb] = keys.get(b)!;
    return ta - tb || sa - sb || (a < b ? -1 : a > b ? 1 : 0);
  });
}

/**
 * The newest run folder under `baseDir` that has at least one checkpoint (with `withCheckpoint: false`,
 * the newest run at all); null when there is none.
 */
export function latestRun(baseDir: string, opts: { withCheckpoint?: boolean } = {}): string | null {
  const runs = listRuns(baseDir);
  for (let i = runs.length - 1; i >= 0; i--) {
    if (opts.withCheckpoint === false || hasCheckpoint(runs[i])) return runs[i];
  }
  return null;
}

export interface AppendOptions {
  /** fsync after the write (default true; a metrics line is written every few seconds at most). */
  sync?: boolean;
}

/**
 * Appends one JSON line to `<runDir>/metrics.jsonl`. When the file ends in a line torn by a crash (no
 * final newline), a newline is written first so the torn line stays alone and this record stays whole.
 */
export function appendMetrics(runDir: string, record: Record<string, unknown>, opts: AppendOptions = {}): void {
  const path = join(runDir, "metrics.jsonl");
  const line = JSON.stringify(record);
  if (line === undefined || line.includes("\n")) throw new Error("metrics record must serialise to one JSON line");
  const fd = openSync(path, "a+");
  try {
    let prefix = "";
    const size = fstatSync(fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) prefix = "\n";
    }
    const buf = Buffer.from(prefix + line + "\n");
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (opts.sync !== false) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface ReadMetricsOptions {
  /** Called for each line that is not a JSON object (a line torn by a crash), with its 1-based number. */
  onSkip?: (lineNo: number, text: string) => void;
}

/** The records of `<runDir>/metrics.jsonl` in order; a torn or garbled line is skipped (and reported). */
export function readMetrics(runDir: string, opts: ReadMetricsOptions = {}): Record<string, any>[] {
  const path = join(runDir, "metrics.jsonl");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: Record<string, any>[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      v = undefined;
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v)) out.push(v as Record<string, any>);
    else opts.onSkip?.(i + 1, line);
  });
  return out;
}

/**
 * Rewrites metrics.jsonl atomically keeping only the records `keep` accepts (and dropping torn lines):
 * on resume from step S, `trimMetrics(dir, (r) => !(r.step > S))` drops the log of the abandoned steps.
 * Returns how many records were dropped.
 */
export function trimMetrics(runDir: string, keep: (record: Record<string, any>) => boolean): number {
  const records = readMetrics(runDir);
  const kept = records.filter(keep);
  writeFileAtomic(join(runDir, "metrics.jsonl"), kept.map((r) => JSON.stringify(r) + "\n").join(""));
  return records.length - kept.length;
}

