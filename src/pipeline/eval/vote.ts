// Voting over augmentations at evaluation (--votes K): the test input under K transforms of the whole
// task (the identity, then distinct dihedral transforms with colour permutations that keep 0), each
// prediction mapped back by the exact inverse, candidates ranked by votes, ties by mean confidence.
// Attempts 1 and 2 are the two best distinct grids (ARC's pass@2).
import { type Augmentation, randomColourPerm, unaugmentGrid } from "../../arc/augment";
import type { Example } from "../../arc/examples";
import { Rng, hash32 } from "../../arc/rng";
import type { Grid } from "../../arc/types";

export interface Candidate {
  grid: Grid;
  confidence: number;
}

export interface Ranked {
  grid: Grid;
  votes: number;
  /** Mean confidence of the predictions that voted for it. */
  confidence: number;
}

/** Identical grids pooled; most votes first, then higher mean confidence, then first seen. */
export function rankCandidates(cands: Candidate[]): Ranked[] {
  const byGrid = new Map<string, { grid: Grid; votes: number; sum: number; first: number }>();
  cands.forEach((c, i) => {
    const key = JSON.stringify(c.grid);
    const e = byGrid.get(key);
    if (e) {
      e.votes++;
      e.sum += c.confidence;
    } else byGrid.set(key, { grid: c.grid, votes: 1, sum: c.confidence, first: i });
  });
  return [...byGrid.values()]
    .sort((a, b) => b.votes - a.votes || b.sum / b.votes - a.sum / a.votes || a.first - b.first)
    .map((e) => ({ grid: e.grid, votes: e.votes, confidence: e.sum / e.votes }));
}

/** The two attempts from ranked candidates: the best, and the best other grid (the best again when there is none). */
export function votedAttempts(ranked: Ranked[]): [Grid, Grid] {
  if (ranked.length === 0) throw new RangeError("votedAttempts: no candidates");
  return [ranked[0].grid, (ranked[1] ?? ranked[0]).grid];
}

/**
 * K augmentations for an example, deterministic in (seed, task, pair): the identity first, then distinct
 * dihedral transforms (all 8 before any repeats), each with a random colour permutation keeping 0.
 */
export function voteAugmentations(ex: Example, k: number, seed: number): Augmentation[] {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`votes must be a positive integer, got ${k}`);
  const rng = new Rng(hash32(`${seed}#${ex.task.id}#${ex.kind ?? "train"}#${ex.index}`));
  const order = rng.shuffle([1, 2, 3, 4, 5, 6, 7]);
  const out: Augmentation[] = [{ dihedral: 0 }];
  for (let i = 1; i < k; i++) out.push({ dihedral: i < 8 ? order[i - 1] : rng.int(0, 7), colours: randomColourPerm(rng) });
  return out;
}

export { unaugmentGrid };
export { augmentExample } from "../system/augmentation";
