// The key/value cache of decoder attention: each layer's keys and values so far, grown one step at a
// time. The model's attention (qwen2.ts) appends to it and generation (generate.ts) creates and frees it;
// it is a file of its own so that generate.ts needs the model only as a type, with no import cycle.
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
