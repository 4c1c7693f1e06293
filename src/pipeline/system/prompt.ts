// HybridPrompter (docs/pipeline.md, "Prompt"): a task becomes a prompt vector p.
//
// The chat prompt shows the task's other pairs ("Input:/Output:" grids, one row of digits a line) and the
// test input, then asks for the rule. Hybrid: Qwen first generates a short hint greedily (no gradient);
// then one forward with gradient over prompt + hint gives the final hidden states, and p is their mean
// from the end of the test input onward (the question, the assistant header and the hint: the positions
// that have read the whole task). embedBatch does this for many examples at once: one generate call for
// all hints, one padded forward for all p's, and a number of host reads that does not grow with the batch.
import type { Grid } from "../../arc/types";
import { type Example, context } from "../../arc/examples";
import type { Qwen2ForCausalLM } from "../../models/qwen2";
import type { QwenTokenizer } from "../../tokenizer";
import { planPasses } from "../../util/passes";
import { type StageTimer, untimed } from "../../util/stage-timer";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";

export interface PrompterConfig {
  /** Prompt budget before the hint (the trainer's default 2048, --max_prompt_tokens); whole demonstrations are dropped to fit. */
  maxPromptTokens: number;
  /** Greedy hint length (default 16; 0 = no hint). */
  hintTokens: number;
  /** Keep p per example (valid only while Qwen does not train). */
  cache: boolean;
  /**
   * Largest share of padded positions in one Qwen pass (0..1). Default: 1 on CUDA (one pass per batch:
   * launches are the cost); 0 on the CPU, where arithmetic is the cost and attention's grows with the
   * square of the padded length, so each length gets its own pass (the hints' decode steps stay shared;
   * share 0 was the fastest measured: docs/pipeline.md, "Measurements behind the design").
   */
  maxPadShare?: number;
  /** Decode the hints' steps as CUDA graphs where supported (generate's cudaGraphs; default auto). */
  cudaGraphs?: "auto" | "off";
}

export const INTRO = "Here is a puzzle. Each example shows an input grid and its output grid (one row per line, one digit per cell, digits are colours). The same rule turns every input into its output.";
export const QUESTION = "What is the rule? State it in one short sentence.";

export const gridText = (g: Grid): string => g.map((row) => row.join("")).join("\n");

export interface BuiltPrompt {
  /** Token ids of the whole prompt (chat template included, up to the assistant header). */
  ids: number[];
  /** Index of the first token after the test input. */
  queryEnd: number;
  /** Demonstrations shown and dropped to fit the budget. */
  shown: number;
  dropped: number;
  text: string;
}

export interface PromptResult {
  /** [hidden] the prompt vector (with gradient when Qwen trains and grad mode is on). */
  p: Tensor;
  hint: string;
  hintIds: number[];
  /** Prompt tokens (without the hint). */
  tokens: number;
  shown: number;
  dropped: number;
  cached: boolean;
}

export interface PromptBatch {
  /** [B, hidden]: row i is example i's p (with gradient when Qwen trains and grad mode is on). */
  p: Tensor;
  hints: string[];
  hintIds: number[][];
  /** Prompt tokens (without hint), demonstrations shown/dropped, cache hits: per example. */
  tokens: number[];
  shown: number[];
  dropped: number[];
  cached: boolean[];
  /** Token positions computed in the padded encoding pass (B x Tmax) and real ones, for the padding share. */
  paddedTokens: number;
  realTokens: number;
}

/** What embedBatch and embed share: per example, its p as a row of `pooled` or a cached tensor. */
interface Embedded extends Omit<PromptBatch, "p"> {
  /** [misses, hidden], or null when every example was a cache hit. */
  pooled: Tensor | null;
  /** Per example: the cached p, or the index of its row in `pooled`. */
  source: (Tensor | number)[];
}

export class HybridPrompter {
  private readonly head: number[];
  private readonly tail: number[];
  private readonly headText: string;
  private readonly tailText: string;
  private readonly cacheMap = new Map<string, { p: Tensor; hint: string; hintIds: number[] }>();

  constructor(readonly qwen: Qwen2ForCausalLM, readonly tokenizer: QwenTokenizer, readonly config: PrompterConfig) {
    // The template around the user's message, split at a marker so each part is tokenized once.
    const marker = "\u0000MSG\u0000";
    const full = tokenizer.applyChatTemplate([{ role: "user", content: marker }], { addGenerationPrompt: true });
    const [before, after] = full.split(marker);
    this.headText = `${before}${INTRO}\n\n`;
    this.tailText = `${QUESTION}${after}`;
    this.head = tokenizer.encode(this.headText);
    this.tail = tokenizer.encode(this.tailText);
  }

  /**
   * The prompt for an example: never the example's own output; demonstrations dropped from the end to fit.
   * Kept per example object (for as long as the example lives), so measuring a batch's lengths before
   * the step (--max_batch_tokens) and each validation pass tokenize a prompt once.
   */
  build(ex: Example): BuiltPrompt {
    const seen = this.built.get(ex);
    if (seen && seen.maxPromptTokens === this.config.maxPromptTokens) return seen.prompt;
    const prompt = this.buildUncached(ex);
    this.built.set(ex, { maxPromptTokens: this.config.maxPromptTokens, prompt });
    return prompt;
  }

  private readonly built = new WeakMap<Example, { maxPromptTokens: number; prompt: BuiltPrompt }>();

  private buildUncached(ex: Example): BuiltPrompt {
    const ctx = context(ex);
    const enc = (s: string) => this.tokenizer.encode(s);
    const queryText = `Test\nInput:\n${gridText(ctx.query)}\n\n`;
    const queryIds = enc(queryText);
    // The longest run of demonstrations from the first that fits the budget, written and tokenized one at a
    // time up to the first that does not fit (a task of thousands of pairs costs what its prompt holds).
    const demoTexts: string[] = [];
    const demoIds: number[][] = [];
    let total = this.head.length + queryIds.length + this.tail.length;
    for (const [i, d] of ctx.demos.entries()) {
      const text = `Example ${i + 1}\nInput:\n${gridText(d.input)}\nOutput:\n${gridText(d.output)}\n\n`;
      const ids = enc(text);
      if (total + ids.length > this.config.maxPromptTokens) break;
      demoTexts.push(text);
      demoIds.push(ids);
      total += ids.length;
    }
    const shown = demoIds.length;
    const ids = [...this.head, ...demoIds.flat(), ...queryIds, ...this.tail];
    const queryEnd = ids.length - this.tail.length;
    const text = this.headText + demoTexts.join("") + queryText + this.tailText;
    return { ids, queryEnd, shown, dropped: ctx.demos.length - shown, text };
  }

  private key(ex: Example): string {
    return `${ex.task.id}#${ex.kind ?? "train"}#${ex.index}${ex.augmentation ? `#${ex.augmentation}` : ""}`;
  }

  /** The hint: up to hintTokens greedy tokens after the prompt, without gradient. */
  hint(ids: number[]): number[] {
    return this.hints([ids])[0]!;
  }

  /** The hints of several prompts in one left-padded generate call (rows stop at their EOS, which is dropped). */
  private hints(prompts: number[][], prefillPadShare = 1): number[][] {
    if (this.config.hintTokens <= 0 || prompts.length === 0) return prompts.map(() => []);
    const eos = this.qwen.generationConfig.eosTokenIds;
    const t = Math.max(...prompts.map((p) => p.length));
    const padded = prompts.some((p) => p.length < t);
    // The padding id is never attended to; the mask goes as host arrays so generate reads nothing back for it.
    const ids = prompts.map((p) => [...Array(t - p.length).fill(0), ...p]);
    const mask = padded ? prompts.map((p) => [...Array(t - p.length).fill(0), ...Array(p.length).fill(1)]) : null;
    const out = this.qwen.generate(ids, { maxNewTokens: this.config.hintTokens, eosTokenIds: eos, attentionMask: mask, prefillPadShare, cudaGraphs: this.config.cudaGraphs ?? "auto",
      // Prompts stay within the budget (whole demonstrations are dropped to fit): one cache length for all of them.
      cacheCapacity: this.config.maxPromptTokens + this.config.hintTokens });
    const stop = new Set(eos);
    return out.map((o) => o.filter((tok) => !stop.has(tok)));
  }

  /**
   * One forward over right-padded sequences (with gradient when grad mode is on); row i is the mean of
   * the final hidden states over [from[i], seqs[i].length). A causal model needs no mask for right
   * padding: a real token attends only to earlier positions, all real, at positions 0..len-1 as alone,
   * so each row equals its unpadded forward. The padded tail's states are junk, weighted 0 (so no
   * gradient either). Without a mask the forward keeps the plain causal path (fused attention kernels,
   * no [B, T, T] mask, nothing read back).
   */
  private pool(seqs: number[][], from: number[]): Tensor {
    const t = Math.max(...seqs.map((s) => s.length));
    const dev = this.qwen.device;
    return torch.scope(() => {
      const ids = torch.tensor(seqs.map((s) => [...s, ...Array(t - s.length).fill(0)]), { dtype: "int64", device: dev });
      const h = this.qwen.forward({ inputIds: ids, computeLogits: false }).hiddenStates; // [B, T, hidden]
      const w = torch.tensor(seqs.map((s, i) => Array.from({ length: t }, (_, k) => (k >= from[i]! && k < s.length ? 1 : 0))), { device: dev }).to(h.dtype);
      const n = torch.tensor(seqs.map((s, i) => [s.length - from[i]!]), { dtype: "float32", device: dev });
      // Masked sum in the hidden dtype (0/1 weights are exact), divided in float32: counts past 256 are not exact in bf16.
      const sum = h.mul(w.unsqueeze(-1)).sum(1);
      return sum.float().div(n).to(sum.dtype);
    });
  }

  private compute(examples: Example[], timer: StageTimer = untimed): Embedded {
    const built = examples.map((ex) => this.build(ex));
    const keys = examples.map((ex) => this.key(ex));
    const hits = keys.map((k) => (this.config.cache ? this.cacheMap.get(k) : undefined));
    const misses = examples.flatMap((_, i) => (hits[i] ? [] : [i]));
    // One generate for every hint (its prefill in length buckets, its decode steps shared: a step costs
    // about the same for one row or many), then the encoding in length buckets; rows in miss order.
    const share = this.config.maxPadShare ?? (this.qwen.device.startsWith("cuda") ? 1 : 0);
    const missIds = timer.time("hint", () => this.hints(misses.map((i) => built[i]!.ids), share));
    const seqs = misses.map((i, j) => [...built[i]!.ids, ...missIds[j]!]);
    const passes = planPasses(seqs.map((q) => [q.length, 1] as [number, number]), share).map((p) => p.members);
    const pooledParts: Tensor[] = [];
    let paddedTokens = 0;
    for (const members of passes) {
      const mine = members.map((j) => seqs[j]!);
      pooledParts.push(timer.time("encode", () => this.pool(mine, members.map((j) => built[misses[j]!]!.queryEnd))));
      paddedTokens += mine.length * Math.max(...mine.map((q) => q.length));
    }
    const order = passes.flat();
    let pooled: Tensor | null = null;
    if (pooledParts.length === 1 && order.every((j, k) => j === k)) pooled = pooledParts[0]!;
    else if (pooledParts.length) {
      const rowOf = new Array<number>(order.length);
      order.forEach((j, k) => (rowOf[j] = k));
      pooled = torch.cat(pooledParts).indexSelect(0, torch.tensor(rowOf, { dtype: "int64", device: this.qwen.device }));
    }
    const res: Embedded = {
      pooled, source: [], hints: [], hintIds: [], cached: [],
      tokens: built.map((b) => b.ids.length), shown: built.map((b) => b.shown), dropped: built.map((b) => b.dropped),
      paddedTokens, realTokens: seqs.reduce((a, s) => a + s.length, 0),
    };
    let j = 0;
    examples.forEach((_, i) => {
      const hit = hits[i];
      if (hit) {
        res.source.push(hit.p);
        res.hints.push(hit.hint);
        res.hintIds.push(hit.hintIds.slice());
        res.cached.push(true);
        return;
      }
      const row = j++;
      const hintIds = missIds[row]!;
      const hint = this.tokenizer.decode(hintIds, { skipSpecialTokens: true });
      // The same example twice in one batch: the first copy is the one kept.
      if (this.config.cache && !this.cacheMap.has(keys[i]!)) {
        const p = torch.scope(() => torch.keep(pooled!.select(0, row).detach().clone()));
        this.cacheMap.set(keys[i]!, { p, hint, hintIds: hintIds.slice() });
      }
      res.source.push(row);
      res.hints.push(hint);
      res.hintIds.push(hintIds);
      res.cached.push(false);
    });
    return res;
  }

  /**
   * p for many examples: one generate call for the hints of the examples not in the cache, then one
   * forward over them all. With `cache` on, hits come from the cache and only misses are computed.
   */
  embedBatch(examples: Example[], opts: { timer?: StageTimer } = {}): PromptBatch {
    const { pooled, source, ...rest } = this.compute(examples, opts.timer);
    let p: Tensor;
    if (pooled && source.every((s, i) => s === i)) p = pooled; // no hit: the rows are already in order
    else if (source.length) p = torch.stack(source.map((s) => (typeof s === "number" ? pooled!.select(0, s) : s)));
    else p = torch.empty([0, this.qwen.hiddenSize], { dtype: this.qwen.dtype, device: this.qwen.device });
    return { p, ...rest };
  }

  /** p for an example (embedBatch of one). With `cache` on, a hit returns the cached tensor itself. */
  embed(ex: Example): PromptResult {
    const b = this.compute([ex]);
    const s = b.source[0]!;
    return {
      p: typeof s === "number" ? b.pooled!.select(0, s) : s,
      hint: b.hints[0]!,
      hintIds: b.hintIds[0]!,
      tokens: b.tokens[0]!,
      shown: b.shown[0]!,
      dropped: b.dropped[0]!,
      cached: b.cached[0]!,
    };
  }

  /** Forget cached prompt vectors (e.g. when Qwen starts training). */
  clearCache(): void {
    for (const e of this.cacheMap.values()) e.p.dispose();
    this.cacheMap.clear();
  }
}
