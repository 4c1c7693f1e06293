// nn.Module and layers: names, state dicts with strict checks, modes, moves, default initialisations.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import * as nn from "../../src/nn";
import { expectClose } from "../helpers/numeric";

class Block extends nn.Module {
  readonly proj = this.registerModule("proj", new nn.Linear(4, 4));
  readonly norm = this.registerModule("norm", new nn.RMSNorm(4));
  forward(x: torch.Tensor) {
    return this.norm.forward(this.proj.forward(x));
  }
}
class Net extends nn.Module {
  readonly embed = this.registerModule("embed", new nn.Embedding(10, 4));
  readonly layers = this.registerModule("layers", new nn.ModuleList([new Block(), new Block()]));
  readonly scale = this.registerParameter("scale", torch.ones(1));
  readonly counts = this.registerBuffer("counts", torch.zeros(3));
  readonly cache = this.registerBuffer("cache", torch.zeros(2), false);
}

describe("Module", () => {
  test("dotted parameter names follow the registration tree", () => {
    const net = new Net();
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      "scale", "embed.weight",
      "layers.0.proj.weight", "layers.0.proj.bias", "layers.0.norm.weight",
      "layers.1.proj.weight", "layers.1.proj.bias", "layers.1.norm.weight",
    ]);
    expect(Object.keys(net.stateDict())).toContain("counts");
    expect(Object.keys(net.stateDict())).not.toContain("cache");
    expect(net.numParameters()).toBe(1 + 40 + 2 * (16 + 4 + 4));
    expect(net.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(() => net.registerParameter("scale", torch.ones(1))).toThrow(/already registered/);
    expect(() => net.registerModule("a.b", new nn.Identity())).toThrow(/contain no "."/);
  });

  test("loadStateDict copies values; strict lists missing and unexpected keys; shapes always checked", () => {
    torch.manualSeed(1);
    const a = new Net();
    const b = new Net();
    b.loadStateDict(a.stateDict());
    for (const [k, t] of Object.entries(a.stateDict())) expect(b.stateDict()[k].equal(t)).toBe(true);

    const sd = { ...a.stateDict() };
    delete sd["layers.1.norm.weight"];
    sd["layers.9.extra"] = torch.ones(1);
    expect(() => b.loadStateDict(sd)).toThrow(/missing key\(s\): layers\.1\.norm\.weight; unexpected key\(s\): layers\.9\.extra/);
    expect(b.loadStateDict(sd, { strict: false })).toEqual({ missingKeys: ["layers.1.norm.weight"], unexpectedKeys: ["layers.9.extra"] });

    const wrong = { ...a.stateDict(), scale: torch.ones(2) };
    expect(() => b.loadStateDict(wrong, { strict: false })).toThrow(/size mismatch for 1 key\(s\): scale: checkpoint \[2\] vs model \[1\]/);
  });

  test("train/eval reach every submodule; Dropout only drops in training", () => {
    const seq = new nn.Sequential(new nn.Dropout(0.5), new nn.Identity());
    seq.eval();
    expect(seq.modules().every((m) => !m.training)).toBe(true);
    const x = torch.ones(1000);
    expect(seq.forward(x).equal(x)).toBe(true);
    seq.train();
    torch.manualSeed(0);
    const y = seq.forward(x);
    const zeros = y.eq(0).sum().item();
    expect(zeros).toBeGreaterThan(400);
    expect(zeros).toBeLessThan(600);
    expect(y.amax().item()).toBe(2);
  });

  test("to(dtype) converts floating parameters in place (same Tensor objects), not integer buffers", () => {
    const net = new Net();
    const intBuf = net.registerBuffer("steps", torch.zeros([1], { dtype: "int64" }));
    const before = net.parameters();
    net.to("float64");
    expect(net.parameters()).toEqual(before);
    expect(net.parameters().every((p) => p.dtype === "float64")).toBe(true);
    expect(intBuf.dtype).toBe("int64");
    expect(net.parameters().every((p) => p.requiresGrad && p.isLeaf)).toBe(true);
  });

  test("requiresGrad_(false) freezes; zeroGrad clears", () => {
    const lin = new nn.Linear(2, 1);
    lin.forward(torch.ones(1, 2)).sum().backward();
    expect(lin.weight.grad).not.toBeNull();
    lin.zeroGrad();
    expect(lin.weight.grad).toBeNull();
    lin.requiresGrad_(false);
    expect(lin.forward(torch.ones(1, 2)).requiresGrad).toBe(false);
  });
});

describe("layers", () => {
  test("Linear computes x W^T + b and initialises within PyTorch's bounds", () => {
    torch.manualSeed(0);
    const lin = new nn.Linear(100, 50);
    const bound = 1 / Math.sqrt(100);
    expect(lin.weight.abs().amax().item()).toBeLessThanOrEqual(bound);
    expect(lin.weight.abs().amax().item()).toBeGreaterThan(0.9 * bound);
    // Uniform(-b, b) has std b/sqrt(3).
    expect(Math.abs(lin.weight.std().item() - bound / Math.sqrt(3))).toBeLessThan(0.003);
    expect(lin.bias!.abs().amax().item()).toBeLessThanOrEqual(bound);
    const x = torch.randn(3, 100);
    expectClose(lin.forward(x).tolist(), x.matmul(lin.weight.t()).add(lin.bias!).tolist(), 1e-5);
    expect(new nn.Linear(3, 2, { bias: false }).bias).toBeNull();
  });

  test("Conv2d shapes and init bound 1/sqrt(fan_in)", () => {
    const conv = new nn.Conv2d(10, 8, 3, { padding: 1 });
    expect(conv.weight.shape).toEqual([8, 10, 3, 3]);
    expect(conv.weight.abs().amax().item()).toBeLessThanOrEqual(1 / Math.sqrt(90));
    expect(conv.forward(torch.randn(2, 10, 5, 7)).shape).toEqual([2, 8, 5, 7]);
  });

  test("Embedding looks up rows, zeroes the padding row, init N(0, 1)", () => {
    torch.manualSeed(0);
    const emb = new nn.Embedding(1000, 64, { paddingIdx: 0 });
    expect(emb.weight.select(0, 0).abs().sum().item()).toBe(0);
    expect(Math.abs(emb.weight.std().item() - 1)).toBeLessThan(0.02);
    expect(emb.forward(torch.tensor([[1, 2]], { dtype: "int64" })).shape).toEqual([1, 2, 64]);
  });

  test("RMSNorm: x / sqrt(mean(x^2) + eps) * w, computed in float32 for bfloat16 input", () => {
    const n = new nn.RMSNorm(2, 1e-6);
    n.weight.requiresGrad = false;
    n.weight.copy_(torch.tensor([1, 2]));
    const r = Math.sqrt((9 + 16) / 2 + 1e-6);
    expectClose(n.forward(torch.tensor([[3, 4]])).tolist(), [[3 / r, 8 / r]], 1e-6);
    const bf = n.forward(torch.tensor([[3, 4]], { dtype: "bfloat16" }));
    expect(bf.dtype).toBe("float32"); // weight (float32) x bfloat16 normed promotes, as transformers does
    n.to("bfloat16");
    expect(n.forward(torch.tensor([[3, 4]], { dtype: "bfloat16" })).dtype).toBe("bfloat16");
  });

  test("GroupNorm and LayerNorm accept a bfloat16 activation from CPU autocast (float32 weights)", () => {
    const conv = new nn.Conv2d(3, 4, 3, { padding: 1 });
    const gn = new nn.GroupNorm(2, 4);
    const ln = new nn.LayerNorm(5);
    const x = torch.randn(1, 3, 5, 5);
    const [g, l] = torch.autocast({ device: "cpu" }, () => {
      const h = conv.forward(x); // bfloat16 under CPU autocast
      return [gn.forward(h), ln.forward(h)];
    });
    expect([g.dtype, l.dtype]).toEqual(["bfloat16", "bfloat16"]);
    expectClose(g.float().flatten().tolist(), gn.forward(conv.forward(x).bfloat16().float()).flatten().tolist(), 2e-2, 2e-2);
  });

  test("LayerNorm and GroupNorm modules have unit weight and zero bias", () => {
    const ln = new nn.LayerNorm(3);
    expectClose(ln.forward(torch.tensor([[1, 2, 3]])).tolist(), [[-1.2247, 0, 1.2247]], 1e-4);
    const gn = new nn.GroupNorm(2, 4);
    expect(gn.weight!.tolist()).toEqual([1, 1, 1, 1]);
    expect(gn.forward(torch.randn(1, 4, 3, 3)).shape).toEqual([1, 4, 3, 3]);
  });
});
