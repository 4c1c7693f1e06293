// scripts/eval.ts's work: load a checkpoint into a freshly built system, evaluate a split, print a
// per-task table, write eval.json and report.html (input, target, both attempts drawn).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { type Example, type Task, escapeHtml, loadDataset, testExamples } from "../../arc/index";
import * as torch from "../../torch";
import type { TrainConfig } from "../config/train-config";
import { savedRunConfig } from "../run/migrations";
import { TTT_DEFAULTS } from "../eval/ttt-defaults";
import { type EvalOptions as EvalOptionsOf, type EvalSummary, type ExampleEval, evaluate } from "../eval/evaluate";
import { exactMatch } from "../objective/reward";
import { MANIFEST, type TensorFiles, loadCheckpoint } from "../run/checkpoint";
import { type ResolvedCheckpoint, resolveCheckpoint } from "../run/resolve";
import { NonFiniteError, describeTensors, nonFiniteTensors } from "../system/nonfinite";
import { probeWritable } from "../run/probe";
import { autocastFor, runExamples, systemConfig, useThreads } from "../config/run-setup";
import { buildSystem } from "../system/system";
import { restoreSystem } from "../run/training-state";
import { progress } from "../../util/progress";
import { type EvalSettings, attemptSources, copyInputBaseline, evaluationFolder, familyTable, kaggleScore, settingsSuffix } from "../eval/output";
import { type HtmlItem, evaluationPage } from "../eval/html";

export interface EvalOptions {
  checkpoint: string;
  runDir?: string;
  runsBase: string;
  split: "evaluation" | "training" | "val";
  data?: string;
  device?: string;
  max: number;
  /** Examples per batched pass (default 8). */
  batchSize?: number;
  /** Augmentations voted over per example (default 1: none) and their seed. */
  votes?: number;
  voteSeed?: number;
  /** Test-time training per task (steps 0: off). */
  ttt?: EvalOptionsOf["ttt"];
  out?: string;
  quiet?: boolean;
  log?: (line: string) => void;
  /** Told each checkpoint chosen, just before it loads (a test removes it here, as a live run's pruning would). */
  onChosen?: (dir: string) => void;
}

export interface EvalReport {
  checkpoint: string;
  step: number;
  split: string;
  data: string;
  /** What changes the answers: votes, TTT, --max (eval.json and the page's header record them). */
  settings: EvalSettings;
  summary: EvalSummary;
  /** The Kaggle rule's score of the test outputs (mean over tasks of the share solved; what predict.ts --solutions prints). */
  score: { kaggle: number; taskPoints: number; tasks: number; solved: number; outputs: number };
  /** Copying each input (resized to the target's size): cell accuracy and outputs it gets exactly. */
  copyBaseline: { cellAcc: number; exact: number; examples: number };
  /** Synthetic data: one row per family (null otherwise). */
  families: ReturnType<typeof familyTable>;
  results: ExampleEval[];
  outDir: string;
}

/** The settings of an evaluation (what its folder name and eval.json record). */
export function evalSettings(o: Pick<EvalOptions, "votes" | "voteSeed" | "ttt" | "max">): EvalSettings {
  const t = o.ttt && o.ttt.steps > 0 ? o.ttt : null;
  return {
    votes: o.votes ?? 1,
    vote_seed: o.voteSeed ?? 0,
    ttt_steps: t?.steps ?? 0,
    ttt_lr: t?.lr ?? TTT_DEFAULTS.lr,
    ttt_batch: t?.batch ?? TTT_DEFAULTS.batch,
    ttt_seed: t?.seed ?? 0,
    ttt_qwen: t?.qwen ?? false,
    max: o.max,
  };
}

export async function runEvaluation(o: EvalOptions): Promise<EvalReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  // Every output folder is probed before any work: an unwritable --out fails now, not after hours of votes or TTT.
  if (o.out !== undefined) probeWritable(o.out, `--out ${o.out}`);
  const { ck, state, saved, device, weights } = loadForEvaluation(o);
  // The run's own data by the absolute path it recorded (a relative --data resolved where it trained).
  const recorded = typeof state.data?.path === "string" && existsSync(state.data.path) ? (state.data.path as string) : null;
  const cfg: TrainConfig = { ...saved, device, data: o.data ?? recorded ?? saved.data };
  useThreads(cfg.num_threads);
  const ds = await loadDataset(cfg.data, { skipBadTasks: cfg.skip_bad_tasks === true, onSkip: (m) => console.error(`skipping ${m.length} bad task file(s) (the run's --skip_bad_tasks): ${m.join("; ")}`) });
  let examples: Example[];
  if (o.split === "val") examples = runExamples(ds, cfg).val;
  else examples = testExamples(o.split === "evaluation" ? ds.evaluation : ds.training);
  if (o.max > 0) examples = examples.slice(0, o.max);
  if (examples.length === 0) throw new Error(`no examples with known outputs in the ${o.split} split of ${cfg.data}`);

  const sys = await buildSystem(systemConfig(cfg), { quiet: o.quiet });
  try {
    torch.scope(() => restoreSystem(sys, { state, tensors: weights }));
  } finally {
    torch.dispose(weights);
  }
  const autocast = autocastFor(cfg);
  log(`evaluating ${ck.dir} (step ${ck.manifest.step}) on ${examples.length} ${o.split} examples of ${cfg.data}`);
  const bar = taskProgress(examples, o.quiet);
  const { summary, results } = evaluate(sys, examples, { autocast, batchSize: o.batchSize, votes: o.votes, voteSeed: o.voteSeed, ttt: o.ttt, onExample: bar.onExample });
  bar.stop();
  const settings = evalSettings(o);
  const k = kaggleScore(results);
  const score = { kaggle: k.score, taskPoints: k.taskPoints, tasks: k.tasks, solved: k.solved, outputs: k.outputs };
  const copyBaseline = copyInputBaseline(results);

  log(taskTable(results));
  log(`Exact match (attempt 1): ${summary.exactFirst.toFixed(4)} (${summary.exactFirstCount}/${summary.examples}) | pass@2: ${summary.pass2.toFixed(4)} (${summary.pass2Count}/${summary.examples}) | tasks solved: ${summary.tasksSolved}/${summary.tasks}`);
  log(`Size accuracy: ${summary.sizeAcc.toFixed(4)} (${summary.sizeAccCount}/${summary.examples}; ${summary.sizeFromRules} sizes from the demonstrations' rules, ${summary.examples - summary.sizeFromRules} from the size head)`);
  if (summary.ttt) {
    const t = summary.ttt;
    log(`Test-time training: ${o.ttt!.steps} steps a task, ${t.secondsPerTask.toFixed(1)} s a task over ${t.tasks} tasks | pass@2 gained ${t.gained}, lost ${t.lost} | cell acc without it ${t.cellAccWithout.toFixed(4)}`);
  }
  log(`Cell accuracy: ${summary.cellAcc.toFixed(4)} (before refinement ${summary.cellAccBefore.toFixed(4)}, delta ${summary.accuracyDelta >= 0 ? "+" : ""}${summary.accuracyDelta.toFixed(4)}) | ${summary.seconds.toFixed(1)} s`);
  if (score.outputs) log(`ARC Prize score (either attempt right, mean over tasks): ${score.kaggle.toFixed(4)} (${score.taskPoints.toFixed(2)}/${score.tasks} tasks, ${score.solved}/${score.outputs} test outputs)`);
  log(`Copying the input: cell accuracy ${copyBaseline.cellAcc.toFixed(4)}, exact ${copyBaseline.exact}/${copyBaseline.examples}`);

  // A folder per settings; one holding another evaluation (best/ at another step, other data) is never overwritten.
  const outDir = o.out ?? evaluationFolder(evalOutDir(o, ck), { checkpoint: ck.dir, step: ck.manifest.step, split: o.split, data: cfg.data, settings });
  mkdirSync(outDir, { recursive: true });
  const report: EvalReport = { checkpoint: ck.dir, step: ck.manifest.step, split: o.split, data: cfg.data, settings, summary, score, copyBaseline, families: familyTable(results), results, outDir };
  writeFileSync(join(outDir, "eval.json"), JSON.stringify({ ...report, results: results.map(({ input, confidence, ...r }) => r) }, null, 1));
  const tasks = new Map(examples.map((e) => [e.task.id, e.task]));
  writeFileSync(join(outDir, "report.html"), reportHtml(report, tasks));
  log(`wrote ${join(outDir, "eval.json")} and ${join(outDir, "report.html")}`);
  return report;
}

const evalOutDir = (o: EvalOptions, ck: ResolvedCheckpoint): string => o.out ?? join(ck.runDir ?? ck.dir, "eval", `${basename(ck.dir)}_${o.split}${settingsSuffix(evalSettings(o))}`);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * The checkpoint to evaluate, its state, the run's config and its weights (model and memory files only,
 * on the CPU), with the default output folder probed. A checkpoint whose state.json has no config uses its
 * run's config.json. When `best`/`latest` or a run folder named the checkpoint and it vanishes while it
 * loads (a live run pruned it), the next newest is resolved and loaded instead. Non-finite weights are refused.
 */
export function loadForEvaluation(o: EvalOptions): { ck: ResolvedCheckpoint; state: any; saved: TrainConfig; device: string; weights: TensorFiles } {
  for (let attempt = 1; ; attempt++) {
    const ck = resolveCheckpoint(o.checkpoint, { runDir: o.runDir, runsBase: o.runsBase, onSkip: (d, why) => console.error(`skipping ${d}: ${why}`) });
    if (o.out === undefined) probeWritable(evalOutDir(o, ck), `the evaluation folder of ${ck.dir} (give --out DIR)`);
    try {
      o.onChosen?.(ck.dir);
      // resolveCheckpoint verified every file's sha256; the loads below do not hash them again.
      const state = torch.scope(() => loadCheckpoint(ck.dir, { files: [], verify: false }).state);
      const saved = evalConfig(ck, state);
      const device = o.device ?? (saved.device.startsWith("cuda") && !torch.cuda.isAvailable() ? "cpu" : saved.device);
      const files = ["model", "memory"].filter((f) => `${f}.safetensors` in ck.manifest.files);
      const { tensors } = torch.scope(() => loadCheckpoint(ck.dir, { verify: false, device: device as torch.Device, files }));
      const bad = nonFiniteTensors(tensors.model ?? {});
      if (bad.length) {
        torch.dispose(tensors);
        throw new NonFiniteError(`checkpoint ${ck.dir} has non-finite weights (${describeTensors(bad)}): its training diverged; evaluate an earlier checkpoint (--checkpoint PATH)`);
      }
      return { ck, state, saved, device, weights: tensors };
    } catch (e) {
      const chosen = o.checkpoint === "best" || o.checkpoint === "latest" || ck.dir !== o.checkpoint;
      if (!chosen || existsSync(join(ck.dir, MANIFEST)) || attempt >= 5) throw e;
      console.error(`checkpoint ${ck.dir} was removed while it loaded (a live run prunes old checkpoints); trying the next newest`);
    }
  }
}

/** The config a checkpoint was trained with: its state.json's, else its run's config.json. */
function evalConfig(ck: ResolvedCheckpoint, state: any): TrainConfig {
  if (isObject(state?.config)) return savedRunConfig(state.config);
  const path = ck.runDir ? join(ck.runDir, "config.json") : null;
  if (path) {
    try {
      const json = JSON.parse(readFileSync(path, "utf8"));
      if (isObject(json)) {
        console.error(`checkpoint ${ck.dir} records no config; using its run's ${path}`);
        return savedRunConfig(json);
      }
    } catch {
      // fall through to the error below
    }
  }
  throw new Error(`checkpoint ${ck.dir} records no config (its state.json has none) and ${path ? `${path} is missing or not a JSON object` : "it is not inside a run folder"}: the model it was trained with cannot be rebuilt`);
}

/** What voting changed for an example: the votes behind the attempts, and whether the unvoted attempts were right. */
function voteNote(e: ExampleEval): string {
  const ttt = e.ttt ? `; test-time training (${e.ttt.steps} steps, loss ${e.ttt.lossFirst.toFixed(3)} &rarr; ${e.ttt.lossLast.toFixed(3)}): ${e.ttt.correctBefore ? "right" : "wrong"} before, ${e.correct ? "right" : "wrong"} after` : "";
  return ttt + votesNote(e);
}

function votesNote(e: ExampleEval): string {
  if (!e.votes || !e.unvoted) return "";
  const right = (g: number[][]) => exactMatch(g, e.target);
  const was = e.unvoted.some(right) ? "right" : "wrong";
  const now = e.correct ? "right" : "wrong";
  return `; votes ${e.votes.map((v) => v.votes).join("/")} (top candidates); without voting ${was}, with voting ${now}`;
}

/** One row per task: outputs, solved within two attempts, first-attempt hits, cell accuracy. */
export function taskTable(results: ExampleEval[]): string {
  const byTask = new Map<string, ExampleEval[]>();
  for (const r of results) byTask.set(r.task, [...(byTask.get(r.task) ?? []), r]);
  const rows = [["task", "outputs", "pass@2", "attempt 1", "cell acc", "size"]];
  for (const [task, rs] of byTask) {
    rows.push([
      task,
      String(rs.length),
      `${rs.filter((r) => r.correct).length}/${rs.length}`,
      `${rs.filter((r) => r.firstCorrect).length}/${rs.length}`,
      (rs.reduce((a, r) => a + r.cellAccAfter, 0) / rs.length).toFixed(3),
      rs.map((r) => `${r.size[0]}x${r.size[1]}${r.sizeSource === "task" ? "" : "*"}`).join(","),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const fmt = (r: string[]) => r.map((v, c) => v.padEnd(widths[c])).join("  ");
  return [fmt(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(fmt), "(* = size from the size head)"].join("\n");
}

/** The settings in words, for the page's title and header. */
export function settingsLabel(st: EvalSettings): string {
  const parts: string[] = [];
  parts.push(st.votes > 1 ? `votes ${st.votes} (seed ${st.vote_seed})` : "no voting");
  parts.push(st.ttt_steps > 0 ? `TTT ${st.ttt_steps} steps (lr ${st.ttt_lr}, batch ${st.ttt_batch}, seed ${st.ttt_seed}${st.ttt_qwen ? ", LoRA too" : ""})` : "no TTT");
  if (st.max > 0) parts.push(`first ${st.max} examples`);
  return parts.join(", ");
}

function reportHtml(r: EvalReport, tasks: Map<string, Task>): string {
  const s = r.summary;
  const c = r.copyBaseline;
  const n = s.examples;
  const row = (name: string, model: string, copy = "") => `<tr><th>${name}</th><td>${model}</td><td>${copy}</td></tr>`;
  const ttt = s.ttt
    ? row("test-time training", `${s.ttt.tasks} tasks, ${s.ttt.secondsPerTask.toFixed(1)} s a task; pass@2 gained ${s.ttt.gained}, lost ${s.ttt.lost}; cell accuracy without it ${s.ttt.cellAccWithout.toFixed(4)}`)
    : "";
  const head = `<p>checkpoint ${escapeHtml(r.checkpoint)} (step ${r.step}); split ${escapeHtml(r.split)} of ${escapeHtml(r.data)}; ${escapeHtml(settingsLabel(r.settings))}</p>
<table class="arc-summary"><tr><th></th><th>model</th><th>copying the input</th></tr>
${row("exact (attempt 1)", `${s.exactFirst.toFixed(4)} (${s.exactFirstCount}/${n})`, `${(n ? c.exact / n : 0).toFixed(4)} (${c.exact}/${n})`)}
${row("pass@2", `${s.pass2.toFixed(4)} (${s.pass2Count}/${n})`)}
${r.score.outputs ? row("ARC Prize score", `${r.score.kaggle.toFixed(4)} (${r.score.taskPoints.toFixed(2)}/${r.score.tasks} tasks)`) : ""}
${row("tasks solved", `${s.tasksSolved}/${s.tasks}`)}
${row("size accuracy", `${s.sizeAcc.toFixed(4)} (${s.sizeAccCount}/${n}; ${s.sizeFromRules} sizes from the demonstrations' rules, ${n - s.sizeFromRules} from the size head)`)}
${row("cell accuracy", `${s.cellAcc.toFixed(4)} (before refinement ${s.cellAccBefore.toFixed(4)})`, c.cellAcc.toFixed(4))}
${ttt}</table>${r.families ? familiesHtml(r.families) : ""}`;
  const items: HtmlItem[] = r.results.map((e) => ({
    task: e.task,
    kind: e.kind,
    index: e.index,
    input: e.input,
    target: e.target,
    attempts: e.attempts,
    labels: attemptSources(e),
    correct: e.correct,
    note: `${e.hint.trim() ? `hint: <code>${escapeHtml(e.hint)}</code>; ` : ""}size ${e.size[0]}x${e.size[1]} from ${e.sizeRule ? `the demonstrations (${e.sizeRule})` : e.sizeSource}; cell accuracy ${e.cellAccBefore.toFixed(3)} &rarr; ${e.cellAccAfter.toFixed(3)}; ${tasks.get(e.task)?.train.length ?? 0} demonstrations${voteNote(e)}`,
  }));
  return evaluationPage(`arc-efe evaluation: ${basename(r.checkpoint)} (step ${r.step}), ${r.split}, ${settingsLabel(r.settings)}`, head, items, tasks);
}

function familiesHtml(rows: NonNullable<EvalReport["families"]>): string {
  const tr = rows.map((f) => `<tr><td>${escapeHtml(f.family)}</td><td>${f.examples}</td><td>${f.pass2}</td><td>${f.exactFirst}</td><td>${f.cellAcc.toFixed(3)}</td><td>${f.copyCellAcc.toFixed(3)}</td></tr>`).join("");
  return `<h3>per family</h3><table class="arc-families"><tr><th>family</th><th>outputs</th><th>pass@2</th><th>attempt 1</th><th>cell acc</th><th>copying the input</th></tr>${tr}</table>`;
}

/** A progress bar over tasks: a task counts once all its examples are evaluated (results arrive batch by batch). */
function taskProgress(examples: readonly Example[], quiet?: boolean): { onExample: (r: ExampleEval) => void; stop: () => void } {
  const left = new Map<string, number>();
  for (const ex of examples) left.set(ex.task.id, (left.get(ex.task.id) ?? 0) + 1);
  const bar = progress(left.size, { label: "eval tasks", quiet });
  bar.update(0);
  let done = 0;
  return {
    onExample: (r) => {
      const k = (left.get(r.task) ?? 1) - 1;
      left.set(r.task, k);
      if (k === 0) bar.update(++done);
    },
    stop: () => bar.stop(),
  };
}
