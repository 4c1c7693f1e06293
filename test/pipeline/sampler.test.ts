// The length-grouped epoch order (src/pipeline/trainer/sampler.ts, --group_by_length): a permutation of the epoch
// that depends only on (lengths, batch, seed, epoch); batches of neighbours in prompt length, which cut the
// padding of realistic prompts several times over; in the trainer, an exact resume from the middle of an
// epoch, and runs saved before the flag resuming in their old order.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { epochOrder, syntheticDataset, trainingExamples, writeSplitFolder } from "../../src/arc";
import { DEFAULTS, FLAGS, type TrainConfig } from "../../src/pipeline/config/train-config";
import { savedRunConfig } from "../../src/pipeline/run/migrations";
import { resumedConfig, savedConfig } from "../../src/pipeline/run/resume";
import { readMetrics } from "../../src/pipeline/run/run-folder";
import { GROUP_WINDOW, groupWindow, lengthGroupedOrder, paddingShare } from "../../src/pipeline/trainer/sampler";
import { buildSystem } from "../../src/pipeline/system/system";
import { tinySystemConfig } from "../helpers/system";
import { CPU, TRAIN, runScript, tempFolders } from "../helpers/scripts";

const fresh = tempFolders("arc-sampler-test-");

/** Seeded lengths in [lo, hi] (a plain LCG: the test's data must not depend on the code under test). */
function lengthsOf(n: number, seed: number, lo = 100, hi = 2048): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  });
}
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("lengthGroupedOrder", () => {
  test("every example exactly once per epoch, full batches within one window sorted longest first, the short batch last", () => {
    for (const n of [0, 1, 2, 7, 16, 100, 255, 256, 257, 1000, 3041]) {
      for (const batch of [1, 3, 8, 16, 64, 300]) {
        const lengths = lengthsOf(n, n * 31 + batch);
        const order = lengthGroupedOrder(lengths, { batch, seed: 5, epoch: 2 });
        expect(order.length).toBe(n);
        expect(order.slice().sort((a, b) => a - b)).toEqual(range(n));
        // Each batch comes from one window of the epoch's permutation, sorted by length.
        const window = groupWindow(batch);
        const windowOf = new Map(epochOrder(n, 5, 2).map((ex, k) => [ex, Math.floor(k / window)]));
        for (let b = 0; b < n; b += batch) {
          const rows = order.slice(b, b + batch);
          expect(new Set(rows.map((i) => windowOf.get(i))).size).toBe(1);
          const ls = rows.map((i) => lengths[i]!);
          expect(ls).toEqual(ls.slice().sort((x, y) => y - x));
        }
        // The short batch (n not a multiple of batch) is the last one, as in the plain order.
        if (n % batch !== 0 && n > batch) {
          const last = order.slice(n - (n % batch));
          const lastWindow = Math.floor((n - 1) / window);
          expect(last.every((i) => windowOf.get(i) === lastWindow)).toBe(true);
          // ... made of the shortest prompts of the last window.
          const lastWindowLengths = [...windowOf].filter(([, w]) => w === lastWindow).map(([i]) => lengths[i]!);
          expect(Math.max(...last.map((i) => lengths[i]!))).toBeLessThanOrEqual(Math.min(...lastWindowLengths.sort((x, y) => y - x).slice(0, lastWindowLengths.length - last.length)));
        }
      }
    }
  });

  test("windows: about 256 examples, a whole number of batches, at least one; an explicit window likewise", () => {
    expect(GROUP_WINDOW).toBe(256);
    expect(groupWindow(8)).toBe(256);
    expect(groupWindow(16)).toBe(256);
    expect(groupWindow(12)).toBe(252);
    expect(groupWindow(100)).toBe(300);
    expect(groupWindow(300)).toBe(300);
    expect(groupWindow(8, 20)).toBe(24);
    // window 1 at batch 1: no grouping at all, and the batches' shuffle is the only change.
    const lengths = lengthsOf(50, 1);
    const o = lengthGroupedOrder(lengths, { batch: 4, seed: 0, epoch: 0, window: 1 });
    expect(o.slice().sort((a, b) => a - b)).toEqual(range(50));
  });

  test("a pure function of (lengths, batch, seed, epoch): the same order again, another for another epoch or seed; lengths untouched", () => {
    const lengths = lengthsOf(1000, 7);
    const copy = lengths.slice();
    const a = lengthGroupedOrder(lengths, { batch: 8, seed: 3, epoch: 4 });
    expect(lengthGroupedOrder(lengths.slice(), { batch: 8, seed: 3, epoch: 4 })).toEqual(a);
    expect(lengths).toEqual(copy);
    expect(lengthGroupedOrder(lengths, { batch: 8, seed: 3, epoch: 5 })).not.toEqual(a);
    expect(lengthGroupedOrder(lengths, { batch: 8, seed: 4, epoch: 4 })).not.toEqual(a);
    // Another epoch puts other examples together, not only the same batches in another order.
    const batchesOf = (o: number[]) => new Set(range(o.length / 8).map((b) => o.slice(b * 8, b * 8 + 8).sort((x, y) => x - y).join(",")));
    const shared = [...batchesOf(a)].filter((k) => batchesOf(lengthGroupedOrder(lengths, { batch: 8, seed: 3, epoch: 5 })).has(k));
    expect(shared.length).toBeLessThan(5);
    // Long and short batches alternate through the epoch: the first and second half have similar lengths.
    const half = (o: number[], h: number) => o.slice(h * 500, h * 500 + 500).reduce((s, i) => s + lengths[i]!, 0) / 500;
    expect(Math.abs(half(a, 0) - half(a, 1)) / half(a, 0)).toBeLessThan(0.1);
  });

  test("bad arguments are RangeErrors", () => {
    expect(() => lengthGroupedOrder([1, 2], { batch: 0, seed: 0, epoch: 0 })).toThrow(RangeError);
    expect(() => lengthGroupedOrder([1, 2], { batch: 1.5, seed: 0, epoch: 0 })).toThrow(RangeError);
    expect(() => lengthGroupedOrder([1, 2], { batch: 2, seed: 0, epoch: 0, window: 0 })).toThrow(RangeError);
    expect(() => lengthGroupedOrder([1, Number.NaN], { batch: 2, seed: 0, epoch: 0 })).toThrow(/length 1/);
  });

  test("the padding share of real prompts (the tiny model's tokenizer, 1196 synthetic pairs) falls from about 0.5 to under 0.1", async () => {
    const sys = await buildSystem(tinySystemConfig(), { quiet: true });
    const examples = trainingExamples(syntheticDataset({ training: 300, evaluation: 1, seed: 0 }).training);
    const lengths = examples.map((ex) => sys.prompter.build(ex).ids.length);
    expect(Math.max(...lengths) / Math.min(...lengths)).toBeGreaterThan(5); // prompts of very different lengths
    // Measured: 0.455 -> 0.043 at 8, 0.535 -> 0.086 at 16 (epoch 0, seed 0).
    for (const batch of [8, 16]) {
      for (const epoch of [0, 1]) {
        const plain = paddingShare(lengths, epochOrder(lengths.length, 0, epoch), batch);
        const grouped = paddingShare(lengths, lengthGroupedOrder(lengths, { batch, seed: 0, epoch }), batch);
        console.log(`padding share, batch ${batch}, epoch ${epoch}: ${plain.toFixed(3)} in epoch order, ${grouped.toFixed(3)} grouped by length`);
        expect(plain).toBeGreaterThan(0.35);
        expect(grouped).toBeLessThan(0.12);
        expect(grouped).toBeLessThan(plain / 4);
      }
    }
  });

  test("paddingShare counts examples x longest per batch", () => {
    // Batches [10, 5] and [3]: padded 20 + 3, real 18.
    expect(paddingShare([10, 5, 3], [0, 1, 2], 2)).toBeCloseTo(1 - 18 / 23, 12);
    expect(paddingShare([], [], 4)).toBe(0);
  });
});

describe("--group_by_length flag", () => {
  test("a string choice true|false, on by default; a run saved before it resumes with it off", () => {
    expect(FLAGS.group_by_length).toMatchObject({ type: "string", kind: "string", choices: ["true", "false"] });
    expect(DEFAULTS.group_by_length).toBe("true");
    // An old run's config has no such key: it trained in the plain epoch order, and resumes in it.
    const { group_by_length: _, ...old } = { ...DEFAULTS, batch_size: 2 };
    expect(savedRunConfig(old).group_by_length).toBe("false");
    expect(savedRunConfig({ ...old, group_by_length: "true" }).group_by_length).toBe("true");
    // Through the resume path: config.json without the key, no flag given.
    const dir = fresh("old-run");
    writeFileSync(join(dir, "config.json"), JSON.stringify(old));
    const saved = savedConfig(dir, [], () => {});
    expect(saved.group_by_length).toBe("false");
    const validated = { ...DEFAULTS, device: "cpu", resume: dir } as TrainConfig;
    expect(resumedConfig(dir, saved, {}, validated).group_by_length).toBe("false");
    expect(resumedConfig(dir, saved, { group_by_length: "false" }, validated).group_by_length).toBe("false");
    // It changes what is trained, so a resume cannot switch it.
    expect(() => resumedConfig(dir, saved, { group_by_length: "true" }, validated)).toThrow(/--group_by_length true \(the run has "false"\)/);
  });
});

// ---- the trainer ----------------------------------------------------------------------------------------

const trainOk = (args: string[]) => {
  const r = runScript(TRAIN, args, 180_000);
  if (r.code !== 0) throw new Error(`train ${args.join(" ")} exited ${r.code}:\n${r.err.slice(-3000)}`);
  return r;
};
const onlyRun = (base: string) => {
  const names = readdirSync(base).filter((n) => n.startsWith("arc_"));
  expect(names.length).toBe(1);
  return join(base, names[0]!);
};
const losses = (runDir: string) =>
  readMetrics(runDir)
    .filter((r) => r.type === "batch")
    .map((r) => ({ step: r.step, epoch: r.epoch, batch: r.batch, loss: r.loss, efe: r.efe, acc: r.acc, mask: r.mask, d_size: r.d_size, rl_reward: r.rl_reward }));

describe("trainer", () => {
  test("group_by_length on: 16 batches straight == 13 (mid-epoch 2), stop, --resume to 16; off: another order; an old run resumes in its own", () => {
    // 6 synthetic tasks: about 20 training pairs, batches of 3 with a short one at each epoch's end.
    const data = writeSplitFolder(fresh("data"), syntheticDataset({ training: 6, evaluation: 2, seed: 3 }));
    const common = ["--preset", "smoke", ...CPU, "--data", data, "--epochs", "3", "--batch_size", "3", "--log_every", "1", "--val_max", "2"];

    const straight = onlyRun((() => {
      const base = fresh("straight");
      const r = trainOk([...common, "--group_by_length", "true", "--max_batches", "16", "--ckpt_every", "100", "--run_dir", base]);
      const perEpoch = Number(/\((\d+) batches\/epoch/.exec(r.err)?.[1]);
      // Step 13 is inside the second epoch (not at its start or end).
      expect(perEpoch).toBeGreaterThan(6);
      expect(perEpoch).toBeLessThan(13);
      expect(13 % perEpoch).not.toBe(0);
      return base;
    })());
    expect(JSON.parse(readFileSync(join(straight, "config.json"), "utf8")).group_by_length).toBe("true");
    const reference = losses(straight);
    expect(reference.map((r) => r.step)).toEqual(range(16).map((i) => i + 1));

    const split = onlyRun((() => {
      const base = fresh("split");
      trainOk([...common, "--group_by_length", "true", "--max_batches", "13", "--ckpt_every", "5", "--run_dir", base]);
      return base;
    })());
    const r = trainOk(["--resume", split, "--max_batches", "16", ...CPU]);
    expect(r.err).toMatch(/\(step 13, epoch 2, batch \d+\)/);
    expect(losses(split)).toEqual(reference); // bit-equal numbers, every batch 1..16

    // The flag is what orders the data: off, the same run trains other batches from the first one on.
    const offBase = fresh("off");
    trainOk([...common, "--group_by_length", "false", "--max_batches", "4", "--ckpt_every", "100", "--run_dir", offBase]);
    const off = onlyRun(offBase);
    expect(losses(off)[0]!.loss).not.toBe(reference[0]!.loss);

    // A run saved before the flag existed (config.json without it) resumes in the plain order: its losses
    // continue those of the run trained with --group_by_length false, not those of a grouped one.
    const offLonger = onlyRun((() => {
      const base = fresh("off-longer");
      trainOk([...common, "--group_by_length", "false", "--max_batches", "6", "--ckpt_every", "100", "--run_dir", base]);
      return base;
    })());
    const cfgPath = join(off, "config.json");
    const { group_by_length: _, ...old } = JSON.parse(readFileSync(cfgPath, "utf8"));
    writeFileSync(cfgPath, JSON.stringify(old, null, 2));
    trainOk(["--resume", off, "--max_batches", "6", ...CPU]);
    expect(losses(off)).toEqual(losses(offLonger));
  }, 240_000);
});
