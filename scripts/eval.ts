#!/usr/bin/env bun
// Evaluate a checkpoint: two attempts per test output (before and after refinement), ARC's exact-match
// rule, a per-task table, eval.json and report.html (grids drawn) next to the checkpoint's run.
//   bun scripts/eval.ts --checkpoint best            (latest run under runs/)
//   bun scripts/eval.ts --checkpoint latest --run runs/arc_20261126_101500 --split val
import { parseArgs } from "node:util";
import { TTT_DEFAULTS } from "../src/pipeline/eval/ttt-defaults";
import { duplicateFlag, joinNegativeValues, parseArgsErrorLine, parseInteger } from "../src/util/flags";
import { EVAL_MODE_OPTIONS, parseEvalModes } from "./lib/eval-modes";
import { oneLineErrors } from "../src/util/cli";
oneLineErrors("eval");

const OPTIONS = {
  checkpoint: { type: "string", default: "best" },
  run: { type: "string" },
  run_dir: { type: "string", default: "runs" },
  split: { type: "string", default: "evaluation" },
  data: { type: "string" },
  device: { type: "string" },
  max: { type: "string" },
  batch_size: { type: "string" },
  ...EVAL_MODE_OPTIONS,
  out: { type: "string" },
  quiet: { type: "boolean", default: false },
  help: { type: "boolean", default: false },
} as const;

const HELP = `Usage: bun scripts/eval.ts [--checkpoint best|latest|PATH] [--run DIR] [--run_dir runs]
                         [--split evaluation|training|val] [--data SPEC] [--device cpu|cuda] [--max N] [--batch_size N] [--votes K] [--ttt_steps N] [--out DIR]

  --checkpoint  best (default), latest, or a checkpoint folder
  --run         the run folder (default: the newest run under --run_dir with a checkpoint)
  --split       evaluation (default): the data's evaluation tasks' test outputs;
                val: the run's held-out validation examples (reproduces the trainer's figures);
                training: the training tasks' test outputs
  --data        data to evaluate on (default: the run's --data)
  --max         evaluate at most N examples
  --batch_size  examples per batched pass (default 8; results do not depend on it, memory does)
  --votes       vote over K augmentations of each task (identity + dihedral/colour transforms, mapped back;
                attempts = the two most voted grids, ties by confidence); default 1 (no voting)
  --vote_seed   seed of the augmentations (default 0)
  --ttt_steps   test-time training: N AdamW steps per task on its own demonstrations (leave-one-out, random
                dihedral/colour augmentations, the training loss) before predicting; weights restored after (default 0)
  --ttt_lr      its learning rate (default ${TTT_DEFAULTS.lr}); --ttt_batch demonstrations per step (default ${TTT_DEFAULTS.batch});
  --ttt_seed    its seed (default 0); --ttt_qwen  adapt the LoRA adapters too (runs that train Qwen by LoRA)
  --out         where eval.json and report.html go (default: <run>/eval/<checkpoint>_<split>)`;

async function main(argv: string[]): Promise<number> {
  const usage = (msg: string) => {
    console.error(`eval: ${msg} (see --help)`);
    return 2;
  };
  let values: Record<string, string | boolean | undefined>;
  const args = joinNegativeValues(argv, OPTIONS);
  const dup = duplicateFlag(args, OPTIONS);
  if (dup) return usage(`--${dup} is given more than once`);
  try {
    ({ values } = parseArgs({ args, options: OPTIONS, strict: true }) as { values: Record<string, string | boolean | undefined> });
  } catch (e) {
    return usage(parseArgsErrorLine(e, Object.keys(OPTIONS)));
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const split = values.split as string;
  if (!["evaluation", "training", "val"].includes(split)) return usage(`--split must be evaluation, training or val, got "${split}"`);
  const max = values.max === undefined ? 0 : parseInteger(values.max as string);
  if (max === null || max < 0) return usage(`--max must be a non-negative integer, got "${values.max}"`);
  const batchSize = values.batch_size === undefined ? 8 : parseInteger(values.batch_size as string);
  if (batchSize === null || batchSize < 1) return usage(`--batch_size must be a positive integer, got "${values.batch_size}"`);
  const modes = parseEvalModes(values);
  if ("error" in modes) return usage(modes.error);
  for (const k of ["checkpoint", "run", "run_dir", "data", "out", "batch_size"] as const)
    if (values[k] === "") return usage(`--${k} was given an empty value (an unset shell variable?)`);
  // The output folder is probed before anything loads (LibTorch included): an unwritable --out costs nothing.
  if (values.out !== undefined) {
    const { probeWritable } = await import("../src/pipeline/run/probe");
    const { UsageError } = await import("../src/pipeline/config/train-config");
    try {
      probeWritable(values.out as string, `--out ${values.out}`);
    } catch (e) {
      if (e instanceof UsageError) return usage(e.message);
      throw e;
    }
  }
  // The device is checked before any checkpoint or model loads (asking about CUDA loads LibTorch only).
  const device = values.device as string | undefined;
  if (device !== undefined) {
    const m = /^cuda(?::(\d+))?$/.exec(device);
    if (device !== "cpu" && !m) return usage(`--device must be cpu, cuda or cuda:N, got "${device}"`);
    if (m) {
      const torch = await import("../src/torch");
      if (!torch.cuda.isAvailable()) return usage(`--device ${device}: CUDA is not available (no GPU, or LibTorch built without CUDA); use --device cpu`);
      if (m[1] && Number(m[1]) >= torch.cuda.deviceCount()) return usage(`--device ${device}: only ${torch.cuda.deviceCount()} CUDA device(s)`);
    }
  }
  const { runEvaluation } = await import("../src/pipeline/commands/eval-checkpoint");
  try {
    await runEvaluation({
      checkpoint: values.checkpoint as string,
      runDir: values.run as string | undefined,
      runsBase: values.run_dir as string,
      split: split as "evaluation" | "training" | "val",
      data: values.data as string | undefined,
      device,
      max,
      batchSize,
      ...modes,
      out: values.out as string | undefined,
      quiet: values.quiet === true,
    });
    return 0;
  } catch (e) {
    console.error(`eval: ${(e as Error).message}`);
    if (process.env.ARC_DEBUG) console.error((e as Error).stack);
    // An output folder that cannot be written (probed before any work) is a usage error.
    const { UsageError } = await import("../src/pipeline/config/train-config");
    return e instanceof UsageError ? 2 : 1;
  }
}

process.exit(await main(process.argv.slice(2)));
