// Text generation with a causal LM, in transformers' semantics: greedy or sampled decoding over a KV
// cache, left-padded batches (prefilled whole or in length buckets), EOS per row tracked on the device,
// and the logits processors (repetition penalty, temperature, top-k, top-p). Separate from qwen2.ts,
// which is the model alone (config and modules named as the checkpoint's keys): decoding is a loop
// around the model's forward, as in candle, where qwen2.rs holds the model and generation is elsewhere.
// Qwen2ForCausalLM.generate is a thin delegate to generate() here, which is typed against CausalLM below
// and so imports no model.
//
//   const newIds = generate(model, inputIds, { maxNewTokens: 16 });   // or model.generate(inputIds, ...)
import { planPasses } from "../util/passes";
import * as torch from "../torch.ts";
import { type Device, F, Tensor, TorchError } from "../torch.ts";
import type { Module } from "../nn/index.ts";
import { type CacheLike, KVCache, StaticKVCache } from "./kv-cache.ts";
import { type DecodingModel, type StaticDecode, staticDecodeStep } from "./decode-step.ts";
import { withMergedAdapters } from "./lora.ts";

/** The forward arguments generation passes (Qwen2ForwardInput has them all). */
export interface CausalLMInput {
  inputIds: Tensor;
  attentionMask?: Tensor | null;
  padded?: boolean;
  positionIds?: Tensor;
  attentionBias?: Tensor;
  pastKeyValues: CacheLike;
  useCache?: boolean;
  logitsToKeep: number;
}

/**
 * What generate needs of a causal LM (Qwen2ForCausalLM is one): a Module (train/eval flags, LoRA
 * adapters) with a forward over a KV cache and the EOS and padding ids of its generation config.
 */
export interface CausalLM extends Module, DecodingModel {
  readonly generationConfig: { eosTokenIds: number[]; padTokenId: number | null };
  forward(args: CausalLMInput): { logits: Tensor | null };
}

export interface GenerateOptions {
  /** Default 32. */
  maxNewTokens?: number;
  /** Stop a row at any of these (default generation_config.json's eos_token_id, else config.json's). */
  eosTokenIds?: number[];
  /** Sample instead of greedy (default false). */
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** > 1 discourages tokens already present (transformers' RepetitionPenaltyLogitsProcessor). */
  repetitionPenalty?: number;
  /** [B, T] for left-padded batches (1 = token, 0 = padding); host arrays are checked without a device read. */
  attentionMask?: Tensor | number[][] | null;
  /** Fed to finished rows (default: the first EOS id). Never part of the output. */
  padTokenId?: number;
  /**
   * Largest share of padding in one prefill pass (default 1: the whole batch at once). Below 1, rows of
   * a left-padded batch (a host mask) are prefilled in length buckets, then decoded together: the prompt's
   * attention grows with the square of the padded length, while every decode step costs about the same
   * for one row or many (lm_head's weights are read once a step).
   */
  prefillPadShare?: number;
  /**
   * "static" (default): a preallocated cache written in place, the mask and positions built once per call
   * and updated on the device; "dynamic": the cache grows by concatenation each step (the old path, kept
   * as the reference the static one is tested against).
   */
  cache?: "static" | "dynamic";
  /**
   * Replay each decode step as a CUDA graph (static cache, CUDA, greedy decoding without a repetition
   * penalty): "auto" (default) where supported, "off". Graphs are kept per model, batch size, cache length
   * and autocast setting, and reused across calls.
   */
  cudaGraphs?: "auto" | "off";
  /**
   * Fold LoRA adapters into merged copies of their base weights for this call (lora.ts,
   * withMergedAdapters): "auto" (default) on CUDA, where each extra kernel costs launch time, "on", "off".
   */
  mergeAdapters?: "auto" | "on" | "off";
  /**
   * The static cache's least length (default: the prompt plus the new tokens). A caller whose prompts vary
   * up to a known budget gives it, so every call of a batch size shares one cache and one CUDA graph.
   */
  cacheCapacity?: number;
  /** When given, each step's scores [B, V] (float32, before sampling) are pushed here, kept (transformers' output_scores). */
  scores?: Tensor[];
}

/**
 * Autoregressive decoding with a KV cache, without gradient, in eval mode (dropout off; the modules'
 * training flags are restored after). Returns each row's new ids, up to and including the first EOS.
 * Batches must be left-padded (attentionMask).
 *
 * Few host round trips: finished rows are tracked on the device (and fed padTokenId), the new tokens
 * come back in one transfer at the end, and "has every row finished?" is read every GENERATE_CHECK_EVERY
 * steps for the early exit. So a call makes at most ceil(maxNewTokens / 8) + 2 device reads whatever the
 * batch size (the +2: the final transfer, and a Tensor attentionMask's checks; a host one costs none).
 * The price: up to 7 steps past the last EOS (which draw from the RNG when sampling).
 */
export function generate(model: CausalLM, inputIds: Tensor | number[][], opts: GenerateOptions = {}): number[][] {
  const maxNew = opts.maxNewTokens ?? 32;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new TorchError(`maxNewTokens must be a non-negative integer, got ${maxNew}`);
  const eos = new Set(opts.eosTokenIds ?? model.generationConfig.eosTokenIds);
  const penalty = opts.repetitionPenalty ?? 1;
  if (!(penalty > 0)) throw new TorchError(`repetitionPenalty must be positive, got ${penalty}`);
  const doSample = opts.doSample ?? false;
  const temperature = opts.temperature ?? 1;
  if (doSample && !(temperature > 0)) throw new TorchError(`temperature must be positive, got ${temperature}`);
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new TorchError(`topP must be in (0, 1], got ${topP}`);
  const padId = opts.padTokenId ?? model.generationConfig.padTokenId ?? [...eos][0] ?? 0;

  const flags = model.modules().map((m) => [m, m.training] as const);
  model.eval();
  const staticCache = (opts.cache ?? "static") === "static";
  // The cache this call made (a growing one, or a static decode's): freed at the end unless graphs keep it.
  let st: StaticDecode | null = null;
  let dynamic: KVCache | null = null;
  const merge = opts.mergeAdapters ?? "auto";
  const merged = merge === "on" || (merge === "auto" && String(model.device).startsWith("cuda"));
  const adapters = <R>(f: () => R): R => (merged ? withMergedAdapters(model, f) : f());
  try {
    return adapters(() => torch.noGrad(() =>
      torch.scope(() => {
        const dev = model.device;
        const ids = inputIds instanceof Tensor ? inputIds.to({ device: dev, dtype: "int64" }) : torch.tensor(inputIds, { dtype: "int64", device: dev });
        if (ids.ndim !== 2) throw new TorchError(`generate: inputIds must be [batch, seq], got [${ids.shape}]`);
        const [b, t0] = ids.shape;
        const out: number[][] = Array.from({ length: b }, () => []);
        if (maxNew === 0 || t0 === 0) return out;
        const given = generationMask(opts.attentionMask ?? null, b, t0, dev);
        const padded = given.padded; // appended columns are 1s: it stays what the prompt's mask says
        let mask = given.mask;
        // Without EOS ids no row ever finishes: nothing to track or check.
        const eosT = eos.size ? torch.tensor([...eos], { dtype: "int64", device: dev }) : null;
        let finished = eosT ? torch.zeros([b], { dtype: "bool", device: dev }) : null;
        const steps: Tensor[] = [];
        let seq = ids; // every id so far (repetition penalty)
        let next = ids;
        const buckets = prefillBuckets(opts.attentionMask ?? null, opts.prefillPadShare ?? 1);
        // The static path: the prompt's keys and values go into a preallocated cache (positions 0..t0-1),
        // then every decode step is the same computation on the same tensors (staticDecodeStep).
        let decode: ((fed: Tensor) => Tensor) | null = null;
        let cache: KVCache | StaticKVCache;
        if (staticCache && maxNew > 1) {
          const useGraphs = (opts.cudaGraphs ?? "auto") === "auto" && !doSample && penalty === 1 && String(dev).startsWith("cuda");
          st = staticDecodeStep(model, { batch: b, promptLength: t0, maxNew, mask, useGraphs, minCapacity: opts.cacheCapacity, variant: merged ? "merged" : "adapters" });
          cache = st.cache;
          decode = st.step;
        } else cache = dynamic = new KVCache(model.config.numHiddenLayers);
        for (let step = 0; step < maxNew; step++) {
          const tok = torch.scope(() => {
            let scores: Tensor; // [B, V]
            if (step === 0 && buckets) scores = prefillInBuckets(model, ids, opts.attentionMask as number[][], buckets, cache).float();
            else if (step === 0 && cache instanceof StaticKVCache) {
              cache.writeIndex = torch.arange(0, t0, 1, { device: dev });
              cache.attendTo = null;
              scores = model.forward({ inputIds: ids, attentionMask: mask, padded, pastKeyValues: cache, logitsToKeep: 1 }).logits!.select(1, 0).float();
              cache.writeIndex = null;
            } else if (decode) scores = decode(next);
            else scores = model.forward({ inputIds: next, attentionMask: mask, padded, pastKeyValues: cache, useCache: true, logitsToKeep: 1 }).logits!.select(1, 0).float();
            if (opts.scores) opts.scores.push(torch.keep(scores.clone()));
            if (penalty !== 1) scores = repetitionPenalty(scores, seq, mask, penalty);
            if (!doSample) return scores.argmax(-1);
            if (temperature !== 1) scores = scores.div(temperature);
            if (topK > 0) scores = topKFilter(scores, topK);
            if (topP < 1) scores = topPFilter(scores, topP);
            return torch.multinomial(scores.softmax(-1), 1).squeeze(1);
          });
          // A finished row's later tokens are junk (it reads padding) and are cut on the host at its EOS.
          steps.push(tok);
          if (step === maxNew - 1) break;
          let fed = tok;
          if (finished && eosT) {
            finished = finished.logicalOr(tok.unsqueeze(1).eq(eosT).any(1));
            if ((step + 1) % GENERATE_CHECK_EVERY === 0 && finished.all().item()) break;
            fed = tok.maskedFill(finished, padId);
          }
          next = fed.view(b, 1);
          if (penalty !== 1) seq = torch.cat([seq, next], 1);
          if (mask && (!decode || penalty !== 1)) mask = torch.cat([mask, torch.ones([b, 1], { dtype: "int64", device: dev })], 1);
        }
        const rows = torch.stack(steps, 1).tolist() as number[][]; // the one transfer of the tokens
        for (let i = 0; i < b; i++) {
          const end = rows[i].findIndex((t) => eos.has(t));
          out[i] = end < 0 ? rows[i] : rows[i].slice(0, end + 1);
        }
        return out;
      }),
    ));
  } finally {
    // A static cache held by decode graphs stays with them (reused by the next call of this shape).
    (st as StaticDecode | null)?.release(); // both assigned inside the callback above
    (dynamic as KVCache | null)?.dispose();
    for (const [m, tr] of flags) m.training = tr;
  }
}

/**
 * The prompt pass of a left-padded batch in length buckets: each bucket's rows cut to its own longest
 * (their positions are the same, so are their keys and values), then every layer's cache left-padded
 * back to the batch's length and put in input order, where the batch's mask hides the padding. Returns
 * the last position's logits [B, V] in input order.
 */
function prefillInBuckets(model: CausalLM, ids: Tensor, mask: number[][], buckets: { members: number[]; length: number }[], cache: KVCache | StaticKVCache): Tensor {
  const [, t0] = ids.shape;
  const dev = model.device;
  const parts = buckets.map(({ members, length }) => {
    const rows = torch.tensor(members, { dtype: "int64", device: dev });
    const part = new KVCache(model.config.numHiddenLayers);
    const sub = members.map((r) => mask[r].slice(t0 - length));
    const padded = sub.some((row) => row.includes(0));
    const inputIds = ids.indexSelect(0, rows).narrow(1, t0 - length, length);
    const attentionMask = padded ? torch.tensor(sub, { dtype: "int64", device: dev }) : null;
    const logits = model.forward({ inputIds, attentionMask, padded, pastKeyValues: part, useCache: true, logitsToKeep: 1 }).logits!.select(1, 0);
    return { members, length, part, logits };
  });
  const order = parts.flatMap((p) => p.members);
  const inverse = new Array<number>(order.length);
  order.forEach((row, k) => (inverse[row] = k));
  const back = torch.tensor(inverse, { dtype: "int64", device: dev });
  for (let i = 0; i < model.config.numHiddenLayers; i++) {
    const merged = [0, 1].map((kv) => torch.cat(parts.map((p) => F.pad(p.part.layer(i)![kv], [0, 0, t0 - p.length, 0]))).indexSelect(0, back));
    cache.setLayer(i, merged[0], merged[1]);
  }
  for (const p of parts) p.part.dispose();
  return torch.cat(parts.map((p) => p.logits)).indexSelect(0, back);
}

/** generate() reads "every row finished?" back from the device once per this many steps. */
export const GENERATE_CHECK_EVERY = 8;

/**
 * generate()'s mask on the device and whether it has padding, checked left-padded (every row's last
 * entry 1). Host arrays are checked on the host; a Tensor costs one device read for both answers.
 */
function generationMask(m: Tensor | number[][] | null, b: number, t0: number, dev: Device): { mask: Tensor | null; padded: boolean } {
  if (m === null) return { mask: null, padded: false };
  const leftPadded = "generate: batches must be left-padded (every row's last attentionMask entry 1)";
  if (m instanceof Tensor) {
    if (m.shape.join(",") !== `${b},${t0}`) throw new TorchError(`generate: attentionMask [${m.shape}] must match inputIds [${b},${t0}]`);
    const mask = m.to({ device: dev, dtype: "int64" });
    const on = mask.bool();
    const [lastAll, all] = (torch.stack([on.select(1, t0 - 1).all(), on.all()]).tolist() as (number | boolean)[]).map(Boolean);
    if (!lastAll) throw new TorchError(leftPadded);
    return { mask, padded: !all };
  }
  if (m.length !== b || m.some((r) => r.length !== t0)) throw new TorchError(`generate: attentionMask [${m.length},${m[0]?.length ?? 0}] must match inputIds [${b},${t0}]`);
  if (m.some((r) => r[t0 - 1] === 0)) throw new TorchError(leftPadded);
  return { mask: torch.tensor(m, { dtype: "int64", device: dev }), padded: m.some((r) => r.includes(0)) };
}

/**
 * Length buckets for generate's prefill: only for a host mask of left-padded rows (zeros, then ones) and a
 * share below 1, and only when it makes more than one bucket; null otherwise (one prefill pass). A bucket
 * is cut to its longest row; its shorter rows keep their own left padding (up to the share).
 */
function prefillBuckets(m: Tensor | number[][] | null, share: number): { members: number[]; length: number }[] | null {
  if (share >= 1 || m === null || m instanceof Tensor || m.length < 2) return null;
  const lengths = m.map((row) => row.reduce((a, v) => a + (v ? 1 : 0), 0));
  if (m.some((row, i) => row.slice(row.length - lengths[i]).some((v) => !v))) return null; // not zeros-then-ones
  const passes = planPasses(lengths.map((l) => [l, 1] as [number, number]), share);
  return passes.length > 1 ? passes.map((p) => ({ members: p.members, length: p.height })) : null;
}

// ---- logits processors (transformers' semantics) -----------------------------------------------------

/** Scores of tokens present in `seq` (padding excluded): divided by p when positive, multiplied when negative. */
export function repetitionPenalty(scores: Tensor, seq: Tensor, mask: Tensor | null, p: number): Tensor {
  const [b, v] = scores.shape;
  const w = mask ? mask.float() : torch.onesLike(seq).float();
  const present = torch.zeros([b, v], { device: scores.device }).scatterAdd(1, seq, w).gt(0);
  const penalised = torch.where(scores.lt(0), scores.mul(p), scores.div(p));
  return torch.where(present, penalised, scores);
}

export function topKFilter(scores: Tensor, k: number): Tensor {
  const kk = Math.min(k, scores.shape[1]);
  const kth = scores.topk(kk, -1).values.narrow(1, kk - 1, 1);
  return scores.maskedFill(scores.lt(kth), -Infinity);
}

export function topPFilter(scores: Tensor, p: number): Tensor {
  const { values, indices } = scores.sort(-1, false);
  const cum = values.softmax(-1).cumsum(-1);
  const remove = cum.le(1 - p);
  remove.narrow(1, remove.shape[1] - 1, 1).fill_(false); // keep at least one token
  return scores.maskedFill(remove.scatter(1, indices, remove), -Infinity);
}
