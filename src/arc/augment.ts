// Task augmentation: the 8 symmetries of the square (dihedral group D4) and permutations of colours 1..9
// (0 is the background in almost every ARC task, so it stays put). The same transform is applied to every
// grid of a task, so the rule stays consistent; each has an inverse to map predictions back.
import type { Rng } from "./rng.ts";
import type { Grid, Task } from "./types.ts";

/** Names of the 8 dihedral transforms, by k. */
export const DIHEDRAL_NAMES = ["identity", "rot90", "rot180", "rot270", "flip_h", "flip_v", "transpose", "anti_transpose"] as const;

/** k' with dihedral(dihedral(g, k), k') = g: rotations by 90 and 270 swap, everything else is its own inverse. */
export function inverseDihedral(k: number): number {
  return [0, 3, 2, 1, 4, 5, 6, 7][k]!;
}

/**
 * k = 0 identity, 1 rotate 90 clockwise, 2 rotate 180, 3 rotate 270 clockwise, 4 mirror left-right,
 * 5 mirror top-bottom, 6 transpose (main diagonal), 7 anti-transpose. Returns a new grid.
 */
export function dihedral(g: Grid, k: number): Grid {
  if (!Number.isInteger(k) || k < 0 || k > 7) throw new RangeError(`dihedral: k must be 0..7, got ${k}`);
  const H = g.length, W = H ? g[0]!.length : 0;
  const swap = k === 1 || k === 3 || k === 6 || k === 7;
  const h = swap ? W : H, w = swap ? H : W;
  const src: (r: number, c: number) => number = [
    (r: number, c: number) => g[r]![c]!,
    (r: number, c: number) => g[H - 1 - c]![r]!,
    (r: number, c: number) => g[H - 1 - r]![W - 1 - c]!,
    (r: number, c: number) => g[c]![W - 1 - r]!,
    (r: number, c: number) => g[r]![W - 1 - c]!,
    (r: number, c: number) => g[H - 1 - r]![c]!,
    (r: number, c: number) => g[c]![r]!,
    (r: number, c: number) => g[H - 1 - c]![W - 1 - r]!,
  ][k]!;
  return Array.from({ length: h }, (_, r) => Array.from({ length: w }, (_, c) => src(r, c)));
}

/** A colour permutation is a list of 10 colours: colour i becomes perm[i]. */
export type ColourPerm = readonly number[];

export const IDENTITY_COLOURS: ColourPerm = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

export function checkColourPerm(perm: ColourPerm): void {
  const ok = perm.length === 10 && perm[0] === 0 && [...perm].sort((a, b) => a - b).every((v, i) => v === i);
  if (!ok) throw new RangeError(`not a permutation of 0..9 that keeps 0: [${perm.join(",")}]`);
}

/** A uniformly random permutation of 1..9 (0 fixed). */
export function randomColourPerm(rng: Rng): number[] {
  return [0, ...rng.shuffle([1, 2, 3, 4, 5, 6, 7, 8, 9])];
}

export function inverseColourPerm(perm: ColourPerm): number[] {
  const inv = new Array<number>(10);
  perm.forEach((to, from) => (inv[to] = from));
  return inv;
}

export function permuteColours(g: Grid, perm: ColourPerm): Grid {
  return g.map((row) => row.map((v) => perm[v]!));
}

export interface Augmentation {
  /** 0..7, see dihedral(); default 0. */
  dihedral?: number;
  /** Default: no change. */
  colours?: ColourPerm;
}

/** Apply an augmentation to one grid (colours and geometry commute, so the order does not matter). */
export function augmentGrid(g: Grid, aug: Augmentation): Grid {
  const moved = dihedral(g, aug.dihedral ?? 0);
  return aug.colours ? permuteColours(moved, aug.colours) : moved;
}

export function inverseAugmentation(aug: Augmentation): Augmentation {
  return {
    dihedral: inverseDihedral(aug.dihedral ?? 0),
    ...(aug.colours ? { colours: inverseColourPerm(aug.colours) } : {}),
  };
}

/** Map a grid predicted for the augmented task back to the original task's frame and colours. */
export function unaugmentGrid(g: Grid, aug: Augmentation): Grid {
  return augmentGrid(g, inverseAugmentation(aug));
}

/** The same augmentation on every grid of a task; the id is kept (the split and logs follow the task). */
export function augmentTask(task: Task, aug: Augmentation): Task {
  if (aug.colours) checkColourPerm(aug.colours);
  const f = (g: Grid) => augmentGrid(g, aug);
  return {
    id: task.id,
    train: task.train.map((p) => ({ input: f(p.input), output: f(p.output) })),
    test: task.test.map((p) => (p.output ? { input: f(p.input), output: f(p.output) } : { input: f(p.input) })),
  };
}

/** The inverse of augmentTask with the same augmentation. */
export function unaugmentTask(task: Task, aug: Augmentation): Task {
  return augmentTask(task, inverseAugmentation(aug));
}

/** A random augmentation; either part can be turned off. */
export function randomAugmentation(rng: Rng, opts: { dihedral?: boolean; colours?: boolean } = {}): Augmentation {
  return {
    dihedral: opts.dihedral === false ? 0 : rng.int(0, 7),
    ...(opts.colours === false ? {} : { colours: randomColourPerm(rng) }),
  };
}
