// DemoEncoder and the agent's context: a batch of tasks with different numbers and sizes of demonstrations
// gives each task what it gets alone (values and gradients), an agent without a context is the agent of
// before (same parameters), and the encoder lets a short run tell rules apart that the prompt-only agent
// cannot (bench/demo-encoder-exp.ts, small sizes, fixed seeds).
import { describe, expect, test } from "bun:test";
import type { Context } from "../../src/arc/examples";
import type { Grid, Pair } from "../../src/arc/types";
import { GridAgent } from "../../src/pipeline/system/agent";
import { demoBatch } from "../../src/pipeline/system/demo-batch";
import { DemoCellAttention } from "../../src/pipeline/system/demo-attention";
import { DemoEncoder, type DemoPooling } from "../../src/pipeline/system/demo-encoder";
import * as torch from "../../src/torch";
import type { Tensor } from "../../src/torch";
import { DEFAULT_EXPERIMENT, runExperiment } from "../../bench/demo-encoder-exp";

/** Relative distance of a from the reference b: max |a - b| over max |b|. */
const relErr = (a: Tensor, b: Tensor) => torch.scope(() => a.sub(b).abs().amax().item() / Math.max(b.abs().amax().item(), 1e-30));

let seed = 11;
const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const grid = (h: number, w: number): Grid => Array.from({ length: h }, () => Array.from({ length: w }, () => Math.floor(rnd() * 10)));
const pair = ([h, w]: [number, number], [oh, ow]: [number, number]): Pair => ({ input: grid(h, w), output: grid(oh, ow) });

// Tasks with 0 to 4 demonstrations of many sizes: same-size pairs (a change channel), size-changing pairs
// (an L-shaped union of cells), 1x1 and 30x30 grids.
const CONTEXTS: Context[] = [
  { demos: [pair([3, 7], [3, 7]), pair([5, 5], [5, 5]), pair([2, 9], [2, 9])], query: grid(4, 4) },
  { demos: [pair([3, 7], [7, 3])], query: grid(1, 1) },
  { demos: [], query: grid(6, 2) },
  { demos: [pair([1, 1], [2, 2]), pair([30, 30], [30, 30]), pair([12, 5], [5, 12]), pair([4, 4], [1, 1])], query: grid(9, 9) },
  { demos: [pair([8, 8], [8, 8]), pair([2, 3], [6, 9])], query: grid(3, 7) },
];

/** The encoder with every weight that could leak through padding made clearly non-zero. */
function encoderFor(pooling: DemoPooling): DemoEncoder {
  torch.manualSeed(5);
  const enc = new DemoEncoder({ channels: 16, layers: 2, groups: 4, pooling });
  torch.noGrad(() => {
    for (const layer of enc.trunk) {
      layer.norm.weight!.normal_(1, 0.5);
      layer.norm.bias!.normal_(0, 0.5);
    }
    enc.outNorm.weight!.normal_(1, 0.5);
    enc.outNorm.bias!.normal_(0, 0.5);
  });
  return enc;
}

describe("DemoEncoder", () => {
  for (const pooling of ["mean", "attention"] as const) {
    test(`${pooling} pooling: every task gets what it gets alone (values and gradients)`, () => {
      torch.scope(() => {
        const enc = encoderFor(pooling);
        const withQueries = pooling === "attention";
        const batch = demoBatch(CONTEXTS, { withQueries });
        expect(batch.counts).toEqual([3, 1, 0, 4, 2]);
        const weights = torch.randn([CONTEXTS.length, 16]);
        enc.zeroGrad();
        const together = enc.forward(batch);
        expect(together.shape).toEqual([5, 16]);
        together.mul(weights).sum().backward();
        const batchGrads = enc.namedParameters().map(([name, p]) => [name, p.grad!.clone()] as const);
        const sums = new Map<string, Tensor>();
        CONTEXTS.forEach((ctx, b) => {
          enc.zeroGrad();
          const alone = enc.forward(demoBatch([ctx], { withQueries }));
          expect(relErr(together.select(0, b), alone.select(0, 0))).toBeLessThan(1e-5);
          alone.select(0, 0).mul(weights.select(0, b)).sum().backward();
          for (const [name, p] of enc.namedParameters()) {
            if (!p.grad) continue;
            sums.set(name, sums.has(name) ? sums.get(name)!.add(p.grad) : p.grad.clone());
          }
        });
        for (const [name, g] of batchGrads) {
          const ref = sums.get(name);
          if (!ref) {
            expect(g.abs().amax().item()).toBe(0);
            continue;
          }
          // key.bias's gradient is 0 up to rounding (a shift of every score of a task leaves its softmax as
          // it was), so its error is measured against a floor rather than its own rounding noise.
          const err = torch.scope(() => g.sub(ref).abs().amax().item() / Math.max(ref.abs().amax().item(), 1e-3));
          expect({ name, ok: err < 1e-5 }).toEqual({ name, ok: true });
        }
        enc.zeroGrad();
      });
    });
  }

  test("a task with no demonstration gets LayerNorm(0): the out norm's bias", () => {
    torch.scope(() => {
      const enc = encoderFor("mean");
      const c = enc.forward(demoBatch([{ demos: [], query: grid(2, 2) }]));
      expect(relErr(c.select(0, 0), enc.outNorm.bias!)).toBeLessThan(1e-6);
    });
  });

  test("attention pooling without the test inputs in the batch is refused", () => {
    torch.scope(() => {
      expect(() => encoderFor("attention").forward(demoBatch(CONTEXTS))).toThrow(/withQueries/);
    });
  });
});

describe("DemoCellAttention", () => {
  const sizeOf = (g: Grid) => [g.length, g[0]!.length] as const;
  /** Per task: the cell attention's read through an agent given it as per-cell input: [T, H, W, 10] logits. */
  function run(enc: DemoEncoder, att: DemoCellAttention, agent: GridAgent, ctxs: Context[], maxPadShare = 1): Tensor[] {
    const batch = demoBatch(ctxs, { withQueries: true });
    const cells = att.forward(enc.cellFeatures(batch), batch, ctxs.map((c) => sizeOf(c.query)));
    ctxs.forEach((c, b) => expect(cells[b]!.shape).toEqual([16, ...sizeOf(c.query)]));
    return agent.forwardBatch(ctxs.map((c) => c.query), torch.zeros([ctxs.length, 8]), { cells, maxPadShare }).logits;
  }

  for (const maxPadShare of [1, 0]) {
    test(`every task gets what it gets alone, values and gradients (agent passes: ${maxPadShare === 1 ? "one" : "by size"})`, () => {
      torch.scope(() => {
        const enc = encoderFor("mean");
        const att = new DemoCellAttention({ channels: 16, agentChannels: 16 });
        const agent = new GridAgent({ promptDim: 8, channels: 16, steps: 2, groups: 4, inputPrior: 2 });
        const params = [...enc.namedParameters(), ...att.namedParameters().map(([n, p]) => [`att.${n}`, p] as const), ...agent.namedParameters().map(([n, p]) => [`agent.${n}`, p] as const)];
        const zero = () => params.forEach(([, p]) => p.grad && p.grad.zero_());
        const weights = CONTEXTS.map((c) => torch.randn([2, ...sizeOf(c.query), 10]));
        zero();
        const together = run(enc, att, agent, CONTEXTS, maxPadShare);
        torch.stack(together.map((l, b) => l.mul(weights[b]!).sum())).sum().backward();
        const batchGrads = params.filter(([, p]) => p.grad).map(([name, p]) => [name, p.grad!.clone()] as const);
        const sums = new Map<string, Tensor>();
        CONTEXTS.forEach((ctx, b) => {
          zero();
          const alone = run(enc, att, agent, [ctx])[0]!;
          expect(relErr(together[b]!, alone)).toBeLessThan(1e-5);
          alone.mul(weights[b]!).sum().backward();
          for (const [name, p] of params) if (p.grad) sums.set(name, sums.has(name) ? sums.get(name)!.add(p.grad) : p.grad.clone());
        });
        for (const [name, g] of batchGrads) {
          const ref = sums.get(name)!;
          // The key's bias moves every score of a query alike: its gradient is 0 up to rounding, so a floor.
          const err = torch.scope(() => g.sub(ref).abs().amax().item() / Math.max(ref.abs().amax().item(), 1e-3));
          expect({ name, ok: err < 1e-4 }).toEqual({ name, ok: true });
        }
        // The read reaches the agent's output, and a task with no demonstration reads zeros.
        const plain = agent.forwardBatch(CONTEXTS.map((c) => c.query), torch.zeros([CONTEXTS.length, 8])).logits;
        expect(relErr(together[2]!, plain[2]!)).toBeLessThan(1e-5);
        expect(together[0]!.sub(plain[0]!).abs().amax().item()).toBeGreaterThan(1e-4);
      });
    });
  }

  test("refuses a batch without the test inputs, and per-cell inputs of the wrong shape", () => {
    torch.scope(() => {
      const enc = encoderFor("mean");
      const att = new DemoCellAttention({ channels: 16, agentChannels: 16 });
      const batch = demoBatch(CONTEXTS);
      expect(() => att.forward(enc.cellFeatures(batch), batch, CONTEXTS.map((c) => sizeOf(c.query)))).toThrow(/withQueries/);
      const agent = new GridAgent({ promptDim: 8, channels: 16, steps: 2, groups: 4 });
      expect(() => agent.forwardBatch([grid(2, 3)], torch.zeros([1, 8]), { cells: [torch.zeros([16, 3, 2])] })).toThrow(/cell input/);
    });
  });
});

describe("GridAgent's context", () => {
  test("without contextDim the agent has the same parameters as before; with one, only film and size_head widen", () => {
    torch.scope(() => {
      const shapes = (a: GridAgent) => Object.fromEntries(a.namedParameters().map(([n, p]) => [n, p.shape]));
      const old = shapes(new GridAgent({ promptDim: 8, channels: 16, steps: 2, groups: 4 }));
      const zero = shapes(new GridAgent({ promptDim: 8, channels: 16, steps: 2, groups: 4, contextDim: 0 }));
      const ctx = shapes(new GridAgent({ promptDim: 8, channels: 16, steps: 2, groups: 4, contextDim: 6 }));
      expect(zero).toEqual(old);
      expect(Object.keys(ctx)).toEqual(Object.keys(old));
      const changed = Object.keys(old).filter((k) => old[k]!.join() !== ctx[k]!.join());
      expect(changed).toEqual(["block.film.weight", "size_head.0.weight"]);
      expect(ctx["block.film.weight"]).toEqual([32, 14]);
    });
  });

  test("a context agent's batch gives each example what it gets alone, and wants its context", () => {
    torch.scope(() => {
      torch.manualSeed(3);
      const agent = new GridAgent({ promptDim: 8, channels: 16, steps: 2, groups: 4, contextDim: 6 });
      torch.noGrad(() => agent.block.film.weight.normal_(0, 0.5));
      const grids = [grid(3, 7), grid(1, 1), grid(5, 5)];
      const p = torch.randn([3, 8]);
      const c = torch.randn([3, 6]);
      const out = agent.forwardBatch(grids, p, { context: c });
      grids.forEach((g, i) => {
        const alone = agent.forward(g, p.select(0, i), c.select(0, i));
        expect(relErr(out.logits[i]!, alone.logits)).toBeLessThan(1e-5);
        expect(relErr(out.heightLogits.select(0, i), alone.heightLogits)).toBeLessThan(1e-5);
      });
      // The context reaches the output.
      const other = agent.forwardBatch(grids, p, { context: c.add(1) });
      expect(other.logits[0]!.sub(out.logits[0]!).abs().amax().item()).toBeGreaterThan(1e-4);
      expect(() => agent.forwardBatch(grids, p)).toThrow(/contexts/);
      expect(() => new GridAgent({ promptDim: 8, channels: 16, steps: 2, groups: 4 }).forwardBatch(grids, p, { context: c })).toThrow(/without a context/);
    });
  });
});

describe("telling rules apart (bench/demo-encoder-exp.ts at small sizes)", () => {
  // flip_h and flip_v on 2x2 patterns: the test inputs of the two families look alike, so without the
  // demonstrations the agent can at best guess one rule. Fixed seeds; sizes small enough for seconds.
  const small = { ...DEFAULT_EXPERIMENT, families: ["flip_h", "flip_v"], maxSide: 2, trainTasks: 3000, heldOutTasks: 60, steps: 120, seed: 0 };

  test("the encoder and the control both train from the same seed and are scored on the same held-out tasks", () => {
    const prompt = runExperiment({ ...small, context: "prompt" });
    const demos = runExperiment({ ...small, context: "demos" });
    expect(prompt.heldOut).toBe(60);
    expect(demos.heldOut).toBe(60);
    expect(demos.parameters).toBeGreaterThan(prompt.parameters);
    for (const r of [prompt, demos]) expect(r.lossLast).toBeLessThan(r.lossFirst);
  });

  // The claim: reading the demonstrations reaches held-out exact answers that the prompt-only
  // control cannot reach with the same budget. The pooled c does not (bench/results/demo-encoder-exp-
  // 2026-12-07.json: 14-18/60 like prompt, also with a 10x encoder learning rate or a random FiLM init).
  // The per-cell read (DemoCellAttention added after the stem and at every refinement step, what
  // `--agent_context cells` trains) leaves prompt's plateau between ~450 and ~1200 steps depending on the
  // seed; after 1500 steps of fresh tasks, with one thread as the tests run, seeds 0/1/2/3 score
  // 42/59/54/58 of 60 against prompt's 16/14/16/16 on LibTorch 1.13, and seed 0 scores 56 vs 16 on
  // PyTorch 2.13's LibTorch (bench/results/demo-encoder-exp-2026-12-07.json, fifth pass). Seed 0 leaves
  // the plateau last; the margin asked is about half the smallest measured (26).
  test("held-out exact answers with the per-cell read exceed the prompt-only control by at least 15/60", () => {
    const budget = { ...small, stream: true, steps: 1500, seed: 0 };
    const prompt = runExperiment({ ...budget, context: "prompt" });
    const cells = runExperiment({ ...budget, context: "cells", cellsEveryStep: true });
    expect(prompt.heldOut).toBe(60);
    expect(cells.heldOutExact - prompt.heldOutExact).toBeGreaterThanOrEqual(15);
  });
});
