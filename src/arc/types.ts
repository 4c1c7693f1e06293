// The ARC task format as it is on disk (fchollet/ARC-AGI, arcprize/ARC-AGI-2): a grid is a list of rows
// of colours 0..9, 1..30 cells a side; a task is some demonstration pairs and some test pairs.

/** Rows of colours 0..9; every row has the same length; 1..30 rows and columns. */
export type Grid = number[][];

export interface Pair {
  input: Grid;
  output: Grid;
}

/** A test pair: the output is known for public data and absent for hidden test sets. */
export interface TestPair {
  input: Grid;
  output?: Grid;
}

export interface Task {
  /** The file name without `.json` (or `family-seed` for synthetic tasks). */
  id: string;
  train: Pair[];
  test: TestPair[];
}

export interface Dataset {
  /** `arc-agi-1`, `arc-agi-2`, `synthetic`, or the path given. */
  name: string;
  /** The folder (or file) the tasks were read from; absent for synthetic data. */
  root?: string;
  training: Task[];
  evaluation: Task[];
  /**
   * True when the source had no training/evaluation split (one file, or a folder of task files): the same
   * tasks are then in both lists, since training reads only their train pairs and evaluation their test pairs.
   */
  flat?: boolean;
}

/** Grid limits of the ARC format. */
export const MAX_SIDE = 30;
export const NUM_COLOURS = 10;
