// CUDA graphs (torch.cuda.CUDAGraph, models/decode-step.ts): a captured decode step replays what the eager
// static step computes, and a replay after an optimizer step reads the updated weights (parameters are
// updated in place; autocast's casts are recorded in the graph, never read from a stale cast cache).
// Runs where CUDA is present; elsewhere reported skipped with the reason.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { Qwen2ForCausalLM, TINY_CONFIG } from "../../src/models/qwen2";
import { applyLora, loraParameters } from "../../src/models/lora";
import { decodeGraphsOf, releaseDecodeGraphs } from "../../src/models/decode-step";
import { expectClose } from "../helpers/numeric";

const ok = torch.cuda.isAvailable() && torch.cuda.graphsSupported();
if (!ok) console.warn(`test/cuda/graphs: skipped (CUDA graphs need a CUDA build on LibTorch >= 2.1 and a GPU; here: built ${torch.version().cuda ? "with" : "without"} CUDA, LibTorch ${torch.version().libtorch}, GPU ${torch.cuda.isAvailable()})`);

describe.skipIf(!ok)("CUDA graphs", () => {
  test("a graph replays what it captured, reading inputs updated in place", () => {
    const x = torch.keep(torch.ones([4], { device: "cuda" }));
    const g = new torch.cuda.CUDAGraph(0);
    const y = torch.keep(g.capture(() => x.mul(2).add(1)));
    g.replay();
    expect(y.cpu().tolist()).toEqual([3, 3, 3, 3]);
    x.fill_(5);
    g.replay();
    expect(y.cpu().tolist()).toEqual([11, 11, 11, 11]);
    g.dispose();
    for (const t of [x, y]) t.dispose();
  });

  const model = () => {
    const m = Qwen2ForCausalLM.fromConfig({ ...TINY_CONFIG, vocabSize: 300 }, { seed: 3 }).to({ device: "cuda" });
    applyLora(m, { rank: 4 });
    return m;
  };
  const ids = [[0, 0, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6]];
  const mask = [[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]];
  const gen = (m: Qwen2ForCausalLM, cudaGraphs: "auto" | "off", scores: torch.Tensor[], autocast = false) => {
    const run = () => m.generate(ids, { maxNewTokens: 10, attentionMask: mask, eosTokenIds: [], cudaGraphs, scores });
    return autocast ? torch.autocast({ device: "cuda", dtype: "bfloat16" }, run) : run();
  };
  const flat = (ss: torch.Tensor[]) => {
    const out = ss.flatMap((s) => (s.cpu().flatten().tolist() as number[]));
    for (const s of ss) s.dispose();
    ss.length = 0;
    return out;
  };

  for (const autocast of [false, true]) {
    test(`graph decode = eager static decode${autocast ? " under autocast bf16" : ""}; after an optimizer step the replay uses the new weights`, () => {
      const m = model();
      const sg: torch.Tensor[] = [];
      const se: torch.Tensor[] = [];
      const tol = autocast ? 2e-2 : 1e-5;
      expect(gen(m, "auto", sg, autocast)).toEqual(gen(m, "off", se, autocast));
      expect(decodeGraphsOf(m).disabled).toBeNull();
      expect(decodeGraphsOf(m).states.size).toBe(1);
      const g0 = flat(sg);
      expectClose(g0, flat(se), tol, tol);
      // An AdamW step on the adapters (in place), then the same graphs again.
      const params = loraParameters(m);
      const opt = new torch.AdamW(params, { lr: 0.05 });
      torch.scope(() => {
        for (const p of params) p.grad = torch.randnLike(p);
        opt.step();
      });
      const gAfter = gen(m, "auto", sg, autocast);
      expect(decodeGraphsOf(m).states.size).toBe(1); // replayed, not recaptured
      const eAfter = gen(m, "off", se, autocast);
      expect(gAfter).toEqual(eAfter);
      const a = flat(sg);
      const b = flat(se);
      expectClose(a, b, tol, tol);
      expect(Math.max(...a.map((x, i) => Math.abs(x - g0[i])))).toBeGreaterThan(1e-3); // the step changed the scores
      releaseDecodeGraphs(m);
      m.dispose();
    });
  }
});
