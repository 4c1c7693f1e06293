// Reading tasks from disk and resolving `--data`: a path (one task file, a folder of task files, or a
// folder with training/ and evaluation/), a public dataset name (downloaded once), or `synthetic[:N]`.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DATASETS, downloadDataset, type DatasetName, type DownloadOptions } from "./download.ts";
import { ArcDataError, BadTaskFilesError } from "./errors.ts";
import { syntheticDataset, type SyntheticDatasetOptions } from "./synthetic.ts";
import type { Dataset, Task } from "./types.ts";
import { parseTask } from "./validate.ts";
import { isDir } from "../util/fs.ts";
import { isCombinedChallenges, loadChallenges } from "./prize.ts";

/** Read and validate one task file; its id is the file name without `.json`. */
export function loadTask(file: string): Task {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EISDIR" ? "is a folder, not a task file" : err.message;
    throw new ArcDataError(`${file}: ${why}`);
  }
  return parseTask(text, file, path.basename(file).replace(/\.json$/i, ""));
}

/**
 * Every `*.json` task in a folder (not recursive), sorted by id so the order never depends on the file
 * system. A file that fails validation is reported to `bad` (its message names the file and the reason)
 * and left out; without `bad`, the first bad file throws.
 */
export function loadTasks(folder: string, bad?: string[]): Task[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ArcDataError(`${folder}: ${err.code === "ENOENT" ? "no such folder" : err.message}`);
  }
  const files = names.filter((n) => n.toLowerCase().endsWith(".json") && !n.startsWith(".")).sort();
  if (files.length === 0) throw new ArcDataError(`${folder}: no task files (*.json) in this folder`);
  const tasks: Task[] = [];
  for (const n of files) {
    try {
      tasks.push(loadTask(path.join(folder, n)));
    } catch (e) {
      if (!(e instanceof ArcDataError) || !bad) throw e;
      bad.push(e.message);
    }
  }
  return tasks;
}

/** The tasks of an ARC Prize challenges file (solutions filled in from the file beside it), or null for any other file. */
function readCombined(file: string): Task[] | null {
  let json: unknown;
  try {
    const text = readFileSync(file, "utf8");
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return null; // loadTask gives the error
  }
  return isCombinedChallenges(json) ? loadChallenges(file, { json }).tasks : null;
}

/** The folder holding training/ and/or evaluation/ at `dir` or at `dir/data` (an unpacked repository), else null. */
export function findSplitRoot(dir: string): string | null {
  for (const d of [dir, path.join(dir, "data")]) {
    if (isDir(path.join(d, "training")) || isDir(path.join(d, "evaluation"))) return d;
  }
  return null;
}

/** Load a folder with training/ and evaluation/ (either may be absent; at least one must exist). */
export function loadSplitFolder(root: string, name = root, bad?: string[]): Dataset {
  const sub = (s: string) => (isDir(path.join(root, s)) ? loadTasks(path.join(root, s), bad) : []);
  return { name, root, training: sub("training"), evaluation: sub("evaluation") };
}

/** Writes tasks as a folder loadSplitFolder (and `--data`) reads: <root>/<split>/<id>.json, train and test pairs. */
export function writeSplitFolder(root: string, ds: Pick<Dataset, "training" | "evaluation">): string {
  for (const [split, tasks] of [["training", ds.training], ["evaluation", ds.evaluation]] as const) {
    mkdirSync(path.join(root, split), { recursive: true });
    for (const t of tasks) writeFileSync(path.join(root, split, `${t.id}.json`), JSON.stringify({ train: t.train, test: t.test }));
  }
  return root;
}

export interface LoadOptions {
  synthetic?: SyntheticDatasetOptions;
  download?: DownloadOptions;
  /**
   * Leave out task files that fail validation (they go to `onSkip`). Default: any bad file is an error
   * that lists every bad file of the data, in both splits, not only the first.
   */
  skipBadTasks?: boolean;
  /** The messages (file: reason) of the files `skipBadTasks` left out; called once, when there are any. */
  onSkip?: (messages: string[]) => void;
}

/** Applies the bad-task policy to the messages collected while loading. */
function badTaskPolicy(bad: string[], opts: LoadOptions): void {
  if (bad.length === 0) return;
  if (opts.skipBadTasks) {
    opts.onSkip?.(bad);
    return;
  }
  throw new BadTaskFilesError(bad);
}

export const DATA_SPEC_HELP =
  "--data takes a task file, a folder of task files, a folder with training/ and evaluation/, arc-agi-1, arc-agi-2, synthetic or synthetic:N";

/**
 * Why `spec` cannot be `--data`, found without reading any task (a bad N in synthetic:N, a path that does
 * not exist), or null. The message starts with the spec; callers put their flag's name before it.
 */
export function dataSpecProblem(spec: string): string | null {
  const n = /^synthetic:(.*)$/.exec(spec)?.[1];
  if (n !== undefined && !(/^\d+$/.test(n) && Number.isSafeInteger(Number(n)) && Number(n) >= 1))
    return `${spec}: N in synthetic:N is the number of training tasks, a whole number from 1 (e.g. synthetic:6000)`;
  if (isBuiltInData(spec) || existsSync(spec)) return null;
  return `${spec}: no such file or folder (${DATA_SPEC_HELP})`;
}

/**
 * `synthetic` or `synthetic:N` as the generator's options: N training tasks (default 360, 20 per family)
 * beside the same 90 evaluation tasks. Task i of a split has the same seed whatever N is, so synthetic:N
 * extends synthetic's tasks instead of replacing them. Null for any other spec; a bad N is an error.
 */
export function syntheticSpec(spec: string): SyntheticDatasetOptions | null {
  if (spec === "synthetic") return {};
  if (!spec.startsWith("synthetic:")) return null;
  const problem = dataSpecProblem(spec);
  if (problem) throw new ArcDataError(`--data ${problem}`);
  return { training: Number(spec.slice("synthetic:".length)) };
}

/** Whether `spec` is a name the loader knows (not a path): arc-agi-1, arc-agi-2, synthetic or synthetic:N. */
export function isBuiltInData(spec: string): boolean {
  return Object.hasOwn(DATASETS, spec) || /^synthetic(:|$)/.test(spec);
}

/**
 * Resolve `--data`. Names are matched exactly (lower case) before paths: write `./arc-agi-2` for a local folder
 * of that name. A single file or a flat folder has no split: its tasks are both training and evaluation.
 */
export async function loadDataset(spec: string, opts: LoadOptions = {}): Promise<Dataset> {
  const synthetic = syntheticSpec(spec);
  if (synthetic) return syntheticDataset({ ...synthetic, ...opts.synthetic });
  const bad: string[] = [];
  let ds: Dataset;
  if (Object.hasOwn(DATASETS, spec)) {
    const root = await downloadDataset(spec as DatasetName, opts.download);
    ds = loadSplitFolder(root, spec, bad);
  } else {
    if (!existsSync(spec)) throw new ArcDataError(`${spec}: no such file or folder (${DATA_SPEC_HELP})`);
    if (!statSync(spec).isDirectory()) {
      // ARC Prize's combined challenges file (with its solutions file beside it when present), or one task.
      const combined = readCombined(spec);
      if (combined) return { name: spec, root: spec, training: combined, evaluation: combined, flat: true };
      const task = loadTask(spec);
      return { name: spec, root: spec, training: [task], evaluation: [task], flat: true };
    }
    const split = findSplitRoot(spec);
    if (split) ds = loadSplitFolder(split, spec, bad);
    else {
      const tasks = loadTasks(spec, bad);
      ds = { name: spec, root: spec, training: tasks, evaluation: tasks, flat: true };
    }
  }
  badTaskPolicy(bad, opts);
  return ds;
}

/** Find a task by id in a dataset (training first), or null. */
export function findTask(ds: Dataset, id: string): { task: Task; split: "training" | "evaluation" } | null {
  const t = ds.training.find((x) => x.id === id);
  if (t) return { task: t, split: "training" };
  const e = ds.evaluation.find((x) => x.id === id);
  return e ? { task: e, split: "evaluation" } : null;
}
