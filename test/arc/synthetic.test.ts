import { describe, expect, test } from "bun:test";
import { colourCounts, gridsEqual } from "../../src/arc/grid.ts";
import { loadDataset } from "../../src/arc/load.ts";
import { FAMILIES, FAMILY_NAMES, generate, generateTask, generatorStats, getFamily, syntheticDataset } from "../../src/arc/synthetic.ts";
import type { Grid, Pair } from "../../src/arc/types.ts";
import { validateTask } from "../../src/arc/validate.ts";

const SEEDS = 1000;
const dims = (g: Grid) => [g.length, g[0]!.length];

/**
 * Properties of each family checked without its `apply`, so a wrong reference transform that the generator
 * also used would still be caught.
 */
const INVARIANTS: Record<string, (p: Pair, params: any) => boolean> = {
  flip_h: ({ input, output }) => output.every((row, r) => row.every((v, c) => v === input[r]![row.length - 1 - c])),
  flip_v: ({ input, output }) => output.every((row, r) => gridsEqual([row], [input[input.length - 1 - r]!])),
  rotate90: ({ input, output }) => output.every((row, r) => row.every((v, c) => v === input[input.length - 1 - c]![r])),
  scale_up: ({ input, output }, { k }) => output.length === k * input.length && output.every((row, r) => row.every((v, c) => v === input[Math.floor(r / k)]![Math.floor(c / k)])),
  downscale: ({ input, output }, { k }) => input.length === k * output.length && input[0]!.length === k * output[0]!.length,
  tile: ({ input, output }, { ry, rx }) => output.length === ry * input.length && output[0]!.length === rx * input[0]!.length,
  mirror_extend: ({ input, output }, { down }) => (down ? output.length === 2 * input.length : output[0]!.length === 2 * input[0]!.length) && gridsEqual(output.slice(0, input.length).map((r) => r.slice(0, input[0]!.length)), input),
  recolor: ({ input, output }, { map }) => output.every((row, r) => row.every((v, c) => v === map[input[r]![c]!])),
  invert: ({ input, output }) => output.every((row, r) => row.every((v, c) => (input[r]![c] === 0) !== (v === 0))),
  majority_colour: ({ input, output }) => { const n = colourCounts(input); return output.length === 1 && output[0]!.length === 1 && n.slice(1).every((x) => x <= n[output[0]![0]!]!); },
  count_to_bar: ({ input, output }, { colour }) => output.flat().length === colourCounts(input)[colour] && output.flat().every((v) => v === colour),
  draw_border: ({ output }, { colour }) => output[0]!.every((v) => v === colour) && output.every((row) => row[0] === colour && row[row.length - 1] === colour),
  crop_object: ({ output }) => output[0]!.some((v) => v) && output[output.length - 1]!.some((v) => v) && output.some((r) => r[0]) && output.some((r) => r[r.length - 1]),
  largest_object: ({ input, output }) => output.flat().filter((v) => v).length > 0 && output.flat().filter((v) => v).length <= input.flat().filter((v) => v).length,
  denoise: ({ input, output }) => output.every((row, r) => row.every((v, c) => v === 0 || v === input[r]![c])),
  fill_enclosed: ({ input, output }, { fill }) => output.every((row, r) => row.every((v, c) => v === input[r]![c] || (input[r]![c] === 0 && v === fill))),
  gravity: ({ input, output }) => gridsEqual([colourCounts(input)], [colourCounts(output)]),
  draw_lines: ({ input, output }) => output.every((row, r) => row.every((v, c) => input[r]![c] === 0 || v === input[r]![c])),
};

describe("synthetic families", () => {
  test("at least 12 families, several change the size, each has an invariant here", () => {
    expect(FAMILIES.length).toBeGreaterThanOrEqual(12);
    expect(FAMILIES.filter((f) => f.sizeChanging).map((f) => f.name)).toEqual(
      expect.arrayContaining(["crop_object", "scale_up", "tile", "largest_object", "count_to_bar", "mirror_extend"]),
    );
    expect(Object.keys(INVARIANTS).sort()).toEqual([...FAMILY_NAMES].sort());
    expect(new Set(FAMILY_NAMES).size).toBe(FAMILY_NAMES.length);
  });

  for (const fam of FAMILIES) {
    test(`${fam.name}: ${SEEDS} seeds give valid tasks that follow the rule`, () => {
      const before = generatorStats.mismatches;
      for (let seed = 0; seed < SEEDS; seed++) {
        const { task, params, family } = generate(fam.name, seed);
        expect(family).toBe(fam.name);
        expect(task.id).toBe(`${fam.name}-${seed}`);
        // Valid by the same validator as files on disk (a JSON round trip, as a saved task would be).
        expect(validateTask(JSON.parse(JSON.stringify(task)), task.id, task.id)).toEqual(task);
        expect(task.train.length).toBeGreaterThanOrEqual(3);
        expect(task.train.length).toBeLessThanOrEqual(5);
        expect(task.test.length).toBe(1);
        const pairs = [...task.train, task.test[0] as Pair];
        for (const p of pairs) {
          expect(p.output).toBeDefined();
          const again = fam.apply(p.input, params);
          if (!gridsEqual(again, p.output)) throw new Error(`${task.id}: re-applying ${fam.name} does not reproduce an output`);
          if (!INVARIANTS[fam.name]!(p, params)) throw new Error(`${task.id}: invariant of ${fam.name} broken`);
          const changed = dims(p.input).join() !== dims(p.output).join();
          if (changed !== fam.sizeChanging) throw new Error(`${task.id}: size change ${changed}, family says ${fam.sizeChanging}`);
          expect(gridsEqual(p.input, p.output)).toBe(false);
        }
        expect(new Set(pairs.map((p) => JSON.stringify(p.input))).size).toBe(pairs.length);
        expect(new Set(pairs.map((p) => JSON.stringify(p.output))).size).toBeGreaterThan(1);
        if (seed % 10 === 0) expect(generate(fam.name, seed)).toEqual({ task, params, family, seed });
      }
      expect(generatorStats.mismatches).toBe(before);
    });
  }

  test("different seeds give different tasks; generateTask is generate().task", () => {
    for (const name of FAMILY_NAMES) {
      const ids = new Set(Array.from({ length: 50 }, (_, s) => JSON.stringify(generateTask(name, s).train)));
      expect(ids.size).toBeGreaterThanOrEqual(49);
      expect(generateTask(name, 77)).toEqual(generate(name, 77).task);
    }
  });

  test("recolor shows every colour of the test input in the demonstrations", () => {
    for (let seed = 0; seed < 300; seed++) {
      const t = generateTask("recolor", seed);
      const seen = new Set(t.train.flatMap((p) => p.input.flat()));
      expect(t.test[0]!.input.flat().every((v) => seen.has(v))).toBe(true);
    }
  });

  test("bad family or seed is a clear error", () => {
    expect(() => generate("nope", 1)).toThrow(/^unknown synthetic family "nope" \(known: flip_h, /);
    expect(() => getFamily("")).toThrow(RangeError);
    expect(() => generate("flip_h", 1.5)).toThrow("seed must be an integer, got 1.5");
  });
});

describe("synthetic dataset", () => {
  test("synthetic:N: N training tasks that extend synthetic's (task i is the same task), the same evaluation tasks", async () => {
    const base = await loadDataset("synthetic");
    const more = await loadDataset("synthetic:400");
    expect(more.training.length).toBe(400);
    expect(more.training.slice(0, base.training.length)).toEqual(base.training);
    expect(more.evaluation).toEqual(base.evaluation);
    expect(new Set(more.training.map((t) => t.id)).size).toBe(400);
    expect((await loadDataset("synthetic:5")).training.map((t) => t.id)).toEqual(base.training.slice(0, 5).map((t) => t.id));
    for (const bad of ["synthetic:0", "synthetic:", "synthetic:1.5", "synthetic:-3", "synthetic:many"])
      await expect(loadDataset(bad)).rejects.toThrow(`--data ${bad}: N in synthetic:N is the number of training tasks, a whole number from 1 (e.g. synthetic:6000)`);
  });

  test("deterministic, cycles through the families, separate training and evaluation streams", async () => {
    const a = syntheticDataset({ training: 36, evaluation: 18, seed: 3 });
    const b = await loadDataset("synthetic", { synthetic: { training: 36, evaluation: 18, seed: 3 } });
    expect(b).toEqual(a);
    expect(a.name).toBe("synthetic");
    expect(a.training.length).toBe(36);
    expect(a.evaluation.length).toBe(18);
    expect(a.training.map((t) => t.id.replace(/-\d+$/, ""))).toEqual([...FAMILY_NAMES, ...FAMILY_NAMES].slice(0, 36));
    const ids = new Set([...a.training, ...a.evaluation].map((t) => t.id));
    expect(ids.size).toBe(54);
    expect(syntheticDataset({ training: 36, evaluation: 0, seed: 4 }).training.map((t) => t.id)).not.toEqual(a.training.map((t) => t.id));
    // An id names its task: family and seed regenerate it.
    const t = a.training[5]!;
    const [, fam, seed] = /^(.*)-(\d+)$/.exec(t.id)!;
    expect(generateTask(fam!, Number(seed))).toEqual(t);
  });

  test("defaults: 20 training and 5 evaluation tasks per family; families can be restricted", () => {
    const d = syntheticDataset();
    expect(d.training.length).toBe(20 * FAMILIES.length);
    expect(d.evaluation.length).toBe(5 * FAMILIES.length);
    const only = syntheticDataset({ training: 4, evaluation: 2, families: ["tile", "gravity"] });
    expect(only.training.map((t) => t.id.split("-")[0])).toEqual(["tile", "gravity", "tile", "gravity"]);
    expect(() => syntheticDataset({ families: ["bogus"] })).toThrow(/unknown synthetic family "bogus"/);
  });
});
