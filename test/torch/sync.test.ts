// The host-read counter (torch.syncCount): known counts for the calls a training step makes.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";

const syncs = (fn: () => unknown): number => torch.countSyncs(fn).syncs;

describe("syncCount", () => {
  test("item, data, tolist and equal are one read each; device-side ops are none", () => {
    const x = torch.keep(torch.randn([3, 4]));
    expect(syncs(() => torch.scope(() => x.matmul(x.t()).sum().mul(2)))).toBe(0);
    expect(syncs(() => x.sum().item())).toBe(1);
    expect(syncs(() => x.tolist())).toBe(1);
    expect(syncs(() => x.data())).toBe(1);
    expect(syncs(() => x.to({ dtype: "float16" }).data())).toBe(1);
    expect(syncs(() => x.equal(x))).toBe(1);
    const before = torch.syncCount();
    x.sum().item();
    expect(torch.syncCount()).toBe(before + 1);
    torch.resetSyncCount();
    expect(torch.syncCount()).toBe(0);
    torch.dispose([x]);
  });

  test("an AdamW step reads nothing back, whichever kernel; clipGradNorm reads once (the norm)", () => {
    const ps = [torch.randn([4, 4]), torch.randn([4], { dtype: "float64" }), torch.randn([3])].map((p) => torch.keep(p.requiresGrad_(true)));
    ps.forEach((p) => {
      p.grad = torch.randnLike(p);
    });
    const opt = new torch.AdamW([{ params: ps.slice(0, 2) }, { params: ps.slice(2), weightDecay: 0 }]);
    for (const kernel of ["auto", "foreach", "loop"] as const) {
      opt.kernel = kernel;
      expect(syncs(() => opt.step())).toBe(0);
    }
    expect(syncs(() => torch.clipGradNorm(ps, 0.5))).toBe(1);
    expect(syncs(() => torch.gradNorm(ps))).toBe(1);
    opt.zeroGrad();
    expect(syncs(() => torch.clipGradNorm(ps, 0.5))).toBe(0); // no gradients: nothing to read
    opt.dispose();
    torch.dispose(ps);
  });

  test("a GradScaler step and update read once (the inf check), also on the CPU path by hand", () => {
    const p = torch.keep(torch.randn([5]).requiresGrad_(true));
    const opt = new torch.AdamW([p]);
    const scaler = new torch.GradScaler({ device: "cpu", initScale: 8, growthInterval: 2 });
    for (let i = 0; i < 4; i++) {
      torch.scope(() => scaler.scale(p.mul(p).sum()).backward());
      expect(syncs(() => {
        scaler.step(opt);
        scaler.update();
      })).toBe(1);
      opt.zeroGrad();
    }
    expect(scaler.getScale()).toBe(32); // grew twice (interval 2): the by-hand update is the rule
    expect(scaler.getGrowthTracker()).toBe(0);
    p.grad = torch.tensor([Number.POSITIVE_INFINITY, 0, 0, 0, 0]);
    expect(syncs(() => {
      scaler.step(opt);
      scaler.update();
    })).toBe(1);
    expect(scaler.getScale()).toBe(16); // backed off
    opt.dispose();
    torch.dispose([p]);
  });
});
