// The EFE loss against values computed by hand (plain arithmetic, written out independently), its
// gradient against finite differences, the mask, the warm-up schedule, and non-finite detection.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { DEFAULT_EFE, efeLoss, sizeWeight } from "../../src/pipeline/objective/efe";
import { expectClose } from "../helpers/numeric";

const K = 10;
const softmax = (xs: number[]) => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b);
  return e.map((v) => v / z);
};
const logSumExp = (xs: number[]) => Math.log(xs.reduce((a, x) => a + Math.exp(x), 0));

/** The loss for one example, cell by cell, from the formulas (docs/pipeline.md, "EFE loss"). logits[t][cell][k], target[cell]. */
function reference(logits: number[][][], target: number[], hLogits: number[], wLogits: number[], h: number, w: number, lambda: number, sgLogits = logits) {
  const T = logits.length;
  const eps = 0.1;
  const q = logits.map((step) => step.map(softmax));
  // The complexity term's previous-step posterior is a stop-gradient: finite differences hold it fixed.
  const qPrev = sgLogits.map((step) => step.map(softmax));
  const C = target.map((y) => Array.from({ length: K }, (_, k) => (k === y ? 1 - eps : 0) + eps / K));
  const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));
  const wrong: number[] = target.map((y, c) => (argmax(q[T - 1][c]) !== y ? 1 : 0));
  const wc = wrong.map((x) => 1 + x);
  const W = wc.reduce((a, b) => a + b);
  const kl = (p: number[], r: number[]) => p.reduce((s, pk, k) => s + pk * (Math.log(pk) - Math.log(r[k])), 0);
  const H = (p: number[]) => -p.reduce((s, pk) => s + pk * Math.log(pk), 0);
  const avg = (f: (c: number) => number) => target.reduce((s, _, c) => s + wc[c] * f(c), 0) / W;
  const risk = q.map((qt) => avg((c) => kl(C[c], qt[c])));
  const amb = q.map((qt) => avg((c) => H(qt[c])));
  const comp = q.map((qt, t) => (t === 0 ? 0 : avg((c) => kl(qt[c], qPrev[t - 1][c]))));
  const G = risk.map((r, t) => r + 0.1 * amb[t] + 0.05 * comp[t]);
  const tsum = (T * (T + 1)) / 2;
  const ce = (xs: number[], y: number) => logSumExp(xs) - xs[y];
  const sizeCe = ce(hLogits, h - 1) + ce(wLogits, w - 1);
  const efe = G.reduce((s, g, t) => s + ((t + 1) / tsum) * g, 0) + lambda * sizeCe;
  const soft = target.reduce((s, y, c) => s + q[T - 1][c][y], 0) / target.length;
  return { risk, amb, comp, G, sizeCe, efe, soft, total: 0.7 * efe - 0.3 * soft, maskRatio: wrong.reduce((a, b) => a + b) / wrong.length };
}

function example() {
  // T = 2 steps on a 2x2 grid; cell 3 is predicted wrong at the last step.
  const target = [1, 2, 0, 3];
  const logits = [
    [[0, 2, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]],
    [[0, 3, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 2, 1, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0, -1], [0, 0, 0, 0.5, 2, 0, 0, 0, 0, 0]],
  ];
  const hLogits = Array.from({ length: 30 }, (_, i) => (i === 1 ? 2 : i === 2 ? 1 : 0));
  const wLogits = Array.from({ length: 30 }, (_, i) => (i === 0 ? 1 : 0));
  return { target, logits, hLogits, wLogits };
}

function inputs(dtype: torch.DType = "float64") {
  const ex = example();
  return {
    ex,
    logits: torch.tensor(ex.logits, { dtype }).view(2, 2, 2, K),
    target: torch.tensor(ex.target, { dtype: "int64" }).view(2, 2),
    heightLogits: torch.tensor(ex.hLogits, { dtype }),
    widthLogits: torch.tensor(ex.wLogits, { dtype }),
  };
}

describe("EFE loss", () => {
  test("every component equals the hand computation on a 2x2 grid with 2 steps", () => {
    const { ex, ...inp } = inputs();
    const got = efeLoss({ ...inp, sizeWeight: 0.8 });
    const ref = reference(ex.logits, ex.target, ex.hLogits, ex.wLogits, 2, 2, 0.8);
    expectClose(got.risk, ref.risk, 1e-12, 1e-10);
    expectClose(got.ambiguity, ref.amb, 1e-12, 1e-10);
    expectClose(got.complexity, ref.comp, 1e-12, 1e-10);
    expect(got.complexity[0]).toBe(0);
    expectClose(got.G, ref.G, 1e-12, 1e-10);
    expectClose(got.sizeCe, ref.sizeCe, 1e-12, 1e-10);
    expectClose(got.efe, ref.efe, 1e-12, 1e-10);
    expectClose(got.softReward, ref.soft, 1e-12, 1e-10);
    expectClose(got.total.item(), ref.total, 1e-12, 1e-10);
    expect(got.maskRatio).toBe(0.25);
    expect(ref.maskRatio).toBe(0.25);
    expect(got.finite).toBe(true);
  });

  test("float32 logits give the same values to float32 precision", () => {
    const { ex, ...inp } = inputs("float32");
    const got = efeLoss({ ...inp, sizeWeight: 1 });
    const ref = reference(ex.logits, ex.target, ex.hLogits, ex.wLogits, 2, 2, 1);
    expectClose(got.total.item(), ref.total, 1e-5, 1e-5);
  });

  test("the gradient of the total loss matches finite differences", () => {
    const { ex, ...inp } = inputs();
    const logits = inp.logits.clone().requiresGrad_(true);
    const hl = inp.heightLogits.clone().requiresGrad_(true);
    efeLoss({ ...inp, logits, heightLogits: hl, sizeWeight: 0.7 }).total.backward();
    const grad = logits.grad!.flatten().tolist() as number[];
    const flat = ex.logits.flat(2);
    const f = (vals: number[]) => {
      const l: number[][][] = [0, 1].map((t) => [0, 1, 2, 3].map((c) => vals.slice((t * 4 + c) * K, (t * 4 + c + 1) * K)));
      return reference(l, ex.target, ex.hLogits, ex.wLogits, 2, 2, 0.7, ex.logits).total;
    };
    const h = 1e-6;
    for (let i = 0; i < flat.length; i++) {
      const up = flat.slice();
      const down = flat.slice();
      up[i] += h;
      down[i] -= h;
      const fd = (f(up) - f(down)) / (2 * h);
      expect(Math.abs(grad[i] - fd)).toBeLessThan(1e-7);
    }
    // The size term's gradient: 0.7 * 0.7 * (softmax - onehot) on the height logits.
    const sm = softmax(ex.hLogits);
    expectClose(hl.grad!.tolist(), sm.map((p, i) => 0.49 * (p - (i === 1 ? 1 : 0))), 1e-12, 1e-9);
  });

  test("hard cells weigh double: moving error onto a cell raises its weight and the mask ratio", () => {
    const target = torch.tensor([[0, 0]], { dtype: "int64" });
    const z = torch.zeros(30);
    const right = torch.tensor([[[5, 0, 0, 0, 0, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0, 0, 0, 0, 0]]]).view(1, 1, 2, K);
    const half = torch.tensor([[[5, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 5, 0, 0, 0, 0, 0, 0, 0, 0]]]).view(1, 1, 2, K);
    expect(efeLoss({ logits: right, target, heightLogits: z, widthLogits: z, sizeWeight: 0 }).maskRatio).toBe(0);
    const r = efeLoss({ logits: half, target, heightLogits: z, widthLogits: z, sizeWeight: 0 });
    expect(r.maskRatio).toBe(0.5);
    // Per-cell risks: a (right) and b (wrong); weights 1 and 2 -> (a + 2b) / 3.
    const q0 = softmax([5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const q1 = softmax([0, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
    const C = Array.from({ length: K }, (_, k) => (k === 0 ? 0.91 : 0.01));
    const kl = (p: number[], s: number[]) => p.reduce((acc, pk, k) => acc + pk * Math.log(pk / s[k]), 0);
    expectClose(r.risk[0], (kl(C, q0) + 2 * kl(C, q1)) / 3, 1e-6, 1e-5);
  });

  test("NaN or inf in the logits is reported (finite = false), not hidden", () => {
    const { ex, ...inp } = inputs();
    const bad = inp.logits.clone();
    bad.view(-1).select(0, 7).fill_(Number.NaN);
    expect(efeLoss({ ...inp, logits: bad, sizeWeight: 1 }).finite).toBe(false);
    const inf = inp.logits.clone();
    inf.view(-1).select(0, 3).fill_(Number.NEGATIVE_INFINITY);
    const r = efeLoss({ ...inp, logits: inf, sizeWeight: 1 });
    expect(r.finite).toBe(false);
    expect(efeLoss({ ...inp, sizeWeight: 1 }).finite).toBe(true);
  });

  test("λ_size warm-up: 1.0 at step 0, 0.75 at 15%, 0.5 at 30% and after", () => {
    expect(sizeWeight(0, 1000)).toBe(1);
    expect(sizeWeight(150, 1000)).toBeCloseTo(0.75, 12);
    expect(sizeWeight(300, 1000)).toBe(0.5);
    expect(sizeWeight(999, 1000)).toBe(0.5);
    expect(sizeWeight(0, 0)).toBe(1);
  });

  test("defaults are the design's", () => {
    expect(DEFAULT_EFE).toEqual({ labelSmoothing: 0.1, ambiguityWeight: 0.1, complexityWeight: 0.05, maskWeight: 1, efeWeight: 0.7, rewardWeight: 0.3 });
  });
});
