// scripts/predict.ts's work: a trained checkpoint answers every test input of every task (outputs absent
// or ignored), written as an ARC Prize submission with a report.html; with solutions, scored by the
// Kaggle rule. The attempts come from evaluate() exactly as eval.ts makes them (same batches, votes, TTT),
// so on the same tasks the score is eval.ts's.
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { type Example, type Grid, type Task, escapeHtml, loadDataset, loadSolutions, scoreSubmission, type Submission, type SubmissionScore } from "../../arc/index";
import * as torch from "../../torch";
import type { TrainConfig } from "../config/train-config";
import { type EvalOptions as EvalOptionsOf, type ExampleEval, evaluate } from "../eval/evaluate";
import { attemptSources, submissionOf } from "../eval/output";
import { type HtmlItem, evaluationPage } from "../eval/html";
import { probeWritable } from "../run/probe";
import { evalSettings, loadForEvaluation, settingsLabel } from "./eval-checkpoint";
import { autocastFor, systemConfig, useThreads } from "../config/run-setup";
import { buildSystem } from "../system/system";
import { restoreSystem } from "../run/training-state";
import { progress } from "../../util/progress";

export interface PredictOptions {
  checkpoint: string;
  runDir?: string;
  runsBase: string;
  /** The tasks: a challenges file, a task file or folder, a dataset name (required). */
  data: string;
  /** Which split of a dataset with both (default evaluation; a file or flat folder has one list). */
  split?: "evaluation" | "training";
  device?: string;
  batchSize?: number;
  votes?: number;
  voteSeed?: number;
  ttt?: EvalOptionsOf["ttt"];
  /** ARC Prize solutions to score the submission against. */
  solutions?: string;
  /** The submission file (its folder gets report.html unless `report` says otherwise). */
  out: string;
  report?: string;
  quiet?: boolean;
  log?: (line: string) => void;
}

export interface PredictResult {
  submission: Submission;
  score: SubmissionScore | null;
  out: string;
  report: string;
  tasks: number;
  outputs: number;
}

/**
 * The task with every test output replaced by its input, a placeholder: evaluate() scores what it
 * predicts, and here nothing it reads may come from a real output (the prompt and the size rules read only
 * demonstrations and test inputs; the scores of this pass are thrown away).
 */
function masked(task: Task): Task {
  return { ...task, test: task.test.map((p) => ({ input: p.input, output: p.input })) };
}

export async function runPrediction(o: PredictOptions): Promise<PredictResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const out = resolve(o.out);
  const reportPath = resolve(o.report ?? join(dirname(out), "report.html"));
  probeWritable(dirname(out), `--out ${o.out}`);
  probeWritable(dirname(reportPath), `--report ${reportPath}`);
  // The data and the solutions are checked before the checkpoint loads: a bad file is an error before any work.
  const ds = await loadDataset(o.data);
  const tasks = o.split === "training" ? ds.training : ds.evaluation;
  if (tasks.length === 0) throw new Error(`no tasks in the ${o.split ?? "evaluation"} split of ${o.data}`);
  const solutions = o.solutions ? loadSolutions(o.solutions, tasks) : null;
  const { ck, state, saved, device, weights } = loadForEvaluation({ checkpoint: o.checkpoint, runDir: o.runDir, runsBase: o.runsBase, split: "evaluation", max: 0, out: dirname(out), device: o.device });
  const cfg: TrainConfig = { ...saved, device, data: o.data };
  useThreads(cfg.num_threads);
  const examples: Example[] = tasks.map(masked).flatMap((task) => task.test.map((_, index): Example => ({ task, index, kind: "test" })));

  const sys = await buildSystem(systemConfig(cfg), { quiet: o.quiet });
  try {
    torch.scope(() => restoreSystem(sys, { state, tensors: weights }));
  } finally {
    torch.dispose(weights);
  }
  const settings = evalSettings({ votes: o.votes, voteSeed: o.voteSeed, ttt: o.ttt, max: 0 });
  log(`predicting ${examples.length} test inputs of ${tasks.length} tasks of ${o.data} with ${ck.dir} (step ${ck.manifest.step}); ${settingsLabel(settings)}`);
  const left = new Map(tasks.map((t) => [t.id, t.test.length]));
  const bar = progress(tasks.length, { label: "predict tasks", quiet: o.quiet });
  bar.update(0);
  let done = 0;
  const { results, summary } = evaluate(sys, examples, {
    autocast: autocastFor(cfg),
    batchSize: o.batchSize,
    votes: o.votes,
    voteSeed: o.voteSeed,
    ttt: o.ttt,
    onExample: (r) => {
      const k = left.get(r.task)! - 1;
      left.set(r.task, k);
      if (k === 0) bar.update(++done);
    },
  });
  bar.stop();
  const submission = submissionOf(results);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(submission));
  const score = solutions ? scoreSubmission(submission, solutions) : null;
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const head = `<p>checkpoint ${escapeHtml(ck.dir)} (step ${ck.manifest.step}); ${escapeHtml(o.data)}: ${tasks.length} tasks, ${examples.length} test inputs; ${escapeHtml(settingsLabel(settings))}; ${summary.seconds.toFixed(1)} s</p>` +
    (score
      ? `<table class="arc-summary"><tr><th>ARC Prize score</th><td>${score.score.toFixed(4)} (${score.taskPoints.toFixed(2)}/${score.tasks} tasks)</td></tr><tr><th>test outputs solved</th><td>${score.solved}/${score.outputs} (either attempt right)</td></tr></table>`
      : `<p>test outputs unknown: no --solutions</p>`);
  const items = results.map((r) => htmlItem(r, solutions?.get(r.task)?.[r.index]));
  writeFileSync(reportPath, evaluationPage(`arc-efe predictions: ${basename(ck.dir)} (step ${ck.manifest.step}), ${settingsLabel(settings)}`, head, items, byId));
  log(`wrote ${out} (${Object.keys(submission).length} tasks, ${results.length} test inputs) and ${reportPath}`);
  if (score) log(`ARC Prize score (either attempt right, mean over tasks): ${score.score.toFixed(4)} (${score.taskPoints.toFixed(2)}/${score.tasks} tasks, ${score.solved}/${score.outputs} test outputs)`);
  return { submission, score, out, report: reportPath, tasks: tasks.length, outputs: results.length };
}

/** An answer on the page: the placeholder target dropped, the real output shown (and marked against) when known. */
function htmlItem(r: ExampleEval, solution: Grid | undefined): HtmlItem {
  const { target: _placeholder, ...rest } = r;
  const note = `size ${r.size[0]}x${r.size[1]} from ${r.sizeRule ? `the demonstrations (${r.sizeRule})` : r.sizeSource}${r.votes ? `; votes ${r.votes.map((v) => v.votes).join("/")} (top candidates)` : ""}${r.ttt ? `; test-time training ${r.ttt.steps} steps, loss ${r.ttt.lossFirst.toFixed(3)} &rarr; ${r.ttt.lossLast.toFixed(3)}` : ""}${r.hint.trim() ? `; hint: <code>${escapeHtml(r.hint)}</code>` : ""}`;
  const correct = solution ? r.attempts.some((g) => JSON.stringify(g) === JSON.stringify(solution)) : undefined;
  return { task: rest.task, kind: rest.kind, index: rest.index, input: rest.input, target: solution, attempts: rest.attempts, labels: attemptSources(rest), correct, note };
}
