// Families about colours: map them, swap with the background, count them, paint the frame.
import { cloneGrid, colourCounts } from "../grid.ts";
import type { Grid } from "../types.ts";
import { COLOURS, coloursIn, randomPattern, type Family } from "./family.ts";

export const recolor: Family<{ map: number[] }> = {
  name: "recolor",
  description: "one to three colours are replaced by others everywhere (the same mapping in every pair)",
  sizeChanging: false,
  params: (rng) => {
    const map = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    for (const s of rng.sample(COLOURS, rng.int(1, 3))) map[s] = rng.pick(COLOURS.filter((c) => c !== s));
    return { map };
  },
  sample: (rng, { map }) => {
    const sources = COLOURS.filter((c) => map[c] !== c);
    const others = rng.sample(COLOURS.filter((c) => map[c] === c), rng.int(0, 2));
    return randomPattern(rng, rng.int(3, 12), rng.int(3, 12), rng.pick([0.3, 0.5, 0.7]), [...sources, ...others]);
  },
  apply: (g, { map }) => g.map((row) => row.map((v) => map[v]!)),
  // Every colour of the test input must appear in a demonstration, or its fate could not be known.
  accept: (train, test) => {
    const seen = coloursIn(...train.map((p) => p.input));
    return [...coloursIn(test.input)].every((c) => seen.has(c));
  },
};

export const invert: Family<null> = {
  name: "invert",
  description: "a one-colour pattern swaps with the background: coloured cells become 0, empty cells take the colour",
  sizeChanging: false,
  params: () => null,
  sample: (rng) => randomPattern(rng, rng.int(3, 12), rng.int(3, 12), rng.pick([0.3, 0.5]), [rng.pick(COLOURS)]),
  apply: (g) => {
    const c = g.flat().find((v) => v !== 0) ?? 0;
    return g.map((row) => row.map((v) => (v === 0 ? c : 0)));
  },
};

export const majorityColour: Family<null> = {
  name: "majority_colour",
  description: "the output is one cell of the most frequent non-background colour",
  sizeChanging: true,
  params: () => null,
  sample: (rng) => {
    const g = randomPattern(rng, rng.int(3, 12), rng.int(3, 12), rng.pick([0.3, 0.5, 0.7]), rng.sample(COLOURS, rng.int(2, 4)));
    const n = colourCounts(g).slice(1).sort((a, b) => b - a);
    return n[0]! > n[1]! ? g : null; // a clear winner only
  },
  apply: (g) => {
    const n = colourCounts(g);
    let best = 1;
    for (let c = 2; c <= 9; c++) if (n[c]! > n[best]!) best = c;
    return [[n[best]! > 0 ? best : 0]];
  },
};

export const countToBar: Family<{ colour: number; vertical: boolean }> = {
  name: "count_to_bar",
  description: "count the cells of one colour (others are distractors); the output is a bar of that many cells",
  sizeChanging: true,
  params: (rng) => ({ colour: rng.pick(COLOURS), vertical: rng.bool() }),
  sample: (rng, { colour, vertical }) => {
    const h = rng.int(3, 10), w = rng.int(3, 10);
    const g = randomPattern(rng, h, w, rng.pick([0, 0.1, 0.2]), rng.sample(COLOURS.filter((c) => c !== colour), 2));
    const n = rng.int(1, Math.min(9, h * w - 1));
    const free = rng.shuffle(Array.from({ length: h * w }, (_, i) => i).filter((i) => g[Math.floor(i / w)]![i % w] === 0));
    if (free.length < n) return null;
    for (const i of free.slice(0, n)) g[Math.floor(i / w)]![i % w] = colour;
    const bar = new Array<number>(n).fill(colour);
    return { input: g, expected: vertical ? bar.map((c) => [c]) : [bar] };
  },
  apply: (g, { colour, vertical }) => {
    const n = Math.min(30, colourCounts(g)[colour]!);
    if (n === 0) return [[0]];
    return vertical ? Array.from({ length: n }, () => [colour]) : [new Array<number>(n).fill(colour)];
  },
};

export const drawBorder: Family<{ colour: number }> = {
  name: "draw_border",
  description: "paint the outermost ring of the grid in one colour",
  sizeChanging: false,
  params: (rng) => ({ colour: rng.pick(COLOURS) }),
  sample: (rng, { colour }) =>
    randomPattern(rng, rng.int(3, 12), rng.int(3, 12), rng.pick([0, 0.2, 0.4]), rng.sample(COLOURS.filter((c) => c !== colour), 2)),
  apply: (g, { colour }): Grid => {
    const out = cloneGrid(g);
    const h = out.length, w = out[0]!.length;
    out.forEach((row, r) => row.forEach((_, c) => { if (r === 0 || c === 0 || r === h - 1 || c === w - 1) row[c] = colour; }));
    return out;
  },
};
