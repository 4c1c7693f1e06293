import { describe, expect, test } from "bun:test";
import { context, epochOrder, splitTasks, target, testExamples, trainingExamples, type Example } from "../../src/arc/examples.ts";
import { gridsEqual } from "../../src/arc/grid.ts";
import { loadDataset } from "../../src/arc/load.ts";
import type { Task } from "../../src/arc/types.ts";
import { FIXTURE_ARC } from "../helpers/fixtures.ts";

const ds = await loadDataset(FIXTURE_ARC);
/** 1000 tasks with distinct ids (copies of the fixture's, renamed): enough for split fractions to be measurable. */
const many: Task[] = Array.from({ length: 1000 }, (_, i) => ({ ...ds.training[i % ds.training.length]!, id: `task${String(i).padStart(4, "0")}` }));

describe("examples and leave-one-out context", () => {
  test("one training example per train pair: 85 for the fixture's training split", () => {
    const ex = trainingExamples(ds.training);
    expect(ex.length).toBe(85);
    expect(ex[0]).toEqual({ task: ds.training[0]!, index: 0 });
    expect(ex[1]).toEqual({ task: ds.training[0]!, index: 1 });
  });

  test("the context never contains the example's own output, and holds exactly the other pairs", () => {
    let checked = 0, valueChecked = 0;
    for (const ex of trainingExamples([...ds.training, ...ds.evaluation])) {
      const own = ex.task.train[ex.index]!;
      const { demos, query } = context(ex);
      expect(query).toBe(own.input);
      expect(demos).toEqual(ex.task.train.filter((_, i) => i !== ex.index));
      expect(demos.length).toBe(ex.task.train.length - 1);
      // By identity: neither the pair nor its output grid is shown.
      expect(demos.includes(own)).toBe(false);
      expect(demos.some((p) => p.output === own.output || p.input === own.output)).toBe(false);
      // By value, wherever the output is not simply repeated elsewhere in the task (5 fixture tasks repeat
      // one: shared 1x1 and 3x3 outputs, and rotatechain, whose outputs are the next pair's inputs).
      const repeated = ex.task.train.some((p, i) => i !== ex.index && (gridsEqual(p.output, own.output) || gridsEqual(p.input, own.output)));
      if (!repeated) {
        expect(demos.some((p) => gridsEqual(p.output, own.output) || gridsEqual(p.input, own.output))).toBe(false);
        valueChecked++;
      }
      expect(target(ex)).toBe(own.output);
      checked++;
    }
    expect(checked).toBe(85 + 23);
    expect(valueChecked).toBe(87);
  });

  test("test examples: every train pair as context, never any test output", () => {
    const ex = testExamples(ds.evaluation);
    expect(ex.length).toBe(10);
    for (const e of ex) {
      const { demos, query } = context(e);
      expect(e.kind).toBe("test");
      expect(query).toBe(e.task.test[e.index]!.input);
      expect(demos).toEqual(e.task.train);
      expect(demos.some((p) => e.task.test.some((t) => t.output === p.output))).toBe(false);
      expect(target(e)).toBe(e.task.test[e.index]!.output!);
    }
    const hidden: Task = { id: "h", train: [{ input: [[1]], output: [[2]] }], test: [{ input: [[1]] }, { input: [[2]], output: [[3]] }] };
    expect(testExamples([hidden]).map((e) => e.index)).toEqual([1]);
  });

  test("an index out of range is an error, not an empty context", () => {
    const t = ds.training[0]!;
    expect(() => context({ task: t, index: 9 })).toThrow(`${t.id}: no train pair 9`);
    expect(() => context({ task: t, index: 1, kind: "test" } satisfies Example)).toThrow(`${t.id}: no test pair 1`);
  });
});

describe("train/validation split by task id", () => {
  test("deterministic, disjoint, complete, close to the fraction, and order-preserving", () => {
    const a = splitTasks(many, 0.1, 7);
    const b = splitTasks(many, 0.1, 7);
    expect(a.val.map((t) => t.id)).toEqual(b.val.map((t) => t.id));
    expect(a.train.length + a.val.length).toBe(1000);
    const val = new Set(a.val.map((t) => t.id));
    expect(a.train.some((t) => val.has(t.id))).toBe(false);
    expect(a.val.length).toBeGreaterThan(70);
    expect(a.val.length).toBeLessThan(130);
    expect(a.val.map((t) => t.id)).toEqual(a.val.map((t) => t.id).sort());
    // Another seed gives another split.
    expect(splitTasks(many, 0.1, 8).val.map((t) => t.id)).not.toEqual(a.val.map((t) => t.id));
    // The real task ids split too, every task on one side.
    const f = splitTasks(ds.training, 0.25, 7);
    expect(f.val.length).toBeGreaterThan(0);
    expect([...f.train, ...f.val].map((t) => t.id).sort()).toEqual(ds.training.map((t) => t.id));
  });

  test("depends on the id, not the position: shuffling or adding tasks moves no other task", () => {
    const base = splitTasks(many.slice(0, 500), 0.2, 1);
    const shuffled = splitTasks(many.slice(0, 500).reverse(), 0.2, 1);
    expect(new Set(shuffled.val.map((t) => t.id))).toEqual(new Set(base.val.map((t) => t.id)));
    const grown = splitTasks(many, 0.2, 1);
    const grownVal = new Set(grown.val.map((t) => t.id));
    for (const t of many.slice(0, 500)) expect(grownVal.has(t.id)).toBe(base.val.includes(t));
  });

  test("edge cases: fraction 0, a tiny set still validates, bad fractions throw", () => {
    expect(splitTasks(ds.training, 0, 1).val).toEqual([]);
    const two = splitTasks(ds.training.slice(0, 2), 0.01, 1);
    expect(two.val.length).toBe(1);
    expect(two.train.length).toBe(1);
    expect(splitTasks(ds.training.slice(0, 1), 0.5, 1).val.length + splitTasks(ds.training.slice(0, 1), 0.5, 1).train.length).toBe(1);
    expect(() => splitTasks(ds.training, 1, 1)).toThrow("valFraction must be in [0, 1), got 1");
    expect(() => splitTasks(ds.training, NaN, 1)).toThrow(RangeError);
  });
});

describe("epoch order", () => {
  test("a permutation, reproducible from (seed, epoch) alone, different across epochs and seeds", () => {
    const o = epochOrder(3232, 42, 3);
    expect([...o].sort((a, b) => a - b)).toEqual(Array.from({ length: 3232 }, (_, i) => i));
    expect(epochOrder(3232, 42, 3)).toEqual(o);
    expect(epochOrder(3232, 42, 4)).not.toEqual(o);
    expect(epochOrder(3232, 43, 3)).not.toEqual(o);
    expect(epochOrder(0, 1, 1)).toEqual([]);
    expect(epochOrder(1, 1, 1)).toEqual([0]);
    expect(() => epochOrder(-1, 1, 1)).toThrow(RangeError);
  });

  test("pinned values: the order must not change between versions, or resumed runs would diverge", () => {
    expect(epochOrder(10, 0, 0)).toEqual(PINNED_0_0);
    expect(epochOrder(10, 1234, 5)).toEqual(PINNED_1234_5);
  });
});

const PINNED_0_0 = [5, 3, 1, 8, 6, 0, 7, 2, 4, 9];
const PINNED_1234_5 = [9, 6, 7, 8, 3, 1, 5, 4, 2, 0];
