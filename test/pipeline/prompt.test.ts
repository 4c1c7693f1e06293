// HybridPrompter (docs/pipeline.md, "Prompt"): the prompt never shows the example's own output; truncation drops whole
// demonstrations from the end and never the test input; the hint is Qwen's greedy continuation; p is the
// mean of the hidden states from the test input's end onward, with gradient into Qwen exactly when Qwen
// trains; the frozen cache; embedBatch (one generate and one padded forward for many examples, host reads
// that do not grow with the batch). Plus scripts/prompt.ts as a process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Example, type Grid, type Task, context, loadTask, testExamples } from "../../src/arc";
import { applyLora, loraParameters } from "../../src/models/lora";
import { Qwen2ForCausalLM } from "../../src/models/qwen2";
import { HybridPrompter, INTRO, type PrompterConfig, QUESTION, gridText } from "../../src/pipeline/system/prompt";
import { QwenTokenizer } from "../../src/tokenizer";
import { type System, buildSystem } from "../../src/pipeline/system/system";
import * as torch from "../../src/torch";
import { FIXTURE_ARC } from "../helpers/fixtures";
import { tinySystemConfig } from "../helpers/system";

const ROOT = join(import.meta.dir, "../..");

const config = tinySystemConfig;

const grid = (h: number, w: number, f: (i: number, j: number) => number): Grid => Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => f(i, j)));

/** A hand-made task: 4 train pairs of 2x3 grids (distinct outputs), one test pair. */
const HAND: Task = {
  id: "hand",
  train: [0, 1, 2, 3].map((k) => ({ input: grid(2, 3, (i, j) => (i + j + k) % 10), output: grid(2, 3, (i, j) => (i * j + 2 * k + 1) % 10) })),
  test: [{ input: grid(2, 3, (i, j) => (7 * i + j) % 10), output: grid(2, 3, () => 5) }],
};

/** The demonstration blocks of a prompt text: [k, input text, output text], in order. */
function demoBlocks(text: string): [number, string, string][] {
  return [...text.matchAll(/Example (\d+)\nInput:\n([0-9\n]+?)\nOutput:\n([0-9\n]+?)\n\n/g)].map((m) => [Number(m[1]), m[2]!, m[3]!]);
}

/** The test input block of a prompt text (the grid after "Test\nInput:\n"). */
function queryBlock(text: string): string | null {
  return /\nTest\nInput:\n([0-9\n]+?)\n\n/.exec(text)?.[1] ?? null;
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

let tasks: Task[];
let lora: System;

beforeAll(async () => {
  // From the fixture set: fractal3x3: 9x9 outputs; majority1x1 and countbars3x3: several train pairs share
  // one output (1x1, 3x3); colourmap3x3: small, same size; tile2x2: the output size changes.
  tasks = ["fractal3x3", "majority1x1", "countbars3x3", "colourmap3x3", "tile2x2"].map((id) => loadTask(join(FIXTURE_ARC, "training", `${id}.json`))); // throws when missing
  lora = await buildSystem(config());
});

describe("HybridPrompter: what the prompt shows", () => {
  test("real tasks: the shown demonstrations are exactly the other pairs, the query is the pair's input, its output never appears unless another pair has the same one", () => {
    let duplicates = 0;
    for (const task of tasks) {
      for (let i = 0; i < task.train.length; i++) {
        const ex: Example = { task, index: i };
        const b = lora.prompter.build(ex);
        const others = task.train.filter((_, j) => j !== i);
        expect(b.dropped).toBe(0); // all of these fit 2048 tokens
        expect(b.shown).toBe(others.length);
        // The demonstrations, in order, are the other pairs (numbered from 1), nothing else.
        const blocks = demoBlocks(b.text);
        expect(blocks).toEqual(others.map((p, k) => [k + 1, gridText(p.input), gridText(p.output)]));
        expect(count(b.text, "Output:")).toBe(others.length);
        expect(queryBlock(b.text)).toBe(gridText(task.train[i]!.input));
        // The held-out output: as an Output block only as often as other pairs have that very output.
        const own = gridText(task.train[i]!.output);
        const same = others.filter((p) => gridText(p.output) === own).length;
        expect(blocks.filter(([, , out]) => out === own).length).toBe(same);
        expect(count(b.text, `Output:\n${own}\n\n`)).toBe(same);
        duplicates += same;
        // The ids are the text's tokens (so the ids never hold the output either).
        expect(lora.tokenizer.decode(b.ids)).toBe(b.text);
        expect(lora.tokenizer.encode(b.text)).toEqual(b.ids);
        // queryEnd: right after the test input's block; the rest is the question and the assistant header.
        expect(lora.tokenizer.decode(b.ids.slice(0, b.queryEnd)).endsWith(`Test\nInput:\n${gridText(task.train[i]!.input)}\n\n`)).toBe(true);
        expect(lora.tokenizer.decode(b.ids.slice(b.queryEnd))).toBe(`${QUESTION}<|im_end|>\n<|im_start|>assistant\n`);
      }
    }
    expect(duplicates).toBeGreaterThan(0); // the duplicate case was exercised
  });

  test("a test pair: every train pair is shown, the query is the test input, the test output is absent", () => {
    for (const ex of testExamples(tasks)) {
      const b = lora.prompter.build(ex);
      const t = ex.task.test[ex.index]!;
      expect(demoBlocks(b.text)).toEqual(ex.task.train.map((p, k) => [k + 1, gridText(p.input), gridText(p.output)]));
      expect(queryBlock(b.text)).toBe(gridText(t.input));
      const own = gridText(t.output!);
      expect(count(b.text, `Output:\n${own}\n\n`)).toBe(ex.task.train.filter((p) => gridText(p.output) === own).length);
    }
  });

  test("layout: chat template, intro, demonstrations, test input, question", () => {
    const b = lora.prompter.build({ task: HAND, index: 3 });
    const demos = HAND.train.slice(0, 3).map((p, k) => `Example ${k + 1}\nInput:\n${gridText(p.input)}\nOutput:\n${gridText(p.output)}\n\n`).join("");
    expect(b.text).toBe(
      `<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n${INTRO}\n\n` +
        demos + `Test\nInput:\n${gridText(HAND.train[3]!.input)}\n\n${QUESTION}<|im_end|>\n<|im_start|>assistant\n`,
    );
    // Digits are single tokens: a 2x3 grid is 6 digit tokens and a newline.
    expect(lora.tokenizer.encode(gridText(HAND.train[0]!.input)).length).toBe(7);
  });
});

describe("HybridPrompter: truncation", () => {
  const hand: Example = { task: HAND, index: 3 };
  const blockText = (k: number) => {
    const p = HAND.train[k - 1]!;
    return `Example ${k}\nInput:\n${gridText(p.input)}\nOutput:\n${gridText(p.output)}\n\n`;
  };
  const prompter = (maxPromptTokens: number) => new HybridPrompter(lora.qwen, lora.tokenizer, { maxPromptTokens, hintTokens: 0, cache: false });

  test("whole demonstrations are dropped from the end; the test input is always kept", () => {
    const full = prompter(100000).build(hand);
    expect([full.shown, full.dropped]).toEqual([3, 0]);
    // Every demonstration block has the same length L here (same grid sizes, one-digit numbers).
    const L = lora.tokenizer.encode(blockText(1)).length;
    for (const k of [2, 3]) expect(lora.tokenizer.encode(blockText(k)).length).toBe(L);
    const fixed = full.ids.length - 3 * L; // head + test input + question
    const cases: [number, number][] = [
      [fixed + 3 * L, 3], [fixed + 3 * L - 1, 2], [fixed + 2 * L, 2], [fixed + 2 * L - 1, 1],
      [fixed + L, 1], [fixed + L - 1, 0], [fixed, 0], [fixed - 1, 0], [1, 0],
    ];
    for (const [budget, shown] of cases) {
      const b = prompter(budget).build(hand);
      expect({ budget, shown: b.shown, dropped: b.dropped }).toEqual({ budget, shown, dropped: 3 - shown });
      expect(b.ids.length).toBe(fixed + shown * L);
      if (budget >= fixed) expect(b.ids.length).toBeLessThanOrEqual(budget);
      // Whole blocks only: the first `shown` examples, complete, and nothing of the rest.
      expect(demoBlocks(b.text).map(([k]) => k)).toEqual(Array.from({ length: shown }, (_, k) => k + 1));
      for (let k = 1; k <= 3; k++) expect(b.text.includes(blockText(k))).toBe(k <= shown);
      expect(count(b.text, "Example ")).toBe(shown);
      expect(count(b.text, "Output:")).toBe(shown);
      // The test input is there even when it alone is over the budget.
      expect(queryBlock(b.text)).toBe(gridText(HAND.train[3]!.input));
      expect(b.text.endsWith(`${QUESTION}<|im_end|>\n<|im_start|>assistant\n`)).toBe(true);
      expect(lora.tokenizer.encode(b.text)).toEqual(b.ids);
      expect(b.queryEnd).toBe(b.ids.length - lora.tokenizer.encode(`${QUESTION}<|im_end|>\n<|im_start|>assistant\n`).length);
    }
  });

  test("a real task under a small budget: prefix of the demonstrations, test input kept; embed works past the budget", () => {
    const task = tasks[0]!; // fractal3x3: 3x3 -> 9x9
    const ex: Example = { task, index: 2 };
    const others = context(ex).demos;
    const whole = prompter(100000).build(ex);
    for (const budget of [whole.ids.length - 1, 400, 250, 150]) {
      const b = prompter(budget).build(ex);
      expect(b.shown + b.dropped).toBe(others.length);
      expect(b.dropped).toBeGreaterThan(0);
      expect(demoBlocks(b.text)).toEqual(others.slice(0, b.shown).map((p, k) => [k + 1, gridText(p.input), gridText(p.output)]));
      expect(queryBlock(b.text)).toBe(gridText(task.train[2]!.input));
      expect(b.ids.length).toBeLessThanOrEqual(budget);
    }
    const tiny = prompter(50).build(ex);
    expect(tiny.shown).toBe(0);
    expect(tiny.ids.length).toBeGreaterThan(50); // the test input alone does not fit, and stays
    expect(queryBlock(tiny.text)).toBe(gridText(task.train[2]!.input));
    torch.scope(() => {
      const r = prompter(50).embed(ex);
      expect(r.tokens).toBe(tiny.ids.length);
      expect([r.shown, r.dropped]).toEqual([0, others.length]);
      expect(r.p.shape).toEqual([64]);
    });
  });

  test("a task of 10,000 pairs: only the demonstrations up to the first that does not fit are tokenized", () => {
    const pair = HAND.train[0]!;
    const big: Example = { task: { ...HAND, id: "many-pairs", train: Array.from({ length: 10000 }, () => pair) }, index: 9999 };
    const tok = lora.tokenizer;
    let calls = 0;
    const counting = Object.create(tok, { encode: { value: (...a: Parameters<typeof tok.encode>) => (calls++, tok.encode(...a)) } });
    const pr = new HybridPrompter(lora.qwen, counting, { maxPromptTokens: 2048, hintTokens: 0, cache: false });
    calls = 0; // the constructor tokenizes the template's two parts
    const b = pr.build(big);
    expect(b.shown).toBeGreaterThan(0);
    expect(b.shown + b.dropped).toBe(9999);
    expect(b.ids.length).toBeLessThanOrEqual(2048);
    expect(calls).toBe(b.shown + 2); // the test input, each shown demonstration, and the first that did not fit
  });
});

describe("HybridPrompter: hint and p", () => {
  const ex = (): Example => ({ task: HAND, index: 1 });
  /** mean over positions from..end of Qwen's final hidden states for ids (no gradient). */
  const manualMean = (sys: System, ids: number[], from: number) =>
    torch.noGrad(() =>
      torch.scope(() => {
        const h = sys.qwen.forward({ inputIds: torch.tensor([ids], { dtype: "int64" }), computeLogits: false }).hiddenStates.select(0, 0);
        return h.narrow(0, from, ids.length - from).mean(0).tolist() as number[];
      }),
    );

  test("hintTokens 0: no hint; p is the mean over the question and the assistant header", () => {
    const pr = new HybridPrompter(lora.qwen, lora.tokenizer, { maxPromptTokens: 2048, hintTokens: 0, cache: false });
    const b = pr.build(ex());
    const got = torch.scope(() => {
      const r = pr.embed(ex());
      return { hint: r.hint, hintIds: r.hintIds, tokens: r.tokens, p: r.p.tolist() as number[] };
    });
    expect(got.hint).toBe("");
    expect(got.hintIds).toEqual([]);
    expect(got.tokens).toBe(b.ids.length);
    const want = manualMean(lora, b.ids, b.queryEnd);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got.p[i]! - want[i]!)).toBeLessThan(1e-5);
  });

  test("the hint is greedy generation on the prompt ids (minus EOS); p pools over it too", () => {
    const b = lora.prompter.build(ex());
    const eos = lora.qwen.generationConfig.eosTokenIds;
    const greedy = lora.qwen.generate([b.ids], { maxNewTokens: 4, eosTokenIds: eos })[0]!.filter((t) => !eos.includes(t));
    const got = torch.scope(() => {
      const r = lora.prompter.embed(ex());
      return { hint: r.hint, hintIds: r.hintIds, p: r.p.tolist() as number[] };
    });
    expect(got.hintIds).toEqual(greedy);
    expect(got.hintIds.length).toBe(4); // the random tiny model does not stop early
    expect(got.hint).toBe(lora.tokenizer.decode(greedy, { skipSpecialTokens: true }));
    const want = manualMean(lora, [...b.ids, ...greedy], b.queryEnd);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got.p[i]! - want[i]!)).toBeLessThan(1e-5);
  });

  test("an EOS ends the hint and is not part of it", () => {
    const b = lora.prompter.build(ex());
    const first = lora.qwen.generate([b.ids], { maxNewTokens: 1, eosTokenIds: [] })[0]![0]!;
    const saved = lora.qwen.generationConfig.eosTokenIds;
    lora.qwen.generationConfig.eosTokenIds = [...saved, first]; // the first greedy token is now an EOS
    try {
      const r = torch.scope(() => {
        const e = lora.prompter.embed(ex());
        return { hint: e.hint, hintIds: e.hintIds, p: e.p.tolist() as number[] };
      });
      expect(r.hintIds).toEqual([]);
      expect(r.hint).toBe("");
      const want = manualMean(lora, b.ids, b.queryEnd);
      for (let i = 0; i < want.length; i++) expect(Math.abs(r.p[i]! - want[i]!)).toBeLessThan(1e-5);
    } finally {
      lora.qwen.generationConfig.eosTokenIds = saved;
    }
  });
});

describe("HybridPrompter: gradient into Qwen", () => {
  const ex = (): Example => ({ task: HAND, index: 0 });
  const named = (sys: System, f: (n: string) => boolean) => sys.qwen.namedParameters().filter(([n]) => f(n));
  const gradAbsSum = (t: torch.Tensor) => torch.scope(() => t.grad?.abs().sum().item() ?? null);

  test("LoRA: p reaches lora_B (lora_A once B is non-zero), never the frozen base; no tensor leaks", async () => {
    const sys = await buildSystem(config({ hint_tokens: 2 }));
    expect(sys.prompter.config.cache).toBe(false);
    const A = named(sys, (n) => n.includes("lora_A"));
    const B = named(sys, (n) => n.includes("lora_B"));
    const base = named(sys, (n) => !n.includes("lora_"));
    expect(A.length).toBe(2 * 7);
    expect(B.length).toBe(2 * 7);
    const live = torch.liveTensors();
    const pass = () =>
      torch.scope(() => {
        const r = sys.prompter.embed(ex());
        expect(r.cached).toBe(false);
        expect(r.p.requiresGrad).toBe(true);
        expect(r.p.gradFn).not.toBe("");
        r.p.sum().backward();
        const out = { a: A.map(([, t]) => gradAbsSum(t)), b: B.map(([, t]) => gradAbsSum(t)), base: base.map(([, t]) => t.grad === null) };
        sys.qwen.zeroGrad();
        return out;
      });
    // lora_B starts at zero, so A's gradient (through B) is exactly zero at first; B's is not.
    const first = pass();
    for (const g of first.b) expect(g).toBeGreaterThan(0);
    for (const g of first.a) expect(g).toBe(0);
    expect(first.base.every(Boolean)).toBe(true);
    torch.noGrad(() => {
      for (const [, t] of B) torch.scope(() => t.normal_(0, 0.05));
    });
    const second = pass();
    for (const g of [...second.a, ...second.b]) expect(g).toBeGreaterThan(0);
    expect(second.base.every(Boolean)).toBe(true);
    expect(torch.liveTensors()).toBe(live);
  });

  test("full: p reaches Qwen's own weights", async () => {
    const sys = await buildSystem(config({ qwen_train: "full", hint_tokens: 0 }));
    expect(sys.prompter.config.cache).toBe(false);
    torch.scope(() => {
      const r = sys.prompter.embed(ex());
      expect(r.p.requiresGrad).toBe(true);
      r.p.sum().backward();
      expect(torch.gradNorm(sys.qwen.parameters())).toBeGreaterThan(0);
      const weights = named(sys, (n) => /layers\.\d+\..*weight$/.test(n) || n.endsWith("embed_tokens.weight") || n === "model.norm.weight");
      expect(weights.length).toBeGreaterThan(10);
      for (const [name, t] of weights) expect({ name, grad: (gradAbsSum(t) ?? 0) > 0 }).toEqual({ name, grad: true });
      sys.qwen.zeroGrad();
    });
  });

  test("frozen: no gradient; p is cached (same tensor, same hint) until clearCache", async () => {
    const sys = await buildSystem(config({ qwen_train: "frozen", hint_tokens: 3 }));
    expect(sys.prompter.config.cache).toBe(true);
    expect(sys.qwen.parameters().every((t) => !t.requiresGrad)).toBe(true);
    const live = torch.liveTensors();
    const r1 = torch.scope(() => {
      const r = sys.prompter.embed(ex());
      return { cached: r.cached, requiresGrad: r.p.requiresGrad, p: r.p.tolist() as number[], hint: r.hint, hintIds: r.hintIds };
    });
    expect(r1.cached).toBe(false);
    expect(r1.requiresGrad).toBe(false);
    expect(r1.hintIds.length).toBe(3);
    expect(torch.liveTensors()).toBe(live + 1); // the cached copy
    const r2 = sys.prompter.embed(ex());
    const r3 = torch.scope(() => sys.prompter.embed(ex()));
    expect(r2.cached).toBe(true);
    expect(r3.cached).toBe(true);
    expect(r3.p).toBe(r2.p); // the same tensor object
    expect(r2.p.requiresGrad).toBe(false);
    expect(r2.p.tolist()).toEqual(r1.p);
    expect([r2.hint, r2.hintIds]).toEqual([r1.hint, r1.hintIds]);
    expect(r2.tokens).toBe(sys.prompter.build(ex()).ids.length);
    expect(torch.liveTensors()).toBe(live + 1); // a scope does not free the cached p
    // Another example is another entry.
    torch.scope(() => expect(sys.prompter.embed({ task: HAND, index: 1 }).cached).toBe(false));
    expect(torch.liveTensors()).toBe(live + 2);
    sys.prompter.clearCache();
    expect(torch.liveTensors()).toBe(live);
    torch.scope(() => expect(sys.prompter.embed(ex()).cached).toBe(false));
    sys.prompter.clearCache();
  });
});

describe("HybridPrompter: batches (embedBatch)", () => {
  // Built here from the tiny model and tokenizer (LoRA adapters with dropout 0, lora_B randomised so
  // lora_A gets gradient too), independent of the system helper.
  let qwen: Qwen2ForCausalLM;
  let frozen: Qwen2ForCausalLM;
  const tok = () => QwenTokenizer.tiny();
  // One padded pass per batch (as on CUDA); length buckets are a test of their own below.
  const prompter = (q: Qwen2ForCausalLM, over: Partial<PrompterConfig> = {}) => new HybridPrompter(q, tok(), { maxPromptTokens: 2048, hintTokens: 4, cache: false, maxPadShare: 1, ...over });
  /** Examples of different prompt lengths: 9x9, 3x3, 2x3 grids and more or fewer demonstrations. */
  const examples = (): Example[] => [
    { task: tasks[0]!, index: 0 }, { task: tasks[3]!, index: 1 }, { task: HAND, index: 2 }, { task: tasks[4]!, index: 0 },
    { task: tasks[1]!, index: 0 }, { task: tasks[2]!, index: 1 }, { task: HAND, index: 0 }, { task: tasks[0]!, index: 2 },
  ];
  const list = (t: torch.Tensor) => torch.scope(() => t.detach().float().flatten().tolist() as number[]);
  /** max |a - b| / max |b|. */
  const relErr = (a: number[], b: number[]) => {
    expect(a.length).toBe(b.length);
    let d = 0;
    let n = 0;
    a.forEach((x, i) => {
      d = Math.max(d, Math.abs(x - b[i]!));
      n = Math.max(n, Math.abs(b[i]!));
    });
    return d / n;
  };

  beforeAll(() => {
    qwen = Qwen2ForCausalLM.tiny();
    applyLora(qwen, { rank: 8, alpha: 16, dropout: 0 });
    torch.manualSeed(5);
    torch.noGrad(() => {
      for (const [n, t] of qwen.namedParameters()) if (n.includes("lora_B")) torch.scope(() => t.normal_(0, 0.05));
    });
    frozen = Qwen2ForCausalLM.tiny().freeze();
  });
  afterAll(() => {
    qwen.dispose();
    frozen.dispose();
  });

  test("4 examples of different lengths: the hints and p's of embed() one at a time; the padding accounted", () => {
    const pr = prompter(qwen);
    const ex = examples().slice(0, 4);
    const one = ex.map((e) =>
      torch.scope(() => {
        const r = pr.embed(e);
        return { p: list(r.p), hint: r.hint, hintIds: r.hintIds, tokens: r.tokens, shown: r.shown, dropped: r.dropped };
      }),
    );
    torch.scope(() => {
      const b = pr.embedBatch(ex);
      expect(new Set(b.tokens).size).toBe(4); // really different lengths: the batch is padded
      expect(b.p.shape).toEqual([4, 64]);
      expect(b.p.requiresGrad).toBe(true);
      expect(b.hintIds).toEqual(one.map((o) => o.hintIds));
      expect(b.hints).toEqual(one.map((o) => o.hint));
      expect(b.hintIds.every((h) => h.length === 4)).toBe(true); // the random model does not stop early
      expect([b.tokens, b.shown, b.dropped, b.cached]).toEqual([one.map((o) => o.tokens), one.map((o) => o.shown), one.map((o) => o.dropped), [false, false, false, false]]);
      ex.forEach((_, i) => expect(relErr(list(b.p.select(0, i)), one[i]!.p)).toBeLessThan(1e-5));
      // The encoding pass: prompt + hint per row, padded to the longest.
      const lens = b.tokens.map((t, i) => t + b.hintIds[i]!.length);
      expect(b.realTokens).toBe(lens.reduce((a, l) => a + l, 0));
      expect(b.paddedTokens).toBe(4 * Math.max(...lens));
      expect(b.paddedTokens).toBeGreaterThan(b.realTokens);
    });
  });

  test("length buckets (maxPadShare 0: each length its own pass): the same rows in input order, no padding", () => {
    const ex = examples().slice(0, 4);
    const whole = torch.scope(() => {
      const b = prompter(qwen).embedBatch(ex);
      return { p: list(b.p), hints: b.hints };
    });
    torch.scope(() => {
      const b = prompter(qwen, { maxPadShare: 0 }).embedBatch(ex);
      expect(b.hints).toEqual(whole.hints);
      expect(relErr(list(b.p), whole.p)).toBeLessThan(1e-5);
      expect(b.paddedTokens).toBe(b.realTokens);
      expect(b.p.requiresGrad).toBe(true);
    });
  });

  test("gradients into the LoRA adapters from the sum of the 4 p's = the summed per-example gradients", () => {
    const pr = prompter(qwen, { hintTokens: 2 });
    const ex = examples().slice(0, 4);
    const params = loraParameters(qwen);
    expect(params.length).toBe(2 * 2 * 7);
    const grads = () => params.map((t) => (t.grad ? list(t.grad) : null));
    qwen.zeroGrad();
    torch.scope(() => pr.embedBatch(ex).p.sum().backward());
    const batched = grads();
    qwen.zeroGrad();
    for (const e of ex) torch.scope(() => pr.embed(e).p.sum().backward());
    const summed = grads();
    qwen.zeroGrad();
    params.forEach((_, k) => {
      const [g, want] = [batched[k]!, summed[k]!];
      expect(want.some((x) => x !== 0)).toBe(true); // A's and B's gradients both non-zero
      expect(relErr(g, want)).toBeLessThan(1e-5);
    });
  });

  test("embed is embedBatch of one; an empty batch is [0, hidden]", () => {
    const pr = prompter(qwen);
    const e = examples()[2]!;
    torch.scope(() => {
      const a = pr.embed(e);
      const b = pr.embedBatch([e]);
      expect(b.p.shape).toEqual([1, 64]);
      expect(list(b.p)).toEqual(list(a.p));
      expect([b.hintIds[0], b.tokens[0], b.paddedTokens]).toEqual([a.hintIds, a.tokens, a.tokens + a.hintIds.length]);
      expect(b.realTokens).toBe(b.paddedTokens);
      const none = pr.embedBatch([]);
      expect(none.p.shape).toEqual([0, 64]);
      expect([none.hints, none.cached, none.paddedTokens, none.realTokens]).toEqual([[], [], 0, 0]);
    });
  });

  test("the host reads of embedBatch do not grow with the batch (B = 1, 4, 8)", () => {
    for (const hintTokens of [0, 4, 12]) {
      const pr = prompter(qwen, { hintTokens });
      const syncs = [1, 4, 8].map((n) => torch.countSyncs(() => torch.scope(() => void pr.embedBatch(examples().slice(0, n)))).syncs);
      // All of them are generate's: its final transfer and one "all finished?" check per 8 steps.
      const want = hintTokens === 0 ? 0 : 1 + Math.floor((hintTokens - 1) / 8);
      expect({ hintTokens, syncs }).toEqual({ hintTokens, syncs: [want, want, want] });
    }
  });

  test("cache (frozen Qwen): hits come from the cache, only misses are computed (one batch), in input order", () => {
    const pr = prompter(frozen, { hintTokens: 3, cache: true });
    const [a, b, c] = examples();
    const gens: number[] = [];
    const pools: number[] = [];
    const generate = frozen.generate.bind(frozen);
    const forward = frozen.forward.bind(frozen);
    frozen.generate = (ids, o) => {
      gens.push(Array.isArray(ids) ? ids.length : ids.shape[0]!);
      return generate(ids, o);
    };
    frozen.forward = (args) => {
      if (args.computeLogits === false) pools.push(args.inputIds!.shape[0]!); // the prompter's encoding pass
      return forward(args);
    };
    const live = torch.liveTensors();
    try {
      const first = torch.scope(() => {
        const r = pr.embedBatch([a!, b!]);
        return { cached: r.cached, p: [list(r.p.select(0, 0)), list(r.p.select(0, 1))], hints: r.hints, requiresGrad: r.p.requiresGrad };
      });
      expect(first.cached).toEqual([false, false]);
      expect(first.requiresGrad).toBe(false);
      expect([gens, pools]).toEqual([[2], [2]]);
      expect(torch.liveTensors()).toBe(live + 2); // the cached copies
      const second = torch.scope(() => {
        const r = pr.embedBatch([c!, a!, b!]);
        return { cached: r.cached, p: [0, 1, 2].map((i) => list(r.p.select(0, i))), hints: r.hints, padded: r.paddedTokens, real: r.realTokens, tokens: r.tokens, hintIds: r.hintIds };
      });
      expect(second.cached).toEqual([false, true, true]);
      expect([gens, pools]).toEqual([[2, 1], [2, 1]]); // only c, as a batch of one
      expect([second.p[1], second.p[2]]).toEqual(first.p);
      expect([second.hints[1], second.hints[2]]).toEqual(first.hints);
      expect(second.real).toBe(second.tokens[0]! + second.hintIds[0]!.length); // only c was encoded
      expect(second.padded).toBe(second.real);
      const alone = torch.scope(() => list(prompter(frozen, { hintTokens: 3 }).embed(c!).p));
      expect(relErr(second.p[0]!, alone)).toBeLessThan(1e-5);
      // Every example a hit: nothing computed, nothing read back from the device.
      const [g0, p0] = [gens.length, pools.length];
      const hits = torch.countSyncs(() => torch.scope(() => {
        const r = pr.embedBatch([b!, c!, a!]);
        return { cached: r.cached, padded: r.paddedTokens, real: r.realTokens, n: r.p.shape[0] };
      }));
      expect(hits.syncs).toBe(0);
      expect(hits.result).toEqual({ cached: [true, true, true], padded: 0, real: 0, n: 3 });
      expect([gens.length, pools.length]).toEqual([g0, p0]);
      expect(torch.liveTensors()).toBe(live + 3);
      pr.clearCache();
      expect(torch.liveTensors()).toBe(live);
    } finally {
      frozen.generate = generate;
      frozen.forward = forward;
      pr.clearCache();
    }
  });
});

describe("scripts/prompt.ts", () => {
  const SCRIPT = join(ROOT, "scripts/prompt.ts");
  /** Runs the script as a user would (its own process; stdout is a pipe, so no colours). */
  const run = async (args: string[]) => {
    const p = Bun.spawn([process.execPath, SCRIPT, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, out, err };
  };

  test("--help; bad arguments are one line and exit 2", async () => {
    const h = await run(["--help"]);
    expect(h.code).toBe(0);
    expect(h.out).toContain("--max_prompt_tokens");
    expect(h.out).toContain("--hint_tokens");
    const bads = [["--task", "fractal3x3", "--pair", "x"], ["--bogus"], [], ["--task", "fractal3x3", "--qwen_train", "half"], ["--task", "nope"], ["--task", "fractal3x3", "--pair", "99"]];
    const results = await Promise.all(bads.map((bad) => run([...bad, "--data", FIXTURE_ARC])));
    results.forEach((r, i) => {
      expect({ bad: bads[i], code: r.code }).toEqual({ bad: bads[i], code: 2 });
      expect(r.out).toBe("");
      expect(r.err.trimEnd().split("\n").length).toBe(1);
      expect(r.err).toMatch(/^prompt: /);
    });
  }, 20000);

  test("a real task: the prompt, its token count, shown/dropped, hint and p's norm", async () => {
    const r = await run(["--task", "fractal3x3", "--pair", "0", "--model", "tiny", "--data", FIXTURE_ARC, "--hint_tokens", "2", "--max_prompt_tokens", "300", "--device", "cpu"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    // 300 tokens hold one demonstration of fractal3x3 (3x3 -> 9x9) besides the test input.
    expect(r.out).toContain("Example 1\nInput:\n011\n000\n100\nOutput:\n000011011\n");
    expect(r.out).not.toContain("Example 2");
    expect(r.out).toContain("Test\nInput:\n300\n300\n303\n");
    const tokens = Number(/prompt tokens: (\d+) \(budget 300\)/.exec(r.out)?.[1]);
    expect(tokens).toBeGreaterThan(100);
    expect(tokens).toBeLessThanOrEqual(300);
    expect(r.out).toContain("demonstrations: 1 shown, 3 dropped");
    expect(r.out).toMatch(/hint \(2 tokens\): /);
    expect(r.out).toMatch(/p: \[64\].* norm \d+\.\d+/);
  }, 20000);
});
