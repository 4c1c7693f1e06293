// Qwen2 against Hugging Face transformers (its outputs for a tiny random Qwen2, test/fixtures/golden), and
// the properties the pipeline relies on: KV-cache decoding = full recomputation, padded batches =
// sequences alone, strict weight loading.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../src/torch.ts";
import type { Tensor } from "../src/torch.ts";
import { QWEN25_1_5B_CONFIG, Qwen2ForCausalLM, TINY_CONFIG, causalLmLoss, parseQwen2Config } from "../src/models/qwen2.ts";
import { fromFolder, fromPretrained } from "../src/models/load.ts";
import { repetitionPenalty, topKFilter, topPFilter } from "../src/models/generate.ts";
import { KVCache } from "../src/models/kv-cache.ts";
import { QwenTokenizer } from "../src/tokenizer.ts";
import { GOLDEN, GOLDEN_MODEL } from "./helpers/fixtures.ts";

interface Golden {
  input_ids: number[];
  loss: number;
  logits_first_row: number[];
  logits_last_row: number[];
  logits_sum: number;
  logits_abs_sum: number;
  grad_norms: Record<string, number>;
  greedy_next8: number[];
}

/** max |a - b| / max |b|: the relative error of a row of logits. */
function relErr(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    n = Math.max(n, Math.abs(b[i]));
  }
  return d / n;
}
const maxAbsDiff = (a: Tensor, b: Tensor): number => torch.scope(() => a.float().sub(b.float()).abs().max().item());

let tmp: string;
let gold: Golden;
beforeAll(() => {
  if (!existsSync(join(GOLDEN, "qwen2-tiny-golden.json")))
    throw new Error(`golden data not found at ${GOLDEN}`);
  gold = JSON.parse(readFileSync(join(GOLDEN, "qwen2-tiny-golden.json"), "utf8"));
  tmp = mkdtempSync(join(tmpdir(), "qwen2-test-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The golden checks for a model folder; returns the measured errors. */
function checkGolden(folder: string): Record<string, number> {
  const m = fromFolder(folder);
  const ids = torch.tensor([gold.input_ids], { dtype: "int64" });
  const errs: Record<string, number> = {};
  torch.scope(() => {
    m.train();
    const r = m.forward({ inputIds: ids, labels: ids });
    errs.loss = Math.abs(r.loss!.item() - gold.loss) / Math.abs(gold.loss);
    r.loss!.backward();
    let worstGrad = 0;
    const names = m.namedParameters().map(([n]) => n).sort();
    expect(names).toEqual(Object.keys(gold.grad_norms).sort());
    for (const [n, p] of m.namedParameters()) {
      const g = p.grad!.double().norm().item();
      worstGrad = Math.max(worstGrad, Math.abs(g - gold.grad_norms[n]) / gold.grad_norms[n]);
    }
    errs.grad = worstGrad;
    m.eval();
    const logits = torch.noGrad(() => m.forward({ inputIds: ids }).logits!.select(0, 0));
    expect(logits.shape).toEqual([37, 1024]);
    errs.first = relErr(logits.select(0, 0).tolist(), gold.logits_first_row);
    errs.last = relErr(logits.select(0, 36).tolist(), gold.logits_last_row);
    errs.sum = Math.abs(logits.double().sum().item() - gold.logits_sum) / gold.logits_abs_sum;
    errs.absSum = Math.abs(logits.double().abs().sum().item() - gold.logits_abs_sum) / gold.logits_abs_sum;
  });
  const gen = m.generate(ids, { maxNewTokens: 8, eosTokenIds: [] });
  expect(gen).toEqual([gold.greedy_next8]);
  ids.dispose();
  m.dispose();
  expect(errs.loss).toBeLessThan(1e-6);
  expect(errs.grad).toBeLessThan(1e-4);
  expect(errs.first).toBeLessThan(1e-5);
  expect(errs.last).toBeLessThan(1e-5);
  expect(errs.sum).toBeLessThan(1e-5);
  expect(errs.absSum).toBeLessThan(1e-5);
  return errs;
}

describe("parity with transformers (golden outputs)", () => {
  test("transformers-5 config (rope_parameters, dtype): logits, loss, every gradient norm, greedy ids", () => {
    const errs = checkGolden(GOLDEN_MODEL);
    console.log("golden relative errors:", JSON.stringify(errs));
  });

  test("attention: at::scaled_dot_product_attention (fused kernels) on LibTorch >= 2.1, the plain path on 1.13; both match", () => {
    const [maj, min] = torch.version().libtorch.split(".").map(Number) as [number, number];
    expect(torch.native.hasFusedAttention()).toBe(maj > 2 || (maj === 2 && min! >= 1));
    const errs = checkGolden(GOLDEN_MODEL);
    console.log(`golden through ${torch.native.hasFusedAttention() ? "SDPA" : "the plain attention path"} on LibTorch ${torch.version().libtorch}:`, JSON.stringify(errs));
  });

  test("the same after rewriting the config to the old format (rope_theta, torch_dtype)", () => {
    const dir = join(tmp, "old-format");
    mkdirSync(dir);
    const cfg = JSON.parse(readFileSync(join(GOLDEN_MODEL, "config.json"), "utf8"));
    cfg.rope_theta = cfg.rope_parameters.rope_theta;
    delete cfg.rope_parameters;
    cfg.torch_dtype = cfg.dtype;
    delete cfg.dtype;
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    symlinkSync(join(GOLDEN_MODEL, "model.safetensors"), join(dir, "model.safetensors"));
    const parsed = parseQwen2Config(cfg);
    expect(parsed.ropeTheta).toBe(1e6);
    expect(parsed.dtype).toBe("float32");
    checkGolden(dir);
  });
});

describe("config", () => {
  const base = () => JSON.parse(readFileSync(join(GOLDEN_MODEL, "config.json"), "utf8"));
  test("both rope and dtype formats; GQA; tied", () => {
    const c = parseQwen2Config(base());
    expect(c).toMatchObject({ vocabSize: 1024, hiddenSize: 64, numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 16, ropeTheta: 1e6, tieWordEmbeddings: true, dtype: "float32" });
    const old = { ...base(), rope_parameters: undefined, rope_theta: 5e5, dtype: undefined, torch_dtype: "bfloat16" };
    expect(parseQwen2Config(old)).toMatchObject({ ropeTheta: 5e5, dtype: "bfloat16" });
    expect(parseQwen2Config({ ...base(), rope_parameters: undefined })).toMatchObject({ ropeTheta: 10000 });
  });
  test("clear errors for what is not Qwen2", () => {
    expect(() => parseQwen2Config({ ...base(), model_type: "llama" })).toThrow(/model_type is "llama"/);
    expect(() => parseQwen2Config({ ...base(), num_key_value_heads: 3 })).toThrow(/not a multiple/);
    expect(() => parseQwen2Config({ ...base(), rope_parameters: { rope_type: "yarn", rope_theta: 1e6 } })).toThrow(/rope type "yarn"/);
    expect(() => parseQwen2Config({ ...base(), hidden_size: undefined })).toThrow(/hidden_size/);
    expect(() => parseQwen2Config({ ...base(), dtype: "int8" })).toThrow(/unsupported dtype/);
  });
  test("Qwen2.5-1.5B shapes: 1.54 B parameters", () => {
    const c = QWEN25_1_5B_CONFIG;
    const attn = c.hiddenSize * c.headDim * (c.numAttentionHeads * 2 + c.numKeyValueHeads * 2) + c.headDim * (c.numAttentionHeads + 2 * c.numKeyValueHeads);
    const mlp = 3 * c.hiddenSize * c.intermediateSize;
    const n = c.vocabSize * c.hiddenSize + c.numHiddenLayers * (attn + mlp + 2 * c.hiddenSize) + c.hiddenSize;
    expect(n).toBe(1543714304);
  });
});

describe("weights", () => {
  test("sharded index loads the same weights", () => {
    const dir = join(tmp, "sharded");
    mkdirSync(dir);
    copyFileSync(join(GOLDEN_MODEL, "config.json"), join(dir, "config.json"));
    torch.scope(() => {
      const sd = torch.safetensors.loadFile(join(GOLDEN_MODEL, "model.safetensors"));
      const names = Object.keys(sd).sort();
      const half = Math.ceil(names.length / 2);
      const shards = [names.slice(0, half), names.slice(half)];
      const weightMap: Record<string, string> = {};
      shards.forEach((ns, i) => {
        const file = `model-0000${i + 1}-of-00002.safetensors`;
        torch.safetensors.saveFile(join(dir, file), Object.fromEntries(ns.map((n) => [n, sd[n]])));
        for (const n of ns) weightMap[n] = file;
      });
      writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
      const a = fromFolder(GOLDEN_MODEL);
      const b = fromFolder(dir);
      const sa = a.stateDict();
      const sb = b.stateDict();
      expect(Object.keys(sb).sort()).toEqual(names);
      for (const n of names) expect(sa[n].equal(sb[n])).toBe(true);
      a.dispose();
      b.dispose();
    });
  });

  test("strict: a missing key, an unknown key or a wrong shape is a clear error", () => {
    const variants: [string, (sd: Record<string, Tensor>) => void, RegExp][] = [
      ["missing", (sd) => delete sd["model.norm.weight"], /missing key\(s\): model\.norm\.weight/],
      ["unexpected", (sd) => (sd["model.layers.9.mlp.up_proj.weight"] = torch.zeros([2])), /unexpected key\(s\): model\.layers\.9\.mlp\.up_proj\.weight/],
      ["shape", (sd) => (sd["model.norm.weight"] = torch.ones([65])), /size mismatch.*model\.norm\.weight: checkpoint \[65\] vs model \[64\]/],
    ];
    for (const [name, edit, re] of variants) {
      const dir = join(tmp, `strict-${name}`);
      mkdirSync(dir);
      copyFileSync(join(GOLDEN_MODEL, "config.json"), join(dir, "config.json"));
      torch.scope(() => {
        const sd = torch.safetensors.loadFile(join(GOLDEN_MODEL, "model.safetensors"));
        edit(sd);
        torch.safetensors.saveFile(join(dir, "model.safetensors"), sd);
      });
      expect(() => fromFolder(dir)).toThrow(re);
    }
    expect(() => fromFolder(join(tmp, "nowhere"))).toThrow(/no config\.json/);
  });

  test("a tied checkpoint that carries lm_head.weight loads (ignored, as transformers does)", () => {
    const dir = join(tmp, "tied-with-head");
    mkdirSync(dir);
    copyFileSync(join(GOLDEN_MODEL, "config.json"), join(dir, "config.json"));
    torch.scope(() => {
      const sd = torch.safetensors.loadFile(join(GOLDEN_MODEL, "model.safetensors"));
      sd["lm_head.weight"] = sd["model.embed_tokens.weight"].clone();
      torch.safetensors.saveFile(join(dir, "model.safetensors"), sd);
    });
    const m = fromFolder(dir);
    expect(m.lm_head.weight).toBe(m.model.embed_tokens.weight);
    expect(Object.keys(m.stateDict())).not.toContain("lm_head.weight");
    m.dispose();
  });

  test("untied config: lm_head.weight is its own parameter and required", () => {
    const dir = join(tmp, "untied");
    mkdirSync(dir);
    const cfg = JSON.parse(readFileSync(join(GOLDEN_MODEL, "config.json"), "utf8"));
    cfg.tie_word_embeddings = false;
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    symlinkSync(join(GOLDEN_MODEL, "model.safetensors"), join(dir, "model.safetensors"));
    expect(() => fromFolder(dir)).toThrow(/missing key\(s\): lm_head\.weight/);
    torch.scope(() => {
      const sd = torch.safetensors.loadFile(join(GOLDEN_MODEL, "model.safetensors"));
      sd["lm_head.weight"] = sd["model.embed_tokens.weight"].mul(2);
      rmSync(join(dir, "model.safetensors"));
      torch.safetensors.saveFile(join(dir, "model.safetensors"), sd);
    });
    const m = fromFolder(dir);
    expect(m.lm_head.weight).not.toBe(m.model.embed_tokens.weight);
    expect(m.parameters().length).toBe(27);
    expect(Object.keys(m.stateDict())).toContain("lm_head.weight");
    m.dispose();
  });

  test("checkpoint dtype, or the one asked for; from the Hub cache by id (offline)", async () => {
    const cache = join(tmp, "hub");
    const snap = join(cache, "models--golden--qwen2-tiny", "snapshots", "0123456789abcdef0123456789abcdef01234567");
    mkdirSync(snap, { recursive: true });
    mkdirSync(join(cache, "models--golden--qwen2-tiny", "refs"));
    writeFileSync(join(cache, "models--golden--qwen2-tiny", "refs", "main"), "0123456789abcdef0123456789abcdef01234567");
    const cfg = JSON.parse(readFileSync(join(GOLDEN_MODEL, "config.json"), "utf8"));
    cfg.dtype = "bfloat16";
    writeFileSync(join(snap, "config.json"), JSON.stringify(cfg));
    writeFileSync(join(snap, "generation_config.json"), JSON.stringify({ eos_token_id: [151645, 151643], do_sample: true, top_p: 0.8 }));
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) writeFileSync(join(snap, f), "{}");
    symlinkSync(join(GOLDEN_MODEL, "model.safetensors"), join(snap, "model.safetensors"));
    const m = await fromPretrained("golden/qwen2-tiny", { cacheDir: cache, offline: true });
    expect(m.dtype).toBe("bfloat16");
    expect(m.model.layers.at(1).mlp.down_proj.weight.dtype).toBe("bfloat16");
    expect(m.generationConfig).toMatchObject({ eosTokenIds: [151645, 151643], doSample: true, topP: 0.8 });
    const f = await fromPretrained("golden/qwen2-tiny", { cacheDir: cache, offline: true, dtype: "float32" });
    expect(f.dtype).toBe("float32");
    const ids = torch.tensor([gold.input_ids], { dtype: "int64" });
    torch.scope(() => {
      const lb = torch.noGrad(() => m.forward({ inputIds: ids }).logits!);
      const lf = torch.noGrad(() => f.forward({ inputIds: ids }).logits!);
      expect(lb.dtype).toBe("bfloat16");
      expect(relErr(lb.select(0, 0).select(0, 36).float().tolist(), gold.logits_last_row)).toBeLessThan(0.05);
      expect(relErr(lf.select(0, 0).select(0, 36).tolist(), gold.logits_last_row)).toBeLessThan(1e-5);
    });
    ids.dispose();
    m.dispose();
    f.dispose();
    await expect(fromPretrained("golden/absent", { cacheDir: cache, offline: true })).rejects.toThrow(/models--golden--absent/);
  });
});

describe("KV cache, padding, hidden states", () => {
  let m: Qwen2ForCausalLM;
  beforeAll(() => {
    m = fromFolder(GOLDEN_MODEL).eval();
  });
  afterAll(() => m.dispose());

  test("KV-cache decoding equals recomputing the full sequence at every step", () => {
    const live = torch.liveTensors();
    torch.noGrad(() =>
      torch.scope(() => {
        const ids = [5, 77, 300, 12, 901, 44, 3];
        const cache = new KVCache(2);
        let seq = [...ids];
        let step = torch.tensor([ids], { dtype: "int64" });
        for (let i = 0; i < 10; i++) {
          const cached = torch.scope(() => m.forward({ inputIds: step, pastKeyValues: cache }).logits!.select(1, -1 + step.shape[1]));
          const full = torch.scope(() => m.forward({ inputIds: torch.tensor([seq], { dtype: "int64" }) }).logits!.select(1, seq.length - 1));
          expect(cache.length).toBe(seq.length);
          expect(maxAbsDiff(cached, full)).toBeLessThan(1e-5);
          // a varied continuation (not the argmax, which repeats on this random model)
          const next = Number(full.argsort(-1, true).select(1, i % 5).item());
          seq.push(next);
          step = torch.tensor([[next]], { dtype: "int64" });
        }
        cache.dispose();
      }),
    );
    // generate() (cache) = naive greedy by full recomputation
    const prompt = [[9, 8, 7, 600, 1000, 2]];
    const gen = m.generate(prompt, { maxNewTokens: 6, eosTokenIds: [] })[0];
    const naive: number[] = [];
    const seq = [...prompt[0]];
    for (let i = 0; i < 6; i++) {
      const next = torch.noGrad(() => torch.scope(() => Number(m.forward({ inputIds: torch.tensor([seq], { dtype: "int64" }) }).logits!.select(1, seq.length - 1).argmax(-1).item())));
      naive.push(next);
      seq.push(next);
    }
    expect(gen).toEqual(naive);
    expect(torch.liveTensors()).toBe(live);
  });

  test("chunked prefill through the cache (several new tokens after a cached prefix)", () => {
    torch.noGrad(() =>
      torch.scope(() => {
        const ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], { dtype: "int64" });
        const full = m.forward({ inputIds: ids }).logits!;
        const cache = new KVCache(2);
        const a = m.forward({ inputIds: ids.narrow(1, 0, 4), pastKeyValues: cache }).logits!;
        const b = m.forward({ inputIds: ids.narrow(1, 4, 6), pastKeyValues: cache }).logits!;
        expect(maxAbsDiff(torch.cat([a, b], 1), full)).toBeLessThan(1e-5);
        cache.dispose();
      }),
    );
  });

  test("a padded batch of two sequences gives each the logits it has alone (left and right padding)", () => {
    torch.noGrad(() =>
      torch.scope(() => {
        const a = [11, 22, 33, 44, 55, 66, 77, 88, 99];
        const b = [500, 600, 700, 800];
        const alone = (s: number[]) => m.forward({ inputIds: torch.tensor([s], { dtype: "int64" }) }).logits!.select(0, 0);
        const la = alone(a);
        const lb = alone(b);
        const pad = 0;
        const n = a.length - b.length;
        for (const side of ["left", "right"] as const) {
          const rowB = side === "left" ? [...Array(n).fill(pad), ...b] : [...b, ...Array(n).fill(pad)];
          const maskB = side === "left" ? [...Array(n).fill(0), ...b.map(() => 1)] : [...b.map(() => 1), ...Array(n).fill(0)];
          const ids = torch.tensor([a, rowB], { dtype: "int64" });
          const mask = torch.tensor([a.map(() => 1), maskB], { dtype: "int64" });
          const out = m.forward({ inputIds: ids, attentionMask: mask }).logits!;
          expect(maxAbsDiff(out.select(0, 0), la)).toBeLessThan(1e-5);
          const realB = out.select(0, 1).narrow(0, side === "left" ? n : 0, b.length);
          expect(maxAbsDiff(realB, lb)).toBeLessThan(1e-5);
          expect(out.isfinite().all().item()).toBe(1);
        }
      }),
    );
  });

  test("generate on a left-padded batch equals each row alone; right padding is refused", () => {
    const a = [3, 14, 15, 92, 65, 35];
    const b = [27, 18, 28];
    const pa = m.generate([a], { maxNewTokens: 5, eosTokenIds: [] })[0];
    const pb = m.generate([b], { maxNewTokens: 5, eosTokenIds: [] })[0];
    const ids = torch.tensor([a, [0, 0, 0, ...b]], { dtype: "int64" });
    const mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]], { dtype: "int64" });
    expect(m.generate(ids, { maxNewTokens: 5, eosTokenIds: [], attentionMask: mask })).toEqual([pa, pb]);
    // with a repetition penalty too (padding is not "present")
    const ra = m.generate([a], { maxNewTokens: 5, eosTokenIds: [], repetitionPenalty: 1.3 })[0];
    const rb = m.generate([b], { maxNewTokens: 5, eosTokenIds: [], repetitionPenalty: 1.3 })[0];
    expect(m.generate(ids, { maxNewTokens: 5, eosTokenIds: [], attentionMask: mask, repetitionPenalty: 1.3 })).toEqual([ra, rb]);
    const right = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], { dtype: "int64" });
    expect(() => m.generate(ids, { maxNewTokens: 2, attentionMask: right })).toThrow(/left-padded/);
    torch.dispose([ids, mask, right]);
  });

  test("EOS stops a row (EOS included); the other row goes on", () => {
    const first = m.generate([[3, 14, 15]], { maxNewTokens: 4, eosTokenIds: [] })[0];
    const stop = first[1];
    const out = m.generate([[3, 14, 15]], { maxNewTokens: 4, eosTokenIds: [stop] })[0];
    expect(out).toEqual(first.slice(0, first.indexOf(stop) + 1));
    expect(m.generate([[3, 14, 15]], { maxNewTokens: 0 })).toEqual([[]]);
  });

  test("hidden states only (no lm_head), all layers' hidden states, position ids", () => {
    torch.noGrad(() =>
      torch.scope(() => {
        const ids = torch.tensor([[4, 8, 15, 16, 23, 42]], { dtype: "int64" });
        const full = m.forward({ inputIds: ids, outputHiddenStates: true });
        const hid = m.forward({ inputIds: ids, computeLogits: false });
        expect(hid.logits).toBeNull();
        expect(hid.hiddenStates.shape).toEqual([1, 6, 64]);
        expect(hid.hiddenStates.equal(full.hiddenStates)).toBe(true);
        expect(full.allHiddenStates!.length).toBe(4);
        expect(full.allHiddenStates![3].equal(full.hiddenStates)).toBe(true);
        // lm_head of the final hidden states = the logits
        expect(maxAbsDiff(torch.F.linear(hid.hiddenStates, m.model.embed_tokens.weight), full.logits!)).toBeLessThan(1e-6);
        const last = m.forward({ inputIds: ids, logitsToKeep: 1 }).logits!;
        expect(last.shape).toEqual([1, 1, 1024]);
        expect(maxAbsDiff(last.select(1, 0), full.logits!.select(1, 5))).toBeLessThan(1e-6);
        // explicit positions 0..T-1 = the default; RoPE is relative: a constant shift changes nothing, a gap does
        const pos = m.forward({ inputIds: ids, positionIds: torch.arange(6) }).logits!;
        expect(pos.equal(full.logits!)).toBe(true);
        const shifted = m.forward({ inputIds: ids, positionIds: torch.arange(6).add(3).unsqueeze(0) }).logits!;
        expect(maxAbsDiff(shifted, full.logits!)).toBeLessThan(1e-5);
        const gap = m.forward({ inputIds: ids, positionIds: torch.tensor([[0, 1, 2, 3, 4, 40]], { dtype: "int64" }) }).logits!;
        expect(maxAbsDiff(gap.narrow(1, 0, 5), full.logits!.narrow(1, 0, 5))).toBeLessThan(1e-6);
        expect(maxAbsDiff(gap, full.logits!)).toBeGreaterThan(1e-4);
        expect(() => m.forward({ inputIds: ids, attentionMask: torch.ones([1, 5], { dtype: "int64" }) })).toThrow(/attentionMask must be \[1, 6\]/);
      }),
    );
  });
});

describe("training", () => {
  test("loss falls over a few AdamW steps, nothing leaks; freeze()/unfreeze()", () => {
    const m = fromFolder(GOLDEN_MODEL).train();
    const ids = torch.tensor([gold.input_ids.slice(0, 20)], { dtype: "int64" });
    const opt = new torch.AdamW(m.parameters(), { lr: 1e-2 });
    const losses: number[] = [];
    let live = 0;
    for (let i = 0; i < 6; i++) {
      losses.push(
        torch.scope(() => {
          opt.zeroGrad();
          const { loss } = m.forward({ inputIds: ids, labels: ids });
          loss!.backward();
          opt.step();
          return loss!.item();
        }),
      );
      if (i === 1) live = torch.liveTensors();
      if (i > 1) expect(torch.liveTensors()).toBe(live);
    }
    expect(losses[5]).toBeLessThan(losses[0] - 0.5);
    m.freeze();
    expect(m.parameters().every((p) => !p.requiresGrad)).toBe(true);
    const r = torch.scope(() => m.forward({ inputIds: ids, labels: ids }).loss!.requiresGrad);
    expect(r).toBe(false);
    m.unfreeze();
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
    ids.dispose();
    m.dispose();
  });

  test("loss = transformers' ForCausalLMLoss: shifted, -100 ignored, mean", () => {
    torch.scope(() => {
      const logits = torch.randn([2, 4, 7]);
      const labels = torch.tensor([[1, 2, -100, 3], [4, -100, 5, 6]], { dtype: "int64" });
      const loss = causalLmLoss(logits, labels).item();
      const lp = logits.logSoftmax(-1);
      // positions t predict labels[t+1]: (0,0)->2, (0,2)->3, (1,1)->5, (1,2)->6
      const pairs: [number, number, number][] = [[0, 0, 2], [0, 2, 3], [1, 1, 5], [1, 2, 6]];
      const ref = -pairs.reduce((s, [b, t, y]) => s + lp.select(0, b).select(0, t).select(0, y).item(), 0) / pairs.length;
      expect(Math.abs(loss - ref)).toBeLessThan(1e-5);
    });
  });
});

describe("sampling (transformers' logits processors)", () => {
  test("top-k, top-p, repetition penalty", () => {
    torch.scope(() => {
      const s = torch.tensor([[1, 3, 2, -1, 0.5]]);
      expect(topKFilter(s, 2).tolist()).toEqual([[-Infinity, 3, 2, -Infinity, -Infinity]]);
      // softmax of [1,3,2,-1,0.5] ~ [.086,.636,.234,.012,.052]: top-p .8 keeps {3, 2}, .6 keeps {3}
      expect(topPFilter(s, 0.8).tolist()).toEqual([[-Infinity, 3, 2, -Infinity, -Infinity]]);
      expect(topPFilter(s, 0.6).tolist()).toEqual([[-Infinity, 3, -Infinity, -Infinity, -Infinity]]);
      expect(topPFilter(s, 1e-9).tolist()).toEqual([[-Infinity, 3, -Infinity, -Infinity, -Infinity]]);
      const seq = torch.tensor([[1, 3, 3, 0]], { dtype: "int64" });
      expect(repetitionPenalty(s, seq, null, 2).tolist()).toEqual([[0.5, 1.5, 2, -2, 0.5]]);
      const mask = torch.tensor([[1, 1, 1, 0]], { dtype: "int64" }); // id 0 is padding: not penalised
      expect(repetitionPenalty(s, seq, mask, 2).tolist()).toEqual([[1, 1.5, 2, -2, 0.5]]);
    });
  });

  test("sampling is seeded; top-k 1 is greedy; bad options are errors", () => {
    const m = fromFolder(GOLDEN_MODEL);
    const p = [[7, 7, 100, 200]];
    torch.manualSeed(1);
    const s1 = m.generate(p, { maxNewTokens: 6, doSample: true, temperature: 1.5, eosTokenIds: [] });
    torch.manualSeed(1);
    const s2 = m.generate(p, { maxNewTokens: 6, doSample: true, temperature: 1.5, eosTokenIds: [] });
    expect(s1).toEqual(s2);
    const greedy = m.generate(p, { maxNewTokens: 6, eosTokenIds: [] });
    expect(m.generate(p, { maxNewTokens: 6, doSample: true, topK: 1, eosTokenIds: [] })).toEqual(greedy);
    expect(m.generate(p, { maxNewTokens: 6, doSample: true, topP: 1e-6, eosTokenIds: [] })).toEqual(greedy);
    expect(() => m.generate(p, { doSample: true, temperature: 0 })).toThrow(/temperature/);
    expect(() => m.generate(p, { topP: 1.5 })).toThrow(/topP/);
    expect(m.training).toBe(true); // generate restores the training flags
    m.dispose();
  });
});

describe("host round trips (generate, padded forward)", () => {
  let m: Qwen2ForCausalLM;
  beforeAll(() => {
    m = fromFolder(GOLDEN_MODEL).eval();
  });
  afterAll(() => m.dispose());

  // Three left-padded rows. With repetition penalty 2 the golden model's greedy tokens vary:
  // row 0: 989 998 337 ..., row 1: 842 926 314 ... (no 337 or 55 in 20 tokens), row 2: 213 577 ... 390 55 ...;
  // without it, greedy repeats: row 0 35 35 194 ..., row 1 842 (x8) 1009 ..., row 2 213 ... (12 tokens).
  const rows = [[3, 14, 15, 92, 65, 35], [27, 18, 28], [7, 7, 100, 200, 5]];
  const leftIds = rows.map((r) => [...Array(6 - r.length).fill(0), ...r]);
  const leftMask = rows.map((r) => [...Array(6 - r.length).fill(0), ...r.map(() => 1)]);

  /** Greedy by full recomputation, one row alone: the reference for every generate below. */
  function naiveGreedy(prompt: number[], n: number, eos: number[], penalty: number): number[] {
    const seq = [...prompt];
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const next = torch.noGrad(() =>
        torch.scope(() => {
          const ids = torch.tensor([seq], { dtype: "int64" });
          let s = m.forward({ inputIds: ids }).logits!.select(1, seq.length - 1);
          if (penalty !== 1) s = repetitionPenalty(s, ids, null, penalty);
          return Number(s.argmax(-1).item());
        }),
      );
      out.push(next);
      seq.push(next);
      if (eos.includes(next)) break;
    }
    return out;
  }

  test("rows that stop at their EOS at different steps (before and after an 8-step check) = each row alone", () => {
    const eos = [337, 55];
    const want = rows.map((r) => naiveGreedy(r, 20, eos, 2));
    expect(want.map((w) => w.length)).toEqual([3, 20, 10]); // row 0 stops at step 2, row 2 at step 9, row 1 never
    const opts = { maxNewTokens: 20, eosTokenIds: eos, repetitionPenalty: 2 };
    expect(m.generate(leftIds, { ...opts, attentionMask: leftMask })).toEqual(want);
    torch.scope(() => expect(m.generate(torch.tensor(leftIds, { dtype: "int64" }), { ...opts, attentionMask: torch.tensor(leftMask, { dtype: "int64" }) })).toEqual(want));
    // Without the penalty too (finished rows are fed padding, never their junk).
    const plain = rows.map((r) => naiveGreedy(r, 12, [35, 1009], 1));
    expect(plain.map((w) => w.length)).toEqual([1, 9, 12]); // row 0 stops at once, row 1 after the first 8-step check, row 2 never
    expect(m.generate(leftIds, { maxNewTokens: 12, eosTokenIds: [35, 1009], attentionMask: leftMask })).toEqual(plain);
  });

  test("prefill in length buckets (prefillPadShare 0 and 0.1), decode together: each row alone", () => {
    const eos = [337, 55];
    const want = rows.map((r) => naiveGreedy(r, 20, eos, 2));
    for (const share of [0, 0.1]) expect({ share, out: m.generate(leftIds, { maxNewTokens: 20, eosTokenIds: eos, repetitionPenalty: 2, attentionMask: leftMask, prefillPadShare: share }) }).toEqual({ share, out: want });
    // Buckets really run: a spy sees one forward per bucket before the first decode step (rows of 6, 3, 5
    // tokens: share 0 makes three buckets; 0.1 puts 6 and 5 together, and 0.4 all three: one prefill).
    const seen: number[][] = [];
    const forward = m.forward.bind(m);
    m.forward = (args) => {
      seen.push([...args.inputIds!.shape]);
      return forward(args);
    };
    try {
      m.generate(leftIds, { maxNewTokens: 2, eosTokenIds: [], attentionMask: leftMask, prefillPadShare: 0 });
      expect(seen).toEqual([[1, 6], [1, 5], [1, 3], [3, 1]]);
      seen.length = 0;
      m.generate(leftIds, { maxNewTokens: 2, eosTokenIds: [], attentionMask: leftMask, prefillPadShare: 0.1 });
      expect(seen).toEqual([[2, 6], [1, 3], [3, 1]]);
      seen.length = 0;
      m.generate(leftIds, { maxNewTokens: 2, eosTokenIds: [], attentionMask: leftMask, prefillPadShare: 0.4 });
      expect(seen).toEqual([[3, 6], [3, 1]]);
    } finally {
      m.forward = forward;
    }
  });

  test("a generate of N tokens reads the device at most ceil(N / 8) + 2 times, whatever the batch size", () => {
    const bound = (n: number) => Math.ceil(n / 8) + 2;
    for (const n of [1, 7, 8, 9, 16, 17, 30]) {
      const per: number[] = [];
      for (const b of [1, 3, 8]) {
        const ids = Array.from({ length: b }, (_, i) => leftIds[i % 3]!);
        const mask = Array.from({ length: b }, (_, i) => leftMask[i % 3]!);
        // An EOS no row produces: no early exit, so every "all finished?" check is made.
        const host = torch.countSyncs(() => m.generate(ids, { maxNewTokens: n, eosTokenIds: [1023], attentionMask: mask }));
        expect(host.result.every((r) => r.length === n)).toBe(true);
        const dev = torch.countSyncs(() => torch.scope(() => m.generate(torch.tensor(ids, { dtype: "int64" }), { maxNewTokens: n, eosTokenIds: [1023], attentionMask: torch.tensor(mask, { dtype: "int64" }) })));
        const none = torch.countSyncs(() => m.generate(ids, { maxNewTokens: n, eosTokenIds: [], attentionMask: mask }));
        // One final transfer, one check per 8 steps (none after the last); a Tensor mask adds one read for its checks.
        expect({ n, b, host: host.syncs, dev: dev.syncs, none: none.syncs }).toEqual({ n, b, host: 1 + Math.floor((n - 1) / 8), dev: 2 + Math.floor((n - 1) / 8), none: 1 });
        expect(dev.syncs).toBeLessThanOrEqual(bound(n));
        per.push(host.syncs);
      }
      expect(new Set(per).size).toBe(1);
    }
  });

  test("early exit: once every row has finished, decoding stops at the next 8-step check", () => {
    const calls = { n: 0 };
    const forward = m.forward.bind(m);
    m.forward = (args) => {
      calls.n++;
      return forward(args);
    };
    try {
      // Every row's first token is an EOS.
      const r = torch.countSyncs(() => m.generate(leftIds, { maxNewTokens: 40, eosTokenIds: [989, 842, 213], repetitionPenalty: 2, attentionMask: leftMask }));
      expect(r.result).toEqual([[989], [842], [213]]);
      expect(calls.n).toBe(8); // steps 0..7, then the check
      expect(r.syncs).toBe(2);
    } finally {
      m.forward = forward;
    }
  });

  test("attentionMask as host arrays: checked like a Tensor (left padding, shape)", () => {
    expect(() => m.generate(leftIds, { maxNewTokens: 2, attentionMask: [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 1]] })).toThrow(/left-padded/);
    expect(() => m.generate(leftIds, { maxNewTokens: 2, attentionMask: leftMask.slice(0, 2) })).toThrow(/must match/);
    expect(() => m.generate(leftIds, { maxNewTokens: 2, attentionMask: leftMask.map((r) => r.slice(1)) })).toThrow(/must match/);
  });

  test("forward with padded given reads nothing back and computes what the mask read would", () => {
    torch.noGrad(() =>
      torch.scope(() => {
        const ids = torch.tensor([[11, 22, 33, 44, 55], [500, 600, 700, 0, 0]], { dtype: "int64" });
        const right = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], { dtype: "int64" });
        const ones = torch.onesLike(right);
        const read = torch.countSyncs(() => m.forward({ inputIds: ids, attentionMask: right }).logits!);
        const told = torch.countSyncs(() => m.forward({ inputIds: ids, attentionMask: right, padded: true }).logits!);
        expect([read.syncs, told.syncs]).toEqual([1, 0]);
        expect(maxAbsDiff(told.result, read.result)).toBe(0);
        const noPad = torch.countSyncs(() => m.forward({ inputIds: ids, attentionMask: ones, padded: false }).logits!);
        expect(noPad.syncs).toBe(0);
        expect(maxAbsDiff(noPad.result, m.forward({ inputIds: ids }).logits!)).toBe(0);
      }),
    );
  });
});

describe("--model tiny", () => {
  test("2 layers, hidden 64, real vocabulary, tied, deterministic by seed; with the Qwen tokenizer", async () => {
    const live = torch.liveTensors();
    const a = Qwen2ForCausalLM.tiny({ seed: 3 });
    const b = await fromPretrained("tiny", { });
    const c = Qwen2ForCausalLM.tiny({ seed: 3 });
    expect(a.config).toEqual(TINY_CONFIG);
    expect(a.model.embed_tokens.weight.shape).toEqual([151936, 64]);
    expect(a.lm_head.weight).toBe(a.model.embed_tokens.weight);
    expect(a.model.layers.length).toBe(2);
    expect(a.hiddenSize).toBe(64);
    expect(a.model.embed_tokens.weight.equal(c.model.embed_tokens.weight)).toBe(true);
    expect(a.model.layers.at(1).self_attn.k_proj.weight.equal(c.model.layers.at(1).self_attn.k_proj.weight)).toBe(true);
    expect(a.model.embed_tokens.weight.equal(b.model.embed_tokens.weight)).toBe(false);
    const tok = QwenTokenizer.tiny();
    const ids = tok.encodeChat([{ role: "user", content: "Input:\n0 1\n1 0\n" }], { addGenerationPrompt: true });
    const input = torch.tensor([ids], { dtype: "int64" });
    const t0 = performance.now();
    const h = torch.noGrad(() => torch.scope(() => a.forward({ inputIds: input, computeLogits: false }).hiddenStates.mean(1)));
    const hiddenMs = performance.now() - t0;
    expect(h.shape).toEqual([1, 64]);
    expect(torch.scope(() => h.isfinite().all().item())).toBe(1);
    const gen = a.generate(input, { maxNewTokens: 4 });
    expect(gen[0].length).toBeGreaterThan(0);
    expect(gen[0].every((i) => i >= 0 && i < 151936)).toBe(true);
    expect(typeof tok.decode(gen[0])).toBe("string");
    expect(hiddenMs).toBeLessThan(1000);
    torch.dispose([h, input]);
    a.dispose();
    b.dispose();
    c.dispose();
    expect(torch.liveTensors()).toBe(live);
  });
});

// On a CUDA machine: the fused SDPA path of LibTorch 2.x against the same golden, and bf16 training.
if (!torch.cuda.isAvailable()) console.warn("test/qwen2: CUDA tests skipped (no CUDA on this machine)");
describe.skipIf(!torch.cuda.isAvailable())("CUDA", () => {
  test("golden parity on the GPU (float32; fused attention kernels)", () => {
    const m = fromFolder(GOLDEN_MODEL, { device: "cuda" });
    const ids = torch.tensor([gold.input_ids], { dtype: "int64", device: "cuda" });
    torch.scope(() => {
      const r = m.train().forward({ inputIds: ids, labels: ids });
      expect(Math.abs(r.loss!.item() - gold.loss) / gold.loss).toBeLessThan(1e-5);
      r.loss!.backward();
      for (const [n, p] of m.namedParameters()) expect(Math.abs(p.grad!.double().norm().item() - gold.grad_norms[n]) / gold.grad_norms[n]).toBeLessThan(1e-3);
      const l = torch.noGrad(() => m.eval().forward({ inputIds: ids }).logits!.select(0, 0).cpu());
      expect(relErr(l.select(0, 36).tolist(), gold.logits_last_row)).toBeLessThan(1e-4);
    });
    expect(m.generate(ids, { maxNewTokens: 8, eosTokenIds: [] })).toEqual([gold.greedy_next8]);
    ids.dispose();
    m.dispose();
  });

  test("bf16: padded batch = alone (bf16 tolerance), KV cache decoding, finite gradients", () => {
    const m = fromFolder(GOLDEN_MODEL, { device: "cuda", dtype: "bfloat16" }).eval();
    torch.noGrad(() =>
      torch.scope(() => {
        const a = [11, 22, 33, 44, 55, 66, 77, 88];
        const b = [500, 600, 700];
        const la = m.forward({ inputIds: torch.tensor([a], { dtype: "int64", device: "cuda" }) }).logits!.select(0, 0);
        const lb = m.forward({ inputIds: torch.tensor([b], { dtype: "int64", device: "cuda" }) }).logits!.select(0, 0);
        const ids = torch.tensor([a, [0, 0, 0, 0, 0, ...b]], { dtype: "int64", device: "cuda" });
        const mask = torch.tensor([a.map(() => 1), [0, 0, 0, 0, 0, 1, 1, 1]], { dtype: "int64", device: "cuda" });
        const out = m.forward({ inputIds: ids, attentionMask: mask }).logits!;
        expect(maxAbsDiff(out.select(0, 0), la)).toBeLessThan(0.05);
        expect(maxAbsDiff(out.select(0, 1).narrow(0, 5, 3), lb)).toBeLessThan(0.05);
        expect(out.isfinite().all().item()).toBe(1);
      }),
    );
    const gen = m.generate([[3, 14, 15, 92]], { maxNewTokens: 6, eosTokenIds: [] });
    expect(gen[0].length).toBe(6);
    m.train();
    torch.scope(() => {
      const x = torch.randint(0, 1024, [2, 64], { device: "cuda" });
      const { loss } = m.forward({ inputIds: x, labels: x });
      loss!.backward();
      expect(Number.isFinite(loss!.item())).toBe(true);
      expect(torch.gradNorm(m.parameters())).toBeGreaterThan(0);
    });
    m.dispose();
  });
});
