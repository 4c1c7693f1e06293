// GradScaler with PyTorch's documented semantics (CPU path), and clipGradNorm.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { expectClose } from "../helpers/numeric";

/** A one-parameter "optimizer" that records whether step() ran. */
class Recorder {
  steps = 0;
  constructor(readonly p: torch.Tensor) {}
  params() {
    return [this.p];
  }
  step() {
    this.steps++;
  }
}

function withGrad(values: number[]): torch.Tensor {
  const p = torch.keep(torch.zeros([values.length], { requiresGrad: true }));
  p.grad = torch.tensor(values);
  return p;
}

/** LibTorch's version as [major, minor]. */
const libtorch = () => torch.version().libtorch.split(".").slice(0, 2).map(Number) as [number, number];

describe("GradScaler", () => {
  test("LibTorch's _amp_* kernels on the CPU from 2.3 (by hand before): inf/NaN found across dtypes, backoff, growth", () => {
    const [maj, min] = libtorch();
    expect(torch.native.hasCpuAmpKernels()).toBe(maj > 2 || (maj === 2 && min >= 3));
    // One float32 and one bfloat16 gradient: the kernel takes one dtype per call.
    const a = withGrad([2, 4]);
    const b = torch.keep(torch.zeros([2], { dtype: "bfloat16", requiresGrad: true }));
    b.grad = torch.tensor([8, 16]).to({ dtype: "bfloat16" });
    const s = new torch.GradScaler({ device: "cpu", initScale: 4, growthInterval: 1 });
    const opt = new Recorder(a);
    const both = { params: () => [a, b], step: () => opt.step() };
    s.unscale_(both);
    expect(a.grad!.tolist()).toEqual([0.5, 1]);
    expect(b.grad!.float().tolist()).toEqual([2, 4]);
    s.step(both);
    s.update();
    expect(opt.steps).toBe(1);
    expect(s.getScale()).toBe(8); // grew after one clean step
    b.grad = torch.tensor([Number.NaN, 1]).to({ dtype: "bfloat16" });
    s.step(both);
    s.update();
    expect(opt.steps).toBe(1); // skipped
    expect(s.getScale()).toBe(4); // backed off
    torch.dispose([a, b]);
  });

  test("defaults are PyTorch's: scale 2^16, growth 2, backoff 0.5, interval 2000", () => {
    const s = new torch.GradScaler({ device: "cpu" });
    expect(s.stateDict()).toEqual({ scale: 65536, growth_factor: 2, backoff_factor: 0.5, growth_interval: 2000, _growth_tracker: 0 });
  });

  test("scale multiplies the loss; unscale_ divides the gradients back", () => {
    const s = new torch.GradScaler({ device: "cpu", initScale: 1024 });
    expect(s.scale(torch.tensor([1.5])).item()).toBe(1536);
    const opt = new Recorder(withGrad([2048, -512]));
    s.unscale_(opt);
    expect(opt.p.grad!.tolist()).toEqual([2, -0.5]);
    expect(() => s.unscale_(opt)).toThrow(/already been called/);
    expect(s.step(opt)).toBe(true);
    expect(opt.steps).toBe(1);
    s.update();
    expect(s.getScale()).toBe(1024);
    expect(s.getGrowthTracker()).toBe(1);
  });

  test("a step with inf or NaN gradients is skipped and the scale backs off, tracker reset", () => {
    for (const bad of [Number.POSITIVE_INFINITY, Number.NaN]) {
      const s = new torch.GradScaler({ device: "cpu", initScale: 8 });
      const ok = new Recorder(withGrad([1]));
      s.step(ok);
      s.update();
      expect(s.getGrowthTracker()).toBe(1);
      const opt = new Recorder(withGrad([1, bad]));
      expect(s.step(opt)).toBe(false);
      expect(opt.steps).toBe(0);
      s.update();
      expect(s.getScale()).toBe(4);
      expect(s.getGrowthTracker()).toBe(0);
    }
  });

  test("the scale grows by growthFactor after growthInterval clean steps", () => {
    const s = new torch.GradScaler({ device: "cpu", initScale: 4, growthInterval: 3 });
    const scales: number[] = [];
    for (let i = 0; i < 7; i++) {
      const opt = new Recorder(withGrad([1]));
      s.step(opt);
      s.update();
      scales.push(s.getScale());
    }
    expect(scales).toEqual([4, 4, 8, 8, 8, 16, 16]);
  });

  test("update(newScale) sets the scale; update without inf checks is an error", () => {
    const s = new torch.GradScaler({ device: "cpu" });
    s.update(123);
    expect(s.getScale()).toBe(123);
    expect(() => s.update()).toThrow(/No inf checks/);
  });

  test("state round trip continues the same schedule", () => {
    const a = new torch.GradScaler({ device: "cpu", initScale: 16, growthInterval: 4 });
    for (let i = 0; i < 3; i++) {
      a.step(new Recorder(withGrad([1])));
      a.update();
    }
    const b = new torch.GradScaler({ device: "cpu" });
    b.loadStateDict(JSON.parse(JSON.stringify(a.stateDict())));
    expect(b.stateDict()).toEqual(a.stateDict());
    b.step(new Recorder(withGrad([1])));
    b.update();
    expect(b.getScale()).toBe(32);
    expect(() => b.loadStateDict({ scale: 1 } as never)).toThrow(/missing "growth_factor"/);
  });

  test("float16 gradients cannot be unscaled; a disabled scaler is a pass-through", () => {
    const p = torch.keep(torch.zeros([1], { dtype: "float16", requiresGrad: true }));
    p.grad = torch.ones([1], { dtype: "float16" });
    expect(() => new torch.GradScaler({ device: "cpu" }).unscale_(new Recorder(p))).toThrow(/FP16 gradients/);
    const off = new torch.GradScaler({ device: "cpu", enabled: false });
    const x = torch.tensor([3]);
    expect(off.scale(x)).toBe(x);
    const opt = new Recorder(withGrad([Number.NaN]));
    expect(off.step(opt)).toBe(true);
    expect(off.getScale()).toBe(1);
  });
});

describe("clipGradNorm", () => {
  test("returns the total norm over all parameters and scales to maxNorm", () => {
    const a = withGrad([3, 0]);
    const b = withGrad([0, 4]);
    const norm = torch.clipGradNorm([a, b], 1.0);
    expect(norm).toBeCloseTo(5, 6);
    const coef = 1 / (5 + 1e-6);
    expectClose(a.grad!.tolist(), [3 * coef, 0], 1e-7);
    expectClose(b.grad!.tolist(), [0, 4 * coef], 1e-7);
  });

  test("leaves gradients alone below maxNorm, skips parameters without grad, gradNorm only measures", () => {
    const a = withGrad([3, 4]);
    const none = torch.keep(torch.zeros([2], { requiresGrad: true }));
    expect(torch.clipGradNorm([a, none], 10)).toBeCloseTo(5, 6);
    expect(a.grad!.tolist()).toEqual([3, 4]);
    expect(torch.gradNorm([a])).toBeCloseTo(5, 6);
    const nan = withGrad([Number.NaN, 1]);
    expect(Number.isNaN(torch.gradNorm([nan]))).toBe(true);
    expect(nan.grad!.tolist()[1]).toBe(1);
    expect(torch.clipGradNorm([a], 1, Number.POSITIVE_INFINITY)).toBe(4);
  });
});
