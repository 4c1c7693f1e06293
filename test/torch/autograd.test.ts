// Autograd: analytic gradients against central finite differences, and the grad-mode switches.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";

const { F } = torch;

// A composite of the ops the pipeline differentiates through: matmul, GELU, softmax, log, broadcasting,
// a reduction, conv2d and group norm.
function f(x: torch.Tensor, w: torch.Tensor, k: torch.Tensor): torch.Tensor {
  const h = F.gelu(x.matmul(w));
  const p = h.softmax(-1);
  const img = h.view(1, 1, 3, 4);
  const c = F.groupNorm(F.conv2d(img, k, null, { padding: 1 }), 1);
  return p.log().mul(p).sum().neg().add(c.tanh().mean().mul(3)).add(x.pow(2).mean());
}

function finiteDiff(fn: () => number, t: torch.Tensor, eps = 1e-6): number[] {
  const n = t.numel();
  const flat = t.view(n);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const orig = flat.select(0, i).item();
    torch.noGrad(() => flat.select(0, i).fill_(orig + eps));
    const up = fn();
    torch.noGrad(() => flat.select(0, i).fill_(orig - eps));
    const down = fn();
    torch.noGrad(() => flat.select(0, i).fill_(orig));
    out.push((up - down) / (2 * eps));
  }
  return out;
}

describe("autograd", () => {
  test("gradients of a composite function agree with finite differences (float64)", () => {
    torch.manualSeed(7);
    const x = torch.randn([3, 5], { dtype: "float64", requiresGrad: true });
    const w = torch.randn([5, 4], { dtype: "float64", requiresGrad: true });
    const k = torch.randn([1, 1, 3, 3], { dtype: "float64", requiresGrad: true });
    f(x, w, k).backward();
    const value = () => torch.scope(() => torch.noGrad(() => f(x, w, k).item()));
    for (const t of [x, w, k]) {
      const analytic = (t.grad as torch.Tensor).flatten().tolist() as number[];
      const numeric = finiteDiff(value, t);
      for (let i = 0; i < analytic.length; i++) {
        expect(Math.abs(analytic[i] - numeric[i])).toBeLessThan(1e-6 + 1e-5 * Math.abs(numeric[i]));
      }
    }
  });

  test("gradients accumulate across backward calls until cleared", () => {
    const x = torch.tensor([1, 2, 3], { requiresGrad: true });
    x.mul(2).sum().backward();
    x.mul(3).sum().backward();
    expect(x.grad!.tolist()).toEqual([5, 5, 5]);
    x.grad = null;
    expect(x.grad).toBeNull();
  });

  test("torch.grad returns gradients without touching .grad; unused inputs give null", () => {
    const a = torch.tensor([2], { requiresGrad: true });
    const b = torch.tensor([5], { requiresGrad: true });
    const [ga, gb] = torch.grad(a.pow(3).sum(), [a, b]);
    expect(ga!.tolist()).toEqual([12]);
    expect(gb).toBeNull();
    expect(a.grad).toBeNull();
  });

  test("noGrad records nothing; enableGrad inside noGrad records again; modes restore", () => {
    const x = torch.ones([2], { requiresGrad: true });
    const y = torch.noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    const z = torch.noGrad(() => torch.enableGrad(() => x.mul(2)));
    expect(z.requiresGrad).toBe(true);
    expect(torch.isGradEnabled()).toBe(true);
    expect(() => torch.noGrad(() => { throw new Error("inside"); })).toThrow("inside");
    expect(torch.isGradEnabled()).toBe(true);
  });

  test("detach cuts the graph; leaves, gradFn names, retainGrad on an intermediate", () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const h = x.mul(x).retainGrad();
    expect(x.isLeaf).toBe(true);
    expect(h.isLeaf).toBe(false);
    expect(h.gradFn).toContain("Mul");
    h.add(h.detach()).sum().backward();
    expect(h.grad!.tolist()).toEqual([1, 1]);
    expect(x.grad!.tolist()).toEqual([2, 4]);
  });

  test("a second backward through a freed graph is an error, not a crash; retainGraph allows it", () => {
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const y = x.exp().sum();
    y.backward(null, { retainGraph: true });
    y.backward();
    expect(() => y.backward()).toThrow(torch.TorchError);
    expect(x.grad!.tolist().map((v: number) => +v.toFixed(4))).toEqual([2 * Math.E, 2 * Math.exp(2)].map((v) => +v.toFixed(4)));
  });

  test("setData replaces the values of a parameter and keeps it a leaf that trains", () => {
    const p = torch.keep(torch.zeros([2], { requiresGrad: true }));
    p.setData(torch.tensor([3, 4], { dtype: "float64" }));
    expect(p.dtype).toBe("float64");
    expect(p.isLeaf).toBe(true);
    p.mul(p).sum().backward();
    expect(p.grad!.tolist()).toEqual([6, 8]);
  });
});
