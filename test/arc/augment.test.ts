import { describe, expect, test } from "bun:test";
import {
  augmentGrid, augmentTask, checkColourPerm, dihedral, DIHEDRAL_NAMES, inverseAugmentation, inverseColourPerm, inverseDihedral,
  permuteColours, randomAugmentation, randomColourPerm, unaugmentGrid, unaugmentTask,
} from "../../src/arc/augment.ts";
import { loadDataset } from "../../src/arc/load.ts";
import { Rng } from "../../src/arc/rng.ts";
import { generate, getFamily } from "../../src/arc/synthetic.ts";
import { FIXTURE_ARC } from "../helpers/fixtures.ts";

const g = [[1, 2, 3], [4, 5, 6]]; // 2 x 3, no symmetry

describe("dihedral transforms", () => {
  test("each of the 8 does what its name says", () => {
    expect(DIHEDRAL_NAMES).toEqual(["identity", "rot90", "rot180", "rot270", "flip_h", "flip_v", "transpose", "anti_transpose"]);
    expect(dihedral(g, 0)).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(dihedral(g, 1)).toEqual([[4, 1], [5, 2], [6, 3]]); // clockwise
    expect(dihedral(g, 2)).toEqual([[6, 5, 4], [3, 2, 1]]);
    expect(dihedral(g, 3)).toEqual([[3, 6], [2, 5], [1, 4]]);
    expect(dihedral(g, 4)).toEqual([[3, 2, 1], [6, 5, 4]]);
    expect(dihedral(g, 5)).toEqual([[4, 5, 6], [1, 2, 3]]);
    expect(dihedral(g, 6)).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(dihedral(g, 7)).toEqual([[6, 3], [5, 2], [4, 1]]);
    expect(dihedral(g, 0)).not.toBe(g);
  });

  test("they form a group: rot90 composes, inverses undo, all 8 images differ", () => {
    expect(dihedral(dihedral(g, 1), 1)).toEqual(dihedral(g, 2));
    expect(dihedral(dihedral(g, 2), 1)).toEqual(dihedral(g, 3));
    for (let k = 0; k < 8; k++) expect(dihedral(dihedral(g, k), inverseDihedral(k))).toEqual(g);
    expect(new Set(Array.from({ length: 8 }, (_, k) => JSON.stringify(dihedral(g, k)))).size).toBe(8);
    expect(() => dihedral(g, 8)).toThrow("dihedral: k must be 0..7, got 8");
  });
});

describe("colour permutations", () => {
  test("keep 0, are permutations, and invert", () => {
    const rng = new Rng(1);
    for (let i = 0; i < 100; i++) {
      const p = randomColourPerm(rng);
      checkColourPerm(p);
      expect(p[0]).toBe(0);
      const inv = inverseColourPerm(p);
      for (let c = 0; c < 10; c++) expect(inv[p[c]!]).toBe(c);
    }
    expect(permuteColours([[0, 1, 2]], [0, 2, 1, 3, 4, 5, 6, 7, 8, 9])).toEqual([[0, 2, 1]]);
    expect(() => checkColourPerm([1, 0, 2, 3, 4, 5, 6, 7, 8, 9])).toThrow("not a permutation of 0..9 that keeps 0");
    expect(() => augmentTask({ id: "x", train: [], test: [] }, { colours: [0, 1, 1, 3, 4, 5, 6, 7, 8, 9] })).toThrow(RangeError);
  });
});

describe("task augmentation", () => {
  test("augment then inverse is the identity on every task of the fixture set (1x1 to 30x30), for all 8 transforms", async () => {
    const ds = await loadDataset(FIXTURE_ARC);
    const rng = new Rng(99);
    let n = 0;
    for (const task of [...ds.training, ...ds.evaluation]) {
      for (let k = 0; k < 8; k++) {
        const aug = { dihedral: k, colours: randomColourPerm(rng) };
        const a = augmentTask(task, aug);
        expect(a.id).toBe(task.id);
        expect(unaugmentTask(a, aug)).toEqual(task);
        n++;
      }
      // Predictions map back grid by grid too.
      const aug = randomAugmentation(rng);
      expect(unaugmentGrid(augmentGrid(task.test[0]!.input, aug), aug)).toEqual(task.test[0]!.input);
    }
    expect(n).toBe(8 * 32);
  });

  test("applied consistently: an augmented rule is the conjugated rule on every pair", () => {
    // rotate90 seen through dihedral k: out' = D_k(rot90(D_k^-1(in'))) must hold for every pair of the task.
    const fam = getFamily("rotate90");
    const { task, params } = generate("rotate90", 3);
    for (let k = 0; k < 8; k++) {
      const aug = { dihedral: k, colours: randomColourPerm(new Rng(k)) };
      const a = augmentTask(task, aug);
      for (const p of [...a.train, ...a.test]) {
        expect(p.output).toEqual(augmentGrid(fam.apply(unaugmentGrid(p.input, aug), params), aug));
      }
    }
  });

  test("a hidden test output stays hidden; inverse of an augmentation without colours has none", () => {
    const t = { id: "h", train: [{ input: [[1, 2]], output: [[2, 1]] }], test: [{ input: [[3, 4]] }] };
    expect(augmentTask(t, { dihedral: 1 })).toEqual({ id: "h", train: [{ input: [[1], [2]], output: [[2], [1]] }], test: [{ input: [[3], [4]] }] });
    expect(inverseAugmentation({ dihedral: 3 })).toEqual({ dihedral: 1 });
    expect(randomAugmentation(new Rng(1), { dihedral: false, colours: false })).toEqual({ dihedral: 0 });
  });
});
