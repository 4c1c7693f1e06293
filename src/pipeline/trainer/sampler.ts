// The epoch's data order with examples of similar prompt length batched together (transformers'
// group_by_length / LengthGroupedSampler). A batch's prompts are padded to its longest, so a batch drawn
// from the plain shuffled order (ARC prompts run from about a hundred tokens to the 2048-token budget)
// spends about half of its prompt positions on padding at 8 or 16 examples; batches of neighbours in
// length spend 3 to 6 percent.
//
// The order stays random where it matters: which examples meet in a window is the epoch's shuffle, and the
// batches are visited in a shuffled order, so long and short batches alternate at random through the
// epoch rather than running from longest to shortest. Only the make-up of each batch changes: examples of
// one window that are near in length share one.
//
// It is a pure function of (lengths, batch, seed, epoch, window): a resumed run recomputes the order of
// its epoch and continues at the same batch, as with the plain order.
import { epochOrder } from "../../arc/index";
import { Rng, seedOf } from "../../arc/rng";

/**
 * Examples per sorting window, rounded to a multiple of the batch: wide enough that each batch finds
 * neighbours of its length, narrow enough that the epoch's shuffle still decides which examples meet
 * (docs/pipeline.md, "Measurements behind the design").
 */
export const GROUP_WINDOW = 256;

export interface LengthGroupOptions {
  /** Examples per batch; with data parallelism the global batch (batch_size x world size). */
  batch: number;
  seed: number;
  epoch: number;
  /** Examples per sorting window (default GROUP_WINDOW), rounded to a multiple of `batch` (at least one batch). */
  window?: number;
}

/** The window lengthGroupedOrder sorts in: `window` rounded to the nearest multiple of `batch`, at least one batch. */
export function groupWindow(batch: number, window = GROUP_WINDOW): number {
  return Math.max(1, Math.round(window / batch)) * batch;
}

/**
 * A permutation of 0..lengths.length-1 for one epoch, to be cut into consecutive batches of `batch`:
 *   1. the epoch's random permutation (epochOrder(n, seed, epoch), the order without grouping);
 *   2. cut into windows of groupWindow(batch, window) examples, each sorted by length, longest first
 *      (stable: equal lengths keep the permutation's order);
 *   3. each window cut into batches of `batch`; the full batches shuffled by a generator of (seed, epoch);
 *   4. the one short batch (n not a multiple of `batch`: the shortest prompts of the last window) last,
 *      where the plain order has its short batch too.
 * Every example appears exactly once.
 */
export function lengthGroupedOrder(lengths: readonly number[], opts: LengthGroupOptions): number[] {
  const { batch, seed, epoch } = opts;
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`lengthGroupedOrder: batch must be a positive integer, got ${batch}`);
  if (opts.window !== undefined && !(Number.isInteger(opts.window) && opts.window >= 1)) throw new RangeError(`lengthGroupedOrder: window must be a positive integer, got ${opts.window}`);
  const bad = lengths.findIndex((l) => !Number.isFinite(l));
  if (bad >= 0) throw new RangeError(`lengthGroupedOrder: length ${bad} is not a finite number (${lengths[bad]})`);
  const n = lengths.length;
  const perm = epochOrder(n, seed, epoch);
  const window = groupWindow(batch, opts.window);
  const full: number[][] = [];
  let short: number[] | null = null;
  for (let w = 0; w < n; w += window) {
    // Array.prototype.sort is stable (ES2019), so ties keep the shuffled order.
    const sorted = perm.slice(w, w + window).sort((a, b) => lengths[b]! - lengths[a]!);
    for (let b = 0; b < sorted.length; b += batch) {
      const chunk = sorted.slice(b, b + batch);
      // A window is a whole number of batches, so only the last window can end in a short one.
      if (chunk.length === batch) full.push(chunk);
      else short = chunk;
    }
  }
  // Its own stream, apart from epochOrder's: the batches' order is not a function of the permutation's draws.
  new Rng(seedOf(seed, "length-groups", epoch)).shuffle(full);
  const order = full.flat();
  if (short) order.push(...short);
  return order;
}

/**
 * The share of a batch sequence's prompt positions that are padding: over the batches (consecutive slices
 * of `batch` of `order`), sum of (examples x longest) minus the real tokens, over sum of examples x longest.
 */
export function paddingShare(lengths: readonly number[], order: readonly number[], batch: number): number {
  let real = 0;
  let padded = 0;
  for (let b = 0; b < order.length; b += batch) {
    const ls = order.slice(b, b + batch).map((i) => lengths[i]!);
    real += ls.reduce((a, x) => a + x, 0);
    padded += ls.length * Math.max(...ls);
  }
  return padded > 0 ? 1 - real / padded : 0;
}
