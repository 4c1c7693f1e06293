#!/usr/bin/env bun
// A trained checkpoint's answers to every test input of every task, as an ARC Prize submission:
//   bun scripts/predict.ts --checkpoint best --data arc-agi_test_challenges.json --out submission.json
//   bun scripts/predict.ts --checkpoint best --data arc-agi_evaluation_challenges.json --solutions arc-agi_evaluation_solutions.json --votes 8
import { UsageError } from "../src/pipeline/config/train-config";
import { TTT_DEFAULTS } from "../src/pipeline/eval/ttt-defaults";
import { parseCommandLine } from "../src/util/cli";
import { parseInteger } from "../src/util/flags";
import { EVAL_MODE_OPTIONS, parseEvalModes } from "./lib/eval-modes";

const USAGE = `Usage: bun scripts/predict.ts --data FILE|DIR [--checkpoint best|latest|PATH] [--run DIR] [--out submission.json]
                            [--solutions FILE] [--votes K] [--ttt_steps N] [--device cpu|cuda] [--batch_size N]

Writes {"<task id>": [{"attempt_1": grid, "attempt_2": grid}, ...]} (ARC Prize's submission format: one
entry per test input, in order) for every test input of every task, and report.html beside it (each task's
demonstrations, its test inputs and both attempts). Test outputs in the data are never read.

  --data        ARC Prize's combined challenges file (arc-agi_test_challenges.json, ...), a task file, a folder
                of task files, a folder with training/ and evaluation/ (see --split), or a dataset name
  --split       evaluation (default) or training, for data with both
  --checkpoint  best (default), latest, or a checkpoint folder; --run the run folder (default: the newest under --run_dir)
  --out         the submission file (default submission.json); --report the page (default report.html beside it)
  --solutions   ARC Prize's solutions file: score the submission by the Kaggle rule (a test input counts when
                either attempt is right; a task scores its share; the score is the mean over tasks)
  --votes       vote over K augmentations (as eval.ts); --vote_seed their seed (default 0)
  --ttt_steps   test-time training steps per task (as eval.ts; --ttt_lr ${TTT_DEFAULTS.lr}, --ttt_batch ${TTT_DEFAULTS.batch}, --ttt_seed 0, --ttt_qwen)
  --batch_size  examples per batched pass (default 8; the answers do not depend on it)

Exit codes: 0 written, 1 a failure (one line), 2 a bad flag, bad data or an unwritable --out.`;

const cli = parseCommandLine("predict", USAGE, {
  checkpoint: { type: "string", default: "best" },
  run: { type: "string" },
  run_dir: { type: "string", default: "runs" },
  data: { type: "string" },
  split: { type: "string", default: "evaluation" },
  device: { type: "string" },
  batch_size: { type: "string", default: "8" },
  ...EVAL_MODE_OPTIONS,
  solutions: { type: "string" },
  out: { type: "string", default: "submission.json" },
  report: { type: "string" },
  quiet: { type: "boolean", default: false },
  help: { type: "boolean", default: false },
}, process.argv.slice(2));
const v = cli.values;
for (const k of ["checkpoint", "run", "run_dir", "data", "out", "report", "solutions", "device"]) if (v[k] === "") cli.fail(`--${k} was given an empty value (an unset shell variable?)`);
if (v.data === undefined) cli.fail("--data is required (a challenges file, a task file or folder)");
if (v.split !== "evaluation" && v.split !== "training") cli.fail(`--split must be evaluation or training, got "${v.split}"`);
const int = (k: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
  const n = parseInteger(v[k] as string);
  if (n === null || n < min || n > max) cli.fail(`--${k} must be an integer in ${min}..${max === Number.MAX_SAFE_INTEGER ? "" : max}, got "${v[k]}"`);
  return n as number;
};
const batchSize = int("batch_size", 1);
const modes = parseEvalModes(v);
if ("error" in modes) cli.fail(modes.error);
const device = v.device as string | undefined;
if (device !== undefined && device !== "cpu" && !/^cuda(:\d+)?$/.test(device)) cli.fail(`--device must be cpu, cuda or cuda:N, got "${device}"`);

const { ArcDataError } = await import("../src/arc");
const { runPrediction } = await import("../src/pipeline/commands/predict");
try {
  await runPrediction({
    checkpoint: v.checkpoint as string,
    runDir: v.run as string | undefined,
    runsBase: v.run_dir as string,
    data: v.data as string,
    split: v.split as "evaluation" | "training",
    device,
    batchSize,
    ...modes,
    solutions: v.solutions as string | undefined,
    out: v.out as string,
    report: v.report as string | undefined,
    quiet: v.quiet === true,
  });
  process.exit(0);
} catch (e) {
  const usage = e instanceof ArcDataError || e instanceof UsageError;
  console.error(`predict: ${(e as Error).message.split("\n")[0]}`);
  if (process.env.ARC_DEBUG) console.error((e as Error).stack);
  process.exit(usage ? 2 : 1);
}
