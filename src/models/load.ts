// Loading a Qwen2: a `--model` value for every stage (a Hub id, default Qwen/Qwen2.5-1.5B-Instruct, from
// the Hugging Face cache or downloaded once; a local folder; or "tiny", a random 2-layer Qwen2 with the
// real tokenizer), a folder's config files and its safetensors weights. qwen2.ts is the model alone.
//
//   const m = await fromPretrained("Qwen/Qwen2.5-1.5B-Instruct", { device: "cuda" });
//   const { model, tokenizer } = await loadQwen("tiny");
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch.ts";
import { type DType, type Device, type Tensor, TorchError } from "../torch.ts";
import { type ModelFolderOptions, WEIGHTS_FILE, WEIGHTS_INDEX, resolveModelFolder } from "./files.ts";
import { QwenTokenizer } from "../tokenizer.ts";
import { Qwen2ForCausalLM, parseGenerationConfig, parseQwen2Config } from "./qwen2.ts";

export const DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct";

export const MODEL_SPEC_HELP = `a Hub id (default ${DEFAULT_MODEL}; Hugging Face cache, downloaded once), a local folder, or "tiny" (random 2-layer Qwen2, real vocabulary)`;

export interface FromPretrainedOptions extends ModelFolderOptions {
  device?: Device;
  /** Default: the checkpoint's dtype (tiny: float32). */
  dtype?: DType;
}

export interface LoadQwenOptions extends FromPretrainedOptions {
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
 * Copies a folder's weights (model.safetensors or model.safetensors.index.json and its shards) into
 * `model`. Strict: every parameter present with its shape, no unknown key (a tied checkpoint's
 * lm_head.weight, which some exporters write, is ignored as transformers does).
 */
export function loadWeights(model: Qwen2ForCausalLM, folder: string): void {
  const single = join(folder, WEIGHTS_FILE);
  const index = join(folder, WEIGHTS_INDEX);
  torch.scope(() => {
    let sd: Record<string, Tensor>;
    if (existsSync(single)) sd = torch.safetensors.loadFile(single);
    else if (existsSync(index)) sd = torch.safetensors.loadIndexed(index);
    else throw new TorchError(`${folder} has neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX}`);
    if (model.config.tieWordEmbeddings) delete sd["lm_head.weight"];
    model.loadStateDict(sd, { strict: true });
  });
}

/** Loads config.json, generation_config.json and the safetensors weights of a local folder. */
export function fromFolder(folder: string, opts: { device?: Device; dtype?: DType } = {}): Qwen2ForCausalLM {
  const cfgPath = join(folder, "config.json");
  if (!existsSync(cfgPath)) throw new TorchError(`${folder} has no config.json`);
  const config = parseQwen2Config(JSON.parse(readFileSync(cfgPath, "utf8")), cfgPath);
  const m = new Qwen2ForCausalLM(config, { device: opts.device, dtype: opts.dtype });
  const genPath = join(folder, "generation_config.json");
  if (existsSync(genPath)) {
    const g = parseGenerationConfig(JSON.parse(readFileSync(genPath, "utf8")));
    m.generationConfig = { ...g, eosTokenIds: g.eosTokenIds.length ? g.eosTokenIds : m.generationConfig.eosTokenIds };
  }
  loadWeights(m, folder);
  return m;
}

/**
 * The one way a Qwen2 is loaded: the model (and the folder it came from) for a `--model` value.
 * fromPretrained is this without the folder; loadQwen adds the tokenizer.
 */
export async function loadQwenModel(spec: string = DEFAULT_MODEL, opts: LoadQwenOptions = {}): Promise<{ model: Qwen2ForCausalLM; folder: string | null }> {
  const { device, dtype, seed, ...hub } = opts;
  if (spec === "tiny") return { model: Qwen2ForCausalLM.tiny({ seed, device, dtype }), folder: null };
  const folder = await resolveModelFolder(spec, hub);
  return { model: fromFolder(folder, { device, dtype }), folder };
}

/**
 * A Hub id (from the Hugging Face cache, downloading what is missing), a local folder, or "tiny"
 * (seed 0). Weights keep the checkpoint's dtype unless `dtype` is given, and go onto `device`.
 * loadQwen gives the tokenizer too.
 */
export async function fromPretrained(idOrPath: string, opts: FromPretrainedOptions = {}): Promise<Qwen2ForCausalLM> {
  return (await loadQwenModel(idOrPath, opts)).model;
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
