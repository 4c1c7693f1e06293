// Known values of the ops the pipeline and Qwen2 rest on, on small inputs worked out by hand.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { expectClose } from "../helpers/numeric";

const { F } = torch;

describe("creation and data", () => {
  test("tensor() infers shape, dtype float32 by default, int64 and bool on request", () => {
    const t = torch.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe("float32");
    expect(t.tolist()).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(torch.tensor([1, 2], { dtype: "int64" }).tolist()).toEqual([1, 2]);
    expect(torch.tensor([true, false]).dtype).toBe("bool");
    expect(torch.tensor(3.5).shape).toEqual([]);
    expect(torch.tensor(3.5).item()).toBe(3.5);
  });

  test("every dtype round-trips values through the native side", () => {
    for (const dtype of ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8"] as const) {
      const t = torch.tensor([0, 1, 2, 100], { dtype });
      expect(t.dtype).toBe(dtype);
      expect(t.tolist()).toEqual([0, 1, 2, 100]);
    }
    expect(torch.tensor([1, 0, 1], { dtype: "bool" }).tolist()).toEqual([1, 0, 1]);
    // bfloat16 keeps 8 bits of mantissa: 1.00390625 rounds to 1.
    expect(torch.tensor([1.00390625], { dtype: "bfloat16" }).item()).toBe(1);
  });

  test("arange, linspace, eye, full, zeros/ones with options", () => {
    expect(torch.arange(5).tolist()).toEqual([0, 1, 2, 3, 4]);
    expect(torch.arange(5).dtype).toBe("int64");
    expect(torch.arange(1, 2, 0.25).tolist()).toEqual([1, 1.25, 1.5, 1.75]);
    expect(torch.linspace(0, 1, 5).tolist()).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(torch.eye(2).tolist()).toEqual([[1, 0], [0, 1]]);
    expect(torch.full([2], 7, { dtype: "int32" }).tolist()).toEqual([7, 7]);
    expect(torch.zeros(2, 3).shape).toEqual([2, 3]);
    expect(torch.ones([2], { dtype: "float64" }).dtype).toBe("float64");
  });
});

describe("math", () => {
  test("matmul of 2x2 matrices and batched matmul", () => {
    const a = torch.tensor([[1, 2], [3, 4]]);
    const b = torch.tensor([[5, 6], [7, 8]]);
    expect(a.matmul(b).tolist()).toEqual([[19, 22], [43, 50]]);
    const ab = torch.stack([a, b]).bmm(torch.stack([b, a]));
    expect(ab.tolist()).toEqual([[[19, 22], [43, 50]], [[23, 34], [31, 46]]]);
    expect(F.linear(a, b, torch.tensor([1, -1])).tolist()).toEqual([[18, 22], [40, 52]]);
  });

  test("broadcasting arithmetic with tensors and numbers", () => {
    const x = torch.tensor([[1, 2, 3]]);
    const col = torch.tensor([[10], [20]]);
    expect(x.add(col).tolist()).toEqual([[11, 12, 13], [21, 22, 23]]);
    expect(x.mul(2).sub(1).tolist()).toEqual([[1, 3, 5]]);
    expect(x.rsub(1).tolist()).toEqual([[0, -1, -2]]);
    expect(x.pow(2).div(2).tolist()).toEqual([[0.5, 2, 4.5]]);
    expect(x.add(x, 2).tolist()).toEqual([[3, 6, 9]]);
    // Integer tensors stay integer with integer scalars, as with Python ints.
    expect(torch.tensor([1, 2], { dtype: "int64" }).add(1).dtype).toBe("int64");
    expect(torch.tensor([1, 2], { dtype: "int64" }).mul(0.5).tolist()).toEqual([0.5, 1]);
  });

  test("softmax and logSoftmax of [1, 2, 3]", () => {
    const x = torch.tensor([1, 2, 3]);
    const e = [1, 2, 3].map(Math.exp);
    const z = e.reduce((a, b) => a + b);
    expectClose(x.softmax(0).tolist(), e.map((v) => v / z), 1e-7);
    expectClose(x.logSoftmax(0).tolist(), e.map((v) => Math.log(v / z)), 1e-6);
  });

  test("reductions", () => {
    const x = torch.tensor([[1, 5, 3], [4, 2, 6]]);
    expect(x.sum().item()).toBe(21);
    expect(x.sum(0).tolist()).toEqual([5, 7, 9]);
    expect(x.sum(1, true).tolist()).toEqual([[9], [12]]);
    expect(x.mean(1).tolist()).toEqual([3, 4]);
    expect(x.amax(1).tolist()).toEqual([5, 6]);
    const { values, indices } = x.max(1);
    expect(values.tolist()).toEqual([5, 6]);
    expect(indices.tolist()).toEqual([1, 2]);
    expect(x.argmax(0).tolist()).toEqual([1, 0, 1]);
    expect(x.norm().item()).toBeCloseTo(Math.sqrt(1 + 25 + 9 + 16 + 4 + 36), 5);
    expectClose(x.logsumexp(1).tolist(), [Math.log(Math.exp(1) + Math.exp(5) + Math.exp(3)), Math.log(Math.exp(4) + Math.exp(2) + Math.exp(6))], 1e-5);
    expect(x.var(1).tolist()).toEqual([4, 4]);
  });

  test("activations at known points", () => {
    const x = torch.tensor([-1, 0, 1]);
    expectClose(F.gelu(x).tolist(), [-0.15865525, 0, 0.84134475], 1e-6);
    expectClose(F.silu(x).tolist(), [-0.26894142, 0, 0.73105858], 1e-6);
    expect(F.relu(x).tolist()).toEqual([0, 0, 1]);
    expectClose(x.sigmoid().tolist(), [0.26894142, 0.5, 0.73105858], 1e-6);
  });

  test("comparison, where, maskedFill, clamp", () => {
    const x = torch.tensor([1, -2, 3]);
    expect(x.gt(0).tolist()).toEqual([1, 0, 1]);
    expect(torch.where(x.gt(0), x, 0).tolist()).toEqual([1, 0, 3]);
    expect(torch.where(x.gt(0), x, x.neg()).tolist()).toEqual([1, 2, 3]);
    expect(x.maskedFill(x.lt(0), -100).tolist()).toEqual([1, -100, 3]);
    expect(x.clamp(-1, 2).tolist()).toEqual([1, -1, 2]);
    expect(x.eq(torch.tensor([1, 2, 3])).tolist()).toEqual([1, 0, 1]);
  });
});

describe("shapes and indexing", () => {
  const x = torch.keep(torch.arange(6, undefined, 1, { dtype: "float32" }).view(2, 3));

  test("view, reshape, permute, transpose, unsqueeze, squeeze, flatten, expand", () => {
    expect(x.view([3, 2]).tolist()).toEqual([[0, 1], [2, 3], [4, 5]]);
    expect(x.t().tolist()).toEqual([[0, 3], [1, 4], [2, 5]]);
    expect(x.permute(1, 0).contiguous().view(6).tolist()).toEqual([0, 3, 1, 4, 2, 5]);
    expect(x.unsqueeze(0).shape).toEqual([1, 2, 3]);
    expect(x.unsqueeze(0).squeeze(0).shape).toEqual([2, 3]);
    expect(x.unsqueeze(1).flatten().shape).toEqual([6]);
    expect(torch.tensor([[1], [2]]).expand(2, 3).tolist()).toEqual([[1, 1, 1], [2, 2, 2]]);
  });

  test("cat, stack, split, chunk, narrow, slice, select", () => {
    expect(torch.cat([x, x], 0).shape).toEqual([4, 3]);
    expect(torch.cat([x, x], 1).shape).toEqual([2, 6]);
    expect(torch.stack([x, x], 0).shape).toEqual([2, 2, 3]);
    expect(x.split(2, 1).map((t) => t.shape)).toEqual([[2, 2], [2, 1]]);
    expect(x.chunk(2, 0)[1].tolist()).toEqual([[3, 4, 5]]);
    expect(x.narrow(1, 1, 2).tolist()).toEqual([[1, 2], [4, 5]]);
    expect(x.slice(1, 0, undefined, 2).tolist()).toEqual([[0, 2], [3, 5]]);
    expect(x.slice(1, -1).tolist()).toEqual([[2], [5]]);
    expect(x.select(0, 1).tolist()).toEqual([3, 4, 5]);
  });

  test("indexSelect, gather, scatter, index, indexPut_", () => {
    const idx = torch.tensor([2, 0], { dtype: "int64" });
    expect(x.indexSelect(1, idx).tolist()).toEqual([[2, 0], [5, 3]]);
    const g = torch.tensor([[0, 0], [2, 1]], { dtype: "int64" });
    expect(x.gather(1, g).tolist()).toEqual([[0, 0], [5, 4]]);
    const z = torch.zeros(2, 3).scatter(1, torch.tensor([[1], [2]], { dtype: "int64" }), 1);
    expect(z.tolist()).toEqual([[0, 1, 0], [0, 0, 1]]);
    expect(x.index([torch.tensor([1, 0], { dtype: "int64" })]).tolist()).toEqual([[3, 4, 5], [0, 1, 2]]);
    const y = torch.zeros(3).indexPut_([torch.tensor([0, 0, 2], { dtype: "int64" })], torch.tensor([1, 2, 3]), true);
    expect(y.tolist()).toEqual([3, 0, 3]);
  });

  test("triu, tril, flip, roll, topk, sort", () => {
    const m = torch.ones(3, 3);
    expect(m.triu(1).tolist()).toEqual([[0, 1, 1], [0, 0, 1], [0, 0, 0]]);
    expect(m.tril().tolist()).toEqual([[1, 0, 0], [1, 1, 0], [1, 1, 1]]);
    expect(x.flip(1).tolist()).toEqual([[2, 1, 0], [5, 4, 3]]);
    expect(x.roll(1, 1).tolist()).toEqual([[2, 0, 1], [5, 3, 4]]);
    const v = torch.tensor([3, 1, 4, 1, 5]);
    const top = v.topk(2);
    expect(top.values.tolist()).toEqual([5, 4]);
    expect(top.indices.tolist()).toEqual([4, 2]);
    expect(v.sort(0, true).values.tolist()).toEqual([5, 4, 3, 1, 1]);
  });
});

describe("neural network functions", () => {
  test("conv2d: 2x2 ones kernel over 1..9, with bias, padding and stride", () => {
    const img = torch.arange(1, 10, 1, { dtype: "float32" }).view(1, 1, 3, 3);
    const w = torch.ones(1, 1, 2, 2);
    expect(F.conv2d(img, w).tolist()).toEqual([[[[12, 16], [24, 28]]]]);
    expect(F.conv2d(img, w, torch.tensor([1])).tolist()).toEqual([[[[13, 17], [25, 29]]]]);
    // padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1).
    expect(F.conv2d(img, w, null, { padding: 1, stride: 2 }).tolist()).toEqual([[[[1, 5], [11, 28]]]]);
  });

  test("groupNorm normalises each group of channels", () => {
    // 4 channels, 2 groups; group 0 holds 1,2,3,4 (mean 2.5, var 1.25), group 1 holds 10,10,20,20 (mean 15, var 25).
    const x = torch.tensor([1, 2, 3, 4, 10, 10, 20, 20]).view(1, 4, 1, 2);
    const out = F.groupNorm(x, 2, torch.tensor([1, 1, 2, 2]), torch.tensor([0, 0, 0, 1])).flatten().tolist();
    const s0 = Math.sqrt(1.25 + 1e-5);
    const s1 = Math.sqrt(25 + 1e-5);
    expectClose(out, [-1.5 / s0, -0.5 / s0, 0.5 / s0, 1.5 / s0, (2 * -5) / s1, (2 * -5) / s1, 1 + (2 * 5) / s1, 1 + (2 * 5) / s1], 1e-5);
  });

  test("layerNorm over the last dimension", () => {
    const out = F.layerNorm(torch.tensor([[1, 3]]), [2]).tolist();
    expectClose(out, [[-1 / Math.sqrt(1 + 1e-5), 1 / Math.sqrt(1 + 1e-5)]], 1e-6);
  });

  test("interpolate nearest: upsample duplicates, downsample picks floor(dst * in/out)", () => {
    const x = torch.tensor([[0, 1], [2, 3]]).view(1, 1, 2, 2);
    expect(F.interpolate(x, { size: [4, 4] }).view(4, 4).tolist()).toEqual([
      [0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3],
    ]);
    const y = torch.arange(9, undefined, 1, { dtype: "float32" }).view(1, 1, 3, 3);
    // 3 -> 2: scale 1.5, sources floor(0) = 0 and floor(1.5) = 1.
    expect(F.interpolate(y, { size: [2, 2] }).view(2, 2).tolist()).toEqual([[0, 1], [3, 4]]);
    expect(F.interpolate(x, { size: [1, 3] }).view(3).tolist()).toEqual([0, 0, 1]);
  });

  test("interpolate bilinear (align_corners false): half-pixel centres, clamped at the borders", () => {
    // value = 2*row + col; along each axis 2 -> 4 samples sit at -0.25, 0.25, 0.75, 1.25 -> weights 0, .25, .75, 1.
    const x = torch.tensor([[0, 1], [2, 3]]).view(1, 1, 2, 2);
    const a = [0, 0.25, 0.75, 1];
    const expected = a.map((r) => a.map((c) => 2 * r + c));
    expectClose(F.interpolate(x, { size: [4, 4], mode: "bilinear" }).view(4, 4).tolist(), expected, 1e-6);
    // A constant image stays constant at any size.
    const c = F.interpolate(torch.full([1, 10, 3, 5], 0.7), { size: [7, 2], mode: "bilinear" });
    expectClose(c.amax().item(), 0.7, 1e-6);
    expectClose(c.amin().item(), 0.7, 1e-6);
  });

  test("crossEntropy, label smoothing, ignore index; nllLoss; klDiv; mseLoss", () => {
    const logits = torch.tensor([[0, 0], [0, Math.log(3)]]);
    const target = torch.tensor([0, 1], { dtype: "int64" });
    // Row 0: -log(1/2); row 1: -log(3/4).
    expectClose(F.crossEntropy(logits, target).item(), (Math.log(2) + Math.log(4 / 3)) / 2, 1e-6);
    expectClose(F.crossEntropy(logits, target, { reduction: "none" }).tolist(), [Math.log(2), Math.log(4 / 3)], 1e-6);
    expectClose(F.crossEntropy(logits, torch.tensor([0, -100], { dtype: "int64" })).item(), Math.log(2), 1e-6);
    // Smoothing 0.2 over 2 classes: target distribution (0.9, 0.1) on row 0 -> still log 2.
    expectClose(F.crossEntropy(logits.narrow(0, 0, 1), target.narrow(0, 0, 1), { labelSmoothing: 0.2 }).item(), Math.log(2), 1e-6);
    expectClose(F.nllLoss(logits.logSoftmax(1), target).item(), (Math.log(2) + Math.log(4 / 3)) / 2, 1e-6);
    const p = torch.tensor([[0.5, 0.5]]);
    const q = torch.tensor([[0.25, 0.75]]);
    // kl_div(log q, p) = sum p log(p/q)
    expectClose(F.klDiv(q.log(), p, { reduction: "sum" }).item(), 0.5 * Math.log(2) + 0.5 * Math.log(0.5 / 0.75), 1e-6);
    expectClose(F.mseLoss(torch.tensor([1, 2]), torch.tensor([2, 4])).item(), 2.5, 1e-7);
  });

  test("embedding, oneHot, pad, dropout in eval, normalize", () => {
    const w = torch.tensor([[0, 0], [1, 2], [3, 4]]);
    expect(F.embedding(torch.tensor([2, 1], { dtype: "int64" }), w).tolist()).toEqual([[3, 4], [1, 2]]);
    expect(F.oneHot(torch.tensor([0, 2], { dtype: "int64" }), 3).tolist()).toEqual([[1, 0, 0], [0, 0, 1]]);
    expect(F.pad(torch.tensor([[1]]), [1, 0, 0, 1]).tolist()).toEqual([[0, 1], [0, 0]]);
    expect(F.dropout(torch.ones(4), 0.5, false).tolist()).toEqual([1, 1, 1, 1]);
    expectClose(F.normalize(torch.tensor([[3, 4]])).tolist(), [[0.6, 0.8]], 1e-7);
  });

  test("scaledDotProductAttention equals softmax(QK^T/sqrt(d) + mask) V, causal and with a padding mask", () => {
    torch.manualSeed(1);
    const q = torch.randn(1, 2, 3, 4, { dtype: "float64" });
    const k = torch.randn(1, 2, 3, 4, { dtype: "float64" });
    const v = torch.randn(1, 2, 3, 4, { dtype: "float64" });
    const scores = q.matmul(k.transpose(-2, -1)).div(2);
    const causal = torch.ones(3, 3, { dtype: "bool" }).tril();
    const manual = scores.maskedFill(causal.logicalNot(), Number.NEGATIVE_INFINITY).softmax(-1).matmul(v);
    expectClose(F.scaledDotProductAttention(q, k, v, { isCausal: true }).flatten().tolist(), manual.flatten().tolist(), 1e-10);
    expectClose(F.scaledDotProductAttention(q, k, v, { attnMask: causal }).flatten().tolist(), manual.flatten().tolist(), 1e-10);
    const plain = scores.softmax(-1).matmul(v);
    expectClose(F.scaledDotProductAttention(q, k, v).flatten().tolist(), plain.flatten().tolist(), 1e-10);
  });
});

describe("sampling and RNG", () => {
  test("manualSeed makes randn reproducible; RNG state get/set replays a stream", () => {
    torch.manualSeed(42);
    const a = torch.randn(5).tolist();
    torch.manualSeed(42);
    expect(torch.randn(5).tolist()).toEqual(a);
    const state = torch.getRngState();
    const b = torch.rand(4).tolist();
    torch.setRngState(state);
    expect(torch.rand(4).tolist()).toEqual(b);
  });

  test("normal sampling has the asked mean and std", () => {
    torch.manualSeed(3);
    const x = torch.normal(2, 0.5, [200000]);
    expect(Math.abs(x.mean().item() - 2)).toBeLessThan(0.01);
    expect(Math.abs(x.std().item() - 0.5)).toBeLessThan(0.01);
  });

  test("multinomial follows the probabilities", () => {
    torch.manualSeed(4);
    expect(torch.multinomial(torch.tensor([0, 1, 0]), 5, true).tolist()).toEqual([1, 1, 1, 1, 1]);
    const draws = torch.multinomial(torch.tensor([0.25, 0.75]), 20000, true).float().mean().item();
    expect(Math.abs(draws - 0.75)).toBeLessThan(0.02);
  });
});

describe("autocast", () => {
  test("CPU bfloat16 autocast runs linear in bfloat16, restores afterwards, nests", () => {
    const x = torch.randn(2, 3);
    const w = torch.randn(4, 3);
    expect(F.linear(x, w).dtype).toBe("float32");
    const inside = torch.autocast({ device: "cpu" }, () => {
      const outer = F.linear(x, w).dtype;
      const nested = torch.autocast({ device: "cpu", enabled: false }, () => F.linear(x, w).dtype);
      return [outer, nested, F.linear(x, w).dtype];
    });
    expect(inside).toEqual(["bfloat16", "float32", "bfloat16"]);
    expect(torch.isAutocastEnabled("cpu")).toBe(false);
    expect(F.linear(x, w).dtype).toBe("float32");
  });

  test("autocast state is restored when the body throws", () => {
    expect(() => torch.autocast({ device: "cpu" }, () => { throw new Error("boom"); })).toThrow("boom");
    expect(torch.isAutocastEnabled("cpu")).toBe(false);
  });
});
