#!/usr/bin/env bun
// Evaluate a checkpoint: two attempts per test output (before and after refinement), ARC's exact-match
// rule, a per-task table, eval.json and report.html (grids drawn) next to the checkpoint's run.
//   bun scripts/eval.ts --checkpoint best            (latest run under runs/)
//   bun scripts/eval.ts --checkpoint latest --run runs/arc_20261126_101500 --split val
import { parseArgs } from "node:util";

const HELP = `Usage: bun scripts/eval.ts [--checkpoint best|latest|PATH] [--run DIR] [--run_dir runs]
                         [--split evaluation|training|val] [--data SPEC] [--device cpu|cuda] [--max N] [--out DIR]

  --checkpoint  best (default), latest, or a checkpoint folder
  --run         the run folder (default: the newest run under --run_dir with a checkpoint)
  --split       evaluation (default): the data's evaluation tasks' test outputs;
                val: the run's held-out validation examples (reproduces the trainer's figures);
                training: the training tasks' test outputs
  --data        data to evaluate on (default: the run's --data)
  --max         evaluate at most N examples
  --out         where eval.json and report.html go (default: <run>/eval/<checkpoint>_<split>)`;

async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        checkpoint: { type: "string", default: "best" },
        run: { type: "string" },
        run_dir: { type: "string", default: "runs" },
        split: { type: "string", default: "evaluation" },
        data: { type: "string" },
        device: { type: "string" },
        max: { type: "string" },
        out: { type: "string" },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }) as { values: Record<string, string | boolean | undefined> });
  } catch (e) {
    console.error(`eval: ${(e as Error).message.split("\n")[0]} (see --help)`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const split = values.split as string;
  if (!["evaluation", "training", "val"].includes(split)) {
    console.error(`eval: --split must be evaluation, training or val, got "${split}"`);
    return 2;
  }
  const max = values.max === undefined ? 0 : Number(values.max);
  if (!Number.isInteger(max) || max < 0) {
    console.error(`eval: --max must be a non-negative integer, got "${values.max}"`);
    return 2;
  }
  const { runEvaluation } = await import("../src/pipeline/report");
  try {
    await runEvaluation({
      checkpoint: values.checkpoint as string,
      runDir: values.run as string | undefined,
      runsBase: values.run_dir as string,
      split: split as "evaluation" | "training" | "val",
      data: values.data as string | undefined,
      device: values.device as string | undefined,
      max,
      out: values.out as string | undefined,
      quiet: values.quiet === true,
    });
    return 0;
  } catch (e) {
    console.error(`eval: ${(e as Error).message}`);
    if (process.env.ARC_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}

process.exit(await main(process.argv.slice(2)));
