// `--model` for every stage: a Hub id (default Qwen/Qwen2.5-1.5B-Instruct, from the Hugging Face cache or
// downloaded once), a local folder, or "tiny" (a random 2-layer Qwen2 with the real tokenizer).
import type { DType, Device } from "../torch.ts";
import { resolveModelFolder, type ModelFolderOptions } from "./files.ts";
import { QwenTokenizer } from "../tokenizer.ts";
import { Qwen2ForCausalLM } from "./qwen2.ts";

export const DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct";

export const MODEL_SPEC_HELP = `a Hub id (default ${DEFAULT_MODEL}; Hugging Face cache, downloaded once), a local folder, or "tiny" (random 2-layer Qwen2, real vocabulary)`;

export interface LoadQwenOptions extends ModelFolderOptions {
  device?: Device;
  /** Default: the checkpoint's dtype (tiny: float32). */
  dtype?: DType;
  /** Seed of the tiny model's weights (default 0). */
  seed?: number;
}

export interface LoadedQwen {
  model: Qwen2ForCausalLM;
  tokenizer: QwenTokenizer;
  /** The local folder the weights came from (null for tiny). */
  folder: string | null;
  /** What was asked for. */
  spec: string;
}

/**
 * The one way a Qwen2 is loaded: the model (and the folder it came from) for a `--model` value.
 * Qwen2ForCausalLM.fromPretrained delegates here; loadQwen adds the tokenizer.
 */
export async function loadQwenModel(spec: string = DEFAULT_MODEL, opts: LoadQwenOptions = {}): Promise<{ model: Qwen2ForCausalLM; folder: string | null }> {
  const { device, dtype, seed, ...hub } = opts;
  if (spec === "tiny") return { model: Qwen2ForCausalLM.tiny({ seed, device, dtype }), folder: null };
  const folder = await resolveModelFolder(spec, hub);
  return { model: Qwen2ForCausalLM.fromFolder(folder, { device, dtype }), folder };
}

/** Model and tokenizer for a `--model` value (what buildSystem and the scripts load). */
export async function loadQwen(spec: string = DEFAULT_MODEL, opts: LoadQwenOptions = {}): Promise<LoadedQwen> {
  const { model, folder } = await loadQwenModel(spec, opts);
  try {
    return { model, tokenizer: folder === null ? QwenTokenizer.tiny() : QwenTokenizer.fromFolder(folder), folder, spec };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
