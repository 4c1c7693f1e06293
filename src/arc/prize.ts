// ARC Prize's file formats (the Kaggle competition's data and submissions):
//   challenges  arc-agi_evaluation_challenges.json  {"<task id>": {"train": [{input, output}...], "test": [{input}...]}}
//   solutions   arc-agi_evaluation_solutions.json   {"<task id>": [<test output grid>, ...]}   (one per test input, in order)
//   submission  submission.json                     {"<task id>": [{"attempt_1": grid, "attempt_2": grid}, ...]}
// A test input counts when either attempt equals its output exactly; a task scores the share of its test
// inputs that count, and the submission the mean over the tasks (the Kaggle scorer's rule).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { ArcDataError } from "./errors.ts";
import type { Grid, Task } from "./types.ts";
import { describe, validateGrid, validateTask } from "./validate.ts";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ArcDataError(`${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`);
  }
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw new ArcDataError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Whether parsed JSON is a combined challenges file rather than one task: an object of tasks keyed by id
 * (a task file has "train" and "test" at its top).
 */
export function isCombinedChallenges(json: unknown): json is Record<string, unknown> {
  if (!isObject(json) || Object.hasOwn(json, "train") || Object.hasOwn(json, "test")) return false;
  const keys = Object.keys(json);
  return keys.length > 0 && keys.every((k) => isObject(json[k]));
}

/** The solutions file ARC Prize ships beside a challenges file (`..._challenges.json` -> `..._solutions.json`), or null. */
export function solutionsFileFor(challenges: string): string | null {
  const base = path.basename(challenges);
  if (!/challenges/i.test(base)) return null;
  const sol = path.join(path.dirname(challenges), base.replace(/challenges/i, (m) => (m === "CHALLENGES" ? "SOLUTIONS" : "solutions")));
  return existsSync(sol) ? sol : null;
}

/**
 * Validates a solutions file's JSON against its tasks: every task has a list with one grid per test input.
 * Errors are one line naming the file, the task and the test index.
 */
export function parseSolutions(json: unknown, source: string, tasks: readonly Task[]): Map<string, Grid[]> {
  if (!isObject(json)) throw new ArcDataError(`${source}: is ${describe(json)}, not an object of task ids to lists of test outputs`);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const out = new Map<string, Grid[]>();
  for (const [id, v] of Object.entries(json)) {
    const task = byId.get(id);
    if (!task) throw new ArcDataError(`${source}: task ${id}: not among the challenges' tasks`);
    if (!Array.isArray(v)) throw new ArcDataError(`${source}: task ${id}: is ${describe(v)}, not a list of test outputs`);
    if (v.length !== task.test.length) throw new ArcDataError(`${source}: task ${id}: ${v.length} test output(s) for ${task.test.length} test input(s)`);
    out.set(id, v.map((g, i) => validateGrid(g, `${source}: task ${id}: test[${i}]`)));
  }
  return out;
}

/**
 * Tasks of a combined challenges JSON, sorted by id (as a folder of task files loads), each validated with
 * messages `<file>: task <id>: test[1].input: ...`; with `solutions`, their outputs filled in.
 */
export function parseChallenges(json: Record<string, unknown>, source: string, solutions?: { json: unknown; source: string }): Task[] {
  const tasks = Object.keys(json)
    .sort()
    .map((id) => validateTask(json[id], `${source}: task ${id}`, id));
  if (!solutions) return tasks;
  const sol = parseSolutions(solutions.json, solutions.source, tasks);
  return tasks.map((t) => {
    const outs = sol.get(t.id);
    return outs ? { ...t, test: t.test.map((p, i) => ({ input: p.input, output: outs[i] })) } : t;
  });
}

/** Reads a combined challenges file (and its solutions file: `solutions`, else the one beside it when present). */
export function loadChallenges(file: string, opts: { solutions?: string | null; json?: unknown } = {}): { tasks: Task[]; solutions: string | null } {
  const json = opts.json ?? readJson(file);
  if (!isCombinedChallenges(json)) throw new ArcDataError(`${file}: not an ARC Prize challenges file (an object of tasks keyed by id)`);
  const solFile = opts.solutions === undefined ? solutionsFileFor(file) : opts.solutions;
  const tasks = parseChallenges(json, file, solFile ? { json: readJson(solFile), source: solFile } : undefined);
  return { tasks, solutions: solFile };
}

/** A solutions file's outputs, checked against the tasks they answer. */
export function loadSolutions(file: string, tasks: readonly Task[]): Map<string, Grid[]> {
  return parseSolutions(readJson(file), file, tasks);
}

// ---------------------------------------------------------------- submissions

export interface Attempts {
  attempt_1: Grid;
  attempt_2: Grid;
}
export type Submission = Record<string, Attempts[]>;

/**
 * Checks a submission against the tasks it answers: every task present with one entry per test input,
 * each with attempt_1 and attempt_2 grids. Returns the problems (empty when it is well formed).
 */
export function submissionProblems(sub: unknown, tasks: readonly Task[]): string[] {
  if (!isObject(sub)) return [`the submission is ${describe(sub)}, not an object of task ids`];
  const problems: string[] = [];
  for (const t of tasks) {
    const v = sub[t.id];
    if (!Array.isArray(v)) {
      problems.push(`task ${t.id}: ${v === undefined ? "missing" : `is ${describe(v)}, not a list`}`);
      continue;
    }
    if (v.length !== t.test.length) problems.push(`task ${t.id}: ${v.length} entries for ${t.test.length} test input(s)`);
    v.forEach((e: unknown, i) => {
      for (const k of ["attempt_1", "attempt_2"]) {
        try {
          validateGrid(isObject(e) ? e[k] : undefined, `task ${t.id}: [${i}].${k}`);
        } catch (err) {
          problems.push((err as Error).message);
        }
      }
    });
  }
  const known = new Set(tasks.map((t) => t.id));
  for (const id of Object.keys(sub)) if (!known.has(id)) problems.push(`task ${id}: not among the tasks`);
  return problems;
}

const sameGrid = (a: Grid, b: Grid) => a.length === b.length && a.every((r, i) => r.length === b[i]!.length && r.every((v, j) => v === b[i]![j]));

export interface SubmissionScore {
  /** Mean over tasks of the share of its test inputs solved (the Kaggle score). */
  score: number;
  /** Sum of the tasks' shares (the leaderboard's "tasks" count, fractional for multi-test tasks). */
  taskPoints: number;
  tasks: number;
  /** Test inputs with either attempt right, and all test inputs scored. */
  solved: number;
  outputs: number;
  /** Per task: which test inputs were solved. */
  perTask: Record<string, boolean[]>;
}

/** Scores a submission against solutions by ARC Prize's rule; a missing entry or attempt counts as wrong. */
export function scoreSubmission(sub: Submission, solutions: Map<string, Grid[]>): SubmissionScore {
  const perTask: Record<string, boolean[]> = {};
  let taskPoints = 0;
  let solved = 0;
  let outputs = 0;
  for (const [id, outs] of solutions) {
    const entries = sub[id] ?? [];
    const hits = outs.map((g, i) => {
      const e = entries[i];
      return !!e && [e.attempt_1, e.attempt_2].some((a) => Array.isArray(a) && sameGrid(a, g));
    });
    perTask[id] = hits;
    solved += hits.filter(Boolean).length;
    outputs += hits.length;
    taskPoints += hits.length ? hits.filter(Boolean).length / hits.length : 0;
  }
  const tasks = solutions.size;
  return { score: tasks ? taskPoints / tasks : 0, taskPoints, tasks, solved, outputs, perTask };
}
