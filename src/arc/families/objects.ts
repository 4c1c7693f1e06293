// Families about objects and space: crop, pick the largest, remove noise, fill holes, let cells fall, extend
// lines. Their inputs are built around the intended output, which the generator checks against `apply`.
import { dihedral, inverseDihedral } from "../augment.ts";
import { boundingBox, cloneGrid, makeGrid, objects, subgrid } from "../grid.ts";
import type { Grid } from "../types.ts";
import { COLOURS, placeApart, randomPattern, randomShape, type Family } from "./family.ts";

/** Run `f` in the frame where the direction is the canonical one: dihedral k there, f, and back. */
function inFrame(g: Grid, k: number, f: (g: Grid) => Grid): Grid {
  return dihedral(f(dihedral(g, k)), inverseDihedral(k));
}

export const cropObject: Family<null> = {
  name: "crop_object",
  description: "the output is the bounding box of the only object on the canvas",
  sizeChanging: true,
  params: () => null,
  sample: (rng) => {
    const raw = randomPattern(rng, rng.int(2, 6), rng.int(2, 6), 0.65, rng.sample(COLOURS, rng.int(1, 2)));
    const box = boundingBox(raw);
    if (!box) return null;
    const sprite = subgrid(raw, box.r0, box.c0, box.r1, box.c1);
    const canvas = makeGrid(sprite.length + rng.int(2, 8), sprite[0]!.length + rng.int(2, 8));
    return placeApart(rng, canvas, sprite, 0) ? { input: canvas, expected: sprite } : null;
  },
  apply: (g) => {
    const b = boundingBox(g);
    return b ? subgrid(g, b.r0, b.c0, b.r1, b.c1) : [[0]];
  },
};

export const largestObject: Family<null> = {
  name: "largest_object",
  description: "the output is the largest object (most cells, 4-connected, one colour), cropped",
  sizeChanging: true,
  params: () => null,
  sample: (rng) => {
    const sizes = rng.sample([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], rng.int(2, 4));
    const canvas = makeGrid(rng.int(8, 14), rng.int(8, 14));
    const shapes = sizes.map((n) => {
      const bh = rng.int(2, 4);
      return randomShape(rng, bh, Math.ceil(n / bh) + rng.int(0, 1), n, rng.pick(COLOURS));
    });
    for (const s of shapes) if (!placeApart(rng, canvas, s)) return null;
    return { input: canvas, expected: shapes[sizes.indexOf(Math.max(...sizes))]! };
  },
  apply: (g) => {
    const objs = objects(g, 4);
    if (objs.length === 0) return [[0]];
    const big = objs.reduce((a, b) => (b.cells.length > a.cells.length ? b : a));
    const out = makeGrid(big.r1 - big.r0, big.c1 - big.c0);
    for (const [r, c] of big.cells) out[r - big.r0]![c - big.c0] = big.colour;
    return out;
  },
};

export const denoise: Family<null> = {
  name: "denoise",
  description: "isolated pixels (no neighbour of their colour, diagonals included) are removed; rectangles stay",
  sizeChanging: false,
  params: () => null,
  sample: (rng) => {
    const canvas = makeGrid(rng.int(6, 14), rng.int(6, 14));
    for (let i = rng.int(1, 3); i > 0; i--) {
      if (!placeApart(rng, canvas, makeGrid(rng.int(2, 5), rng.int(2, 5), rng.pick(COLOURS)))) return null;
    }
    const clean = cloneGrid(canvas);
    for (let i = rng.int(2, 6); i > 0; i--) if (!placeApart(rng, canvas, [[rng.pick(COLOURS)]])) return null;
    return { input: canvas, expected: clean };
  },
  apply: (g) => {
    const h = g.length, w = g[0]!.length;
    return g.map((row, r) =>
      row.map((v, c) => {
        if (v === 0) return 0;
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const y = r + dy, x = c + dx;
            if ((dy || dx) && y >= 0 && x >= 0 && y < h && x < w && g[y]![x] === v) return v;
          }
        return 0;
      }),
    );
  },
};

export const fillEnclosed: Family<{ wall: number; fill: number }> = {
  name: "fill_enclosed",
  description: "background cells enclosed by walls (not reachable from the edge) take a fill colour; open boxes stay empty",
  sizeChanging: false,
  params: (rng) => {
    const [wall, fill] = rng.sample(COLOURS, 2);
    return { wall: wall!, fill: fill! };
  },
  sample: (rng, { wall, fill }) => {
    const canvas = makeGrid(rng.int(7, 15), rng.int(7, 15));
    const expected = makeGrid(canvas.length, canvas[0]!.length);
    let closed = 0;
    for (let i = rng.int(1, 3); i > 0; i--) {
      const h = rng.int(3, 7), w = rng.int(3, 7);
      const box = makeGrid(h, w, wall);
      for (let r = 1; r < h - 1; r++) for (let c = 1; c < w - 1; c++) box[r]![c] = 0;
      const open = i > 1 && rng.bool(0.4);
      if (open) {
        // A gap in one side (not a corner) lets the outside in.
        if (rng.bool()) box[rng.pick([0, h - 1])]![rng.int(1, w - 2)] = 0;
        else box[rng.int(1, h - 2)]![rng.pick([0, w - 1])] = 0;
      }
      const at = placeApart(rng, canvas, box);
      if (!at) return null;
      const filled = box.map((row, r) => row.map((v, c) => (v === 0 && !open && r > 0 && c > 0 && r < h - 1 && c < w - 1 ? fill : v)));
      for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) expected[at[0] + r]![at[1] + c] = filled[r]![c]!;
      if (!open) closed++;
    }
    return closed > 0 ? { input: canvas, expected } : null;
  },
  apply: (g, { fill }) => {
    const h = g.length, w = g[0]!.length;
    const outside = g.map((row) => row.map(() => false));
    const stack: [number, number][] = [];
    for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) {
      if ((r === 0 || c === 0 || r === h - 1 || c === w - 1) && g[r]![c] === 0) { outside[r]![c] = true; stack.push([r, c]); }
    }
    while (stack.length) {
      const [r, c] = stack.pop()!;
      for (const [y, x] of [[r + 1, c], [r - 1, c], [r, c + 1], [r, c - 1]] as const) {
        if (y < 0 || x < 0 || y >= h || x >= w || outside[y]![x] || g[y]![x] !== 0) continue;
        outside[y]![x] = true;
        stack.push([y, x]);
      }
    }
    return g.map((row, r) => row.map((v, c) => (v === 0 && !outside[r]![c] ? fill : v)));
  },
};

// Frames in which each direction becomes "down" (gravity) or "right" (lines); see dihedral().
const DOWN_FRAME = { down: 0, up: 5, left: 3, right: 1 } as const;
const RIGHT_FRAME = { right: 0, left: 4, down: 6, up: 7 } as const;
type Dir = keyof typeof DOWN_FRAME;
const DIRS: readonly Dir[] = ["down", "up", "left", "right"];

export const gravity: Family<{ dir: Dir }> = {
  name: "gravity",
  description: "every coloured cell falls as far as it can in one direction (down, up, left or right), keeping its order",
  sizeChanging: false,
  params: (rng) => ({ dir: rng.pick(DIRS) }),
  sample: (rng) => randomPattern(rng, rng.int(3, 10), rng.int(3, 10), rng.pick([0.2, 0.3, 0.4]), rng.sample(COLOURS, rng.int(1, 3))),
  apply: (g, { dir }) =>
    inFrame(g, DOWN_FRAME[dir], (f) => {
      const h = f.length, w = f[0]!.length;
      const out = makeGrid(h, w);
      for (let c = 0; c < w; c++) {
        const col = f.map((row) => row[c]!).filter((v) => v !== 0);
        col.forEach((v, i) => (out[h - col.length + i]![c] = v));
      }
      return out;
    }),
};

export const drawLines: Family<{ dir: Dir }> = {
  name: "draw_lines",
  description: "every coloured cell shoots a line of its colour to the edge in one direction",
  sizeChanging: false,
  params: (rng) => ({ dir: rng.pick(DIRS) }),
  sample: (rng, { dir }) => {
    const h = rng.int(5, 12), w = rng.int(5, 12);
    const g = makeGrid(h, w);
    const vertical = dir === "up" || dir === "down";
    // One seed per row (per column for vertical lines), so lines never cross.
    for (const i of rng.sample(Array.from({ length: vertical ? w : h }, (_, i) => i), rng.int(1, 4))) {
      const j = rng.int(0, (vertical ? h : w) - 1);
      if (vertical) g[j]![i] = rng.pick(COLOURS);
      else g[i]![j] = rng.pick(COLOURS);
    }
    return g;
  },
  apply: (g, { dir }) =>
    inFrame(g, RIGHT_FRAME[dir], (f) =>
      f.map((row) => {
        let carry = 0;
        return row.map((v) => (v !== 0 ? (carry = v) : carry));
      }),
    ),
};
