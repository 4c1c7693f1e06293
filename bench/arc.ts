// ARC scores of one checkpoint under the four ways eval.ts can answer: (a) plain, (b) --votes K,
// (c) --ttt_steps N, (d) both; on ARC-AGI-2's evaluation tasks and on synthetic evaluation tasks no run
// trained on. Exact pass@2, first-attempt exact, cell accuracy, size accuracy and seconds per task for
// each, beside what copying the input (resized to the target's size) scores on the same outputs.
// Without --checkpoint it first trains one (scripts/train.ts itself, tiny Qwen, the default agent, on
// ARC-AGI-2's training tasks) for a wall-clock budget, then stops it the way a user does (SIGINT: the
// trainer finishes its batch and saves a checkpoint). One JSON object on stdout.
//
//   bun bench/arc.ts --train_minutes 30 --out bench/results/arc-cpu-$(date +%F).json
//   bun bench/arc.ts --checkpoint runs/arc_.../checkpoints/step_000300 --max_tasks 20
//   bun bench/arc.ts --train_data synthetic:6000 --train_args="--agent_context cells" --modes plain,votes
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type Example, type Task, loadDataset, resizeNearest, syntheticDataset, testExamples, writeSplitFolder } from "../src/arc";
import { runEvaluation } from "../src/pipeline/commands/eval-checkpoint";
import { cellAccuracy } from "../src/pipeline/objective/reward";
import { readMetrics } from "../src/pipeline/run/run-folder";
import { machine } from "./machine";

const ROOT = join(import.meta.dir, "..");
const USAGE = `Usage: bun bench/arc.ts [options]
  --checkpoint DIR    evaluate this checkpoint folder (default: train one first)
  --device D          cpu (default) or cuda: training's and evaluation's
  --train_minutes M   the training budget, wall clock (default 30)
  --train_args="..."  extra scripts/train.ts flags, after "=" (their value starts with a dash); default
                      none; the bench sets --model tiny --data <train_data> --device D --val_max 64 --quiet
  --train_data D      training's --data (default: the ARC-AGI-2 folder of --arc; e.g. synthetic: the
                      generator's 360-task training split, whose seeds the synthetic evaluation tasks never
                      use; synthetic:N: N tasks of it, so a long budget sees fresh tasks, not 360 again)
  --modes LIST        which of plain,votes,ttt,both to score (default all four)
  --sets LIST         which of arc,synthetic to score (default both)
  --arc DIR           ARC-AGI-2 (training/ and evaluation/; default ../shared/data/arc/ARC-AGI-2, else arc-agi-2)
  --synthetic N       synthetic evaluation tasks (default 200)
  --max_tasks N       at most N tasks of each set (default: all)
  --votes K           augmentations of (b) and (d) (default 8)
  --ttt_steps N       test-time training steps of (c) and (d) (default 8), --ttt_lr (default 1e-3),
  --ttt_batch N       demonstrations a step (default 2)
  --train_only        train, print the checkpoint and the training's figures, evaluate nothing
  --out FILE          also write the JSON to FILE`;

const { values: a } = parseArgs({
  options: {
    checkpoint: { type: "string" },
    device: { type: "string", default: "cpu" },
    train_minutes: { type: "string", default: "30" },
    train_args: { type: "string", default: "" },
    train_data: { type: "string" },
    modes: { type: "string", default: "plain,votes,ttt,both" },
    sets: { type: "string", default: "arc,synthetic" },
    arc: { type: "string" },
    synthetic: { type: "string", default: "200" },
    max_tasks: { type: "string", default: "0" },
    votes: { type: "string", default: "8" },
    ttt_steps: { type: "string", default: "8" },
    ttt_lr: { type: "string", default: "1e-3" },
    ttt_batch: { type: "string", default: "2" },
    train_only: { type: "boolean", default: false },
    out: { type: "string" },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (a.help) {
  console.log(USAGE);
  process.exit(0);
}
const num = (k: keyof typeof a, v: unknown, ok: (x: number) => boolean): number => {
  const x = Number(v);
  if (!Number.isFinite(x) || !ok(x)) {
    console.error(`bench/arc: --${k} got "${v}" (see --help)`);
    process.exit(2);
  }
  return x;
};
if (a.device !== "cpu" && a.device !== "cuda") {
  console.error(`bench/arc: --device takes cpu or cuda, got "${a.device}"`);
  process.exit(2);
}
const trainMinutes = num("train_minutes", a.train_minutes, (x) => x > 0);
const syntheticTasks = num("synthetic", a.synthetic, (x) => Number.isInteger(x) && x >= 0);
const maxTasks = num("max_tasks", a.max_tasks, (x) => Number.isInteger(x) && x >= 0);
const votes = num("votes", a.votes, (x) => Number.isInteger(x) && x >= 2 && x <= 64);
const ttt = {
  steps: num("ttt_steps", a.ttt_steps, (x) => Number.isInteger(x) && x >= 1),
  lr: num("ttt_lr", a.ttt_lr, (x) => x >= 0),
  batch: num("ttt_batch", a.ttt_batch, (x) => Number.isInteger(x) && x >= 1),
  seed: 0,
  qwen: false,
};
/** The four ways eval.ts can answer, by the name --modes and the results use. */
const MODE_SETTINGS: Record<string, { votes: number; ttt: typeof ttt | undefined }> = {
  plain: { votes: 1, ttt: undefined },
  votes: { votes, ttt: undefined },
  ttt: { votes: 1, ttt },
  both: { votes, ttt },
};
const listOf = (k: "modes" | "sets", all: string[]): string[] => {
  const xs = a[k]!.split(",").map((x) => x.trim()).filter(Boolean);
  const bad = xs.find((x) => !all.includes(x));
  if (bad !== undefined || xs.length === 0) {
    console.error(`bench/arc: --${k} takes a comma-separated list of ${all.join(", ")}; got "${a[k]}"`);
    process.exit(2);
  }
  return xs;
};
const modes = listOf("modes", Object.keys(MODE_SETTINGS));
const setNames = listOf("sets", ["arc", "synthetic"]);
const sharedArc = join(ROOT, "..", "shared", "data", "arc", "ARC-AGI-2");
const arcData = a.arc ? resolve(a.arc) : existsSync(sharedArc) ? sharedArc : "arc-agi-2";
const trainData = a.train_data ?? arcData;
const work = mkdtempSync(join(tmpdir(), "arc-bench-"));

/** What a run's metrics say of its training: batches, examples, EFE at the start and end, validations. */
function trainingSummary(run: string, args: string[] | null, wallSeconds: number | null): Record<string, unknown> {
  const metrics = readMetrics(run);
  const batches = metrics.filter((r) => r.type === "batch");
  return {
    run,
    args,
    wallSeconds: wallSeconds === null ? null : Math.round(wallSeconds),
    batchesLogged: batches.at(-1)?.step ?? 0,
    examplesPerSecond: batches.length ? batches.reduce((n, r) => n + (r.examples_per_s ?? 0), 0) / batches.length : null,
    efeFirst: batches[0]?.efe,
    efeLast: batches.at(-1)?.efe,
    val: metrics.filter((r) => r.type === "val").map((v) => ({ step: v.step, pass2_count: v.pass2_count, examples: v.examples, cell_acc: v.cell_acc, cell_acc_before: v.cell_acc_before })),
  };
}

/** Trains for the budget, stopped by SIGINT as a user stops it; the run's last checkpoint and its figures. */
async function trainCheckpoint(): Promise<{ checkpoint: string; training: Record<string, unknown> }> {
  const runDir = join(work, "runs");
  const args = ["scripts/train.ts", "--model", "tiny", "--data", trainData, "--device", a.device, "--val_max", "64", "--quiet", "--run_dir", runDir, ...a.train_args.split(/\s+/).filter(Boolean)];
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-4000));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let interrupted = false;
  const timer = setTimeout(() => {
    interrupted = true;
    child.kill("SIGINT");
  }, trainMinutes * 60_000);
  const code: number = await new Promise((done) => child.on("exit", (c) => done(c ?? 1)));
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  // 130 is the trainer's exit status after a SIGINT it handled (checkpoint saved).
  if (code !== 0 && !(interrupted && code === 130)) throw new Error(`scripts/train.ts exited ${code}:\n${tail}`);
  const run = readdirSync(runDir).map((d) => join(runDir, d)).find((d) => existsSync(join(d, "checkpoints")));
  if (!run) throw new Error(`the training run left no checkpoint:\n${tail}`);
  const ckpts = readdirSync(join(run, "checkpoints")).filter((d) => /^step_\d+$/.test(d)).sort();
  return { checkpoint: join(run, "checkpoints", ckpts.at(-1)!), training: trainingSummary(run, args.slice(1), seconds) };
}

/** The run a checkpoint folder belongs to (<run>/checkpoints/<step>), or null. */
function runOf(checkpoint: string): string | null {
  const run = dirname(dirname(checkpoint));
  return existsSync(join(run, "metrics.jsonl")) ? run : null;
}

/** What copying each test input, resized to the target's size, scores (cell accuracy; exact count). */
function identityBaseline(examples: Example[]): { cellAcc: number; exact: number } {
  let acc = 0;
  let exact = 0;
  for (const ex of examples) {
    const { input, output } = ex.task.test[ex.index]!;
    const c = cellAccuracy(resizeNearest(input, output!.length, output![0]!.length), output!);
    acc += c;
    if (c === 1) exact++;
  }
  return { cellAcc: acc / Math.max(1, examples.length), exact };
}

async function evaluateSet(checkpoint: string, data: string, tasks: Task[]): Promise<Record<string, unknown>> {
  const examples = testExamples(tasks);
  const max = examples.length;
  const out: Record<string, Record<string, unknown>> = {};
  for (const name of modes) {
    const m = MODE_SETTINGS[name]!;
    const r = await runEvaluation({
      checkpoint,
      runsBase: work,
      split: "evaluation",
      data,
      device: a.device,
      max,
      votes: m.votes,
      ttt: m.ttt,
      out: join(work, "eval", `${data.replace(/\W+/g, "_")}_${name}`),
      quiet: true,
      log: () => {},
    });
    const { seconds, ttt: t, ...s } = r.summary;
    out[name] = { ...s, secondsPerTask: seconds / s.tasks, ...(t ? { ttt: t } : {}) };
    console.error(`bench/arc: ${data} ${name}: pass@2 ${s.pass2Count}/${s.examples}, cell acc ${s.cellAcc.toFixed(4)}, size acc ${s.sizeAcc.toFixed(4)}, ${(seconds / s.tasks).toFixed(2)} s/task`);
  }
  return { data, tasks: tasks.length, examples: examples.length, identity: identityBaseline(examples), modes: out };
}

const startedAt = new Date().toISOString();
const given = a.checkpoint ? resolve(a.checkpoint) : null;
const givenRun = given ? runOf(given) : null;
const { checkpoint, training } = given ? { checkpoint: given, training: givenRun ? trainingSummary(givenRun, null, null) : null } : await trainCheckpoint();
if (a.train_only) {
  console.log(JSON.stringify({ bench: "arc", startedAt, machine: machine(), checkpoint, training }, null, 1));
  process.exit(0);
}
console.error(`bench/arc: evaluating ${checkpoint}`);
const cap = (ts: Task[]) => (maxTasks > 0 ? ts.slice(0, maxTasks) : ts);
const sets: Record<string, unknown>[] = [];
if (setNames.includes("arc")) {
  const arc = await loadDataset(arcData, {});
  sets.push(await evaluateSet(checkpoint, arcData, cap(arc.evaluation)));
}
if (setNames.includes("synthetic") && syntheticTasks > 0) {
  // Written as a dataset folder, so evaluation reads the tasks by eval.ts's own --data route.
  // Only the tasks evaluated go in, so the folder's order (by id) cannot change which ones --max_tasks keeps.
  const synthetic = syntheticDataset({ training: 1, evaluation: syntheticTasks, seed: 0 });
  const tasks = cap(synthetic.evaluation);
  sets.push(await evaluateSet(checkpoint, writeSplitFolder(join(work, "synthetic"), { training: synthetic.training, evaluation: tasks }), tasks));
}
const result = {
  bench: "arc",
  startedAt,
  machine: machine(),
  checkpoint,
  training,
  trainData,
  modes,
  votes,
  ttt,
  sets,
};
const json = JSON.stringify(result, null, 1);
console.log(json);
if (a.out) {
  mkdirSync(dirname(resolve(a.out)), { recursive: true });
  writeFileSync(a.out, json + "\n");
}
