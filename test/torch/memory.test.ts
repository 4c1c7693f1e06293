// Deterministic memory: scopes, keep, dispose, and no leak over a long training loop.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import * as nn from "../../src/nn";

describe("memory", () => {
  test("scope frees what it created and keeps what it returns (in arrays and objects)", () => {
    const before = torch.liveTensors();
    const out = torch.scope(() => {
      const a = torch.ones(3);
      const b = a.mul(2);
      a.add(b);
      return { sum: b.sum(), parts: [b] };
    });
    expect(torch.liveTensors()).toBe(before + 2);
    expect(out.sum.item()).toBe(6);
    torch.dispose(out);
    expect(torch.liveTensors()).toBe(before);
  });

  test("nested scopes hand returned tensors to the enclosing scope", () => {
    const before = torch.liveTensors();
    const v = torch.scope(() => {
      const inner = torch.scope(() => torch.ones(2).mul(3));
      expect(inner.tolist()).toEqual([3, 3]);
      return inner.sum().item();
    });
    expect(v).toBe(6);
    expect(torch.liveTensors()).toBe(before);
  });

  test("a throwing scope frees everything and rethrows", () => {
    const before = torch.liveTensors();
    expect(() =>
      torch.scope(() => {
        torch.ones(10);
        throw new Error("fail inside");
      }),
    ).toThrow("fail inside");
    expect(torch.liveTensors()).toBe(before);
  });

  test("keep() survives the scope; dispose() is idempotent; use after dispose is a TorchError", () => {
    const before = torch.liveTensors();
    const kept = torch.scope(() => {
      const k = torch.keep(torch.ones(2));
      torch.ones(5);
      return null;
    });
    expect(kept).toBeNull();
    expect(torch.liveTensors()).toBe(before + 1);
    const t = torch.ones(2);
    t.dispose();
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(() => t.add(1)).toThrow(torch.TorchError);
    expect(() => t.sum()).toThrow(/disposed/);
  });

  test("reading half-precision values makes no lasting tensor", () => {
    const t = torch.keep(torch.tensor([1.5, -2], { dtype: "bfloat16" }));
    const before = torch.liveTensors();
    expect(Array.from(t.data() as Float32Array)).toEqual([1.5, -2]);
    expect(t.tolist()).toEqual([1.5, -2]);
    expect(torch.liveTensors()).toBe(before);
  });

  test("an async function is refused by scope (and what it made is freed)", () => {
    const before = torch.liveTensors();
    expect(() => torch.scope((async () => torch.ones(1)) as never)).toThrow(/synchronous/);
    expect(torch.liveTensors()).toBe(before);
  });

  test("1000 training steps (forward, backward, AdamW) inside scopes leave liveTensors where it started", () => {
    torch.manualSeed(0);
    const model = new nn.Sequential(new nn.Linear(8, 16), new nn.GELU(), new nn.Linear(16, 1));
    const opt = new torch.AdamW(model.parameters(), { lr: 1e-2 });
    const x = torch.keep(torch.randn(32, 8));
    const y = torch.keep(x.sum(1, true).tanh());
    // The optimizer creates its state on the first step: take it before measuring.
    const step = () =>
      torch.scope(() => {
        const loss = torch.F.mseLoss(model.forward(x), y);
        loss.backward();
        torch.clipGradNorm(model.parameters(), 1.0);
        opt.step();
        opt.zeroGrad();
        return loss.item();
      });
    const first = step();
    const start = torch.liveTensors();
    let last = first;
    for (let i = 0; i < 1000; i++) last = step();
    expect(torch.liveTensors()).toBe(start);
    expect(last).toBeLessThan(first / 10);
  });
});
