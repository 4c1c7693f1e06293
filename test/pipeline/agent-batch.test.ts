// GridAgent.forwardBatch: padded passes of mixed-size grids give each grid what it gets alone (values and
// gradients), the pass planning and its accounting, and the on-device size/confidence readouts.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import type { Tensor } from "../../src/torch";
import { type AgentOutput, GridAgent, confidence, confidences, planPasses, predictedSize, predictedSizes } from "../../src/pipeline/system/agent";

const SIZES: [number, number][] = [[1, 1], [3, 7], [30, 30], [12, 5], [3, 7]];
const T = 5;
const P = 16;

/** Relative distance of a from the reference b: max |a - b| over max |b|. */
const relErr = (a: Tensor, b: Tensor) => torch.scope(() => a.sub(b).abs().amax().item() / Math.max(b.abs().amax().item(), 1e-30));

/**
 * The single-grid forward as it stood before batching, written out from the agent's modules: an
 * independent reference, so a bug shared by forward (a batch of one) and forwardBatch still shows.
 */
function referenceForward(agent: GridAgent, grid: number[][], p: Tensor): AgentOutput {
  const d = agent.config.channels;
  const H = grid.length;
  const W = grid[0]!.length;
  const idx = torch.fromTypedArray(Int32Array.from(grid.flat()), [H, W]).long();
  const x = torch.F.oneHot(idx, 10).permute(2, 0, 1).unsqueeze(0).float();
  const pn = agent.promptNorm.forward(p);
  const gb = agent.block.film.forward(pn);
  const gamma = gb.narrow(0, 0, d).view(1, d, 1, 1);
  const beta = gb.narrow(0, d, d).view(1, d, 1, 1);
  const e = agent.rowEmb.forward(torch.arange(H)).unsqueeze(1).add(agent.colEmb.forward(torch.arange(W)).unsqueeze(0)).permute(2, 0, 1).unsqueeze(0);
  const blk = agent.block;
  let z = agent.stem.forward(x);
  const logits: Tensor[] = [];
  for (let t = 0; t < agent.config.steps; t++) {
    const u = z.add(e);
    const h = blk.norm.forward(blk.conv1.forward(u)).mul(gamma.add(1)).add(beta);
    z = z.add(blk.conv2.forward(torch.F.gelu(h)).add(blk.ctx.forward(u.mean([2, 3])).view(1, d, 1, 1)));
    logits.push(agent.head.forward(z).squeeze(0).permute(1, 2, 0));
  }
  const pooled = z.mean([2, 3]).view(d);
  const size = agent.sizeHead.forward(torch.cat([pooled, pn]));
  return { logits: torch.stack(logits), heightLogits: size.narrow(0, 0, 30), widthLogits: size.narrow(0, 30, 30), pooled };
}

function setup() {
  torch.manualSeed(7);
  const agent = new GridAgent({ promptDim: P, channels: 16, steps: T, groups: 4 });
  // Everything that would leak through the padding made clearly non-zero: FiLM (so p matters and beta
  // is non-zero on padding), GroupNorm's affine, and positional embeddings larger than their init.
  torch.noGrad(() => {
    agent.block.film.weight.normal_(0, 0.5);
    agent.block.film.bias!.normal_(0, 0.5);
    agent.block.norm.weight!.normal_(1, 0.5);
    agent.block.norm.bias!.normal_(0, 0.5);
    agent.rowEmb.weight.normal_(0, 0.5);
    agent.colEmb.weight.normal_(0, 0.5);
  });
  let seed = 3;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const grids = SIZES.map(([h, w]) => Array.from({ length: h }, () => Array.from({ length: w }, () => Math.floor(rnd() * 10))));
  const p = torch.randn([SIZES.length, P]);
  return { agent, grids, p };
}

describe("GridAgent.forwardBatch", () => {
  const { agent, grids, p } = setup();

  test("forward (a batch of one) matches the pre-batching single-grid forward", () => {
    torch.scope(() => {
      grids.forEach((g, i) => {
        const ref = referenceForward(agent, g, p.select(0, i));
        const out = agent.forward(g, p.select(0, i));
        expect(out.logits.shape).toEqual([T, SIZES[i]![0], SIZES[i]![1], 10]);
        expect(out.heightLogits.shape).toEqual([30]);
        expect(out.pooled.shape).toEqual([16]);
        expect(relErr(out.logits, ref.logits)).toBeLessThan(1e-5);
        expect(relErr(out.heightLogits, ref.heightLogits)).toBeLessThan(1e-5);
        expect(relErr(out.widthLogits, ref.widthLogits)).toBeLessThan(1e-5);
        expect(relErr(out.pooled, ref.pooled)).toBeLessThan(1e-5);
      });
    });
  });

  for (const maxPadShare of [1, 0.5, 0]) {
    test(`every example gets what it gets alone (maxPadShare ${maxPadShare})`, () => {
      torch.scope(() => {
        const out = agent.forwardBatch(grids, p, { maxPadShare });
        expect(out.passes).toBe({ 1: 1, 0.5: 2, 0: 4 }[maxPadShare]!);
        expect(out.heightLogits.shape).toEqual([5, 30]);
        expect(out.widthLogits.shape).toEqual([5, 30]);
        expect(out.pooled.shape).toEqual([5, 16]);
        grids.forEach((g, i) => {
          const ref = referenceForward(agent, g, p.select(0, i));
          expect(out.logits[i]!.shape).toEqual([T, SIZES[i]![0], SIZES[i]![1], 10]);
          const errs = {
            i,
            logits: relErr(out.logits[i]!, ref.logits),
            height: relErr(out.heightLogits.select(0, i), ref.heightLogits),
            width: relErr(out.widthLogits.select(0, i), ref.widthLogits),
            pooled: relErr(out.pooled.select(0, i), ref.pooled),
          };
          expect(Math.max(errs.logits, errs.height, errs.width, errs.pooled)).toBeLessThan(1e-5);
        });
      });
    });
  }

  test("gradients of every parameter and of p equal those of the separate forwards", () => {
    torch.scope(() => {
      // A loss that weighs every output of every example differently, so no mixing cancels out.
      const weights = SIZES.map(([h, w]) => ({ logits: torch.randn([T, h, w, 10]), height: torch.randn([30]), width: torch.randn([30]), pooled: torch.randn([16]) }));
      const lossOf = (i: number, logits: Tensor, height: Tensor, width: Tensor, pooled: Tensor) =>
        logits.mul(weights[i]!.logits).sum().add(height.mul(weights[i]!.height).sum()).add(width.softmax(0).mul(weights[i]!.width).sum()).add(pooled.mul(weights[i]!.pooled).sum());
      const gradsOf = (run: (pLeaf: Tensor) => Tensor) => {
        agent.zeroGrad();
        const pLeaf = p.clone().requiresGrad_();
        run(pLeaf).backward();
        const grads = new Map<string, Tensor>();
        for (const [name, t] of agent.namedParameters()) grads.set(name, t.grad!.clone());
        grads.set("p", pLeaf.grad!.clone());
        agent.zeroGrad();
        return grads;
      };
      const separate = gradsOf((pLeaf) => {
        let total = torch.scalarTensor(0);
        grids.forEach((g, i) => {
          const o = referenceForward(agent, g, pLeaf.select(0, i));
          total = total.add(lossOf(i, o.logits, o.heightLogits, o.widthLogits, o.pooled));
        });
        return total;
      });
      for (const maxPadShare of [1, 0.5]) {
        const batched = gradsOf((pLeaf) => {
          const o = agent.forwardBatch(grids, pLeaf, { maxPadShare });
          let total = torch.scalarTensor(0);
          for (let i = 0; i < grids.length; i++) total = total.add(lossOf(i, o.logits[i]!, o.heightLogits.select(0, i), o.widthLogits.select(0, i), o.pooled.select(0, i)));
          return total;
        });
        expect([...batched.keys()].sort()).toEqual([...separate.keys()].sort());
        for (const [name, ref] of separate) {
          expect({ name, nonZero: ref.abs().amax().item() > 0 }).toEqual({ name, nonZero: true });
          const err = relErr(batched.get(name)!, ref);
          expect({ maxPadShare, name, ok: err < 1e-5 ? true : err }).toEqual({ maxPadShare, name, ok: true });
        }
      }
    });
  });

  test("predictedSizes / confidences agree with predictedSize / confidence, on the device", () => {
    torch.scope(() => {
      const out = agent.forwardBatch(grids, p, { maxPadShare: 0.5 });
      const sizes = predictedSizes(out);
      const conf = confidences(out);
      expect(sizes.shape).toEqual([5, 2]);
      expect(sizes.dtype).toBe("int64");
      expect(conf.shape).toEqual([5]);
      expect(conf.dtype).toBe("float32");
      const sizeRows = sizes.tolist() as number[][];
      const confValues = conf.tolist() as number[];
      grids.forEach((g, i) => {
        const single = agent.forward(g, p.select(0, i));
        expect(sizeRows[i]).toEqual(predictedSize(single));
        expect(Math.abs(confValues[i]! - confidence(single))).toBeLessThan(1e-6);
      });
      // Not a constant readout: examples differ.
      expect(new Set(confValues.map((c) => c.toFixed(4))).size).toBeGreaterThan(1);
    });
  });

  test("cells / paddedCells / passes accounting", () => {
    torch.scope(() => {
      const cells = 1 + 21 + 900 + 60 + 21;
      // One pass: everything padded to 30x30.
      expect(agent.forwardBatch(grids, p)).toMatchObject({ cells, paddedCells: 5 * 900, passes: 1 });
      // 0.5: {30x30, 12x5} wastes 840/1800; the 3x7s cannot join it (2598/3600) and take the 1x1 (20/63).
      expect(agent.forwardBatch(grids, p, { maxPadShare: 0.5 })).toMatchObject({ cells, paddedCells: 1800 + 63, passes: 2 });
      // 0: only same-size grids share a pass, so nothing is padded.
      expect(agent.forwardBatch(grids, p, { maxPadShare: 0 })).toMatchObject({ cells, paddedCells: cells, passes: 4 });
    });
    expect(planPasses(SIZES, 0.5)).toEqual([
      { members: [2, 3], height: 30, width: 30, cells: 960 },
      { members: [0, 1, 4], height: 3, width: 7, cells: 43 },
    ]);
    // Same sizes always share a pass, even where adding them one by one would break the share.
    expect(planPasses([[30, 30], [30, 1], [30, 1]], 0.5).map((pass) => pass.members)).toEqual([[0], [1, 2]]);
    expect(planPasses([[30, 30], [30, 1], [30, 1]], 0.7).map((pass) => pass.members)).toEqual([[0, 1, 2]]);
  });

  test("rejects bad batches", () => {
    torch.scope(() => {
      expect(() => agent.forwardBatch([], torch.randn([0, P]))).toThrow(/empty/);
      expect(() => agent.forwardBatch(grids, torch.randn([4, P]))).toThrow(/expected \[5, 16\]/);
      expect(() => agent.forwardBatch(grids, p, { maxPadShare: 1.5 })).toThrow(/maxPadShare/);
      expect(() => agent.forwardBatch([[[1, 2], [3]]], torch.randn([1, P]))).toThrow(/rows differ/);
      expect(() => agent.forwardBatch([[[1, 10]]], torch.randn([1, P]))).toThrow(/colour 10/);
    });
  });

  test("runs under CPU bfloat16 autocast and stays near the float32 result", () => {
    torch.scope(() => {
      const full = agent.forwardBatch(grids, p);
      const half = torch.autocast({ device: "cpu" }, () => agent.forwardBatch(grids, p));
      grids.forEach((_, i) => {
        expect(half.logits[i]!.shape).toEqual(full.logits[i]!.shape);
        expect(relErr(half.logits[i]!.float(), full.logits[i]!)).toBeLessThan(0.1);
      });
      expect(relErr(half.pooled.float(), full.pooled)).toBeLessThan(0.1);
    });
  });
});
