// scripts/eval.ts's work: load a checkpoint into a freshly built system, evaluate a split, print a
// per-task table, write eval.json and report.html (input, target, both attempts drawn).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { type Example, type Task, escapeHtml, figureHtml, htmlPage, loadDataset, testExamples } from "../arc";
import * as torch from "../torch";
import { type TrainConfig, savedRunConfig } from "./config";
import { type EvalOptions as EvalOptionsOf, type EvalSummary, type ExampleEval, evaluate } from "./evaluate";
import { exactMatch } from "./reward";
import { MANIFEST, type TensorFiles, loadCheckpoint } from "./checkpoint";
import { type ResolvedCheckpoint, resolveCheckpoint } from "./checkpoint-resolve";
import { NonFiniteError, describeTensors, nonFiniteTensors } from "./nonfinite";
import { probeWritable } from "./preflight";
import { autocastFor, runExamples, systemConfig, useThreads } from "./run-setup";
import { buildSystem } from "./system";
import { restoreSystem } from "./training-state";
import { progress } from "../util/progress";

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
  summary: EvalSummary;
  results: ExampleEval[];
  outDir: string;
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
  const bar = progress(examples.length, { label: "eval", quiet: o.quiet });
  const { summary, results } = evaluate(sys, examples, { autocast, batchSize: o.batchSize, votes: o.votes, voteSeed: o.voteSeed, ttt: o.ttt, onExample: (_, i) => bar.update(i + 1) });
  bar.stop();

  log(taskTable(results));
  log(`Exact match (attempt 1): ${summary.exactFirst.toFixed(4)} (${summary.exactFirstCount}/${summary.examples}) | pass@2: ${summary.pass2.toFixed(4)} (${summary.pass2Count}/${summary.examples}) | tasks solved: ${summary.tasksSolved}/${summary.tasks}`);
  log(`Size accuracy: ${summary.sizeAcc.toFixed(4)} (${summary.sizeAccCount}/${summary.examples}; ${summary.sizeFromRules} sizes from the demonstrations' rules, ${summary.examples - summary.sizeFromRules} from the size head)`);
  if (summary.ttt) {
    const t = summary.ttt;
    log(`Test-time training: ${o.ttt!.steps} steps a task, ${t.secondsPerTask.toFixed(1)} s a task over ${t.tasks} tasks | pass@2 gained ${t.gained}, lost ${t.lost} | cell acc without it ${t.cellAccWithout.toFixed(4)}`);
  }
  log(`Cell accuracy: ${summary.cellAcc.toFixed(4)} (before refinement ${summary.cellAccBefore.toFixed(4)}, delta ${summary.accuracyDelta >= 0 ? "+" : ""}${summary.accuracyDelta.toFixed(4)}) | ${summary.seconds.toFixed(1)} s`);

  const outDir = evalOutDir(o, ck);
  mkdirSync(outDir, { recursive: true });
  const report: EvalReport = { checkpoint: ck.dir, step: ck.manifest.step, split: o.split, data: cfg.data, summary, results, outDir };
  writeFileSync(join(outDir, "eval.json"), JSON.stringify({ ...report, results: results.map(({ input, confidence, ...r }) => r) }, null, 1));
  const tasks = new Map(examples.map((e) => [e.task.id, e.task]));
  writeFileSync(join(outDir, "report.html"), reportHtml(report, tasks));
  log(`wrote ${join(outDir, "eval.json")} and ${join(outDir, "report.html")}`);
  return report;
}

const evalOutDir = (o: EvalOptions, ck: ResolvedCheckpoint): string => o.out ?? join(ck.runDir ?? ck.dir, "eval", `${basename(ck.dir)}_${o.split}`);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * The checkpoint to evaluate, its state, the run's config and its weights (model and memory files only,
 * on the CPU), with the default output folder probed. A checkpoint whose state.json has no config uses its
 * run's config.json. When `best`/`latest` or a run folder named the checkpoint and it vanishes while it
 * loads (a live run pruned it), the next newest is resolved and loaded instead. Non-finite weights are refused.
 */
function loadForEvaluation(o: EvalOptions): { ck: ResolvedCheckpoint; state: any; saved: TrainConfig; device: string; weights: TensorFiles } {
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

function reportHtml(r: EvalReport, tasks: Map<string, Task>): string {
  const s = r.summary;
  const head = `<p>${escapeHtml(r.checkpoint)} (step ${r.step}), split ${escapeHtml(r.split)} of ${escapeHtml(r.data)}</p>
<table><tr><th>exact (attempt 1)</th><td>${s.exactFirst.toFixed(4)} (${s.exactFirstCount}/${s.examples})</td></tr>
<tr><th>pass@2</th><td>${s.pass2.toFixed(4)} (${s.pass2Count}/${s.examples})</td></tr>
<tr><th>tasks solved</th><td>${s.tasksSolved}/${s.tasks}</td></tr>
<tr><th>cell accuracy</th><td>${s.cellAcc.toFixed(4)} (before refinement ${s.cellAccBefore.toFixed(4)})</td></tr></table>`;
  const body = r.results
    .map((e) => {
      const mark = (g: number[][]) => (JSON.stringify(g) === JSON.stringify(e.target) ? "ok" : "bad");
      const hint = e.hint ? `<p>hint: <code>${escapeHtml(e.hint)}</code></p>` : "";
      return `<section class="arc-task"><h2>${escapeHtml(e.task)} ${e.kind}[${e.index}] ${e.correct ? "\u2713" : "\u2717"}</h2>${hint}<div class="arc-pair">` +
        figureHtml("input", e.input) +
        figureHtml("target", e.target) +
        figureHtml(`attempt 1 (before)`, e.attempts[0], mark(e.attempts[0])) +
        figureHtml(`attempt 2 (after)`, e.attempts[1], mark(e.attempts[1])) +
        `</div><p>size ${e.size[0]}x${e.size[1]} from ${e.sizeRule ? `the demonstrations (${e.sizeRule})` : e.sizeSource}; cell accuracy ${e.cellAccBefore.toFixed(3)} &rarr; ${e.cellAccAfter.toFixed(3)}; ${tasks.get(e.task)?.train.length ?? 0} demonstrations${voteNote(e)}</p></section>`;
    })
    .join("\n");
  return htmlPage(`arc-efe evaluation: ${r.split}`, head + body);
}
