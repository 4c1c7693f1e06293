// Training examples, leave-one-out contexts, the train/validation split and the epoch order.
// One example is one pair of one task: the model sees the task's other demonstrations and the
// pair's input, and must produce the pair's output, which context() never returns.
import { hash32, Rng, seedOf } from "./rng.ts";
import type { Grid, Pair, Task } from "./types.ts";

export interface Example {
  task: Task;
  /** Index into task.train (kind "train", the default) or task.test (kind "test"). */
  index: number;
  /** "test": a test pair with a known output (evaluation); its context is all train pairs. */
  kind?: "train" | "test";
  /** The augmentation `task` already carries (voting, augmented training): it keys cached prompt vectors. */
  augmentation?: string;
}

export interface Context {
  /** Demonstrations to show, in task order: all train pairs except the example's own. */
  demos: Pair[];
  /** The input whose output is to be predicted. */
  query: Grid;
}

/** What the prompt may show for this example; never the example's own output. */
export function context(ex: Example): Context {
  if (ex.kind === "test") {
    const t = ex.task.test[ex.index];
    if (!t) throw new RangeError(`${ex.task.id}: no test pair ${ex.index}`);
    return { demos: ex.task.train.slice(), query: t.input };
  }
  const p = ex.task.train[ex.index];
  if (!p) throw new RangeError(`${ex.task.id}: no train pair ${ex.index}`);
  return { demos: ex.task.train.filter((_, i) => i !== ex.index), query: p.input };
}

/** The output the example is scored against (undefined for a test pair of a hidden set). */
export function target(ex: Example): Grid | undefined {
  return ex.kind === "test" ? ex.task.test[ex.index]?.output : ex.task.train[ex.index]?.output;
}

/** One example per train pair of every task, in task order. */
export function trainingExamples(tasks: readonly Task[]): Example[] {
  return tasks.flatMap((task) => task.train.map((_, index): Example => ({ task, index })));
}

/** One example per test pair whose output is known (for evaluation and scoring). */
export function testExamples(tasks: readonly Task[]): Example[] {
  return tasks.flatMap((task) =>
    task.test.flatMap((t, index): Example[] => (t.output ? [{ task, index, kind: "test" }] : [])),
  );
}

/** A task's position in [0, 1) for the split: from its id and the seed only. */
export function splitKey(id: string, seed: number): number {
  return hash32(`${seedOf(seed)}:${id}`) / 4294967296;
}

/**
 * Split tasks into train and validation by a hash of (seed, id): a task is in validation when its key is
 * below valFraction, so adding or removing tasks never moves any other task. With valFraction > 0 and at
 * least two tasks, validation is never empty (the lowest-key task is taken): a tiny dataset still validates.
 * Both lists keep the input order.
 */
export function splitTasks(tasks: readonly Task[], valFraction: number, seed: number): { train: Task[]; val: Task[] } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`valFraction must be in [0, 1), got ${valFraction}`);
  const keys = tasks.map((t) => splitKey(t.id, seed));
  const inVal = keys.map((k) => k < valFraction);
  if (valFraction > 0 && tasks.length >= 2 && !inVal.includes(true)) {
    inVal[keys.indexOf(Math.min(...keys))] = true;
  }
  return { train: tasks.filter((_, i) => !inVal[i]), val: tasks.filter((_, i) => inVal[i]) };
}

/** A permutation of 0..n-1 that depends only on (seed, epoch): a resumed run recomputes the same order. */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`epochOrder: n must be a non-negative integer, got ${n}`);
  return new Rng(seedOf(seed, "epoch", epoch)).shuffle(Array.from({ length: n }, (_, i) => i));
}
