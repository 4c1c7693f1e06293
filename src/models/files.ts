// Which files make a model folder: config.json, the tokenizer's files, generation_config.json when the
// repo has one, and the weights as model.safetensors or model.safetensors.index.json with its shards.
// The model's knowledge, kept here beside the models that read those files; hub.ts knows only the
// Hugging Face cache and how to fill a snapshot with the files a layout names.
//
//   const folder = await resolveModelFolder("Qwen/Qwen2.5-1.5B-Instruct");   // or a local folder, as is
import { readFileSync } from "node:fs";
import { type HubOptions, type SnapshotLayout, resolveSnapshot } from "../hub.ts";

/** Files every model folder needs besides the weights. */
export const MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json"];
/** Files fetched when they exist. */
export const OPTIONAL_MODEL_FILES = ["generation_config.json"];
/** The weights in one file. */
export const WEIGHTS_FILE = "model.safetensors";
/** The weights sharded: this index names the shard files (its weight_map). */
export const WEIGHTS_INDEX = "model.safetensors.index.json";

export interface ModelFolderOptions extends HubOptions {
  /** Required files (default MODEL_FILES). */
  files?: string[];
  /** Files fetched when the repo has them (default OPTIONAL_MODEL_FILES). */
  optionalFiles?: string[];
  /** Also fetch model.safetensors, or model.safetensors.index.json and the shards it names. Default true. */
  weights?: boolean;
}

/** The shard file names a `model.safetensors.index.json` names, sorted and without repeats. */
export function shardFiles(indexPath: string): string[] {
  const idx = JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map?: Record<string, string> };
  if (!idx.weight_map || typeof idx.weight_map !== "object") throw new Error(`${indexPath}: no weight_map`);
  return [...new Set(Object.values(idx.weight_map))].sort();
}

/** The snapshot layout of a model folder, for hub.ts's resolveSnapshot. */
export function modelFolderLayout(opts: Pick<ModelFolderOptions, "files" | "optionalFiles" | "weights"> = {}): SnapshotLayout {
  const layout: SnapshotLayout = { files: opts.files ?? MODEL_FILES, optionalFiles: opts.optionalFiles ?? OPTIONAL_MODEL_FILES };
  if (opts.weights ?? true) {
    layout.sharded = {
      single: WEIGHTS_FILE,
      index: WEIGHTS_INDEX,
      shards: shardFiles,
      none: `no weights: neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX} exists in the repository (only safetensors weights are supported).`,
    };
  }
  return layout;
}

/**
 * A local folder holding a model: `idOrPath` itself when it is a folder, else the cache snapshot of
 * Hub repo `idOrPath`, filled with config.json, tokenizer.json, tokenizer_config.json,
 * generation_config.json (when the repo has one) and the weights (model.safetensors, or
 * model.safetensors.index.json and its shards). A complete cached snapshot is returned with no request.
 */
export async function resolveModelFolder(idOrPath: string, opts: ModelFolderOptions = {}): Promise<string> {
  const { files, optionalFiles, weights, ...hub } = opts;
  return resolveSnapshot(idOrPath, modelFolderLayout({ files, optionalFiles, weights }), hub);
}
