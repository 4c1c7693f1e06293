// The synthetic task generator: tasks from known transformation families, deterministic by seed, so the
// whole pipeline runs and learns offline, and so a model's failures can be traced to a known rule.
import { gridsEqual } from "./grid.ts";
import { colour, geometry, objectFamilies } from "./families/index.ts";
import type { Family, Sample } from "./families/family.ts";
import { Rng, seedOf } from "./rng.ts";
import type { Dataset, Pair, Task } from "./types.ts";
import { validateGrid } from "./validate.ts";

export type { Family } from "./families/family.ts";

/** All families, by name, in a fixed order (the synthetic dataset cycles through them in this order). */
export const FAMILIES: readonly Family<any>[] = [...geometry, ...colour, ...objectFamilies];
export const FAMILY_NAMES: readonly string[] = FAMILIES.map((f) => f.name);

export function getFamily(name: string): Family<any> {
  const f = FAMILIES.find((x) => x.name === name);
  if (!f) throw new RangeError(`unknown synthetic family "${name}" (known: ${FAMILY_NAMES.join(", ")})`);
  return f;
}

export interface SyntheticTask<P = unknown> {
  task: Task;
  family: string;
  seed: number;
  /** The task's parameters: `family.apply(input, params)` gives every output. */
  params: P;
}

/**
 * Counts of generated inputs whose intended output (built by the family) disagreed with `apply`. Such
 * inputs are drawn again, so tasks stay right; a non-zero count is a family bug, and the tests check it is 0.
 */
export const generatorStats = { mismatches: 0 };

const MAX_TRIES = 1000;

function drawPair<P>(fam: Family<P>, rng: Rng, params: P): Pair | null {
  const s: Sample | null = fam.sample(rng, params);
  if (!s) return null;
  const input = Array.isArray(s) ? s : s.input;
  const output = fam.apply(input, params);
  if (!Array.isArray(s) && !gridsEqual(output, s.expected)) {
    generatorStats.mismatches++;
    return null;
  }
  if (gridsEqual(input, output)) return null; // a pair that shows nothing
  // A family producing a bad grid is a bug: fail loudly rather than hand the model an invalid task.
  validateGrid(input, `synthetic ${fam.name}: input`);
  validateGrid(output, `synthetic ${fam.name}: output`);
  return { input, output };
}

/** Generate one task (3 to 5 demonstrations and one test pair with its output) with its parameters. */
export function generate<P = unknown>(family: string, seed: number): SyntheticTask<P> {
  const fam = getFamily(family) as Family<P>;
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const rng = new Rng(seedOf("synthetic", family, seed));
  for (let attempt = 0; attempt < 100; attempt++) {
    const params = fam.params(rng);
    const want = rng.int(3, 5) + 1;
    const pairs: Pair[] = [];
    for (let t = 0; t < MAX_TRIES && pairs.length < want; t++) {
      const p = drawPair(fam, rng, params);
      if (p && !pairs.some((q) => gridsEqual(q.input, p.input))) pairs.push(p);
    }
    if (pairs.length < want) continue;
    // All outputs equal would teach "print a constant": draw new parameters.
    if (pairs.every((p) => gridsEqual(p.output, pairs[0]!.output))) continue;
    const test = pairs.pop()!;
    if (fam.accept && !fam.accept(pairs, test, params)) continue;
    return { task: { id: `${family}-${seed}`, train: pairs, test: [test] }, family, seed, params };
  }
  throw new Error(`synthetic family ${family} could not make a task for seed ${seed}`);
}

/** Generate one task; the same (family, seed) always gives the same task. */
export function generateTask(family: string, seed: number): Task {
  return generate(family, seed).task;
}

export interface SyntheticDatasetOptions {
  /** Training tasks (default 360, 20 per family). */
  training?: number;
  /** Evaluation tasks (default 90, 5 per family). */
  evaluation?: number;
  /** Base seed (default 0); training and evaluation draw from separate seed streams. */
  seed?: number;
  /** Restrict to some families (default all). */
  families?: readonly string[];
}

/** A deterministic dataset: task i of a split uses family i mod F and a seed derived from (seed, split, i). */
export function syntheticDataset(opts: SyntheticDatasetOptions = {}): Dataset {
  const fams = opts.families ?? FAMILY_NAMES;
  fams.forEach(getFamily);
  if (fams.length === 0) throw new RangeError("synthetic dataset: no families");
  const seed = opts.seed ?? 0;
  const make = (split: string, n: number): Task[] =>
    Array.from({ length: n }, (_, i) => generateTask(fams[i % fams.length]!, seedOf(seed, split, i)));
  return {
    name: "synthetic",
    training: make("training", opts.training ?? 20 * fams.length),
    evaluation: make("evaluation", opts.evaluation ?? 5 * fams.length),
  };
}

