// Output sizes read off the demonstrations: one hand-made task per rule picks the right size for its
// test input; a tier whose rules disagree, or a task no rule explains, falls back to the size head (null).
import { describe, expect, test } from "bun:test";
import type { Grid, Task } from "../../src/arc";
import { consistentRules, largestObjectSize, outputSizeFromDemos } from "../../src/arc/size-rules";

const grid = (h: number, w: number, f: (i: number, j: number) => number = (i, j) => (i + 2 * j) % 5): Grid =>
  Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => f(i, j)));
const task = (pairs: [Grid, Grid][]): Task => ({ id: "t", train: pairs.map(([input, output]) => ({ input, output })), test: [] });
/** A grid of zeros with a filled h x w box of colour c at (top, left). */
const withBox = (H: number, W: number, boxes: [number, number, number, number, number][]): Grid =>
  grid(H, W, (i, j) => boxes.find(([t, l, h, w]) => i >= t && i < t + h && j >= l && j < l + w)?.[4] ?? 0);

describe("outputSizeFromDemos", () => {
  test("same: every demonstration keeps its size", () => {
    const t = task([[grid(3, 4), grid(3, 4)], [grid(5, 2), grid(5, 2)]]);
    expect(outputSizeFromDemos(t, grid(7, 9))).toMatchObject({ size: [7, 9], rule: "same" });
  });

  test("constant: one output size for inputs of several sizes", () => {
    const t = task([[grid(3, 4), grid(2, 2)], [grid(6, 5), grid(2, 2)]]);
    expect(outputSizeFromDemos(t, grid(9, 9))).toMatchObject({ size: [2, 2], rule: "constant" });
  });

  test("scale: fixed factors per axis (2x, 1/3, and mixed)", () => {
    expect(outputSizeFromDemos(task([[grid(2, 3), grid(4, 6)], [grid(3, 3), grid(6, 6)]]), grid(5, 4))).toMatchObject({ size: [10, 8], rule: "scale 2/1 x 2/1" });
    expect(outputSizeFromDemos(task([[grid(9, 6), grid(3, 2)], [grid(12, 3), grid(4, 1)]]), grid(6, 15))).toMatchObject({ size: [2, 5], rule: "scale 1/3 x 1/3" });
    expect(outputSizeFromDemos(task([[grid(2, 3), grid(2, 6)], [grid(4, 1), grid(4, 2)]]), grid(3, 5))).toMatchObject({ size: [3, 10], rule: "scale 1/1 x 2/1" });
    // A scale the test input cannot take (5 rows / 3) does not apply.
    expect(outputSizeFromDemos(task([[grid(9, 6), grid(3, 2)], [grid(12, 3), grid(4, 1)]]), grid(5, 6)).size).toBeNull();
  });

  test("transpose: (h, w) -> (w, h)", () => {
    const t = task([[grid(2, 5), grid(5, 2)], [grid(3, 7), grid(7, 3)]]);
    expect(outputSizeFromDemos(t, grid(4, 6))).toMatchObject({ size: [6, 4], rule: "transpose" });
  });

  test("object: the largest one-colour object's box; content: every non-zero cell's box", () => {
    // The largest object (colour 3, 3x4) is cut out; a smaller object of colour 5 is noise.
    const obj = task([
      [withBox(10, 10, [[1, 1, 3, 4, 3], [7, 7, 1, 2, 5]]), grid(3, 4)],
      [withBox(9, 12, [[4, 2, 2, 5, 3], [0, 10, 2, 1, 5]]), grid(2, 5)],
    ]);
    expect(outputSizeFromDemos(obj, withBox(12, 12, [[2, 3, 6, 2, 4], [10, 10, 1, 1, 8]]))).toMatchObject({ size: [6, 2], rule: "object" });
    // Two touching boxes of different colours: the content's box covers both.
    const content = task([
      [withBox(8, 8, [[2, 2, 2, 2, 1], [4, 2, 1, 3, 2]]), grid(3, 3)],
      [withBox(9, 9, [[1, 1, 1, 4, 6], [2, 1, 3, 4, 7]]), grid(4, 4)],
    ]);
    expect(outputSizeFromDemos(content, withBox(10, 10, [[0, 0, 2, 5, 1], [2, 0, 2, 5, 9]]))).toMatchObject({ size: [4, 5], rule: "content" });
    expect(largestObjectSize(grid(3, 3, () => 0))).toBeNull();
  });

  test("colour c: the box of one colour's cells", () => {
    // Colour 2's cells span the output; colours 1 and 4 are elsewhere and larger.
    const t = task([
      [withBox(10, 10, [[0, 0, 6, 6, 1], [7, 7, 1, 1, 2], [8, 8, 1, 1, 2], [0, 8, 1, 1, 4]]), grid(2, 2)],
      [withBox(12, 12, [[0, 0, 8, 8, 1], [9, 9, 1, 1, 2], [9, 11, 1, 1, 2], [11, 0, 1, 5, 4]]), grid(1, 3)],
    ]);
    expect(outputSizeFromDemos(t, withBox(10, 10, [[0, 0, 3, 3, 1], [5, 5, 1, 1, 2], [8, 6, 1, 1, 2]]))).toMatchObject({ size: [4, 2], rule: "colour 2" });
  });

  test("rules that disagree in one tier, or no rule at all: null (the size head decides)", () => {
    // Colour 1's box and colour 2's box both explain the demonstrations; on the test input they differ.
    const t = task([
      [withBox(8, 8, [[0, 0, 2, 3, 1], [5, 5, 2, 3, 2]]), grid(2, 3)],
      [withBox(9, 9, [[1, 1, 4, 1, 1], [4, 4, 4, 1, 2]]), grid(4, 1)],
    ]);
    const r = outputSizeFromDemos(t, withBox(9, 9, [[0, 0, 2, 2, 1], [4, 4, 3, 3, 2]]));
    expect(r.candidates.map((c) => c.rule)).toEqual(expect.arrayContaining(["colour 1", "colour 2"]));
    expect(r.candidates.find((c) => c.rule === "colour 1")!.size).not.toEqual(r.candidates.find((c) => c.rule === "colour 2")!.size);
    expect(r.size).toBeNull();
    expect(r.rule).toBeNull();
    // Sizes with no pattern: no rule is consistent.
    expect(consistentRules(task([[grid(2, 2), grid(5, 1)], [grid(3, 3), grid(1, 7)]]))).toEqual([]);
    expect(outputSizeFromDemos(task([[grid(2, 2), grid(5, 1)], [grid(3, 3), grid(1, 7)]]), grid(4, 4))).toEqual({ size: null, rule: null, candidates: [] });
  });

  test("an earlier tier wins over a later one: same before constant, before a colour's box", () => {
    // Every input is 3x3 and so is every output: same and constant both explain it; same decides (5x5).
    const t = task([[grid(3, 3), grid(3, 3)], [grid(3, 3, () => 1), grid(3, 3)]]);
    const r = outputSizeFromDemos(t, grid(5, 5));
    expect(r.candidates.map((c) => c.rule).slice(0, 2)).toEqual(["same", "constant"]);
    expect(r).toMatchObject({ size: [5, 5], rule: "same" });
  });
});
