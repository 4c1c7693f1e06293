// A batch through trainBatch gives each example what a batch of one from the same state gives it:
// losses, every logged number, gradients of every parameter, the memory's writes and threshold, the
// refiner's baseline. Grids from 1x1 to 30x30 (some changing size), prompts of different lengths. Then
// evaluation at batch 1 and 8, and the host-transfer budget of a training step.
import { beforeAll, describe, expect, test } from "bun:test";
import type { Example, Grid, Task } from "../../src/arc";
import { Rng } from "../../src/arc/rng";
import { loraParameters } from "../../src/models/lora";
import { evaluate } from "../../src/pipeline/eval/evaluate";
import { type BatchResult, type ExampleLogs, trainBatch } from "../../src/pipeline/system/training-step";
import { type System, buildSystem } from "../../src/pipeline/system/system";
import { snapshotSystem } from "../../src/pipeline/system/state";
import * as torch from "../../src/torch";
import type { Tensor } from "../../src/torch";
import { tinySystemConfig, withSignal } from "../helpers/system";

const rng = new Rng(7);
const randomGrid = (h: number, w: number, colours = 10): Grid => Array.from({ length: h }, () => Array.from({ length: w }, () => rng.int(0, colours - 1)));
const map = (g: Grid, f: (c: number) => number): Grid => g.map((row) => row.map(f));
const transpose = (g: Grid): Grid => g[0].map((_, j) => g.map((row) => row[j]));
const upscale = (g: Grid): Grid => g.flatMap((row) => [row.flatMap((c) => [c, c]), row.flatMap((c) => [c, c])]);

/** A task of `pairs` pairs whose inputs have the given sizes and whose outputs follow `rule`. */
function task(id: string, sizes: [number, number][], rule: (g: Grid) => Grid): Task {
  return { id, train: sizes.map(([h, w]) => { const input = randomGrid(h, w, 4); return { input, output: rule(input) }; }), test: [] };
}

const tasks = [
  task("one-cell", [[1, 1], [1, 1], [1, 1]], (g) => map(g, (c) => (c + 1) % 10)),
  task("big", [[30, 30], [30, 30]], (g) => map(g, (c) => (c === 0 ? 5 : c))),
  task("upscale", [[3, 7], [2, 2], [4, 3]], upscale),
  task("transpose", [[12, 5], [6, 9], [7, 7]], transpose),
];
// Four examples of four sizes: 1x1 -> 1x1, 30x30 -> 30x30, 3x7 -> 6x14, 12x5 -> 5x12; prompts of very different lengths.
const examples: Example[] = tasks.map((t) => ({ task: t, index: 0 }));

let sys: System;
const params = (): [string, Tensor][] => [
  ...sys.agent.namedParameters().map(([n, t]) => [`agent.${n}`, t] as [string, Tensor]),
  ...sys.refiner.namedParameters().map(([n, t]) => [`refiner.${n}`, t] as [string, Tensor]),
  ...loraParameters(sys.qwen).map((t, i) => [`lora.${i}`, t] as [string, Tensor]),
];
const zeroGrad = () => {
  for (const m of [sys.agent, sys.refiner, sys.qwen]) m.zeroGrad();
};
const grads = (): Map<string, Tensor> => new Map(params().map(([n, t]) => [n, torch.keep(t.grad ? t.grad.clone() : torch.zerosLike(t))]));

const backward = (r: BatchResult) => (r.loss ? r.loss.add(r.refinerLoss) : r.refinerLoss).backward();

const relClose = (a: Tensor, b: Tensor, tol: number) => {
  const d = a.sub(b).norm().item();
  const n = Math.max(a.norm().item(), b.norm().item(), 1e-12);
  return d / n <= tol;
};
const near = (a: number, b: number, tol = 1e-5) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b));

/** Logged numbers that must agree between the batch and the batches of one (exact ints, floats to 1e-5). */
function compareLogs(got: ExampleLogs, want: ExampleLogs): string[] {
  const bad: string[] = [];
  for (const k of ["loss", "efe", "risk", "ambiguity", "complexity", "sizeCe", "softReward", "maskRatio", "dAcc", "r", "advantage", "baseline"] as const) {
    if (!near(got[k], want[k])) bad.push(`${k}: ${got[k]} vs ${want[k]}`);
  }
  for (const part of ["before", "after"] as const) for (const k of ["acc", "size", "colour", "exact", "R"] as const) if (!near(got[part][k], want[part][k])) bad.push(`${part}.${k}`);
  for (const k of ["sizeError", "memoryHits", "promptTokens", "hint", "finite", "task", "pair"] as const) if (got[k] !== want[k]) bad.push(`${k}: ${got[k]} vs ${want[k]}`);
  return bad;
}

beforeAll(async () => {
  torch.manualSeed(0);
  sys = withSignal(await buildSystem(tinySystemConfig()));
  // Memory entries near two of the examples' prompts, so reads hit and bias the policy.
  torch.scope(() =>
    torch.noGrad(() => {
      for (const ex of examples.slice(0, 2)) {
        const p = sys.prompter.embed(ex).p;
        sys.memory.update(p.add(torch.randn(p.shape).mul(0.01)), torch.randn([sys.refiner.actionDim]), 0.9, 1);
      }
    }),
  );
});

describe("trainBatch", () => {
  // Share 1: one padded Qwen pass and one agent pass; 0: every length and grid size in its own pass; 0.2 between.
  test.each([1, 0.2, 0])("a batch of 4 equals 4 batches of one from the same state: losses, logs, gradients, memory, baseline (padding share %p)", (share) => {
    torch.scope(() => {
      const s0 = snapshotSystem(sys); // the state a batch reads: memory, baseline, the generator
      const baseline0 = sys.refiner.baseline;
      sys.prompter.config.maxPadShare = share;
      const opts = { sizeWeight: 0.8, agentPadShare: share };

      // The batch.
      zeroGrad();
      const batch = trainBatch(sys, examples, opts);
      backward(batch);
      const gBatch = grads();
      const memBatch = { json: sys.memory.stateJson(), tensors: sys.memory.stateTensors() };
      const baselineBatch = sys.refiner.baseline;

      // Four batches of one, each reading the state the batch read (the generator runs on, as in the batch).
      s0.restore();
      zeroGrad();
      const ones = examples.map((ex) => {
        s0.restore({ rng: false });
        const r = trainBatch(sys, [ex], opts);
        backward(r);
        return r;
      });
      const gOnes = grads();

      for (let i = 0; i < examples.length; i++) expect({ i, bad: compareLogs(batch.logs[i], ones[i].logs[0]) }).toEqual({ i, bad: [] });
      expect(batch.logs.some((l) => l.memoryHits > 0)).toBe(true);
      const badGrads = [...gBatch].filter(([n, g]) => !relClose(g, gOnes.get(n)!, 1e-5)).map(([n]) => n);
      expect(badGrads).toEqual([]);
      // Every parameter got a gradient (so the comparison above compares something).
      expect([...gBatch].filter(([, g]) => g.abs().sum().item() === 0).map(([n]) => n)).toEqual([]);

      // The memory's writes and threshold, and the baseline, as if the four had been applied in order.
      s0.restore();
      const written: boolean[] = [];
      let b = baseline0;
      ones.forEach((r, i) => {
        const l = r.logs[0];
        written.push(sys.memory.update(r.updates.p.select(0, 0), r.updates.actions.select(0, 0), l.after.R, l.r).written);
        b = 0.95 * b + 0.05 * l.r;
        expect(batch.logs[i].theta).toBeCloseTo(sys.memory.theta, 12);
      });
      expect(batch.logs.map((l) => l.memoryWritten)).toEqual(written);
      expect(baselineBatch).toBeCloseTo(b, 12);
      const memSeq = { json: sys.memory.stateJson(), tensors: sys.memory.stateTensors() };
      expect({ ...memBatch.json, reads: 0, hitReads: 0 }).toEqual({ ...memSeq.json, reads: 0, hitReads: 0 });
      for (const k of Object.keys(memSeq.tensors)) expect(relClose(memBatch.tensors[k], memSeq.tensors[k], 1e-6)).toBe(true);
      s0.restore();
      s0.dispose();
      zeroGrad();
    });
  });

  test("the batch's padding is accounted: real tokens and cells at most what the padded passes computed", () => {
    torch.scope(() => {
      sys.prompter.config.maxPadShare = 1;
      const r = torch.noGrad(() => trainBatch(sys, examples, { sizeWeight: 1, agentPadShare: 1 }));
      const s = r.stats;
      expect(s.examples).toBe(4);
      const prompts = r.logs.map((l) => l.promptTokens);
      const sum = prompts.reduce((a, b) => a + b, 0);
      expect(s.realTokens).toBeGreaterThanOrEqual(sum);
      expect(s.realTokens).toBeLessThanOrEqual(sum + 4 * sys.config.hint_tokens);
      expect(s.paddedTokens).toBeGreaterThanOrEqual(4 * Math.max(...prompts));
      expect(s.paddedTokens).toBeGreaterThan(s.realTokens);
      // Both agent passes over 1x1 + 30x30 + 3x7 + 12x5 input cells, one pass each, padded to 30x30.
      expect(s.cells).toBe(2 * (1 + 900 + 21 + 60));
      expect(s.agentPasses).toBe(2);
      expect(s.paddedCells).toBe(2 * 4 * 900);
    });
  });
});

describe("evaluate in batches", () => {
  test("batch size 1 and 8 give the same results", () => {
    sys.prompter.config.maxPadShare = undefined; // the CPU's length buckets
    const exs = [...examples, ...tasks.map((t) => ({ task: t, index: 1 }))];
    // Confidences agree to float rounding (a batch's sums run in another order); grids and scores exactly.
    const strip = (rs: ReturnType<typeof evaluate>) => ({ ...rs.summary, seconds: 0, results: rs.results.map(({ confidence, ...r }) => r) });
    const one = strip(evaluate(sys, exs, { batchSize: 1 }));
    const eight = strip(evaluate(sys, exs, { batchSize: 8 }));
    expect(eight).toEqual(one);
    expect(one.results.length).toBe(8);
    const conf = (rs: ReturnType<typeof evaluate>) => rs.results.flatMap((r) => r.confidence!);
    const c1 = conf(evaluate(sys, exs, { batchSize: 1 }));
    conf(evaluate(sys, exs, { batchSize: 8 })).forEach((c, i) => expect(Math.abs(c - c1[i]!)).toBeLessThan(1e-5));
  });
});

describe("host transfers", () => {
  test("a training step's transfers do not grow with the batch (one pass per batch, as on CUDA)", () => {
    sys.prompter.config.maxPadShare = 1;
    const counts = [1, 4, 8].map((B) =>
      torch.scope(() => {
        const exs = Array.from({ length: B }, (_, i) => examples[i % examples.length]);
        const { syncs } = torch.countSyncs(() => backward(trainBatch(sys, exs, { sizeWeight: 1, agentPadShare: 1 })));
        zeroGrad();
        return syncs;
      }),
    );
    expect(counts[2]).toBe(counts[0]);
    expect(counts[1]).toBe(counts[0]);
    expect(counts[0]).toBeLessThanOrEqual(STEP_SYNC_BOUND);
  });
});

/**
 * Host transfers of one trainBatch + backward in one Qwen pass: the hints' generate (ceil(N/8) + 2) and
 * one for every logged number. On the CPU the prompter's length buckets add a generate per extra pass
 * (a CPU "transfer" is a copy, no device sync).
 */
const STEP_SYNC_BOUND = 4;
