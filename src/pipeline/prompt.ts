// HybridPrompter (DESIGN §5.1): a task becomes a prompt vector p.
//
// The chat prompt shows the task's other pairs ("Input:/Output:" grids, one row of digits a line) and the
// test input, then asks for the rule. Hybrid: Qwen first generates a short hint greedily (no gradient);
// then one forward with gradient over prompt + hint gives the final hidden states, and p is their mean
// from the end of the test input onward (the question, the assistant header and the hint: the positions
// that have read the whole task).
import type { Grid } from "../arc/types";
import { type Example, context } from "../arc/examples";
import type { Qwen2ForCausalLM } from "../models/qwen2";
import type { QwenTokenizer } from "../tokenizer";
import * as torch from "../torch";
import type { Tensor } from "../torch";

export interface PrompterConfig {
  /** Prompt budget before the hint (DESIGN default 2048); whole demonstrations are dropped to fit. */
  maxPromptTokens: number;
  /** Greedy hint length (default 16; 0 = no hint). */
  hintTokens: number;
  /** Keep p per example (valid only while Qwen does not train). */
  cache: boolean;
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

  /** The prompt for an example: never the example's own output; demonstrations dropped from the end to fit. */
  build(ex: Example): BuiltPrompt {
    const ctx = context(ex);
    const enc = (s: string) => this.tokenizer.encode(s);
    const demoTexts = ctx.demos.map((d, i) => `Example ${i + 1}\nInput:\n${gridText(d.input)}\nOutput:\n${gridText(d.output)}\n\n`);
    const demoIds = demoTexts.map(enc);
    const queryText = `Test\nInput:\n${gridText(ctx.query)}\n\n`;
    const queryIds = enc(queryText);
    const fixed = this.head.length + queryIds.length + this.tail.length;
    let shown = demoIds.length;
    let total = fixed + demoIds.reduce((a, d) => a + d.length, 0);
    while (shown > 0 && total > this.config.maxPromptTokens) {
      shown--;
      total -= demoIds[shown].length;
    }
    const ids = [...this.head, ...demoIds.slice(0, shown).flat(), ...queryIds, ...this.tail];
    const queryEnd = ids.length - this.tail.length;
    const text = this.headText + demoTexts.slice(0, shown).join("") + queryText + this.tailText;
    return { ids, queryEnd, shown, dropped: demoIds.length - shown, text };
  }

  private key(ex: Example): string {
    return `${ex.task.id}#${ex.kind ?? "train"}#${ex.index}`;
  }

  /** The hint: up to hintTokens greedy tokens after the prompt, without gradient. */
  hint(ids: number[]): number[] {
    if (this.config.hintTokens <= 0) return [];
    const eos = new Set(this.qwen.generationConfig.eosTokenIds);
    const out = this.qwen.generate([ids], { maxNewTokens: this.config.hintTokens, eosTokenIds: [...eos] })[0];
    return out.filter((t) => !eos.has(t));
  }

  /** p for an example. With `cache` on, the first result (p detached, and its hint) is kept and returned again. */
  embed(ex: Example): PromptResult {
    const built = this.build(ex);
    const key = this.key(ex);
    if (this.config.cache) {
      const hit = this.cacheMap.get(key);
      if (hit) return { p: hit.p, hint: hit.hint, hintIds: hit.hintIds.slice(), tokens: built.ids.length, shown: built.shown, dropped: built.dropped, cached: true };
    }
    const hintIds = this.hint(built.ids);
    const all = [...built.ids, ...hintIds];
    const p = torch.scope(() => {
      const ids = torch.tensor([all], { dtype: "int64", device: this.qwen.device });
      const { hiddenStates } = this.qwen.forward({ inputIds: ids, computeLogits: false });
      return hiddenStates.select(0, 0).narrow(0, built.queryEnd, all.length - built.queryEnd).mean(0);
    });
    const hint = this.tokenizer.decode(hintIds, { skipSpecialTokens: true });
    if (this.config.cache) this.cacheMap.set(key, { p: torch.keep(p.detach()), hint, hintIds: hintIds.slice() });
    return {
      p,
      hint,
      hintIds,
      tokens: built.ids.length,
      shown: built.shown,
      dropped: built.dropped,
      cached: false,
    };
  }

  /** Forget cached prompt vectors (e.g. when Qwen starts training). */
  clearCache(): void {
    for (const e of this.cacheMap.values()) e.p.dispose();
    this.cacheMap.clear();
  }
}
