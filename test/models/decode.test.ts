// The static-cache decode (models/decode-step.ts) against the growing cache it replaced: the same tokens
// and scores on left-padded batches of different lengths, prefilled whole or in length buckets, greedy and
// with a repetition penalty; nothing leaks; and the native calls one decode step makes at Qwen2.5-1.5B's
// layer count with LoRA on every projection, under a stated bound.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { QWEN25_1_5B_CONFIG, Qwen2ForCausalLM, TINY_CONFIG } from "../../src/models/qwen2";
import { adaptableModules, applyLora, loraParameters, releaseMergedAdapters } from "../../src/models/lora";
import { CACHE_BLOCK, staticDecodeStep } from "../../src/models/decode-step";
import { expectClose } from "../helpers/numeric";

/** A tiny Qwen2 (small vocabulary: the test is about the cache, not the embedding) with LoRA adapters whose B is non-zero. */
function model(layers = 2): Qwen2ForCausalLM {
  const m = Qwen2ForCausalLM.fromConfig({ ...TINY_CONFIG, vocabSize: 300, numHiddenLayers: layers }, { seed: 3 });
  torch.manualSeed(1);
  applyLora(m, { rank: 4 });
  torch.noGrad(() => {
    for (const [n, p] of m.namedParameters()) if (n.includes("lora_B")) p.normal_(0, 0.05);
  });
  return m;
}

/** Left-padded rows of the given lengths (ids from a fixed pattern) and their mask. */
function batch(lengths: number[]): { ids: number[][]; mask: number[][] } {
  const t = Math.max(...lengths);
  const ids = lengths.map((n, i) => [...Array(t - n).fill(0), ...Array.from({ length: n }, (_, k) => 1 + ((i * 31 + k * 17) % 299))]);
  const mask = lengths.map((n) => [...Array(t - n).fill(0), ...Array(n).fill(1)]);
  return { ids, mask };
}

function decode(m: Qwen2ForCausalLM, lengths: number[], opts: Record<string, unknown>): { tokens: number[][]; scores: number[][][] } {
  const { ids, mask } = batch(lengths);
  const scores: torch.Tensor[] = [];
  const tokens = m.generate(ids, { maxNewTokens: 12, attentionMask: mask, eosTokenIds: [], scores, ...opts });
  const out = scores.map((s) => s.tolist() as number[][]);
  for (const s of scores) s.dispose();
  return { tokens, scores: out };
}

describe("static-cache decode", () => {
  const m = model();
  const cases: [string, number[], Record<string, unknown>][] = [
    ["different lengths, one prefill pass", [5, 9, 3, 9], {}],
    ["different lengths, prefill in length buckets", [5, 9, 3, 9], { prefillPadShare: 0 }],
    ["no padding", [7, 7], {}],
    ["repetition penalty", [4, 8, 6], { repetitionPenalty: 1.3 }],
    ["a prompt past one cache block", [CACHE_BLOCK + 5, 20], {}],
    ["a least cache length (one cache for every prompt of a budget)", [5, 9], { cacheCapacity: 3 * CACHE_BLOCK }],
  ];
  for (const [name, lengths, opts] of cases) {
    test(`${name}: the tokens and scores (1e-5) of the growing cache`, () => {
      const dyn = decode(m, lengths, { ...opts, cache: "dynamic" });
      const st = decode(m, lengths, { ...opts, cache: "static" });
      expect(st.tokens).toEqual(dyn.tokens);
      expect(st.scores.length).toBe(12);
      for (let s = 0; s < st.scores.length; s++) expectClose(st.scores[s].flat(), dyn.scores[s].flat(), 1e-5, 1e-5);
    });
  }

  test("EOS stops rows as before; static decode leaks no tensor", () => {
    const { ids, mask } = batch([4, 6]);
    const free = m.generate(ids, { maxNewTokens: 10, attentionMask: mask, eosTokenIds: [], cache: "static" });
    const eos = [free[0][2]]; // row 0's third token: it stops there, row 1 goes on (or stops where it meets it)
    const before = torch.liveTensors();
    const got = m.generate(ids, { maxNewTokens: 10, attentionMask: mask, eosTokenIds: eos, cache: "static" });
    expect(torch.liveTensors()).toBe(before);
    expect(got).toEqual(m.generate(ids, { maxNewTokens: 10, attentionMask: mask, eosTokenIds: eos, cache: "dynamic" }));
    expect(got[0]).toEqual(free[0].slice(0, 3));
  });

  test("cudaGraphs auto on the CPU decodes eagerly (the same tokens, nothing kept)", () => {
    const before = torch.liveTensors();
    const a = decode(m, [3, 8], { cudaGraphs: "auto" });
    expect(a.tokens).toEqual(decode(m, [3, 8], { cudaGraphs: "off" }).tokens);
    expect(torch.liveTensors()).toBe(before);
  });
});

describe("native calls per decode step", () => {
  // Qwen2.5-1.5B's structure (28 layers, 12 heads, 2 KV heads, every projection adapted) at small widths:
  // the calls a step makes depend on the layers and ops, not on the widths. Before the static cache and the
  // fused ops (RMSNorm, rotary, LoRA linear, grouped-query attention: one native call each) a step made
  // about 3,460. The bound leaves room for a few calls more per layer, not for a return to per-op code.
  const BOUND = 1000;
  test(`one step at 28 layers with LoRA makes at most ${BOUND} native calls`, () => {
    const cfg = { ...QWEN25_1_5B_CONFIG, vocabSize: 256, hiddenSize: 96, intermediateSize: 128, headDim: 8, dtype: "float32" as const };
    const m = Qwen2ForCausalLM.fromConfig(cfg, { seed: 0 });
    applyLora(m, { rank: 4 });
    m.eval();
    const calls = torch.noGrad(() =>
      torch.scope(() => {
        const b = 4;
        const st = staticDecodeStep(m, { batch: b, promptLength: 6, maxNew: 3, mask: null, useGraphs: false });
        st.cache.writeIndex = torch.arange(0, 6, 1);
        m.forward({ inputIds: torch.ones([b, 6], { dtype: "int64" }), pastKeyValues: st.cache, logitsToKeep: 1 });
        st.cache.writeIndex = null;
        const fed = torch.ones([b, 1], { dtype: "int64" });
        st.step(fed);
        const n = torch.countNativeCalls(() => st.step(fed)).calls;
        st.release();
        return n;
      }),
    );
    console.log(`native calls per decode step (28 layers, LoRA on every projection): ${calls}`);
    expect(calls).toBeGreaterThan(28 * 10); // it counts: every layer's projections at least
    expect(calls).toBeLessThanOrEqual(BOUND);
  });
});

describe("LoRA merged for generation (withMergedAdapters)", () => {
  test("float32: the tokens and scores (1e-5) of the unmerged adapters; the copies follow an optimizer step", () => {
    const m = model();
    const unmerged = decode(m, [5, 9, 3], { mergeAdapters: "off" });
    const merged = decode(m, [5, 9, 3], { mergeAdapters: "on" });
    expect(merged.tokens).toEqual(unmerged.tokens);
    for (let s = 0; s < merged.scores.length; s++) expectClose(merged.scores[s].flat(), unmerged.scores[s].flat(), 1e-5, 1e-5);
    // An update of the adapters in place (as AdamW does) is seen by the next merged call.
    torch.noGrad(() => {
      for (const p of loraParameters(m)) p.add_(0.05);
    });
    const after = decode(m, [5, 9, 3], { mergeAdapters: "on" });
    expect(after.scores[0].flat()).not.toEqual(merged.scores[0].flat());
    const afterRef = decode(m, [5, 9, 3], { mergeAdapters: "off" });
    expectClose(after.scores[0].flat(), afterRef.scores[0].flat(), 1e-5, 1e-5);
    expect(after.tokens).toEqual(afterRef.tokens);
    // The merged copies are kept (one per adapted projection) until released; training forwards never use them.
    const kept = torch.liveTensors();
    releaseMergedAdapters(m);
    expect(torch.liveTensors()).toBe(kept - adaptableModules(m).filter(([, l]) => l.adapter).length);
  });
});
