// Adam/AdamW against values worked out from the update rule, with weight decay and two param groups.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { expectClose } from "../helpers/numeric";

/** The AdamW rule (decoupled weight decay) for one scalar, written out independently. */
function adamwReference(p0: number, grads: number[], lr: number, wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8, decoupled = true): number[] {
  let p = p0;
  let m = 0;
  let v = 0;
  const out: number[] = [];
  grads.forEach((g0, i) => {
    const t = i + 1;
    let g = g0;
    if (decoupled) p *= 1 - lr * wd;
    else g += wd * p;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const mHat = m / (1 - b1 ** t);
    const vHat = v / (1 - b2 ** t);
    p -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    out.push(p);
  });
  return out;
}

/** Sets p.grad to `g` and steps. */
function stepWith(opt: torch.Adam, params: torch.Tensor[], grads: number[][]): void {
  params.forEach((p, i) => {
    p.grad = torch.tensor(grads[i], { dtype: p.dtype });
  });
  opt.step();
}

describe("AdamW", () => {
  test("one and two steps match the rule by hand (first step moves by lr)", () => {
    const p = torch.keep(torch.tensor([1.0, -2.0], { dtype: "float64", requiresGrad: true }));
    const opt = new torch.AdamW([p], { lr: 0.1, weightDecay: 0.01 });
    stepWith(opt, [p], [[0.5, -3]]);
    // Step 1: p*(1 - 0.001), then minus lr * sign(g) (m_hat/sqrt(v_hat) = g/|g|, up to eps).
    expectClose(p.tolist(), [0.999 - 0.1 * (0.5 / (0.5 + 1e-8)), -2 * 0.999 + 0.1 * (3 / (3 + 1e-8))], 1e-12);
    stepWith(opt, [p], [[0.25, 1]]);
    expectClose(p.tolist(), [adamwReference(1, [0.5, 0.25], 0.1, 0.01)[1], adamwReference(-2, [-3, 1], 0.1, 0.01)[1]], 1e-12);
  });

  test("two parameter groups use their own lr and weight decay", () => {
    const a = torch.keep(torch.tensor([1.0], { dtype: "float64", requiresGrad: true }));
    const b = torch.keep(torch.tensor([1.0], { dtype: "float64", requiresGrad: true }));
    const opt = new torch.AdamW([{ params: [a], lr: 0.1, weightDecay: 0.5, name: "agent" }, { params: [b], name: "qwen" }], { lr: 0.01 });
    expect(opt.paramGroups.map((g) => [g.name, g.lr, g.weightDecay])).toEqual([["agent", 0.1, 0.5], ["qwen", 0.01, 0.01]]);
    const gs = [0.3, -0.7, 0.2];
    for (const g of gs) stepWith(opt, [a, b], [[g], [g]]);
    expectClose(a.item(), adamwReference(1, gs, 0.1, 0.5).at(-1), 1e-12);
    expectClose(b.item(), adamwReference(1, gs, 0.01, 0.01).at(-1), 1e-12);
  });

  test("float32 parameters follow the same rule to float32 precision; params without grad are untouched", () => {
    const p = torch.keep(torch.tensor([0.5], { requiresGrad: true }));
    const q = torch.keep(torch.tensor([7], { requiresGrad: true }));
    const opt = new torch.AdamW([p, q], { lr: 1e-3 });
    const gs = [1, 2, -1, 0.5];
    for (const g of gs) {
      p.grad = torch.tensor([g]);
      opt.step();
    }
    expectClose(p.item(), adamwReference(0.5, gs, 1e-3, 0.01).at(-1), 1e-7);
    expect(q.item()).toBe(7);
    expect(opt.state.has(q)).toBe(false);
  });
});

describe("Adam", () => {
  test("L2 weight decay is added to the gradient (not decoupled)", () => {
    const p = torch.keep(torch.tensor([2.0], { dtype: "float64", requiresGrad: true }));
    const opt = new torch.Adam([p], { lr: 0.05, weightDecay: 0.1 });
    const gs = [1, -1, 0.5];
    for (const g of gs) stepWith(opt, [p], [[g]]);
    expectClose(p.item(), adamwReference(2, gs, 0.05, 0.1, 0.9, 0.999, 1e-8, false).at(-1), 1e-12);
  });
});

describe("optimizer state", () => {
  test("stateDict -> loadStateDict continues exactly like the original", () => {
    const mk = () => torch.keep(torch.tensor([1, 2, 3], { dtype: "float64", requiresGrad: true }));
    const p1 = mk();
    const o1 = new torch.AdamW([{ params: [p1], lr: 0.1, name: "g" }]);
    stepWith(o1, [p1], [[1, 1, 1]]);
    stepWith(o1, [p1], [[0.5, -1, 2]]);
    const sd = o1.stateDict();
    expect(Object.keys(sd.tensors).sort()).toEqual(["state.0.exp_avg", "state.0.exp_avg_sq"]);
    expect(sd.meta.steps).toEqual({ "0": 2 });

    const p2 = torch.keep(p1.detach().clone().requiresGrad_(true));
    const o2 = new torch.AdamW([{ params: [p2], lr: 999, name: "g" }]);
    // The JSON part goes through a real serialisation, as in a checkpoint.
    o2.loadStateDict({ meta: JSON.parse(JSON.stringify(sd.meta)), tensors: sd.tensors });
    expect(o2.paramGroups[0].lr).toBe(0.1);
    stepWith(o1, [p1], [[-1, 3, 0.1]]);
    stepWith(o2, [p2], [[-1, 3, 0.1]]);
    expect(p2.tolist()).toEqual(p1.tolist());
  });

  test("mismatched state is refused with a clear message", () => {
    const p = torch.keep(torch.zeros([2], { requiresGrad: true }));
    const opt = new torch.AdamW([p]);
    expect(() => opt.loadStateDict({ tensors: {}, meta: { kind: "AdamW", paramGroups: [], steps: {} } })).toThrow(/0 parameter groups/);
    const bad = { tensors: { "state.0.exp_avg": torch.zeros(3), "state.0.exp_avg_sq": torch.zeros(3) }, meta: { kind: "AdamW", paramGroups: [{ name: "g", lr: 1, betas: [0.9, 0.99] as [number, number], eps: 1e-8, weightDecay: 0, params: [0] }], steps: { "0": 1 } } };
    expect(() => opt.loadStateDict(bad)).toThrow(/shape 3, the parameter has 2/);
    expect(() => new torch.AdamW([p], { lr: -1 })).toThrow(/invalid learning rate/);
    expect(() => new torch.AdamW([{ params: [p] }, { params: [p] }])).toThrow(/more than one group/);
  });
});
