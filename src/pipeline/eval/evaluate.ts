// Evaluation (docs/pipeline.md, "Evaluation"): two attempts per test output, before and after refinement
// (the policy's mean action, plus the memory's bias); ARC's exact-match rule; cell accuracies at the target size.
// The output size is read off the demonstrations when a rule explains every one of them
// (src/arc/size-rules.ts: same, constant, scale, transpose, object/content/colour boxes), else the size head's. The trainer's validation and scripts/eval.ts both call evaluate(), so their figures agree.
import { outputSizeFromDemos } from "../../arc/size-rules";
import { type Example, target as targetOf } from "../../arc/examples";
import type { Grid } from "../../arc/types";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { confidences, predictedSizes } from "../system/agent";
import { type ForwardOptions, gridsFromHost, lastStepPrediction, systemForward } from "../system/forward";
import { cellAccuracy, exactMatch } from "../objective/reward";
import { type TttOptions, withTestTimeTraining } from "./ttt";
import { augmentExample, rankCandidates, unaugmentGrid, voteAugmentations, votedAttempts } from "./vote";
import { type System, demoModules } from "../system/system";
import { NonFiniteError } from "../system/nonfinite";

export interface ExampleEval {
  task: string;
  kind: "train" | "test";
  index: number;
  input: Grid;
  target: Grid;
  /** The size both attempts were made at, and where it came from. */
  size: [number, number];
  sizeSource: "task" | "head";
  /** The demonstrations' rule behind a "task" size (null for the head's). */
  sizeRule?: string | null;
  /** [before refinement, after refinement]. */
  attempts: [Grid, Grid];
  firstCorrect: boolean;
  /** Either attempt right (pass@2). */
  correct: boolean;
  /** The agent's confidence in each attempt (mean top-colour probability of its last step). */
  confidence?: [number, number];
  /** With --votes: the identity augmentation's own two attempts, and the top candidates with their votes. */
  unvoted?: [Grid, Grid];
  votes?: { grid: Grid; votes: number; confidence: number }[];
  /** With test-time training: its steps, seconds and loss, and this example's answers without it. */
  ttt?: { steps: number; seconds: number; lossFirst: number; lossLast: number; attemptsBefore: [Grid, Grid]; correctBefore: boolean; cellAccBefore: number };
  /** Cell accuracy at the target size, before and after refinement. */
  cellAccBefore: number;
  cellAccAfter: number;
  hint: string;
}

export interface EvalSummary {
  examples: number;
  /** Exact match of the first attempt (before refinement): the metric val/exact. */
  exactFirst: number;
  exactFirstCount: number;
  pass2: number;
  pass2Count: number;
  /** Attempt 1 at the target's size: share and count (the size rules' and the size head's together). */
  sizeAcc: number;
  sizeAccCount: number;
  /** Examples whose size came from the demonstrations' rules. */
  sizeFromRules: number;
  /** Mean cell accuracy after refinement, at the target size. */
  cellAcc: number;
  cellAccBefore: number;
  /** cellAcc - cellAccBefore. */
  accuracyDelta: number;
  /** Tasks whose every evaluated output was solved within two attempts. */
  tasksSolved: number;
  tasks: number;
  seconds: number;
  /** With test-time training: tasks adapted, seconds per task, and examples it turned right / wrong (pass@2). */
  ttt?: { tasks: number; secondsPerTask: number; gained: number; lost: number; cellAccWithout: number };
}

/** Options of evaluation: autocast as in training, and examples per batch. */
export interface EvalOptions extends Pick<ForwardOptions, "autocast" | "agentPadShare"> {
  /** Examples per batched pass (default 8); results do not depend on it. */
  batchSize?: number;
  /** Augmentations voted over per example (1: no voting), and the seed that picks them. */
  votes?: number;
  voteSeed?: number;
  /** Test-time training per task before its predictions (steps 0 or absent: off). */
  ttt?: Omit<TttOptions, "autocast">;
}

/**
 * A batch of examples through the system's forward (forward.ts, as training runs it) without gradient and
 * with the policy's mean action plus the memory's bias. Two host
 * transfers besides the prompt's: the size head's sizes (they decide the attempts' shapes), then every
 * prediction.
 */
export function evaluateBatch(sys: System, examples: Example[], opts: EvalOptions = {}): ExampleEval[] {
  const targets = examples.map((ex) => {
    const t = targetOf(ex);
    if (!t) throw new RangeError(`${ex.task.id}: example ${ex.index} has no known output to score`);
    return t;
  });
  if (examples.length === 0) return [];
  return torch.scope(() =>
    torch.noGrad(() => {
      const { queries, prompt, before, after, memory } = systemForward(sys, examples, { autocast: opts.autocast, agentPadShare: opts.agentPadShare, deterministic: true });
      const hits = memory.hits;
      const B = examples.length;
      // Sizes, memory hits and both passes' confidences in one transfer (float64 holds the integers exactly).
      const col = (t: Tensor) => t.to({ dtype: "float64" }).view(B, -1);
      const head = torch.cat([predictedSizes(before), predictedSizes(after), hits, confidences(before), confidences(after)].map(col), 1).tolist() as number[][];
      sys.memory.countReads(head.map((row) => row[4]));
      const fromDemos = examples.map((ex, i) => outputSizeFromDemos(ex.task, queries[i]));
      const certain = fromDemos.map((d) => d.size);
      const sizeOf = (i: number, col: number): [number, number] => certain[i] ?? [head[i][col], head[i][col + 1]];
      // Attempt 1 (before refinement) and 2 (after) at their sizes; both at the target's for cell accuracy.
      const shapes: [number, number][] = [];
      const preds: Tensor[] = [];
      const add = (logits: Tensor, [h, w]: [number, number]) => {
        shapes.push([h, w]);
        preds.push(lastStepPrediction(logits, h, w).flatten());
      };
      examples.forEach((_, i) => {
        const t: [number, number] = [targets[i].length, targets[i][0].length];
        add(before.logits[i], sizeOf(i, 0));
        add(after.logits[i], sizeOf(i, 2));
        add(before.logits[i], t);
        add(after.logits[i], t);
      });
      const { grids } = gridsFromHost(torch.cat(preds).tolist() as number[], shapes);
      return examples.map((ex, i): ExampleEval => {
        const [a1, a2, atT1, atT2] = grids.slice(4 * i, 4 * i + 4);
        const tgt = targets[i];
        const firstCorrect = exactMatch(a1, tgt);
        return {
          task: ex.task.id,
          kind: ex.kind ?? "train",
          index: ex.index,
          input: queries[i],
          target: tgt,
          size: sizeOf(i, 0),
          sizeSource: certain[i] ? "task" : "head",
          sizeRule: fromDemos[i].rule,
          attempts: [a1, a2],
          firstCorrect,
          correct: firstCorrect || exactMatch(a2, tgt),
          cellAccBefore: cellAccuracy(atT1, tgt),
          cellAccAfter: cellAccuracy(atT2, tgt),
          hint: prompt.hints[i],
          confidence: [head[i][5], head[i][6]],
        };
      });
    }),
  );
}

/**
 * Voting: each example's K augmentations (vote.ts) evaluated as one batch, every attempt mapped back to the
 * example's frame and colours, the two best distinct grids by votes (ties: mean confidence) as attempts.
 * Cell accuracies stay the identity augmentation's (they measure the refinement step); the size is the
 * voted attempt 1's.
 */
function evaluateVoted(sys: System, examples: Example[], votes: number, opts: EvalOptions): ExampleEval[] {
  const augs = examples.map((ex) => voteAugmentations(ex, votes, opts.voteSeed ?? 0));
  const runs = evaluateBatch(sys, examples.flatMap((ex, i) => augs[i].map((a) => augmentExample(ex, a))), opts);
  return examples.map((ex, i) => {
    const mine = runs.slice(i * votes, (i + 1) * votes);
    const plain = mine[0];
    const cands = mine.flatMap((r, k) => r.attempts.map((g, j) => ({ grid: unaugmentGrid(g, augs[i][k]), confidence: r.confidence?.[j] ?? 0 })));
    const ranked = rankCandidates(cands);
    const attempts = votedAttempts(ranked);
    const tgt = plain.target;
    const firstCorrect = exactMatch(attempts[0], tgt);
    return {
      ...plain,
      size: [attempts[0].length, attempts[0][0].length],
      attempts,
      firstCorrect,
      correct: firstCorrect || exactMatch(attempts[1], tgt),
      unvoted: plain.attempts,
      votes: ranked.slice(0, 4),
    };
  });
}

function tttSummary(results: ExampleEval[]): NonNullable<EvalSummary["ttt"]> {
  const byTask = new Map<string, number>();
  for (const r of results) if (r.ttt) byTask.set(r.task, r.ttt.seconds);
  const n = results.length;
  return {
    tasks: byTask.size,
    secondsPerTask: byTask.size ? [...byTask.values()].reduce((a, b) => a + b, 0) / byTask.size : 0,
    gained: results.filter((r) => r.correct && !r.ttt?.correctBefore).length,
    lost: results.filter((r) => !r.correct && r.ttt?.correctBefore).length,
    cellAccWithout: n ? results.reduce((a, r) => a + (r.ttt?.cellAccBefore ?? r.cellAccAfter), 0) / n : 0,
  };
}

/** One example: a batch of one. */
export function evaluateExample(sys: System, ex: Example, opts: EvalOptions = {}): ExampleEval {
  return evaluateBatch(sys, [ex], opts)[0];
}

export function evaluate(
  sys: System,
  examples: Example[],
  opts: EvalOptions & { onExample?: (r: ExampleEval, i: number) => void } = {},
): { summary: EvalSummary; results: ExampleEval[] } {
  const t0 = performance.now();
  const modes = [sys.qwen, sys.agent, sys.refiner, ...demoModules(sys)].map((m) => [m, m.training] as const);
  for (const [m] of modes) m.eval();
  const results: ExampleEval[] = [];
  try {
    const size = Math.max(1, opts.batchSize ?? 8);
    const votes = opts.votes ?? 1;
    // With votes, an example's K augmented copies run in the same batches as any other examples.
    const perExample = Math.max(1, Math.floor(size / votes));
    const run = (exs: Example[]): ExampleEval[] => {
      const out: ExampleEval[] = [];
      for (let start = 0; start < exs.length; start += perExample) {
        const chunk = exs.slice(start, start + perExample);
        out.push(...(votes > 1 ? evaluateVoted(sys, chunk, votes, opts) : evaluateBatch(sys, chunk, opts)));
      }
      return out;
    };
    const ttt = opts.ttt && opts.ttt.steps > 0 ? opts.ttt : null;
    // Test-time training adapts per task: a task's examples are evaluated together, before and after.
    // Without it each batch is a group, so results (and onExample, a progress bar) arrive batch by batch.
    const batches = (exs: Example[]) => Array.from({ length: Math.ceil(exs.length / perExample) }, (_, k) => exs.slice(k * perExample, (k + 1) * perExample));
    const groups = ttt ? [...Map.groupBy(examples, (ex) => ex.task).values()] : batches(examples);
    for (const group of groups) {
      let rs: ExampleEval[];
      if (ttt) {
        const plain = run(group);
        rs = withTestTimeTraining(sys, group[0]!.task, { ...ttt, autocast: opts.autocast }, (rep) =>
          run(group).map((r, i) => ({
            ...r,
            ttt: { steps: rep.steps, seconds: rep.seconds, lossFirst: rep.lossFirst, lossLast: rep.lossLast, attemptsBefore: plain[i]!.attempts, correctBefore: plain[i]!.correct, cellAccBefore: plain[i]!.cellAccAfter },
          })),
        );
      } else rs = run(group);
      for (const r of rs) {
        // Non-finite weights give NaN logits, whose argmax still draws a grid: refuse them, never score them.
        if (r.confidence && !r.confidence.every(Number.isFinite))
          throw new NonFiniteError(`the model's outputs for task ${r.task} ${r.kind}[${r.index}] are non-finite (NaN or inf logits): its weights or the prompt's encoding diverged`);
        opts.onExample?.(r, results.length);
        results.push(r);
      }
    }
  } finally {
    for (const [m, t] of modes) m.train(t);
  }
  return { summary: summarizeEval(results, (performance.now() - t0) / 1000, opts.ttt !== undefined && opts.ttt.steps > 0), results };
}

/** The summary of evaluated examples (evaluate's, or a data-parallel run's gathered from its ranks). */
export function summarizeEval(results: ExampleEval[], seconds: number, withTtt: boolean): EvalSummary {
  const n = results.length;
  const mean = (f: (r: ExampleEval) => number) => (n ? results.reduce((a, r) => a + f(r), 0) / n : 0);
  const byTask = new Map<string, boolean>();
  for (const r of results) byTask.set(r.task, (byTask.get(r.task) ?? true) && r.correct);
  const exactFirstCount = results.filter((r) => r.firstCorrect).length;
  const pass2Count = results.filter((r) => r.correct).length;
  const sizeAccCount = results.filter((r) => r.size[0] === r.target.length && r.size[1] === r.target[0].length).length;
  const cellAcc = mean((r) => r.cellAccAfter);
  const cellAccBefore = mean((r) => r.cellAccBefore);
  return {
    examples: n,
    exactFirst: n ? exactFirstCount / n : 0,
    exactFirstCount,
    pass2: n ? pass2Count / n : 0,
    pass2Count,
    sizeAcc: n ? sizeAccCount / n : 0,
    sizeAccCount,
    sizeFromRules: results.filter((r) => r.sizeSource === "task").length,
    cellAcc,
    cellAccBefore,
    accuracyDelta: cellAcc - cellAccBefore,
    tasksSolved: [...byTask.values()].filter(Boolean).length,
    tasks: byTask.size,
    seconds,
    ...(withTtt ? { ttt: tttSummary(results) } : {}),
  };
}
