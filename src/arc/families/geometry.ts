// Families that move cells without looking at objects: mirrors, rotation, scaling, tiling.
import { dihedral } from "../augment.ts";
import { makeGrid } from "../grid.ts";
import type { Rng } from "../rng.ts";
import type { Grid } from "../types.ts";
import { COLOURS, randomPattern, type Family } from "./family.ts";

/** A random pattern in a few colours with a random density: the generic input of geometric families. */
function pattern(rng: Rng, h: number, w: number): Grid {
  const colours = rng.sample(COLOURS, rng.int(1, 4));
  return randomPattern(rng, h, w, rng.pick([0.3, 0.5, 0.7]), colours);
}

export const flipH: Family<null> = {
  name: "flip_h",
  description: "mirror left-right",
  sizeChanging: false,
  params: () => null,
  sample: (rng) => pattern(rng, rng.int(2, 12), rng.int(2, 12)),
  apply: (g) => dihedral(g, 4),
};

export const flipV: Family<null> = {
  name: "flip_v",
  description: "mirror top-bottom",
  sizeChanging: false,
  params: () => null,
  sample: (rng) => pattern(rng, rng.int(2, 12), rng.int(2, 12)),
  apply: (g) => dihedral(g, 5),
};

export const rotate90: Family<null> = {
  name: "rotate90",
  description: "rotate a quarter turn clockwise (inputs are not square, so the size changes)",
  sizeChanging: true,
  params: () => null,
  sample: (rng) => {
    const h = rng.int(2, 10), w = rng.int(2, 10);
    return h === w ? null : pattern(rng, h, w);
  },
  apply: (g) => dihedral(g, 1),
};

export const scaleUp: Family<{ k: number }> = {
  name: "scale_up",
  description: "every cell becomes a k x k block (k = 2 or 3)",
  sizeChanging: true,
  params: (rng) => ({ k: rng.int(2, 3) }),
  sample: (rng, { k }) => pattern(rng, rng.int(2, k === 2 ? 8 : 6), rng.int(2, k === 2 ? 8 : 6)),
  apply: (g, { k }) => g.flatMap((row) => Array.from({ length: k }, () => row.flatMap((v) => new Array<number>(k).fill(v)))),
};

export const downscale: Family<{ k: number }> = {
  name: "downscale",
  description: "k x k blocks of one colour become one cell (the inverse of scale_up)",
  sizeChanging: true,
  params: (rng) => ({ k: rng.int(2, 3) }),
  sample: (rng, p) => {
    const small = pattern(rng, rng.int(2, 8), rng.int(2, 8));
    return { input: scaleUp.apply(small, p), expected: small };
  },
  // The top-left cell of each block; the input is made of uniform blocks, so any cell of the block would do.
  apply: (g, { k }) => g.filter((_, r) => r % k === 0).map((row) => row.filter((_, c) => c % k === 0)),
};

export const tile: Family<{ ry: number; rx: number; mirror: boolean }> = {
  name: "tile",
  description: "repeat the input ry x rx times; with mirror, every other copy is flipped (like a kaleidoscope)",
  sizeChanging: true,
  params: (rng) => {
    const ry = rng.int(1, 3), rx = ry === 1 ? rng.int(2, 3) : rng.int(1, 3);
    return { ry, rx, mirror: rng.bool(0.4) };
  },
  sample: (rng) => pattern(rng, rng.int(2, 5), rng.int(2, 5)),
  apply: (g, { ry, rx, mirror }) => {
    const h = g.length, w = g[0]!.length;
    const out = makeGrid(h * ry, w * rx);
    for (let r = 0; r < h * ry; r++) {
      for (let c = 0; c < w * rx; c++) {
        const ty = Math.floor(r / h), tx = Math.floor(c / w);
        let y = r % h, x = c % w;
        if (mirror && ty % 2 === 1) y = h - 1 - y;
        if (mirror && tx % 2 === 1) x = w - 1 - x;
        out[r]![c] = g[y]![x]!;
      }
    }
    return out;
  },
};

export const mirrorExtend: Family<{ down: boolean }> = {
  name: "mirror_extend",
  description: "append the mirror image to the right (or below), doubling the width (or height)",
  sizeChanging: true,
  params: (rng) => ({ down: rng.bool() }),
  sample: (rng) => pattern(rng, rng.int(2, 10), rng.int(2, 10)),
  apply: (g, { down }) => (down ? [...g, ...dihedral(g, 5)] : g.map((row) => [...row, ...row.slice().reverse()])),
};
