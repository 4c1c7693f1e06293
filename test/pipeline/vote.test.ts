// Voting over augmentations: exact inverses, the majority grid wins (ties by confidence), attempts are
// the two best distinct grids, and evaluate --votes puts it together deterministically.
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Example, type Grid, loadTask, testExamples } from "../../src/arc";
import { augmentGrid } from "../../src/arc/augment";
import { Rng } from "../../src/arc/rng";
import { evaluate } from "../../src/pipeline/eval/evaluate";
import { type System, buildSystem } from "../../src/pipeline/system/system";
import { augmentExample, rankCandidates, unaugmentGrid, voteAugmentations, votedAttempts } from "../../src/pipeline/eval/vote";
import * as torch from "../../src/torch";
import { FIXTURE_ARC } from "../helpers/fixtures";
import { tinySystemConfig } from "../helpers/system";

const rng = new Rng(3);
const randomGrid = (h: number, w: number): Grid => Array.from({ length: h }, () => Array.from({ length: w }, () => rng.int(0, 9)));
const fixture = (id: string) => loadTask(join(FIXTURE_ARC, "training", `${id}.json`));

describe("augmentations for voting", () => {
  test("identity first, then distinct dihedral transforms with colour permutations keeping 0; deterministic by seed", () => {
    const ex: Example = { task: fixture("rotate90"), index: 0 };
    const a = voteAugmentations(ex, 8, 5);
    expect(a[0]).toEqual({ dihedral: 0 });
    expect(new Set(a.map((x) => x.dihedral)).size).toBe(8);
    for (const x of a.slice(1)) expect(x.colours![0]).toBe(0);
    expect(voteAugmentations(ex, 8, 5)).toEqual(a);
    expect(voteAugmentations(ex, 8, 6)).not.toEqual(a);
    expect(() => voteAugmentations(ex, 0, 0)).toThrow(/positive integer/);
  });

  test("every augmentation has an exact inverse (round trip on random grids of many shapes)", () => {
    const ex: Example = { task: fixture("rotate90"), index: 0 };
    for (const aug of voteAugmentations(ex, 12, 1)) {
      for (const [h, w] of [[1, 1], [2, 7], [5, 3], [30, 30]]) {
        const g = randomGrid(h, w);
        expect(unaugmentGrid(augmentGrid(g, aug), aug)).toEqual(g);
      }
    }
  });
});

describe("rankCandidates and votedAttempts", () => {
  const A = [[1, 2]];
  const B = [[3, 4]];
  const C = [[5], [6]];
  test("the majority grid wins whatever its confidence; attempt 2 is the best other grid", () => {
    const ranked = rankCandidates([
      { grid: B, confidence: 0.99 },
      { grid: A, confidence: 0.2 },
      { grid: C, confidence: 0.9 },
      { grid: A, confidence: 0.3 },
      { grid: A, confidence: 0.1 },
      { grid: C, confidence: 0.5 },
    ]);
    expect(ranked.map((r) => [r.grid, r.votes])).toEqual([[A, 3], [C, 2], [B, 1]]);
    expect(ranked[0].confidence).toBeCloseTo(0.2, 12);
    expect(votedAttempts(ranked)).toEqual([A, C]);
  });
  test("ties go to the higher mean confidence; a lone candidate is both attempts", () => {
    expect(votedAttempts(rankCandidates([{ grid: A, confidence: 0.4 }, { grid: B, confidence: 0.6 }]))).toEqual([B, A]);
    expect(votedAttempts(rankCandidates([{ grid: A, confidence: 0.4 }, { grid: A, confidence: 0.6 }]))).toEqual([A, A]);
    expect(() => votedAttempts([])).toThrow(/no candidates/);
  });
});

describe("evaluate --votes", () => {
  let sys: System;
  let examples: Example[];
  beforeAll(async () => {
    torch.manualSeed(0);
    sys = await buildSystem(tinySystemConfig());
    examples = ["rotate90", "colourmap3x3", "tile2x2"].map((id) => testExamples([fixture(id)])[0]!);
  });

  test("K = 1 is plain evaluation; K = 4: attempts from the mapped-back candidates, the same on a second run", () => {
    const plain = evaluate(sys, examples).results;
    const one = evaluate(sys, examples, { votes: 1 }).results;
    expect(one).toEqual(plain);
    const voted = evaluate(sys, examples, { votes: 4, batchSize: 8 }).results;
    // The same batches again: the same answers. (Across batch sizes passes are grouped differently, and
    // an untrained agent's near-tied logits can flip at float32 rounding.)
    const again = evaluate(sys, examples, { votes: 4, batchSize: 8 }).results;
    expect(again).toEqual(voted);
    voted.forEach((r, i) => {
      // The identity's own attempts and cell accuracies are the plain run's.
      expect(r.unvoted).toEqual(plain[i].attempts);
      expect([r.cellAccBefore, r.cellAccAfter]).toEqual([plain[i].cellAccBefore, plain[i].cellAccAfter]);
      const total = r.votes!.reduce((a, v) => a + v.votes, 0);
      expect(total).toBeLessThanOrEqual(8);
      expect(r.votes![0].grid).toEqual(r.attempts[0]);
      expect(r.votes!.every((v, k) => k === 0 || v.votes <= r.votes![k - 1].votes)).toBe(true);
    });
  });

  test("augmented copies are different prompts: a frozen Qwen's cache keeps one p per augmentation", async () => {
    const frozen = await buildSystem(tinySystemConfig({ qwen_train: "frozen" }));
    const ex = examples[0];
    const augs = voteAugmentations(ex, 3, 0);
    const ps = augs.map((a) => torch.scope(() => frozen.prompter.embed(augmentExample(ex, a)).p.clone()));
    expect(ps[0].equal(ps[1])).toBe(false);
    expect(frozen.prompter.embed(augmentExample(ex, augs[1])).cached).toBe(true);
    expect(frozen.prompter.embed(augmentExample(ex, augs[1])).p.equal(ps[1])).toBe(true);
  });
});
