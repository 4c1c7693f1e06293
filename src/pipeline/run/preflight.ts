// Checks a training run makes before it spends any time: folders it will write are writable (a real
// probe write: permission bits say nothing about a read-only mount or, for root, nothing at all), the
// disk can hold the checkpoints it will keep, the model folder's config.json parses, and the split
// leaves tasks on both sides. Each failure is a UsageError: one line, exit code 2, no run folder made.
import { existsSync, readFileSync, statSync, statfsSync } from "node:fs";
import { join } from "node:path";
import type { Task } from "../../arc/index";
import { QWEN2_LORA_TARGETS } from "../../models/lora";
import { type Qwen2Config, TINY_CONFIG, parseQwen2Config } from "../../models/qwen2";
import { type TrainConfig, UsageError } from "../config/train-config";
import { usesPrompt } from "../system/system";
import { nearestExisting } from "./probe";

/** Free bytes for an unprivileged writer on the file system holding `path`, or null if unknown. */
export function freeBytes(path: string): number | null {
  try {
    const s = statfsSync(nearestExisting(path));
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

export const formatBytes = (n: number): string =>
  n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;

/**
 * A warning when the disk at `dir` cannot hold `more` further checkpoints of `perCheckpoint` bytes
 * (null when it can, or when either figure is unknown).
 */
export function diskSpaceWarning(dir: string, perCheckpoint: number | null, more: number, why: string): string | null {
  const free = freeBytes(dir);
  if (free === null || perCheckpoint === null || perCheckpoint <= 0) return null;
  const need = perCheckpoint * Math.max(1, more);
  if (free >= need) return null;
  return `warning: ${nearestExisting(dir)} has ${formatBytes(free)} free, less than the ${formatBytes(need)} of ${more} more checkpoint(s) of about ${formatBytes(perCheckpoint)} (${why}); checkpoints may fail to write`;
}

/** config.json of a model folder, parsed and checked, naming the file when it is wrong; null for Hub ids and tiny. */
export function modelFolderConfig(model: string): Qwen2Config | null {
  if (model === "tiny") return TINY_CONFIG;
  if (!existsSync(model) || !statSync(model).isDirectory()) return null;
  const path = join(model, "config.json");
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`--model ${model}: ${code === "ENOENT" ? `no config.json in ${model}` : `${path} is not valid JSON (${(e as Error).message})`}`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new UsageError(`--model ${model}: ${path} is not a JSON object`);
  try {
    return parseQwen2Config(json as Record<string, unknown>, path);
  } catch (e) {
    throw new UsageError(`--model ${model}: ${(e as Error).message}`);
  }
}

/**
 * About how many bytes one checkpoint of a new run takes: the trainable weights (LoRA adapters or all of
 * Qwen) in float32 with AdamW's two moments, the agent, and the memory table. Null when the model's shape
 * is not known before download. An estimate for a disk-space warning, nothing more.
 */
export function estimateCheckpointBytes(c: TrainConfig, q: Qwen2Config | null): number | null {
  if (!q) return null;
  const attnOut = q.numAttentionHeads * q.headDim;
  const kvOut = q.numKeyValueHeads * q.headDim;
  const shapes: Record<string, [number, number]> = {
    q_proj: [q.hiddenSize, attnOut], k_proj: [q.hiddenSize, kvOut], v_proj: [q.hiddenSize, kvOut], o_proj: [attnOut, q.hiddenSize],
    gate_proj: [q.hiddenSize, q.intermediateSize], up_proj: [q.hiddenSize, q.intermediateSize], down_proj: [q.intermediateSize, q.hiddenSize],
  };
  let qwenParams = 0;
  if (c.qwen_train === "lora") for (const t of QWEN2_LORA_TARGETS) qwenParams += c.lora_rank * (shapes[t][0] + shapes[t][1]) * q.numHiddenLayers;
  if (c.qwen_train === "full") {
    const perLayer = Object.values(shapes).reduce((a, [i, o]) => a + i * o, 0);
    qwenParams = perLayer * q.numHiddenLayers + q.vocabSize * q.hiddenSize * (q.tieWordEmbeddings ? 1 : 2);
  }
  const d = c.agent_channels;
  const agentParams = 4 * q.hiddenSize * d + 24 * d * d;
  const memoryBytes = c.memory_capacity * (q.hiddenSize + 64) * 4;
  return (qwenParams + agentParams) * 12 + memoryBytes;
}

/**
 * About how many bytes the encoding pass's saved activations take at the largest batch a run can make:
 * its padded prompt tokens (batch size x (prompt budget + hint), or the --max_batch_tokens cap) times
 * what a token keeps per layer. Measured on Qwen2.5-1.5B with LoRA under bf16 autocast (H200,
 * bench/results/gpu-h200-2026-12-04.json): 4.6 MiB a token, about 8 x (hidden + intermediate) elements a
 * layer; float32 without autocast doubles it; --grad_checkpointing mlp keeps about 40% of it and layer only
 * each layer's input. Null when the model's shape is not known before download. An estimate for a check
 * that catches flags a machine cannot hold at all, nothing finer.
 */
export function estimateActivationBytes(c: TrainConfig, q: Qwen2Config | null, autocast: boolean): number | null {
  if (!q) return null;
  const perBatch = c.batch_size * (c.max_prompt_tokens + c.hint_tokens);
  const tokens = c.max_batch_tokens > 0 ? Math.min(perBatch, Math.max(c.max_batch_tokens, c.max_prompt_tokens + c.hint_tokens)) : perBatch;
  const elem = autocast ? 2 : 4;
  const full = 8 * (q.hiddenSize + q.intermediateSize) * elem;
  const perLayer = c.grad_checkpointing === "layer" ? q.hiddenSize * elem : c.grad_checkpointing === "mlp" ? 0.4 * full : full;
  return tokens * perLayer * q.numHiddenLayers;
}

/**
 * The memory check before the first batch, against the memory there is: the machine's RAM on the CPU, the
 * card's total memory on CUDA. The largest batch's activations alone over it is an error naming the flags
 * to lower. On CUDA the estimate runs high (an H200 at batch 16 without recomputation: 144 GiB estimated,
 * 116 GiB measured), so only a batch that cannot fit (over 1.5 times the card) is refused; one that may
 * not is a warning, and the out-of-memory handler names the same flags if it happens.
 * `--agent_context demos` and `demos+cells` run no encoding pass, so there is nothing to check; the
 * demonstration encoder's own activations (a few channels over a batch's demonstration cells, tens of MB)
 * are left out.
 */
export function checkActivationMemory(c: TrainConfig, q: Qwen2Config | null, device: string, totalBytes: number, warn: (line: string) => void = () => {}): void {
  if (!usesPrompt(c) || !(totalBytes > 0)) return;
  const cuda = device.startsWith("cuda");
  const need = estimateActivationBytes(c, q, c.amp_dtype === "bf16" || (cuda && c.amp_dtype === "fp16"));
  if (need === null || need <= totalBytes) return;
  const cap = c.max_batch_tokens > 0 ? ` (--max_batch_tokens ${c.max_batch_tokens})` : "";
  const where = cuda ? `${device}'s ${formatBytes(totalBytes)}` : `this machine's ${formatBytes(totalBytes)}`;
  const lower = cuda ? "lower --batch_size (or set --max_batch_tokens, lower --max_prompt_tokens, or use --grad_checkpointing mlp or layer)" : "lower --batch_size (or set --max_batch_tokens, lower --max_prompt_tokens, or use --grad_checkpointing layer)";
  const message = `--batch_size ${c.batch_size} x (--max_prompt_tokens ${c.max_prompt_tokens} + --hint_tokens ${c.hint_tokens}) prompt tokens${cap} need about ${formatBytes(need)} of activations in Qwen's encoding, more than ${where}; ${lower}`;
  if (cuda && need <= 1.5 * totalBytes) warn(`warning: ${message}`);
  else throw new UsageError(message);
}

/** The validation split must leave a training task, and a validation task when validation is asked for. */
export function checkSplit(training: readonly Task[], split: { train: readonly Task[]; val: readonly Task[] }, c: TrainConfig): void {
  if (training.length === 0) throw new UsageError(`--data ${c.data}: no training tasks`);
  if (split.train.length === 0)
    throw new UsageError(`--val_fraction ${c.val_fraction} leaves no training task (all ${training.length} of --data ${c.data} go to validation)`);
  if (c.val_fraction > 0 && c.val_max > 0 && split.val.length === 0)
    throw new UsageError(`--val_fraction ${c.val_fraction} leaves no validation task among the ${training.length} of --data ${c.data} (use --val_fraction 0 to train without validation)`);
}
