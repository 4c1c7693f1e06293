// GridAgent shapes and conditioning; resize semantics; the reward metrics on crafted grids.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { GridAgent, predictedSize } from "../../src/pipeline/system/agent";
import { DEFAULTS } from "../../src/pipeline/config/train-config";
import { gridTensor, resizeHard, resizeLogits, toGrid } from "../../src/pipeline/system/resize";
import { DEFAULT_REWARD_WEIGHTS, colourScore, exactMatch, reward, sizeScore } from "../../src/pipeline/objective/reward";

const grid = (h: number, w: number, f: (i: number, j: number) => number) => Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => f(i, j)));

describe("GridAgent", () => {
  torch.manualSeed(0);
  const agent = new GridAgent({ promptDim: 16, channels: 16, steps: 5, groups: 4 });

  test("output shapes for 1x1, 3x7 and 30x30 inputs", () => {
    for (const [h, w] of [[1, 1], [3, 7], [30, 30]]) {
      torch.scope(() => {
        const out = agent.forward(grid(h, w, (i, j) => (i + j) % 10), torch.randn(16));
        expect(out.logits.shape).toEqual([5, h, w, 10]);
        expect(out.heightLogits.shape).toEqual([30]);
        expect(out.widthLogits.shape).toEqual([30]);
        expect(out.pooled.shape).toEqual([16]);
        const [ph, pw] = predictedSize(out);
        expect(ph >= 1 && ph <= 30 && pw >= 1 && pw <= 30).toBe(true);
      });
    }
    expect(() => agent.forward(grid(31, 2, () => 0), torch.randn(16))).toThrow(/sides must be 1..30/);
  });

  test("FiLM: a different prompt vector changes the output once FiLM is not the identity", () => {
    torch.scope(() => {
      const g = grid(4, 5, (i, j) => (i * j) % 3);
      const p1 = torch.randn(16);
      const p2 = torch.randn(16);
      // FiLM starts as the identity (zero init): p reaches the cells only through the size head.
      expect(agent.forward(g, p1).logits.equal(agent.forward(g, p2).logits)).toBe(true);
      torch.noGrad(() => agent.block.film.weight.normal_(0, 0.5));
      const a = agent.forward(g, p1).logits;
      const b = agent.forward(g, p2).logits;
      expect(a.sub(b).abs().amax().item()).toBeGreaterThan(1e-3);
      expect(agent.forward(g, p1).logits.equal(a)).toBe(true);
    });
  });

  test("gradients reach every agent parameter and the prompt vector", () => {
    torch.scope(() => {
      const p = torch.randn([16], { requiresGrad: true });
      const out = agent.forward(grid(3, 3, (i) => i), p);
      out.logits.sum().add(out.heightLogits.sum()).backward();
      for (const [name, t] of agent.namedParameters()) expect({ name, grad: t.grad !== null }).toEqual({ name, grad: true });
      expect(p.grad!.abs().sum().item()).toBeGreaterThan(0);
      agent.zeroGrad();
    });
  });
});

describe("resize", () => {
  test("nearest keeps the colour set; identity at the same size", () => {
    const pred = gridTensor([[1, 2], [3, 4]]);
    const up = toGrid(resizeHard(pred, 5, 3));
    expect(new Set(up.flat())).toEqual(new Set([1, 2, 3, 4]));
    expect(up).toEqual([[1, 1, 2], [1, 1, 2], [1, 1, 2], [3, 3, 4], [3, 3, 4]]);
    expect(toGrid(resizeHard(pred, 1, 1))).toEqual([[1]]);
    expect(resizeHard(pred, 2, 2)).toBe(pred);
  });

  test("bilinear of constant logits stays constant; identity at the same size", () => {
    const logits = torch.full([5, 3, 4, 10], 0.25);
    const r = resizeLogits(logits, 7, 2);
    expect(r.shape).toEqual([5, 7, 2, 10]);
    expect(r.amax().item()).toBeCloseTo(0.25, 6);
    expect(r.amin().item()).toBeCloseTo(0.25, 6);
    expect(resizeLogits(logits, 3, 4)).toBe(logits);
    // A per-colour pattern survives: colour k's logit stays k everywhere.
    const ramp = torch.arange(10, undefined, 1, { dtype: "float32" }).expand(2, 3, 3, 10).contiguous();
    expect(resizeLogits(ramp, 6, 1).argmax(-1).amin().item()).toBe(9);
  });
});

describe("reward", () => {
  const target = [[1, 1], [2, 0]];

  test("a perfect prediction scores 1 on every metric", () => {
    expect(reward(target, [2, 2], target)).toEqual({ acc: 1, size: 1, colour: 1, exact: 1, R: 1 });
    expect(exactMatch(target, [[1, 1], [2, 0]])).toBe(true);
  });

  test("wrong size: IoU of the rectangles and no exact credit even when cells match", () => {
    expect(sizeScore([2, 3], [2, 2])).toBeCloseTo(4 / 6, 12);
    expect(sizeScore([1, 1], [3, 3])).toBeCloseTo(1 / 9, 12);
    const r = reward(target, [3, 2], target);
    expect(r.size).toBeCloseTo(4 / 6, 12);
    expect(r.exact).toBe(0);
    expect(r.R).toBeCloseTo(0.4 + 0.2 * (4 / 6) + 0.2, 12);
    expect(exactMatch([[1, 1]], target)).toBe(false);
  });

  test("swapped colours: same histogram shares, no cell right", () => {
    const swapped = [[2, 2], [1, 0]]; // 1 <-> 2: histogram {1: .25, 2: .5} vs target {1: .5, 2: .25}
    expect(colourScore(swapped, target)).toBeCloseTo(0.25 + 0.25 + 0.25, 12);
    const r = reward(swapped, [2, 2], target);
    expect(r.acc).toBe(0.25);
    expect(r.exact).toBe(0);
    expect(r.R).toBeCloseTo(0.4 * 0.25 + 0.2 + 0.2 * 0.75, 12);
  });

  test("R stays in [0, 1] over random grids and sizes", () => {
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let n = 0; n < 500; n++) {
      const h = 1 + Math.floor(rnd() * 5);
      const w = 1 + Math.floor(rnd() * 5);
      const t = grid(h, w, () => Math.floor(rnd() * 10));
      const p = grid(h, w, () => Math.floor(rnd() * 10));
      const r = reward(p, [1 + Math.floor(rnd() * 30), 1 + Math.floor(rnd() * 30)], t);
      expect(r.R).toBeGreaterThanOrEqual(0);
      expect(r.R).toBeLessThanOrEqual(1);
    }
    expect(DEFAULT_REWARD_WEIGHTS).toEqual({ acc: 0.4, size: 0.2, colour: 0.2, exact: 0.2 });
  });
});

describe("GridAgent input prior", () => {
  test("an untrained agent with the prior predicts its input (identity) at every step; gradients reach every parameter", () => {
    for (const channels of [16, 128]) {
      torch.manualSeed(channels);
      const agent = new GridAgent({ promptDim: 16, channels, steps: 5, groups: 8, inputPrior: DEFAULTS.agent_input_prior });
      torch.noGrad(() => agent.block.film.weight.normal_(0, 0.5)); // p matters, as after training starts
      torch.scope(() => {
        const grids = [grid(1, 1, () => 7), grid(5, 9, (i, j) => (i * 3 + j * 7) % 10), grid(30, 30, (i, j) => (i * j) % 10)];
        const out = agent.forwardBatch(grids, torch.randn([3, 16]).mul(3));
        out.logits.forEach((l, i) => {
          for (let t = 0; t < 5; t++) expect(l.select(0, t).argmax(-1).tolist()).toEqual(grids[i]);
        });
        out.logits.reduce((a, l) => a.add(l.square().mean()), torch.zeros([])).backward();
        for (const [name, t] of agent.namedParameters()) {
          if (name.startsWith("size_head")) continue; // the size head is not part of these logits
          expect({ name, grad: (t.grad?.abs().sum().item() ?? 0) > 0 }).toEqual({ name, grad: true });
        }
      });
    }
    // Without the prior (checkpoints from before it): the head keeps its default scale and no prior is added.
    torch.manualSeed(1);
    const plain = new GridAgent({ promptDim: 16, channels: 16, steps: 5, groups: 4 });
    torch.manualSeed(1);
    const zero = new GridAgent({ promptDim: 16, channels: 16, steps: 5, groups: 4, inputPrior: 0 });
    torch.scope(() => {
      const g = grid(3, 4, (i, j) => (i + j) % 10);
      const p = torch.randn(16);
      expect(plain.forward(g, p).logits.equal(zero.forward(g, p).logits)).toBe(true);
    });
  });
});
