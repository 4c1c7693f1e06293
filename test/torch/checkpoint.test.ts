// torch.checkpoint: gradients equal to the plain forward's (float32), nested and sequential segments,
// dropout's masks drawn again (RNG restored), autocast re-entered, memory given back.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { F, type Tensor } from "../../src/torch";
import { Dropout, Linear, Module } from "../../src/nn";
import { expectClose } from "../helpers/numeric";

/** x + W2 dropout(gelu(W1 x)): a residual block whose residual add lies inside the segment. */
class Block extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly drop: Dropout;
  constructor(d: number, p = 0) {
    super();
    this.fc1 = this.registerModule("fc1", new Linear(d, 4 * d));
    this.fc2 = this.registerModule("fc2", new Linear(4 * d, d));
    this.drop = this.registerModule("drop", new Dropout(p));
  }
  forward(x: Tensor): Tensor {
    return x.add(this.fc2.forward(this.drop.forward(F.gelu(this.fc1.forward(x)))));
  }
}

type Mode = "off" | "each" | "nested" | "pairs";

/** A stack of blocks; "each" checkpoints every block, "pairs" two blocks a segment, "nested" both. */
class Stack extends Module {
  readonly blocks: Block[];
  constructor(d: number, n: number, p = 0) {
    super();
    this.blocks = Array.from({ length: n }, (_, i) => this.registerModule(String(i), new Block(d, p)));
  }
  forward(x: Tensor, mode: Mode): Tensor {
    const run = (b: Block, h: Tensor, inner: boolean) => (inner ? torch.checkpoint((y: Tensor) => b.forward(y), h) : b.forward(h));
    let h = x;
    for (let i = 0; i < this.blocks.length; i += 2) {
      const pair = this.blocks.slice(i, i + 2);
      const seg = (y: Tensor, inner: boolean) => pair.reduce((z, b) => run(b, z, inner), y);
      if (mode === "off") h = seg(h, false);
      else if (mode === "each") h = seg(h, true);
      else h = torch.checkpoint((y: Tensor) => seg(y, mode === "nested"), h);
    }
    return h;
  }
}

/** Gradients of the stack's parameters and of its input x after backward of a fixed weighted sum. */
function grads(model: Stack, mode: Mode, opts: { seed?: number; autocast?: boolean } = {}): number[][] {
  model.zeroGrad();
  return torch.scope(() => {
    const x = torch.scope(() => torch.linspace(-1, 1, 3 * 8).view(3, 8).mul(1.5)).requiresGrad_(true);
    if (opts.seed !== undefined) torch.manualSeed(opts.seed);
    const fwd = () => model.forward(x.mul(2), mode);
    const y = opts.autocast ? torch.autocast({ device: "cpu" }, fwd) : fwd();
    const w = torch.linspace(0.5, -0.5, y.numel()).view(y.shape);
    y.float().mul(w).sum().backward();
    return [...model.parameters().map((p) => Array.from(p.grad!.data() as Float32Array)), Array.from(x.grad!.data() as Float32Array)];
  });
}

function expectSame(a: number[][], b: number[][], atol = 1e-6): void {
  expect(a.length).toBe(b.length);
  a.forEach((g, i) => expectClose(g, b[i], atol, 1e-5, `grad ${i}`));
}

function stack(n = 4, p = 0): Stack {
  torch.manualSeed(7);
  return new Stack(8, n, p);
}

describe("torch.checkpoint", () => {
  test("a stack of checkpointed blocks gives the plain gradients (parameters and input), and frees its entries", () => {
    const m = stack();
    const plain = grads(m, "off");
    for (const mode of ["each", "pairs", "nested"] as const) {
      expectSame(grads(m, mode), plain);
      expect(torch.pendingCheckpoints()).toBe(0);
    }
    m.dispose();
  });

  test("the output is a leaf that requires grad; its .grad is cleared once the segment ran", () => {
    const m = stack(2);
    torch.scope(() => {
      const x = torch.randn([2, 8]);
      const y = torch.checkpoint((z: Tensor) => m.blocks[0].forward(z), x);
      expect(y.isLeaf).toBe(true);
      expect(y.requiresGrad).toBe(true);
      expect(torch.pendingCheckpoints()).toBe(1);
      y.sum().backward();
      expect(y.grad).toBeNull();
      expect(torch.pendingCheckpoints()).toBe(0);
      expect(m.blocks[0].fc1.weight.grad).not.toBeNull();
      expect(x.grad).toBeNull(); // x did not require grad
    });
    m.dispose();
  });

  test("several outputs, some unused, and non-tensor and nested inputs", () => {
    const m = stack(2);
    const run = (ck: boolean) => {
      m.zeroGrad();
      return torch.scope(() => {
        const x = torch.linspace(-1, 1, 16).view(2, 8).requiresGrad_(true);
        const s = torch.full([2, 8], 0.5).requiresGrad_(true);
        const fn = (a: Tensor, o: { scale: Tensor; k: number }) => {
          const h = m.blocks[0].forward(a.mul(o.scale));
          return { h, twice: h.mul(o.k), idx: torch.arange(0, 2), unused: m.blocks[1].forward(a) };
        };
        const out = ck ? torch.checkpoint(fn, x, { scale: s, k: 2 }) : fn(x, { scale: s, k: 2 });
        expect(out.idx.dtype).toBe("int64");
        out.h.sum().add(out.twice.pow(2).mean()).backward();
        return [...m.parameters().map((p) => (p.grad ? Array.from(p.grad.data() as Float32Array) : [])), Array.from(x.grad!.data() as Float32Array), Array.from(s.grad!.data() as Float32Array)];
      });
    };
    expectSame(run(true), run(false));
    m.dispose();
  });

  test("dropout inside a segment draws the same masks when recomputed (RNG state restored), and the RNG stream goes on as without", () => {
    const m = stack(4, 0.3);
    m.train();
    const plain = grads(m, "off", { seed: 11 });
    const after = torch.rand([4]).tolist();
    for (const mode of ["each", "pairs", "nested"] as const) {
      expectSame(grads(m, mode, { seed: 11 }), plain);
      expect(torch.rand([4]).tolist()).toEqual(after);
    }
    // A different seed draws other masks: the comparison above is not vacuous.
    expect(grads(m, "off", { seed: 12 })[0]).not.toEqual(plain[0]);
    m.dispose();
  });

  test("CPU autocast (bfloat16): the segment reruns under the forward's autocast state", () => {
    const m = stack();
    const plain = grads(m, "off", { autocast: true });
    for (const mode of ["each", "nested"] as const) expectSame(grads(m, mode, { autocast: true }), plain, 1e-6);
    // Without autocast the gradients differ (bfloat16 rounding): the test would see a float32 recomputation.
    const fp32 = grads(m, "off");
    expect(plain.some((g, i) => g.some((v, k) => Math.abs(v - fp32[i][k]) > 1e-4))).toBe(true);
    m.dispose();
  });

  test("backward run inside another autocast state still recomputes under the forward's", () => {
    const m = stack(2);
    const run = (ck: boolean) => {
      m.zeroGrad();
      return torch.scope(() => {
        const x = torch.linspace(-1, 1, 16).view(2, 8);
        const f = (z: Tensor) => m.blocks[0].forward(z);
        const y = ck ? torch.checkpoint(f, x) : f(x);
        torch.autocast({ device: "cpu" }, () => y.sum().backward());
        return m.parameters().map((p) => Array.from((p.grad?.data() ?? []) as Float32Array));
      });
    };
    expectSame(run(true), run(false));
    m.dispose();
  });

  test("no tensor leaks: after backward, after a scope without backward, on an error in the segment", () => {
    const m = stack();
    grads(m, "nested"); // warm up lazily made tensors
    m.zeroGrad();
    const before = torch.liveTensors();
    grads(m, "nested");
    m.zeroGrad();
    expect(torch.liveTensors()).toBe(before);
    // Forward only: the entries die with the scope.
    torch.scope(() => {
      const y = m.forward(torch.randn([3, 8]), "nested");
      y.sum();
      expect(torch.pendingCheckpoints()).toBe(2);
    });
    expect(torch.pendingCheckpoints()).toBe(0);
    expect(torch.liveTensors()).toBe(before);
    // A throwing segment leaves nothing.
    expect(() => torch.scope(() => torch.checkpoint((_x: Tensor) => { throw new Error("boom"); }, torch.randn([2])))).toThrow("boom");
    expect(torch.pendingCheckpoints()).toBe(0);
    expect(torch.liveTensors()).toBe(before);
    m.dispose();
  });

  test("entries outlive inner scopes whose results depend on them, and the caller may free the outputs early", () => {
    const m = stack(4);
    const plain = grads(m, "off");
    m.zeroGrad();
    const before = torch.liveTensors();
    const got = torch.scope(() => {
      const x = torch.scope(() => torch.linspace(-1, 1, 3 * 8).view(3, 8).mul(1.5)).requiresGrad_(true);
      // Each block in its own scope, the previous output freed at once (as Qwen2Model.forward does).
      let h = x.mul(2);
      for (const b of m.blocks) {
        const prev = h;
        h = torch.scope(() => torch.checkpoint((z: Tensor) => b.forward(z), prev));
        prev.dispose();
      }
      // The loss is made in an inner scope and returned: the entries follow it out.
      const loss = torch.scope(() => h.float().mul(torch.linspace(0.5, -0.5, h.numel()).view(h.shape)).sum());
      expect(torch.pendingCheckpoints()).toBe(4);
      loss.backward();
      return [...m.parameters().map((p) => Array.from(p.grad!.data() as Float32Array)), Array.from(x.grad!.data() as Float32Array)];
    });
    expectSame(got, plain);
    m.zeroGrad();
    expect(torch.pendingCheckpoints()).toBe(0);
    expect(torch.liveTensors()).toBe(before);
    m.dispose();
  });

  test("retainGraph: a second backward runs the segments again (gradients double, as without)", () => {
    const m = stack(2);
    const run = (mode: Mode) => {
      m.zeroGrad();
      return torch.scope(() => {
        const y = m.forward(torch.linspace(-1, 1, 16).view(2, 8), mode).sum();
        y.backward(null, { retainGraph: true });
        y.backward();
        return m.parameters().map((p) => Array.from(p.grad!.data() as Float32Array));
      });
    };
    expectSame(run("each"), run("off"));
    expect(torch.pendingCheckpoints()).toBe(0);
    m.dispose();
  });

  test("under noGrad it only calls fn; torch.grad does not run the tape (gradients stop at the leaves)", () => {
    const m = stack(2);
    torch.scope(() => {
      const y = torch.noGrad(() => torch.checkpoint((z: Tensor) => m.blocks[0].forward(z), torch.randn([2, 8])));
      expect(y.requiresGrad).toBe(false);
      expect(torch.pendingCheckpoints()).toBe(0);
      const x = torch.randn([2, 8]).requiresGrad_(true);
      const out = torch.checkpoint((z: Tensor) => m.blocks[0].forward(z), x);
      const [gx] = torch.grad(out.sum(), [x]);
      expect(gx).toBeNull(); // x reaches the loss only through the segment, which torch.grad does not see
      expect(torch.pendingCheckpoints()).toBe(1);
    });
    expect(torch.pendingCheckpoints()).toBe(0);
    m.dispose();
  });

  test("an input used outside the segment too: a clear error (its graph was freed by the first pass)", () => {
    const m = stack(2);
    torch.scope(() => {
      const x = torch.randn([2, 8]).requiresGrad_(true);
      const a = x.mul(3).exp(); // a graph node with saved tensors, reached by both paths
      const y = torch.checkpoint((z: Tensor) => m.blocks[0].forward(z), a);
      expect(() => a.add(y).sum().backward()).toThrow(/reach the loss only through the checkpoint/);
    });
    expect(torch.pendingCheckpoints()).toBe(0);
    m.dispose();
  });
});
