// PromptRefiner (docs/pipeline.md, "Refiner"): Gaussian formulas, bounds, memory bias, gradient routing, the EMA
// baseline, checkpoint state, batching, no leak, and learning on a toy bandit.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { HALF_LOG_2PI, PromptRefiner, gaussianEntropy, gaussianLogProb } from "../../src/pipeline/system/refiner";
import { expectClose } from "../helpers/numeric";

const P = 6;
const D = 3;
const K = 2;

/** A refiner whose head outputs constants: mean `mu`, raw log-std `raw` (weights zeroed). */
function constantHead(mu: number[], raw: number[], opts: Partial<ConstructorParameters<typeof PromptRefiner>[0]> = {}): PromptRefiner {
  const r = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: mu.length, hidden: 8, ...opts });
  torch.noGrad(() =>
    torch.scope(() => {
      r.head.weight.zero_();
      r.head.bias!.copy_(torch.tensor([...mu, ...raw]));
    }),
  );
  return r;
}

const inputs = (seed = 0) => {
  torch.manualSeed(seed);
  return { p: torch.randn([P]), z: torch.randn([D]) };
};

describe("PromptRefiner", () => {
  test("shapes, parameter split, state dict names, optimizer over the policy parameters only", () => {
    const r = new PromptRefiner({ promptDim: P, stateDim: D });
    expect(r.actionDim).toBe(32);
    expect(r.hidden).toBe(256);
    expect(r.lr).toBe(1e-4);
    expect(r.entropyCoef).toBe(0.01);
    expect(Object.keys(r.stateDict())).toEqual([
      "state_norm.weight", "state_norm.bias",
      "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "mlp.4.weight", "mlp.4.bias",
      "up.weight",
    ]);
    expect(r.mlp.at(0).stateDict()["weight"].shape).toEqual([256, P + D + 1]);
    expect(r.head.weight.shape).toEqual([64, 256]);
    expect(r.up.weight.shape).toEqual([P, 32]);
    expect(r.up.bias).toBeNull();
    const policy = new Set(r.policyParameters());
    const up = r.upParameters();
    expect(up).toEqual([r.up.weight]);
    expect(up.some((t) => policy.has(t))).toBe(false);
    expect(policy.size + up.length).toBe(r.parameters().length);
    expect(r.optimizer.params()).toEqual(r.policyParameters());
    // W_up starts small: N(0, 0.02^2).
    const std = torch.scope(() => r.up.weight.std().item());
    expect(std).toBeGreaterThan(0.01);
    expect(std).toBeLessThan(0.03);
    // The head starts near zero mean and log-std 0.
    const { p, z } = inputs();
    const out = torch.scope(() => {
      const a = r.act(p, z, 0.3);
      return { mean: a.mean.abs().max().item(), logStd: a.logStd.abs().max().item(), shape: a.action.shape, lp: a.logProb.shape };
    });
    expect(out.mean).toBeLessThan(0.05);
    expect(out.logStd).toBeLessThan(0.05);
    expect(out.shape).toEqual([32]);
    expect(out.lp).toEqual([]);
    r.dispose();
  });

  test("log-prob and entropy match the Gaussian formulas on a hand example", () => {
    const mu = [0.3, -0.2];
    const logStd = [Math.log(0.5), 0.1];
    const r = constantHead(mu, logStd);
    const { p, z } = inputs(1);
    torch.manualSeed(42);
    const got = torch.scope(() => {
      const a = r.act(p, z, 0.25);
      return { a: a.action.tolist() as number[], lp: a.logProb.item(), h: a.entropy.item(), mean: a.mean.tolist(), ls: a.logStd.tolist() };
    });
    expectClose(got.mean, mu, 1e-6);
    expectClose(got.ls, logStd, 1e-6);
    // The action is mu + sigma * eps with eps from torch's generator.
    torch.manualSeed(42);
    const eps = torch.scope(() => torch.randn([2]).tolist() as number[]);
    expectClose(got.a, mu.map((m, i) => m + Math.exp(logStd[i]) * eps[i]), 1e-6);
    let lp = 0;
    let h = 0;
    for (let i = 0; i < 2; i++) {
      const s = Math.exp(logStd[i]);
      lp += -((got.a[i] - mu[i]) ** 2) / (2 * s * s) - logStd[i] - HALF_LOG_2PI;
      h += 0.5 + HALF_LOG_2PI + logStd[i];
    }
    expect(got.lp).toBeCloseTo(lp, 5);
    expect(got.h).toBeCloseTo(h, 5);
    // The free functions on literal values.
    torch.scope(() => {
      const a = torch.tensor([1, 2]);
      const m = torch.tensor([0, 0]);
      const l = torch.tensor([0, Math.log(2)]);
      expect(gaussianLogProb(a, m, l).item()).toBeCloseTo(-0.5 - HALF_LOG_2PI + (-0.5 - Math.log(2) - HALF_LOG_2PI), 5);
      expect(gaussianEntropy(l).item()).toBeCloseTo(1 + 2 * HALF_LOG_2PI + Math.log(2), 5);
    });
    r.dispose();
  });

  test("log-std is bounded to [-5, 0.5]: clamped (default) or soft", () => {
    const r = constantHead([0, 0, 0], [10, -10, 0.2]);
    const { p, z } = inputs();
    const ls = torch.scope(() => r.act(p, z, 0).logStd.tolist());
    expectClose(ls, [0.5, -5, 0.2], 1e-6);
    // Clamped outside the range: no gradient reaches the raw head there.
    torch.scope(() => r.act(p, z, 0).entropy.backward());
    const g = torch.scope(() => r.head.bias!.grad!.tolist() as number[]);
    expectClose(g.slice(3), [0, 0, 1], 1e-7);
    r.dispose();

    const soft = constantHead([0, 0, 0], [100, -100, 0], { logStdBound: "soft", logStdInit: -1 });
    const sls = torch.scope(() => soft.act(p, z, 0).logStd.tolist());
    expectClose(sls, [0.5, -5, -2.25], 1e-5);
    soft.dispose();
    // logStdInit sets the starting log-std in both modes.
    for (const mode of ["clamp", "soft"] as const) {
      const q = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: 4, hidden: 8, logStdBound: mode, logStdInit: -1 });
      const l = torch.scope(() => q.act(p, z, 0).logStd.mean().item());
      expect(l).toBeCloseTo(-1, 1);
      q.dispose();
    }
  });

  test("deterministic action = mean + memory bias; the bias shifts the mean by exactly the bias", () => {
    torch.manualSeed(3);
    const r = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: 4, hidden: 16 });
    const { p, z } = inputs(2);
    const bias = torch.tensor([0.5, -1, 0.25, 2]);
    const out = torch.scope(() => {
      const plain = r.act(p, z, 0.1, { deterministic: true });
      const biased = r.act(p, z, 0.1, { deterministic: true, memoryBias: bias });
      torch.manualSeed(9);
      const s1 = r.act(p, z, 0.1);
      torch.manualSeed(9);
      const s2 = r.act(p, z, 0.1, { memoryBias: bias });
      return {
        plainMean: plain.mean.tolist() as number[],
        plainAction: plain.action.tolist() as number[],
        biasedMean: biased.mean.tolist() as number[],
        biasedAction: biased.action.tolist() as number[],
        shift: s2.action.sub(s1.action).tolist() as number[],
        lpSame: Math.abs(s2.logProb.item() - s1.logProb.item()),
        detLp: biased.logProb.item(),
        logStd: biased.logStd.tolist() as number[],
        actionGrad: biased.action.requiresGrad,
      };
    });
    expect(out.plainAction).toEqual(out.plainMean);
    expect(out.biasedAction).toEqual(out.biasedMean);
    expectClose(out.biasedMean.map((m, i) => m - out.plainMean[i]), [0.5, -1, 0.25, 2], 1e-6);
    expectClose(out.shift, [0.5, -1, 0.25, 2], 1e-6);
    expect(out.lpSame).toBeLessThan(1e-5);
    // Deterministic log-prob: the density at the mean.
    expect(out.detLp).toBeCloseTo(out.logStd.reduce((a, l) => a - l - HALF_LOG_2PI, 0), 5);
    expect(out.actionGrad).toBe(false);
    r.dispose();
  });

  test("sampling is reproducible from torch's RNG (seed and state)", () => {
    const r = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: 4, hidden: 16 });
    const { p, z } = inputs();
    const draw = () => torch.scope(() => r.act(p, z, 0.5).action.tolist() as number[]);
    torch.manualSeed(5);
    const a = draw();
    torch.manualSeed(5);
    expect(draw()).toEqual(a);
    const state = torch.getRngState();
    const b = draw();
    expect(b).not.toEqual(a);
    torch.setRngState(state);
    expect(draw()).toEqual(b);
    state.dispose();
    r.dispose();
  });

  test("delta = W_up a with a detached: gradient to W_up only, never to the MLP or p", () => {
    const r = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: 4, hidden: 16 });
    const p = torch.randn([P], { requiresGrad: true });
    const z = torch.randn([D], { requiresGrad: true });
    torch.scope(() => {
      const out = r.act(p, z, 0.2);
      // Even a mean with a graph is cut: W_up is trained by the main loss, the MLP by the RL loss.
      const dlt = r.delta(out.mean);
      expect(dlt.shape).toEqual([P]);
      const expected = r.up.weight.matmul(out.mean.detach());
      expect(dlt.allclose(expected, 1e-5, 1e-6)).toBe(true);
      dlt.square().sum().backward();
    });
    expect(r.up.weight.grad).not.toBeNull();
    for (const t of r.policyParameters()) expect(t.grad).toBeNull();
    expect(p.grad).toBeNull();
    expect(z.grad).toBeNull();
    r.zeroGrad();
    // The RL loss reaches the MLP and the state norm, never W_up, p or z.
    torch.scope(() => {
      const out = r.act(p, z, 0.2);
      r.loss(out.logProb, out.entropy, 1).loss.backward();
    });
    expect(r.up.weight.grad).toBeNull();
    expect(r.head.weight.grad).not.toBeNull();
    expect(r.stateNorm.weight!.grad).not.toBeNull();
    expect(p.grad).toBeNull();
    expect(z.grad).toBeNull();
    r.zeroGrad();
    // refine: p' = p + W_up a, the gradient reaches p (identity) and W_up.
    torch.scope(() => {
      const out = r.act(p, z, 0.2);
      r.refine(p, out.action).sum().backward();
    });
    expectClose(torch.scope(() => p.grad!.tolist()), new Array(P).fill(1), 1e-7);
    expect(r.up.weight.grad).not.toBeNull();
    for (const t of r.policyParameters()) expect(t.grad).toBeNull();
    r.dispose();
  });

  test("loss = -(r - b) log pi - c H; the EMA baseline follows the reward: b_n = c (1 - 0.95^n)", () => {
    const r = constantHead([0.1, -0.1], [-0.5, 0.2]);
    const { p, z } = inputs();
    const c = 0.8;
    let b = 0;
    for (let n = 1; n <= 60; n++) {
      const got = torch.scope(() => {
        const out = r.act(p, z, 0);
        const l = r.loss(out.logProb, out.entropy, c);
        return { ...l, loss: l.loss.item(), lp: out.logProb.item(), h: out.entropy.item() };
      });
      expect(got.baseline).toBeCloseTo(b, 12);
      expect(got.advantage).toBeCloseTo(c - b, 12);
      expect(got.loss).toBeCloseTo(-(c - b) * got.lp - 0.01 * got.h, 5);
      b = 0.95 * b + 0.05 * c;
      expect(r.baseline).toBeCloseTo(c * (1 - 0.95 ** n), 12);
    }
    expect(r.updates).toBe(60);
    // A non-finite reward is refused and leaves the baseline alone.
    torch.scope(() => {
      const out = r.act(p, z, 0);
      expect(() => r.loss(out.logProb, out.entropy, Number.NaN)).toThrow(/finite/);
    });
    expect(r.baseline).toBeCloseTo(c * (1 - 0.95 ** 60), 12);
    r.dispose();
  });

  test("batches: [B, P] inputs give per-example actions; the loss averages with per-example advantages", () => {
    const r = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: 4, hidden: 16 });
    torch.manualSeed(11);
    const p = torch.randn([3, P]);
    const z = torch.randn([3, D]);
    const rb = [0.1, 0.5, 0.9];
    const got = torch.scope(() => {
      const batch = r.act(p, z, rb, { deterministic: true });
      const single = [0, 1, 2].map((i) => r.act(p.select(0, i), z.select(0, i), rb[i], { deterministic: true }));
      const viaTensor = r.act(p, z, torch.tensor(rb), { deterministic: true });
      return {
        shape: batch.action.shape,
        lpShape: batch.logProb.shape,
        batchMean: batch.mean.tolist(),
        singleMean: single.map((s) => s.mean.tolist()),
        viaTensor: viaTensor.mean.tolist(),
        lp: batch.logProb.tolist() as number[],
        h: batch.entropy.tolist() as number[],
        loss: r.loss(batch.logProb, batch.entropy, [1, 0, -1]),
        deltaShape: r.delta(batch.action).shape,
      };
    });
    expect(got.shape).toEqual([3, 4]);
    expect(got.lpShape).toEqual([3]);
    expectClose(got.batchMean, got.singleMean, 1e-6);
    expectClose(got.viaTensor, got.batchMean, 1e-7);
    expect(got.loss.advantages).toEqual([1, 0, -1]);
    const want = -(1 * got.lp[0] + 0 * got.lp[1] - 1 * got.lp[2]) / 3 - (0.01 * (got.h[0] + got.h[1] + got.h[2])) / 3;
    expect(got.loss.loss.item()).toBeCloseTo(want, 5);
    // Rewards folded in order: 0 -> 0.05 -> 0.0475 -> -0.004875.
    expect(r.baseline).toBeCloseTo(-0.004875, 12);
    expect(got.deltaShape).toEqual([3, P]);
    expect(() => torch.scope(() => r.act(p, z, [1, 2]))).toThrow(/rBefore/);
    expect(() => torch.scope(() => r.act(torch.randn([P + 1]), z.select(0, 0), 0))).toThrow(/p must be/);
    expect(() => torch.scope(() => r.act(p.select(0, 0), torch.randn([D + 1]), 0))).toThrow(/zPooled/);
    expect(() => torch.scope(() => r.act(p.select(0, 0), z.select(0, 0), 0, { memoryBias: torch.zeros([5]) }))).toThrow(/memoryBias/);
    r.dispose();
  });

  test("checkpoint: stateDict + stateJson restore the same policy, baseline and hyperparameters", () => {
    torch.manualSeed(21);
    const a = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: 4, hidden: 16, lr: 3e-3, entropyCoef: 0.02 });
    const { p, z } = inputs(4);
    torch.scope(() => {
      for (let i = 0; i < 5; i++) {
        const out = a.act(p, z, 0.3);
        a.optimizer.zeroGrad();
        a.loss(out.logProb, out.entropy, 0.1 * i).loss.backward();
        a.optimizer.step();
      }
    });
    const json = JSON.parse(JSON.stringify(a.stateJson()));
    expect(json).toMatchObject({ version: 1, promptDim: P, stateDim: D, actionDim: 4, hidden: 16, lr: 3e-3, entropyCoef: 0.02, updates: 5 });
    torch.manualSeed(99);
    const b = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: 4, hidden: 16 });
    b.loadStateDict(a.stateDict());
    b.loadStateJson(json);
    expect(b.baseline).toBe(a.baseline);
    expect(b.lr).toBe(3e-3);
    expect(b.entropyCoef).toBe(0.02);
    const opt = a.optimizer.stateDict();
    b.optimizer.loadStateDict(opt);
    const same = torch.scope(() => {
      const x = a.act(p, z, 0.3, { deterministic: true }).mean;
      const y = b.act(p, z, 0.3, { deterministic: true }).mean;
      return x.equal(y) && a.delta(x).equal(b.delta(x));
    });
    expect(same).toBe(true);
    const other = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: 8, hidden: 16 });
    expect(() => other.loadStateJson(json)).toThrow(/actionDim 4/);
    for (const m of [a, b, other]) m.dispose();
  });

  test("no leak: act + loss + backward + step inside a scope keeps liveTensors flat", () => {
    const r = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: 4, hidden: 16, lr: 1e-3 });
    const { p, z } = inputs();
    const bias = torch.tensor([0.1, 0.2, 0.3, 0.4]);
    const step = (i: number) =>
      torch.scope(() => {
        const out = r.act(p, z, 0.1, { memoryBias: i % 2 ? bias : null });
        const pNew = r.refine(p, out.action);
        r.optimizer.zeroGrad();
        r.loss(out.logProb, out.entropy, pNew.sum().item() > 0 ? 1 : -1).loss.backward();
        r.optimizer.step();
      });
    step(0);
    const live = torch.liveTensors();
    for (let i = 1; i <= 50; i++) step(i);
    expect(torch.liveTensors()).toBe(live);
    r.dispose();
  });

  test("learns a toy bandit: with reward clip(a . u), the mean moves along u and keeps moving", () => {
    // Random states (the policy must learn a state-independent direction), reward clip(a . u, -1, 1).
    torch.manualSeed(0);
    const k = 4;
    const r = new PromptRefiner({ promptDim: P, stateDim: D, actionDim: k, hidden: 32, lr: 1e-3 });
    const uT = torch.tensor([0.5, -0.5, 0.5, 0.5]);
    const probe = inputs(123);
    const meanAlongU = () => torch.scope(() => r.act(probe.p, probe.z, 0, { deterministic: true }).mean.mul(uT).sum().item());
    const trace: number[] = [meanAlongU()];
    const rewards: number[] = [];
    for (let i = 1; i <= 300; i++) {
      torch.scope(() => {
        const out = r.act(torch.randn([P]), torch.randn([D]), 0);
        const reward = Math.max(-1, Math.min(1, out.action.mul(uT).sum().item()));
        rewards.push(reward);
        r.optimizer.zeroGrad();
        r.loss(out.logProb, out.entropy, reward).loss.backward();
        r.optimizer.step();
      });
      if (i % 100 === 0) trace.push(meanAlongU());
    }
    expect(Math.abs(trace[0])).toBeLessThan(0.05);
    expect(trace[1]).toBeGreaterThan(0.3);
    expect(trace[2]).toBeGreaterThan(trace[1] + 0.3);
    expect(trace[3]).toBeGreaterThan(trace[2]);
    expect(trace[3]).toBeGreaterThan(2);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(rewards.slice(0, 50))).toBeLessThan(0.3);
    expect(mean(rewards.slice(-50))).toBeGreaterThan(0.75);
    // The baseline tracks the (rising) reward.
    expect(r.baseline).toBeGreaterThan(0.7);
    r.dispose();
  });
});
