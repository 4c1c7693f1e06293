// A Qwen2 as a transformers model folder (config.json, generation_config.json, model.safetensors, the
// tokenizer's files when the model came from a folder): what AutoModelForCausalLM.from_pretrained loads.
// Adapter keys are left out (saveLora writes them, PEFT's layout); mergeLora first for a merged model.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { safetensors, type Tensor } from "../torch.ts";
import type { Qwen2Config, Qwen2ForCausalLM } from "./qwen2.ts";

/** config.json in transformers' Qwen2 format (both rope spellings, so older and newer transformers read it). */
export function qwen2ConfigJson(c: Qwen2Config): Record<string, unknown> {
  return {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    num_key_value_heads: c.numKeyValueHeads,
    head_dim: c.headDim,
    hidden_act: "silu",
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_parameters: { rope_theta: c.ropeTheta, rope_type: "default" },
    tie_word_embeddings: c.tieWordEmbeddings,
    attention_dropout: c.attentionDropout,
    use_sliding_window: false,
    sliding_window: null,
    initializer_range: c.initializerRange,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
    dtype: c.dtype,
    torch_dtype: c.dtype,
    use_cache: true,
  };
}

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json"];

/**
 * Writes `dir` as a transformers model folder: the model's base weights in its dtype (a tied lm_head left
 * out; adapter tensors never written), config.json, generation_config.json, and the tokenizer's files
 * copied from `tokenizerFrom` (the folder the model was loaded from) when given. Returns the files written.
 */
export function saveModelFolder(model: Qwen2ForCausalLM, dir: string, opts: { tokenizerFrom?: string | null } = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const sd: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(model.stateDict())) if (!/\.lora_[AB]\./.test(k)) sd[k] = t;
  safetensors.saveFile(join(dir, "model.safetensors"), sd, { format: "pt" });
  writeFileSync(join(dir, "config.json"), JSON.stringify(qwen2ConfigJson(model.config), null, 2) + "\n");
  const g = model.generationConfig;
  writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: g.eosTokenIds, pad_token_id: g.padTokenId, do_sample: g.doSample ?? false }, null, 2) + "\n");
  const files = ["model.safetensors", "config.json", "generation_config.json"];
  if (opts.tokenizerFrom) {
    for (const f of TOKENIZER_FILES) {
      if (!existsSync(join(opts.tokenizerFrom, f))) continue;
      copyFileSync(join(opts.tokenizerFrom, f), join(dir, f));
      files.push(f);
    }
  }
  return files;
}
