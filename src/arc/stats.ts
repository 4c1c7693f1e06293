// Dataset statistics for `data.ts stats`: counts, grid sizes, and how often the output size differs from
// the input's or can be read off the demonstrations (what the resize stage relies on:
// evaluation reads the output size off the demonstrations when a rule explains them all).
import type { Grid, Task } from "./types.ts";

const side = (g: Grid) => Math.max(g.length, g[0]?.length ?? 0);
const sameSize = (a: Grid, b: Grid) => a.length === b.length && a[0]!.length === b[0]!.length;

/**
 * The output size when the demonstrations make it certain: every demonstration keeps its size (then the
 * input's size), or every demonstration output has one size (then that size). Otherwise null.
 */
export function certainOutputSize(task: Task, input: Grid): [number, number] | null {
  if (task.train.every((p) => sameSize(p.input, p.output))) return [input.length, input[0]!.length];
  const o = task.train[0]!.output;
  if (task.train.every((p) => sameSize(p.output, o))) return [o.length, o[0]!.length];
  return null;
}

/** Bucket edges for the size histogram: the larger side of a grid, 1-5, 6-10, ..., 26-30. */
export const SIDE_BUCKETS = ["1-5", "6-10", "11-15", "16-20", "21-25", "26-30"] as const;

export interface SplitStats {
  tasks: number;
  trainPairs: number;
  testPairs: number;
  testPairsWithOutput: number;
  /** Train pairs whose output size differs from the input's. */
  sizeChangingTrainPairs: number;
  /** All pairs with an output (train and test) whose output size differs from the input's. */
  sizeChangingPairs: number;
  /** Tasks where every test output size is certain from the demonstrations. */
  tasksWithCertainSize: number;
  /** ... and where it is also right for every test pair with a known output (the rule can mislead: a task's
   * demonstrations may share an output size that its test output does not have). */
  tasksWithCertainSizeRight: number;
  /** Histogram of the larger side, over all grids of all pairs, by SIDE_BUCKETS. */
  inputSides: number[];
  outputSides: number[];
  /** Mean cells per grid. */
  meanInputCells: number;
  meanOutputCells: number;
}

export function splitStats(tasks: readonly Task[]): SplitStats {
  const s: SplitStats = {
    tasks: tasks.length, trainPairs: 0, testPairs: 0, testPairsWithOutput: 0, sizeChangingTrainPairs: 0, sizeChangingPairs: 0,
    tasksWithCertainSize: 0, tasksWithCertainSizeRight: 0, inputSides: SIDE_BUCKETS.map(() => 0), outputSides: SIDE_BUCKETS.map(() => 0),
    meanInputCells: 0, meanOutputCells: 0,
  };
  let nIn = 0, nOut = 0, cIn = 0, cOut = 0;
  const addIn = (g: Grid) => { s.inputSides[Math.floor((side(g) - 1) / 5)]!++; nIn++; cIn += g.length * g[0]!.length; };
  const addOut = (g: Grid) => { s.outputSides[Math.floor((side(g) - 1) / 5)]!++; nOut++; cOut += g.length * g[0]!.length; };
  for (const t of tasks) {
    s.trainPairs += t.train.length;
    s.testPairs += t.test.length;
    for (const p of t.train) {
      addIn(p.input); addOut(p.output);
      if (!sameSize(p.input, p.output)) { s.sizeChangingTrainPairs++; s.sizeChangingPairs++; }
    }
    let certain = true, right = true;
    for (const p of t.test) {
      addIn(p.input);
      const size = certainOutputSize(t, p.input);
      if (!size) certain = false;
      if (p.output) {
        s.testPairsWithOutput++;
        addOut(p.output);
        if (!sameSize(p.input, p.output)) s.sizeChangingPairs++;
        if (!size || size[0] !== p.output.length || size[1] !== p.output[0]!.length) right = false;
      }
    }
    if (certain) s.tasksWithCertainSize++;
    if (certain && right) s.tasksWithCertainSizeRight++;
  }
  s.meanInputCells = nIn ? cIn / nIn : 0;
  s.meanOutputCells = nOut ? cOut / nOut : 0;
  return s;
}
