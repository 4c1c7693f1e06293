// Small grid helpers shared by the generator, augmentation and rendering. Grids are plain arrays (the file
// format), never mutated in place by these helpers unless the name says so.
import type { Grid } from "./types.ts";

export const height = (g: Grid): number => g.length;
export const width = (g: Grid): number => (g.length > 0 ? g[0]!.length : 0);

/** A new h x w grid filled with `fill`. */
export function makeGrid(h: number, w: number, fill = 0): Grid {
  return Array.from({ length: h }, () => new Array<number>(w).fill(fill));
}

export function cloneGrid(g: Grid): Grid {
  return g.map((row) => row.slice());
}

export function gridsEqual(a: Grid, b: Grid): boolean {
  if (a.length !== b.length) return false;
  for (let r = 0; r < a.length; r++) {
    const x = a[r]!, y = b[r]!;
    if (x.length !== y.length) return false;
    for (let c = 0; c < x.length; c++) if (x[c] !== y[c]) return false;
  }
  return true;
}

/**
 * A grid resized to h x w by nearest neighbour: source cell (floor(i * H / h), floor(j * W / w)), the rule
 * of the pipeline's resizeHard (F.interpolate "nearest"), without a tensor.
 */
export function resizeNearest(g: Grid, h: number, w: number): Grid {
  const H = g.length;
  const W = g[0]!.length;
  return Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => g[Math.floor((i * H) / h)]![Math.floor((j * W) / w)]!));
}

export function sameShape(a: Grid, b: Grid): boolean {
  return height(a) === height(b) && width(a) === width(b);
}

/** Cells per colour 0..9. */
export function colourCounts(g: Grid): number[] {
  const n = new Array<number>(10).fill(0);
  for (const row of g) for (const v of row) n[v]!++;
  return n;
}

/** The rectangle [r0, r1) x [c0, c1) as a new grid. */
export function subgrid(g: Grid, r0: number, c0: number, r1: number, c1: number): Grid {
  return g.slice(r0, r1).map((row) => row.slice(c0, c1));
}

/** Bounding box of the cells for which `keep` holds, or null when there are none. */
export function boundingBox(
  g: Grid,
  keep: (v: number, r: number, c: number) => boolean = (v) => v !== 0,
): { r0: number; c0: number; r1: number; c1: number } | null {
  let r0 = Infinity, c0 = Infinity, r1 = -1, c1 = -1;
  g.forEach((row, r) =>
    row.forEach((v, c) => {
      if (!keep(v, r, c)) return;
      r0 = Math.min(r0, r); c0 = Math.min(c0, c);
      r1 = Math.max(r1, r + 1); c1 = Math.max(c1, c + 1);
    }),
  );
  return r1 < 0 ? null : { r0, c0, r1, c1 };
}

export interface GridObject {
  colour: number;
  cells: [number, number][];
  r0: number; c0: number; r1: number; c1: number;
}

/** Connected single-colour components of non-background cells (4- or 8-connected), in scan order. */
export function objects(g: Grid, connectivity: 4 | 8 = 4, background = 0): GridObject[] {
  const h = height(g), w = width(g);
  const seen = g.map((row) => row.map(() => false));
  const dirs = connectivity === 4
    ? [[1, 0], [-1, 0], [0, 1], [0, -1]]
    : [[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]];
  const out: GridObject[] = [];
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const colour = g[r]![c]!;
      if (colour === background || seen[r]![c]) continue;
      const cells: [number, number][] = [];
      const stack: [number, number][] = [[r, c]];
      seen[r]![c] = true;
      while (stack.length) {
        const [y, x] = stack.pop()!;
        cells.push([y, x]);
        for (const [dy, dx] of dirs) {
          const ny = y + dy!, nx = x + dx!;
          if (ny < 0 || nx < 0 || ny >= h || nx >= w || seen[ny]![nx] || g[ny]![nx] !== colour) continue;
          seen[ny]![nx] = true;
          stack.push([ny, nx]);
        }
      }
      let r0 = h, c0 = w, r1 = 0, c1 = 0;
      for (const [y, x] of cells) {
        r0 = Math.min(r0, y); c0 = Math.min(c0, x); r1 = Math.max(r1, y + 1); c1 = Math.max(c1, x + 1);
      }
      out.push({ colour, cells, r0, c0, r1, c1 });
    }
  }
  return out;
}
