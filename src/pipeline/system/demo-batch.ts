// A batch's demonstrations as one padded tensor, for the demonstration encoder (demo-encoder.ts).
//
// Each demonstration pair is drawn on a canvas of max(H, h) x max(W, w), both grids top-left:
//   channels 0..9    one-hot of the input          10..19  one-hot of the output
//   channel 20       1 where the cell changed (only when input and output have the same size, else 0)
//   channel 21       1 on the input's cells        22      1 on the output's cells
// Its cells are the union of the two grids; everything else is padding, zero in every channel, so a
// batch of N pairs [N, 23, Hmax, Wmax] gives each pair what its own canvas gives it. The test inputs
// (what attention pooling asks from) follow as rows of the same tensor: an input with no output.
import type { Context } from "../../arc/examples";
import type { Grid, Pair } from "../../arc/types";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { COLOURS, MAX_SIDE } from "./agent";

export const PAIR_CHANNELS = 2 * COLOURS + 3;
/** Per pair: H, W, h, w over 30, and whether the heights, the widths agree. */
export const SIZE_FEATURES = 6;

export interface DemoBatch {
  /** [N + Q, 23, Hmax, Wmax] every task's demonstrations in task order, then the Q test inputs (Q = 0 or B). */
  pairs: Tensor;
  /** [N + Q, 1, Hmax, Wmax] 1 on each row's cells (the union of its two grids), float32. */
  mask: Tensor;
  /** [N + Q, 1] each row's cell count, float32. */
  cellCounts: Tensor;
  /** [N + Q, 6] each row's size features (a test input's output size reads as 0). */
  sizes: Tensor;
  /** [B, N] 1 where demonstration n belongs to task b, float32: pooling over a task's pairs is a matmul. */
  membership: Tensor;
  /** Demonstrations per task. */
  counts: number[];
  /** Rows that are demonstrations (N); the test inputs, when asked for, are rows N..N+B-1. */
  demos: number;
  /** Whether the test inputs are in the batch. */
  withQueries: boolean;
}

const side = (g: Grid): [number, number] => [g.length, g[0]?.length ?? 0];

function checkGrid(g: Grid, what: string): void {
  const [H, W] = side(g);
  if (H < 1 || W < 1 || H > MAX_SIDE || W > MAX_SIDE) throw new RangeError(`${what} is ${H}x${W}; sides must be 1..${MAX_SIDE}`);
  for (const row of g) {
    if (row.length !== W) throw new RangeError(`${what}: rows differ in length (${row.length} vs ${W})`);
    for (const v of row) if (!(Number.isInteger(v) && v >= 0 && v < COLOURS)) throw new RangeError(`${what}: colour ${v} is not 0..${COLOURS - 1}`);
  }
}

/**
 * The padded tensors of B tasks' demonstrations (`contexts[b].demos`, any number, any sizes) and, with
 * `withQueries`, their test inputs (`contexts[b].query`), on `device` in `dtype`.
 */
export function demoBatch(contexts: readonly Context[], opts: { device?: torch.Device; dtype?: torch.DType; withQueries?: boolean } = {}): DemoBatch {
  const B = contexts.length;
  if (B < 1) throw new RangeError("demonstration batch is empty");
  const withQueries = opts.withQueries ?? false;
  const rows: { input: Grid; output: Grid | null }[] = [];
  contexts.forEach((c, b) =>
    c.demos.forEach((p: Pair, i) => {
      checkGrid(p.input, `task ${b} demonstration ${i} input`);
      checkGrid(p.output, `task ${b} demonstration ${i} output`);
      rows.push({ input: p.input, output: p.output });
    }),
  );
  const N = rows.length;
  if (withQueries) contexts.forEach((c, b) => (checkGrid(c.query, `task ${b} test input`), rows.push({ input: c.query, output: null })));
  const R = rows.length;
  // A batch with no demonstration and no query still needs a tensor to pool from: one empty 1x1 canvas.
  let Hmax = 1;
  let Wmax = 1;
  for (const r of rows) {
    const [H, W] = side(r.input);
    const [h, w] = r.output ? side(r.output) : [0, 0];
    Hmax = Math.max(Hmax, H, h);
    Wmax = Math.max(Wmax, W, w);
  }
  const plane = Hmax * Wmax;
  const feats = new Float32Array(Math.max(R, 1) * PAIR_CHANNELS * plane);
  const mask = new Float32Array(Math.max(R, 1) * plane);
  const sizes = new Float32Array(Math.max(R, 1) * SIZE_FEATURES);
  rows.forEach(({ input, output }, n) => {
    const base = n * PAIR_CHANNELS * plane;
    const [H, W] = side(input);
    const [h, w] = output ? side(output) : [0, 0];
    const same = output !== null && H === h && W === w;
    input.forEach((row, i) =>
      row.forEach((v, j) => {
        const at = i * Wmax + j;
        feats[base + v * plane + at] = 1;
        feats[base + 21 * plane + at] = 1;
        mask[n * plane + at] = 1;
        if (same && output![i]![j] !== v) feats[base + 20 * plane + at] = 1;
      }),
    );
    output?.forEach((row, i) =>
      row.forEach((v, j) => {
        const at = i * Wmax + j;
        feats[base + (COLOURS + v) * plane + at] = 1;
        feats[base + 22 * plane + at] = 1;
        mask[n * plane + at] = 1;
      }),
    );
    sizes.set([H / MAX_SIDE, W / MAX_SIDE, h / MAX_SIDE, w / MAX_SIDE, output && H === h ? 1 : 0, output && W === w ? 1 : 0], n * SIZE_FEATURES);
  });
  const membership = new Float32Array(B * Math.max(N, 1));
  let n = 0;
  contexts.forEach((c, b) => c.demos.forEach(() => (membership[b * Math.max(N, 1) + n++] = 1)));
  const device = opts.device ?? "cpu";
  const dtype = opts.dtype ?? "float32";
  const rowsAlloc = Math.max(R, 1);
  const maskT = torch.fromTypedArray(mask, [rowsAlloc, 1, Hmax, Wmax], { device });
  return {
    pairs: torch.fromTypedArray(feats, [rowsAlloc, PAIR_CHANNELS, Hmax, Wmax], { device }).to(dtype),
    mask: maskT,
    // An empty row (no demonstration at all) counts one cell, so its mean is 0 and not 0/0.
    cellCounts: maskT.sum([2, 3]).clamp(1),
    sizes: torch.fromTypedArray(sizes, [rowsAlloc, SIZE_FEATURES], { device }).to(dtype),
    membership: torch.fromTypedArray(membership, [B, Math.max(N, 1)], { device }),
    counts: contexts.map((c) => c.demos.length),
    demos: N,
    withQueries,
  };
}
