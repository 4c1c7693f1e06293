// What a synthetic task family is, and the drawing helpers the families share.
import { makeGrid } from "../grid.ts";
import type { Rng } from "../rng.ts";
import type { Grid, Pair } from "../types.ts";

/** A generated input, optionally with the output the generator built it for (checked against `apply`). */
export type Sample = Grid | { input: Grid; expected: Grid };

export interface Family<P = unknown> {
  name: string;
  /** One line for `data.ts synth --list`. */
  description: string;
  /** True when every pair's output has a different size from its input. */
  sizeChanging: boolean;
  /** Parameters shared by all pairs of one task (a colour, a direction, a scale). */
  params(rng: Rng): P;
  /** One input for these parameters, or null to draw again. */
  sample(rng: Rng, params: P): Sample | null;
  /** The reference transform: the rule every pair of the task follows. Pure; never mutates `input`. */
  apply(input: Grid, params: P): Grid;
  /** Whole-task check that the rule can be read from the demonstrations (e.g. every colour to map is shown). */
  accept?(train: Pair[], test: Pair, params: P): boolean;
}

/** Non-zero colours 1..9. */
export const COLOURS = [1, 2, 3, 4, 5, 6, 7, 8, 9] as const;

/** Each cell is a random colour of `colours` with probability `density`, else 0. */
export function randomPattern(rng: Rng, h: number, w: number, density: number, colours: readonly number[]): Grid {
  const g = makeGrid(h, w);
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) if (rng.next() < density) g[r]![c] = rng.pick(colours);
  return g;
}

/** A 4-connected one-colour shape grown at random inside an h x w box, cropped to its bounding box. */
export function randomShape(rng: Rng, h: number, w: number, cells: number, colour: number): Grid {
  const g = makeGrid(h, w);
  const n = Math.min(cells, h * w);
  const placed: [number, number][] = [[rng.int(0, h - 1), rng.int(0, w - 1)]];
  g[placed[0]![0]]![placed[0]![1]] = colour;
  while (placed.length < n) {
    const [r, c] = rng.pick(placed);
    const [dr, dc] = rng.pick([[1, 0], [-1, 0], [0, 1], [0, -1]] as const);
    const y = r + dr, x = c + dc;
    if (y < 0 || x < 0 || y >= h || x >= w || g[y]![x] !== 0) continue;
    g[y]![x] = colour;
    placed.push([y, x]);
  }
  let r0 = h, c0 = w, r1 = 0, c1 = 0;
  for (const [y, x] of placed) { r0 = Math.min(r0, y); c0 = Math.min(c0, x); r1 = Math.max(r1, y + 1); c1 = Math.max(c1, x + 1); }
  return g.slice(r0, r1).map((row) => row.slice(c0, c1));
}

/**
 * Place `sprite` (its zeros are transparent) on `canvas` at a random spot whose surroundings (one cell
 * around it, `gap` = 1) are all 0, so placed objects never touch. Returns the position, or null.
 */
export function placeApart(rng: Rng, canvas: Grid, sprite: Grid, gap = 1, tries = 60): [number, number] | null {
  const H = canvas.length, W = canvas[0]!.length, h = sprite.length, w = sprite[0]!.length;
  if (h > H || w > W) return null;
  for (let t = 0; t < tries; t++) {
    const r = rng.int(0, H - h), c = rng.int(0, W - w);
    let free = true;
    for (let y = Math.max(0, r - gap); y < Math.min(H, r + h + gap) && free; y++)
      for (let x = Math.max(0, c - gap); x < Math.min(W, c + w + gap); x++)
        if (canvas[y]![x] !== 0) { free = false; break; }
    if (!free) continue;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (sprite[y]![x] !== 0) canvas[r + y]![c + x] = sprite[y]![x]!;
    return [r, c];
  }
  return null;
}

/** The set of non-zero colours of some grids. */
export function coloursIn(...grids: Grid[]): Set<number> {
  const s = new Set<number>();
  for (const g of grids) for (const row of g) for (const v of row) if (v !== 0) s.add(v);
  return s;
}
