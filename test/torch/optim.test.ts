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

/** LibTorch's version as [major, minor]. */
const libtorch = () => torch.version().libtorch.split(".").slice(0, 2).map(Number) as [number, number];

/** Deterministic values in [-1, 1), exact in float32. */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround(s / 2 ** 31 - 1);
  });
}

describe("AdamW kernels", () => {
  test("the build uses the fused kernel where LibTorch has one (CPU from 2.4, CUDA from 2.1), else _foreach_* on CUDA and the loop on the CPU", () => {
    const [maj, min] = libtorch();
    const at = (a: number, b: number) => maj > a || (maj === a && min >= b);
    expect(torch.adamKernel("cpu")).toBe(at(2, 4) ? "fused" : "loop");
    const gpu = torch.cuda.isAvailable(); // a CUDA build on a machine without a GPU has no cuda device to ask about
    if (gpu) expect(torch.adamKernel("cuda")).toBe(at(2, 1) ? "fused" : "foreach");
    console.log(`AdamW kernel on LibTorch ${torch.version().libtorch}: cpu ${torch.adamKernel("cpu")}${gpu ? `, cuda ${torch.adamKernel("cuda")}` : ""}`);
  });

  // 20 steps, two groups (one with weight decay), float32 and float64 parameters in one group (two kernel
  // calls), a parameter that never has a gradient and one that has it every other step (its own step count).
  const kernels: (torch.AdamKernel | "auto")[] = ["auto", "loop", "foreach", ...(torch.adamKernel("cpu") === "fused" ? ["fused" as const] : [])];
  for (const kernel of kernels) {
    test(`kernel "${kernel}" matches a per-parameter reference over 20 steps`, () => {
      const spec = [
        { shape: [3, 4], dtype: "float32", group: 0, every: 1 },
        { shape: [5], dtype: "float64", group: 0, every: 1 },
        { shape: [2], dtype: "float32", group: 0, every: 0 }, // never a gradient
        { shape: [6], dtype: "float32", group: 0, every: 2 },
        { shape: [7], dtype: "float32", group: 1, every: 1 },
      ] as const;
      const groups = [{ lr: 0.05, wd: 0.1 }, { lr: 0.01, wd: 0 }];
      const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
      const init = spec.map((s, i) => values(size(s.shape), 100 + i));
      const ps = spec.map((s, i) => torch.keep(torch.tensor(init[i], { dtype: s.dtype }).reshape([...s.shape]).requiresGrad_(true)));
      const opt = new torch.AdamW(groups.map((g, gi) => ({ params: ps.filter((_, i) => spec[i].group === gi), lr: g.lr, weightDecay: g.wd })));
      opt.kernel = kernel;
      // The reference: every element on its own, in float64.
      const ref = spec.map((_, i) => ({ p: [...init[i]], m: init[i].map(() => 0), v: init[i].map(() => 0), t: 0 }));
      for (let step = 1; step <= 20; step++) {
        spec.forEach((s, i) => {
          if (s.every === 0 || step % s.every !== 0) {
            ps[i].grad = null;
            return;
          }
          const g = values(size(s.shape), step * 31 + i);
          ps[i].grad = torch.tensor(g, { dtype: s.dtype }).reshape([...s.shape]);
          const r = ref[i];
          const { lr, wd } = groups[s.group];
          r.t += 1;
          for (let k = 0; k < g.length; k++) {
            r.p[k] *= 1 - lr * wd;
            r.m[k] = 0.9 * r.m[k] + 0.1 * g[k];
            r.v[k] = 0.999 * r.v[k] + 0.001 * g[k] * g[k];
            r.p[k] -= (lr * r.m[k] / (1 - 0.9 ** r.t)) / (Math.sqrt(r.v[k] / (1 - 0.999 ** r.t)) + 1e-8);
          }
        });
        opt.step();
      }
      spec.forEach((s, i) => {
        const got = Array.from(ps[i].data() as Float32Array | Float64Array);
        const tol = s.dtype === "float64" ? 1e-12 : 1e-6;
        got.forEach((x, k) => {
          const want = ref[i].p[k];
          if (!(Math.abs(x - want) <= tol * Math.max(1, Math.abs(want)))) throw new Error(`param ${i}[${k}] is ${x}, the reference ${want} (kernel ${kernel})`);
        });
      });
      expect(ps[2].tolist()).toEqual(torch.tensor(init[2]).tolist()); // untouched
      // The state format does not depend on the kernel: per-parameter step counts and moments.
      const sd = opt.stateDict();
      expect(sd.meta.steps).toEqual({ "0": 20, "1": 20, "3": 10, "4": 20 });
      expect(Object.keys(sd.tensors).sort()).toEqual(["0", "1", "3", "4"].flatMap((i) => [`state.${i}.exp_avg`, `state.${i}.exp_avg_sq`]).sort());
      expect(sd.tensors["state.1.exp_avg"].dtype).toBe("float64");
      opt.dispose();
      torch.dispose(ps);
    });
  }

  test("a non-contiguous parameter (a transposed leaf) gets the same update as the loop gives it", () => {
    const make = () => torch.keep(torch.tensor(values(12, 7)).reshape([4, 3]).t().detach().requiresGrad_(true));
    const [a, b] = [make(), make()];
    expect(a.isContiguous()).toBe(false);
    const [oa, ob] = [new torch.AdamW([a], { lr: 0.1 }), new torch.AdamW([b], { lr: 0.1 })];
    ob.kernel = "loop";
    for (let step = 0; step < 3; step++) {
      a.grad = torch.tensor(values(12, 50 + step)).reshape([3, 4]);
      b.grad = torch.tensor(values(12, 50 + step)).reshape([3, 4]);
      oa.step();
      ob.step();
    }
    expectClose(a.tolist(), b.tolist(), 1e-6, 1e-6);
    oa.dispose();
    ob.dispose();
    torch.dispose([a, b]);
  });

  test("a forced kernel the build lacks is refused by name", () => {
    const p = torch.keep(torch.zeros([2], { requiresGrad: true }));
    p.grad = torch.ones([2]);
    const opt = new torch.AdamW([p]);
    opt.kernel = "fused";
    if (torch.adamKernel("cpu") === "fused") opt.step();
    else expect(() => opt.step()).toThrow(/no fused Adam kernel for cpu/);
    (opt as { kernel: string }).kernel = "fast";
    expect(() => opt.step()).toThrow(/kernel must be/);
    torch.dispose([p]);
  });
});
