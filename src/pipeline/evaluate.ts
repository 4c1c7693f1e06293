// Evaluation (DESIGN §6): two attempts per test output, before and after refinement (the policy's mean
// action, plus the memory's bias); ARC's exact-match rule; cell accuracies at the target size.
// The output size is the task's when every demonstration makes it certain (DESIGN §5.3), else the
// size head's. The trainer's validation and scripts/eval.ts both call evaluate(), so their figures agree.
import { certainOutputSize } from "../arc/stats";
import { type Example, context, target as targetOf } from "../arc/examples";
import type { Grid } from "../arc/types";
import * as torch from "../torch";
import { confidence, predictedSize } from "./agent";
import { cellAccuracy, exactMatch } from "./reward";
import { hardPrediction, type StepOptions } from "./step";
import type { System } from "./system";

export interface ExampleEval {
  task: string;
  kind: "train" | "test";
  index: number;
  input: Grid;
  target: Grid;
  /** The size both attempts were made at, and where it came from. */
  size: [number, number];
  sizeSource: "task" | "head";
  /** [before refinement, after refinement]. */
  attempts: [Grid, Grid];
  firstCorrect: boolean;
  /** Either attempt right (pass@2). */
  correct: boolean;
  /** Cell accuracy at the target size, before and after refinement. */
  cellAccBefore: number;
  cellAccAfter: number;
  hint: string;
}

export interface EvalSummary {
  examples: number;
  /** Exact match of the first attempt (before refinement): "Val Accuracy". */
  exactFirst: number;
  exactFirstCount: number;
  pass2: number;
  pass2Count: number;
  /** Mean cell accuracy after refinement, at the target size. */
  cellAcc: number;
  cellAccBefore: number;
  /** cellAcc - cellAccBefore. */
  accuracyDelta: number;
  /** Tasks whose every evaluated output was solved within two attempts. */
  tasksSolved: number;
  tasks: number;
  seconds: number;
}

export function evaluateExample(sys: System, ex: Example, opts: Pick<StepOptions, "autocast"> = {}): ExampleEval {
  const ctx = context(ex);
  const tgt = targetOf(ex);
  if (!tgt) throw new RangeError(`${ex.task.id}: example ${ex.index} has no known output to score`);
  const ac = opts.autocast ?? null;
  const run = <T>(fn: () => T): T => (ac ? torch.autocast({ device: ac.device, dtype: ac.dtype }, fn) : fn());
  return torch.scope(() =>
    torch.noGrad(() =>
      run(() => {
        const prompt = sys.prompter.embed(ex);
        const before = sys.agent.forward(ctx.query, prompt.p);
        const certain = certainOutputSize(ex.task, ctx.query);
        const size: [number, number] = certain ?? predictedSize(before);
        const mem = sys.memory.read(prompt.p);
        const act = sys.refiner.act(prompt.p, before.pooled, confidence(before), { deterministic: true, memoryBias: mem.bias });
        const after = sys.agent.forward(ctx.query, prompt.p.add(sys.refiner.delta(act.action)));
        const sizeAfter: [number, number] = certain ?? predictedSize(after);
        const a1 = hardPrediction(before.logits, size[0], size[1]);
        const a2 = hardPrediction(after.logits, sizeAfter[0], sizeAfter[1]);
        const h = tgt.length;
        const w = tgt[0].length;
        const firstCorrect = exactMatch(a1, tgt);
        return {
          task: ex.task.id,
          kind: ex.kind ?? "train",
          index: ex.index,
          input: ctx.query,
          target: tgt,
          size,
          sizeSource: certain ? "task" : "head",
          attempts: [a1, a2] as [Grid, Grid],
          firstCorrect,
          correct: firstCorrect || exactMatch(a2, tgt),
          cellAccBefore: cellAccuracy(hardPrediction(before.logits, h, w), tgt),
          cellAccAfter: cellAccuracy(hardPrediction(after.logits, h, w), tgt),
          hint: prompt.hint,
        };
      }),
    ),
  );
}

export function evaluate(
  sys: System,
  examples: Example[],
  opts: Pick<StepOptions, "autocast"> & { onExample?: (r: ExampleEval, i: number) => void } = {},
): { summary: EvalSummary; results: ExampleEval[] } {
  const t0 = performance.now();
  const modes = [sys.qwen, sys.agent, sys.refiner].map((m) => [m, m.training] as const);
  for (const [m] of modes) m.eval();
  const results: ExampleEval[] = [];
  try {
    examples.forEach((ex, i) => {
      const r = evaluateExample(sys, ex, opts);
      results.push(r);
      opts.onExample?.(r, i);
    });
  } finally {
    for (const [m, t] of modes) m.train(t);
  }
  const n = results.length;
  const mean = (f: (r: ExampleEval) => number) => (n ? results.reduce((a, r) => a + f(r), 0) / n : 0);
  const byTask = new Map<string, boolean>();
  for (const r of results) byTask.set(r.task, (byTask.get(r.task) ?? true) && r.correct);
  const exactFirstCount = results.filter((r) => r.firstCorrect).length;
  const pass2Count = results.filter((r) => r.correct).length;
  const cellAcc = mean((r) => r.cellAccAfter);
  const cellAccBefore = mean((r) => r.cellAccBefore);
  return {
    summary: {
      examples: n,
      exactFirst: n ? exactFirstCount / n : 0,
      exactFirstCount,
      pass2: n ? pass2Count / n : 0,
      pass2Count,
      cellAcc,
      cellAccBefore,
      accuracyDelta: cellAcc - cellAccBefore,
      tasksSolved: [...byTask.values()].filter(Boolean).length,
      tasks: byTask.size,
      seconds: (performance.now() - t0) / 1000,
    },
    results,
  };
}
