// A decode step over a static KV cache (kv-cache.ts, StaticKVCache): the same computation on the same
// tensors at every step, so on CUDA it is captured once as a CUDA graph and replayed (one launch instead
// of ~1,000 native calls and ~3,000 kernel launches), and everywhere it makes no concatenation and builds
// no mask or positions per step. generate.ts calls it for steps 1..N-1 after its prefill.
//
// Per step the inputs change in place: the fed tokens are copied into `ids`, the new position is marked
// attendable in `keyValid` (at `writeIndex`), then after the step `posIds` and `writeIndex` advance by one.
// A replay reads the weights where they are, so an optimizer step between calls is seen (its updates are
// in place), and autocast's casts are recorded in the graph rather than read from autocast's cache.
import * as torch from "../torch.ts";
import { type DType, type Device, type Tensor, cuda } from "../torch.ts";
import { type CacheLike, StaticKVCache } from "./kv-cache.ts";

/**
 * What a decode step needs of a causal LM (Qwen2ForCausalLM is one). Structural, so this file does not
 * import the model (which imports generation, which imports this).
 */
export interface DecodingModel {
  readonly config: { numHiddenLayers: number };
  readonly device: Device;
  readonly dtype: DType;
  forward(args: { inputIds: Tensor; positionIds: Tensor; attentionBias: Tensor; pastKeyValues: CacheLike; logitsToKeep: number }): { logits: Tensor | null };
}

/**
 * Cache lengths are rounded up to a multiple of this: one graph serves every prompt length in a block.
 * Coarse on purpose: each new (batch size, length) costs a capture (a warm-up step and the recording),
 * while attending over up to 511 masked positions more costs little (on an H200 a 16-row step over
 * Qwen2.5-1.5B's cache: a few hundredths of a millisecond per 512 positions).
 */
export const CACHE_BLOCK = 512;

/** What one (batch size, cache length, autocast setting) keeps: the static inputs, the cache, the graph. */
interface DecodeState {
  cache: StaticKVCache;
  ids: Tensor; // [B, 1] int64
  posIds: Tensor; // [B, 1] int64
  writeIndex: Tensor; // [1] int64
  keyValid: Tensor; // [B, capacity] bool
  bias: Tensor; // keyValid viewed [B, 1, 1, capacity]
  graph: cuda.CUDAGraph | null;
  logits: Tensor | null; // the graph's static output [B, V] float32
}

/** A model's decode graphs, by shape and autocast setting, kept across generate calls. */
export class DecodeGraphs {
  readonly states = new Map<string, DecodeState>();
  /** Why graphs are off for this model after a failed capture (auto mode falls back to eager). */
  disabled: string | null = null;
  dispose(): void {
    for (const s of this.states.values()) disposeState(s);
    this.states.clear();
  }
}

const registry = new WeakMap<DecodingModel, DecodeGraphs>();

/** The decode graphs kept for a model (created empty). */
export function decodeGraphsOf(model: DecodingModel): DecodeGraphs {
  let g = registry.get(model);
  if (!g) registry.set(model, (g = new DecodeGraphs()));
  return g;
}

/** Frees a model's decode graphs and their caches (e.g. before measuring memory or ending a run). */
export function releaseDecodeGraphs(model: DecodingModel): void {
  registry.get(model)?.dispose();
  registry.delete(model);
}

function disposeState(s: DecodeState): void {
  s.graph?.dispose();
  s.cache.dispose();
  for (const t of [s.ids, s.posIds, s.writeIndex, s.keyValid, s.bias, s.logits]) t?.dispose();
}

function newState(model: DecodingModel, b: number, capacity: number): DecodeState {
  const device = model.device;
  return torch.scope(() => {
    const keyValid = torch.keep(torch.zeros([b, capacity], { dtype: "bool", device }));
    return {
      cache: new StaticKVCache(model.config.numHiddenLayers, capacity),
      ids: torch.keep(torch.zeros([b, 1], { dtype: "int64", device })),
      posIds: torch.keep(torch.zeros([b, 1], { dtype: "int64", device })),
      writeIndex: torch.keep(torch.zeros([1], { dtype: "int64", device })),
      keyValid,
      bias: torch.keep(keyValid.view(b, 1, 1, capacity)),
      graph: null,
      logits: null,
    };
  });
}

export interface StaticDecode {
  cache: StaticKVCache;
  /** The decode graphs holding this call's state, or null (the caller frees it with release()). */
  graphs: DecodeGraphs | null;
  /** One decode step: feeds `fed` [B, 1], returns the last position's scores [B, V] (float32). */
  step: (fed: Tensor) => Tensor;
  /** Frees what this call made (nothing when graphs keep it). */
  release: () => void;
}

/**
 * Prepares the static decode of one generate call: a cache of `promptLength + maxNew` positions rounded
 * up to CACHE_BLOCK, its mask from the prompt's attention mask (left padding) and each row's next position.
 * The caller prefills positions 0..promptLength-1 into `cache`, then calls `step` once per new token.
 */
export function staticDecodeStep(
  model: DecodingModel,
  o: { batch: number; promptLength: number; maxNew: number; mask: Tensor | null; useGraphs: boolean; minCapacity?: number; variant?: string },
): StaticDecode {
  const b = o.batch;
  const t0 = o.promptLength;
  const capacity = Math.ceil(Math.max(t0 + o.maxNew, o.minCapacity ?? 0) / CACHE_BLOCK) * CACHE_BLOCK;
  const registryOf = o.useGraphs && cuda.graphsSupported() ? decodeGraphsOf(model) : null;
  const graphs = registryOf && !registryOf.disabled ? registryOf : null;
  const ac = torch.isAutocastEnabled("cuda") ? torch.getAutocastDtype("cuda") : "off";
  // A graph records the kernels of one way of computing: the variant (e.g. LoRA merged or not) is in the key.
  const key = `${b}x${capacity}:${ac}:${model.dtype}:${o.variant ?? ""}`;
  let s = graphs?.states.get(key);
  if (!s) {
    s = newState(model, b, capacity);
    graphs?.states.set(key, s);
  }
  const st = s;
  // This call's prompt: which cache positions hold tokens, each row's next position, where step 1 writes.
  torch.scope(() => {
    st.keyValid.zero_();
    const prompt = st.keyValid.narrow(1, 0, t0);
    if (o.mask) {
      prompt.copy_(o.mask.bool());
      st.posIds.copy_(o.mask.sum(1, true));
    } else {
      prompt.fill_(true);
      st.posIds.fill_(t0);
    }
    st.writeIndex.fill_(t0);
  });
  const forward = (): Tensor => {
    st.cache.writeIndex = st.writeIndex;
    st.cache.attendTo = capacity;
    try {
      return model
        .forward({ inputIds: st.ids, positionIds: st.posIds, attentionBias: st.bias, pastKeyValues: st.cache, logitsToKeep: 1 })
        .logits!.select(1, 0)
        .float();
    } finally {
      st.cache.writeIndex = null;
    }
  };
  const step = (fed: Tensor): Tensor => {
    st.ids.copy_(fed);
    st.keyValid.indexFill_(1, st.writeIndex, true);
    let scores: Tensor;
    if (graphs && !graphs.disabled) {
      if (!st.graph) {
        const graph = new cuda.CUDAGraph(torch.deviceCode(model.device));
        try {
          st.logits = torch.scope(() => torch.keep(graph.capture(forward)));
          st.graph = graph;
        } catch (e) {
          // auto: a capture that fails (an op that reads back to the host, a LibTorch without graph support
          // for an op) leaves this model on the eager path, said once. LibTorch 2.11 leaves its CUDA
          // generator marked as capturing after a failed capture, so random ops on the device may fail
          // from then on: the warning says so (the decode step itself draws no random numbers).
          graphs.disabled = (e as Error).message.split("\n")[0];
          console.error(`warning: CUDA graph capture failed, decoding eagerly from now on (${graphs.disabled}); if random ops on this GPU fail after this, rerun with --cuda_graphs off`);
        }
      }
      if (st.graph) {
        st.graph.replay();
        scores = st.logits!;
      } else scores = forward();
    } else scores = forward();
    st.posIds.add_(1);
    st.writeIndex.add_(1);
    return scores;
  };
  return { cache: st.cache, graphs, step, release: () => (graphs ? undefined : disposeState(st)) };
}
