// What an evaluation's outputs say beside the scores (scripts/eval.ts, scripts/predict.ts): the settings that
// change the answers and the folder named after them (an earlier evaluation is never overwritten), the
// Kaggle score of the attempts, the copy-the-input baseline, a table per synthetic family, and where each
// attempt came from.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FAMILY_NAMES, type Grid, resizeNearest, scoreSubmission, type Submission, type SubmissionScore } from "../../arc/index";
import type { ExampleEval } from "./evaluate";
import { TTT_DEFAULTS } from "./ttt-defaults";
import { cellAccuracy } from "../objective/reward";

/** The settings that change an evaluation's answers (not --batch_size, which changes only memory and time). */
export interface EvalSettings {
  votes: number;
  vote_seed: number;
  ttt_steps: number;
  ttt_lr: number;
  ttt_batch: number;
  ttt_seed: number;
  ttt_qwen: boolean;
  /** At most this many examples (0: all). */
  max: number;
}

export const DEFAULT_EVAL_SETTINGS: EvalSettings = { votes: 1, vote_seed: 0, ttt_steps: 0, ttt_lr: TTT_DEFAULTS.lr, ttt_batch: TTT_DEFAULTS.batch, ttt_seed: 0, ttt_qwen: false, max: 0 };

/** The settings' part of a folder name: empty for plain evaluation, else `_votes8`, `_ttt8_lr0.001_b2`, ... */
export function settingsSuffix(s: EvalSettings): string {
  const parts: string[] = [];
  if (s.votes > 1) parts.push(`votes${s.votes}${s.vote_seed ? `_vseed${s.vote_seed}` : ""}`);
  if (s.ttt_steps > 0) parts.push(`ttt${s.ttt_steps}_lr${s.ttt_lr}_b${s.ttt_batch}${s.ttt_seed ? `_tseed${s.ttt_seed}` : ""}${s.ttt_qwen ? "_qwen" : ""}`);
  if (s.max > 0) parts.push(`max${s.max}`);
  return parts.length ? `_${parts.join("_")}` : "";
}

/** What identifies an evaluation: an eval.json with the same identity is the same evaluation, run again. */
export interface EvalIdentity {
  checkpoint: string;
  step: number;
  split: string;
  data: string;
  settings: EvalSettings;
}

const sameIdentity = (a: Partial<EvalIdentity>, b: EvalIdentity) =>
  a.checkpoint === b.checkpoint && a.step === b.step && a.split === b.split && a.data === b.data && JSON.stringify(a.settings) === JSON.stringify(b.settings);

/**
 * The folder for an evaluation: `stem` (a path whose name already carries the settings' suffix), or `stem_2`,
 * `stem_3`, ... when that folder holds another evaluation (another step of best/, other data, or an eval.json
 * from before settings were recorded). The same evaluation run again, or a folder without eval.json (made
 * by the output probe, or left by an evaluation that never finished), reuses its folder.
 */
export function evaluationFolder(stem: string, id: EvalIdentity): string {
  for (let k = 1; ; k++) {
    const dir = k === 1 ? stem : `${stem}_${k}`;
    const file = join(dir, "eval.json");
    if (!existsSync(file)) return dir;
    try {
      if (sameIdentity(JSON.parse(readFileSync(file, "utf8")), id)) return dir;
    } catch {
      // unreadable: not ours to overwrite; go on
    }
  }
}

/** The evaluated examples as an ARC Prize submission (a task's entries in test order; only test examples). */
export function submissionOf(results: readonly ExampleEval[]): Submission {
  const sub: Submission = {};
  const tests = results.filter((r) => r.kind === "test");
  for (const r of [...tests].sort((a, b) => a.index - b.index)) (sub[r.task] ??= []).push({ attempt_1: r.attempts[0], attempt_2: r.attempts[1] });
  return sub;
}

/** The Kaggle score of evaluated test examples against their targets (what predict.ts --solutions prints). */
export function kaggleScore(results: readonly ExampleEval[]): SubmissionScore {
  const tests = results.filter((r) => r.kind === "test");
  const sol = new Map<string, Grid[]>();
  for (const r of [...tests].sort((a, b) => a.index - b.index)) sol.set(r.task, [...(sol.get(r.task) ?? []), r.target]);
  return scoreSubmission(submissionOf(tests), sol);
}

/** What copying each input, resized to the target's size, scores (bench/arc.ts's baseline; README cites it). */
export function copyInputBaseline(results: readonly ExampleEval[]): { cellAcc: number; exact: number; examples: number } {
  let acc = 0;
  let exact = 0;
  for (const r of results) {
    const c = cellAccuracy(resizeNearest(r.input, r.target.length, r.target[0]!.length), r.target);
    acc += c;
    if (c === 1) exact++;
  }
  return { cellAcc: acc / Math.max(1, results.length), exact, examples: results.length };
}

/** The synthetic family of a task id (`<family>-<seed>`), or null. */
export function familyOf(id: string): string | null {
  const m = /^(.*)-\d+$/.exec(id);
  return m && (FAMILY_NAMES as readonly string[]).includes(m[1]!) ? m[1]! : null;
}

export interface FamilyRow {
  family: string;
  examples: number;
  pass2: number;
  exactFirst: number;
  cellAcc: number;
  copyCellAcc: number;
}

/** One row per synthetic family (null when any task is not synthetic). */
export function familyTable(results: readonly ExampleEval[]): FamilyRow[] | null {
  if (results.length === 0 || results.some((r) => familyOf(r.task) === null)) return null;
  const by = Map.groupBy(results, (r) => familyOf(r.task)!);
  return [...by.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([family, rs]) => ({
      family,
      examples: rs.length,
      pass2: rs.filter((r) => r.correct).length,
      exactFirst: rs.filter((r) => r.firstCorrect).length,
      cellAcc: rs.reduce((a, r) => a + r.cellAccAfter, 0) / rs.length,
      copyCellAcc: copyInputBaseline(rs).cellAcc,
    }));
}

/**
 * Where each attempt came from, for labels: before/after refinement; with votes, the vote ranks and their
 * counts; with test-time training, that it came after it.
 */
export function attemptSources(e: Pick<ExampleEval, "votes" | "ttt" | "attempts">): [string, string] {
  const ttt = e.ttt ? "after TTT, " : "";
  if (e.votes && e.votes.length) {
    const same = (a: Grid, b: Grid) => JSON.stringify(a) === JSON.stringify(b);
    return e.attempts.map((g, k) => {
      const rank = e.votes!.findIndex((v) => same(v.grid, g));
      return rank < 0 ? `${ttt}vote rank ${k + 1}` : `${ttt}vote rank ${rank + 1}, ${e.votes![rank]!.votes} vote${e.votes![rank]!.votes === 1 ? "" : "s"}`;
    }) as [string, string];
  }
  return [`${ttt}before refinement`, `${ttt}after refinement`];
}
