// --before_weight (issue 27): the before-refinement pass, which gives attempt 1, trained beside the after pass.
// The flag parses, is refused when negative, reaches SystemConfig, and reads as 0 for a run saved before it;
// at 0 the before pass keeps no graph (the design's objective); at w > 0 a batch's loss and gradients are the
// after pass's plus w times the before pass's EFE loss, computed on its own, and a batch gives each example
// what it gets alone.
import { beforeAll, describe, expect, test } from "bun:test";
import type { Example, Grid, Task } from "../../src/arc";
import { Rng } from "../../src/arc/rng";
import { target } from "../../src/arc/examples";
import { loraParameters } from "../../src/models/lora";
import { DEFAULTS, parseTrainArgs, validateConfig } from "../../src/pipeline/config/train-config";
import { systemConfig } from "../../src/pipeline/config/run-setup";
import { efeLossDevice } from "../../src/pipeline/objective/efe";
import { savedRunConfig } from "../../src/pipeline/run/migrations";
import { systemForward } from "../../src/pipeline/system/forward";
import { gridTensor, resizeLogits } from "../../src/pipeline/system/resize";
import { snapshotSystem } from "../../src/pipeline/system/state";
import { type System, buildSystem } from "../../src/pipeline/system/system";
import { type BatchResult, trainBatch } from "../../src/pipeline/system/training-step";
import * as torch from "../../src/torch";
import type { Tensor } from "../../src/torch";
import { tinySystemConfig, withSignal } from "../helpers/system";

const rng = new Rng(31);
const randomGrid = (h: number, w: number): Grid => Array.from({ length: h }, () => Array.from({ length: w }, () => rng.int(0, 3)));
const map = (g: Grid, f: (c: number) => number): Grid => g.map((row) => row.map(f));
const transpose = (g: Grid): Grid => g[0]!.map((_, j) => g.map((row) => row[j]!));
function task(id: string, sizes: [number, number][], rule: (g: Grid) => Grid): Task {
  return { id, train: sizes.map(([h, w]) => { const input = randomGrid(h, w); return { input, output: rule(input) }; }), test: [] };
}
const examples: Example[] = [
  { task: task("recolour", [[4, 4], [6, 3], [5, 5]], (g) => map(g, (c) => (c === 0 ? 5 : c))), index: 0 },
  { task: task("transpose", [[3, 7], [5, 2], [4, 6]], transpose), index: 1 },
];
const SIZE_WEIGHT = 0.8;
const noiseKey = { seed: 3, step: 1, rows: [0, 1] };

describe("the flag", () => {
  test("default 0 (the design's objective); parsed into SystemConfig; a negative weight is refused; a run saved before it reads 0", () => {
    expect(DEFAULTS.before_weight).toBe(0);
    const { config } = parseTrainArgs(["--before_weight", "0.5"]);
    expect(systemConfig(config).before_weight).toBe(0.5);
    const env = { cudaAvailable: false, cudaDevices: 0 };
    expect(() => validateConfig(parseTrainArgs(["--before_weight", "-1"]).config, env)).toThrow("--before_weight must be a finite number >= 0, got -1");
    const { before_weight, ...older } = DEFAULTS;
    expect(savedRunConfig(older as Record<string, unknown>).before_weight).toBe(0);
  });
});

describe("the before pass's loss", () => {
  let sys: System;
  const params = (): [string, Tensor][] => [
    ...sys.agent.namedParameters().map(([n, t]) => [`agent.${n}`, t] as [string, Tensor]),
    ...sys.refiner.upParameters().map((t, i) => [`W_up.${i}`, t] as [string, Tensor]),
    ...loraParameters(sys.qwen).map((t, i) => [`lora.${i}`, t] as [string, Tensor]),
  ];
  const zeroGrad = () => {
    for (const m of [sys.agent, sys.refiner, sys.qwen]) m.zeroGrad();
  };
  const grads = (): Map<string, Tensor> => new Map(params().map(([n, t]) => [n, torch.keep(t.grad ? t.grad.clone() : torch.zerosLike(t))]));
  const relErr = (a: Tensor, b: Tensor) => a.sub(b).norm().item() / Math.max(a.norm().item(), b.norm().item(), 1e-12);

  beforeAll(async () => {
    torch.manualSeed(5);
    sys = withSignal(await buildSystem(tinySystemConfig()));
  });

  /** trainBatch at `w` from the same state, its main loss backpropagated; the state is put back. */
  function run(w: number, exs = examples, rows = noiseKey.rows): { result: BatchResult; g: Map<string, Tensor> } {
    const s0 = snapshotSystem(sys);
    sys.config.before_weight = w;
    zeroGrad();
    const result = trainBatch(sys, exs, { sizeWeight: SIZE_WEIGHT, noise: { ...noiseKey, rows } });
    result.loss!.backward();
    const g = grads();
    s0.restore();
    s0.dispose();
    zeroGrad();
    sys.config.before_weight = 0;
    return { result, g };
  }

  test("at 0 the before pass keeps no graph: nothing of the loss reaches it", () => {
    torch.scope(() => {
      const f = systemForward(sys, examples, { noise: torch.zeros([2, sys.refiner.actionDim]) });
      expect(f.before.logits.map((l) => l.requiresGrad)).toEqual([false, false]);
      expect(f.after.logits.map((l) => l.requiresGrad)).toEqual([true, true]);
    });
  });

  test("at w > 0 the loss and its gradients are the after pass's plus w times the before pass's EFE loss (1e-5)", () => {
    torch.scope(() => {
      const w = 0.5;
      const zero = run(0);
      const weighted = run(w);
      // The before pass's EFE loss on its own, with its gradients (the same state: hints are greedy, dropout 0).
      const s0 = snapshotSystem(sys);
      zeroGrad();
      const f = systemForward(sys, examples, { trainBefore: true, noise: torch.zeros([2, sys.refiner.actionDim]) });
      const own = examples.map((ex, i) => {
        const t = target(ex)!;
        return efeLossDevice({ logits: resizeLogits(f.before.logits[i]!, t.length, t[0]!.length), target: gridTensor(t, "cpu"), heightLogits: f.before.heightLogits.select(0, i), widthLogits: f.before.widthLogits.select(0, i), sizeWeight: SIZE_WEIGHT }, sys.config.efe).total;
      });
      torch.stack(own).sum().backward();
      const gBefore = grads();
      s0.restore();
      s0.dispose();
      zeroGrad();

      const ownValues = own.map((t) => t.item());
      weighted.result.logs.forEach((l, i) => {
        const z = zero.result.logs[i]!;
        expect(Math.abs(l.loss - (z.loss + w * ownValues[i]!))).toBeLessThan(1e-5 * Math.max(1, Math.abs(l.loss)));
        // Every other logged term is the after pass's, unchanged.
        for (const k of ["efe", "risk", "ambiguity", "complexity", "sizeCe", "softReward", "dAcc", "r"] as const) expect(Math.abs(l[k] - z[k])).toBeLessThan(1e-6);
      });
      // The before pass reaches the agent, and p's path back into Qwen's LoRA; W_up is after the before pass.
      const reached = [...gBefore].filter(([, g]) => g.abs().sum().item() > 0).map(([n]) => n);
      expect(reached.some((n) => n.startsWith("agent."))).toBe(true);
      expect(reached.some((n) => n.startsWith("lora."))).toBe(true);
      expect(reached.some((n) => n.startsWith("W_up."))).toBe(false);
      const bad = [...weighted.g].filter(([n, g]) => relErr(g, zero.g.get(n)!.add(gBefore.get(n)!.mul(w))) > 1e-5).map(([n]) => n);
      expect(bad).toEqual([]);
      // And the weight changes what trains: the gradients at w differ from those at 0.
      expect(relErr(weighted.g.get("agent.stem.weight")!, zero.g.get("agent.stem.weight")!)).toBeGreaterThan(1e-3);
    });
  });

  test("at w > 0 a batch gives each example what it gets alone: losses and both passes' rewards (1e-5)", () => {
    torch.scope(() => {
      const batch = run(1);
      examples.forEach((ex, i) => {
        const alone = run(1, [ex], [i]).result.logs[0]!;
        const got = batch.result.logs[i]!;
        expect(Math.abs(got.loss - alone.loss)).toBeLessThan(1e-5 * Math.max(1, Math.abs(alone.loss)));
        for (const part of ["before", "after"] as const) expect(Math.abs(got[part].R - alone[part].R)).toBeLessThan(1e-5);
      });
    });
  });
});
