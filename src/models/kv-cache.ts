// The key/value cache of decoder attention: each layer's keys and values so far, grown one step at a
// time. The model's attention (qwen2.ts) appends to it and generation (generate.ts) creates and frees it;
// it is a file of its own so that generate.ts, which the model imports, needs nothing of the model.
import * as torch from "../torch.ts";
import type { Tensor } from "../torch.ts";

/**
 * Keys and values per layer, [B, kvHeads, S, headDim] each, grown by concatenation. Its tensors outlive
 * scopes; `dispose()` frees them (generate() does).
 */
export class KVCache {
  private readonly keys: (Tensor | null)[];
  private readonly values: (Tensor | null)[];
  constructor(readonly numLayers: number) {
    this.keys = Array(numLayers).fill(null);
    this.values = Array(numLayers).fill(null);
  }
  /** Cached positions (0 when empty). */
  get length(): number {
    return this.keys[0]?.shape[2] ?? 0;
  }
  /** Appends this step's keys/values of layer `i` and returns the whole sequence's. */
  update(i: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const ok = this.keys[i];
    const ov = this.values[i];
    const nk = torch.keep(ok ? torch.cat([ok, k], 2) : k);
    const nv = torch.keep(ov ? torch.cat([ov, v], 2) : v);
    ok?.dispose();
    ov?.dispose();
    this.keys[i] = nk;
    this.values[i] = nv;
    return [nk, nv];
  }
  /** Replaces layer i's keys and values (kept; the previous ones are freed). */
  setLayer(i: number, k: Tensor, v: Tensor): void {
    this.keys[i]?.dispose();
    this.values[i]?.dispose();
    this.keys[i] = torch.keep(k);
    this.values[i] = torch.keep(v);
  }
  layer(i: number): [Tensor, Tensor] | null {
    const k = this.keys[i];
    return k ? [k, this.values[i]!] : null;
  }
  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
  }
}

/** What the attention layers need of a cache. */
export interface CacheLike {
  /** Cached positions before this forward (0 for a static cache: its callers give positions and mask). */
  readonly length: number;
  update(i: number, k: Tensor, v: Tensor): [Tensor, Tensor];
}

/**
 * A preallocated cache, [B, kvHeads, capacity, headDim] per layer, written in place at `writeIndex` (an
 * int64 tensor of cache positions on the device, updated in place between steps) and never reallocated:
 * a decode step then has the same tensors at the same addresses every time, which is what a captured
 * CUDA graph replays, and no step pays for a concatenation of the whole cache.
 * `attendTo` says what attention reads: null (a prefill) the keys and values just written, a number the
 * first `attendTo` positions of the cache (a decode step, with a mask that hides the unwritten ones).
 */
export class StaticKVCache implements CacheLike {
  private readonly keys: (Tensor | null)[];
  private readonly values: (Tensor | null)[];
  /** Positions this forward writes (int64, on the cache's device). Set before each forward. */
  writeIndex: Tensor | null = null;
  attendTo: number | null = null;
  constructor(readonly numLayers: number, readonly capacity: number) {
    this.keys = Array(numLayers).fill(null);
    this.values = Array(numLayers).fill(null);
  }
  /**
   * 0: the prefill's forward sees no cached positions (its own are 0..T-1), and a decode step passes its
   * positions and mask itself (attentionBias), so the model never derives them from the cache.
   */
  get length(): number {
    return 0;
  }
  private buffers(i: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    if (!this.keys[i]) {
      const [b, h, , d] = k.shape;
      this.keys[i] = torch.keep(torch.zeros([b, h, this.capacity, d], { dtype: k.dtype, device: k.device }));
      this.values[i] = torch.keep(torch.zeros([b, h, this.capacity, v.shape[3]], { dtype: v.dtype, device: v.device }));
    }
    return [this.keys[i]!, this.values[i]!];
  }
  update(i: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    if (!this.writeIndex) throw new Error("StaticKVCache.update: writeIndex is not set");
    const [K, V] = this.buffers(i, k, v);
    K.indexCopy_(2, this.writeIndex, k);
    V.indexCopy_(2, this.writeIndex, v);
    if (this.attendTo === null) return [k, v];
    return [K.narrow(2, 0, this.attendTo), V.narrow(2, 0, this.attendTo)];
  }
  /** Writes a prefill's keys and values (merged from length buckets) at positions 0..T-1. */
  setLayer(i: number, k: Tensor, v: Tensor): void {
    const [K, V] = this.buffers(i, k, v);
    K.narrow(2, 0, k.shape[2]).copy_(k);
    V.narrow(2, 0, v.shape[2]).copy_(v);
  }
  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
  }
}
