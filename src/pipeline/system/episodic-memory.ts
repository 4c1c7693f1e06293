// EpisodicMemory (docs/pipeline.md, "Memory"): remembers refinement actions that worked, keyed by the prompt.
//
//   key = sg p / ||p||  (cosine similarity is a dot product of stored keys)
//   value = the action a [k] and R_after
//   write when R_after >= theta and r > 0 (theta as before this example); then, after every example,
//     theta <- thetaDecay * theta + (1 - thetaDecay) * R_after      (a threshold that follows the rewards)
//   full: the entry with the lowest R_after (the oldest among equals) makes room for a higher one; a
//     reward not above the lowest is not written
//   read: the top-k keys with cosine >= minSimilarity; bias = sum s_i a_i / sum s_i (added to the
//     policy's mean), null when none qualify
//
// Keys and actions live in preallocated kept float32 tensors [capacity, P] / [capacity, k] written in
// place; rewards are JS numbers (float64), saved as a float64 tensor so a checkpoint round trip is exact.
// read() and update() free their temporaries; read()'s bias belongs to the caller's scope.
import * as torch from "../../torch";
import type { Device, Tensor } from "../../torch";

export interface EpisodicMemoryOptions {
  /** Width of the keys (p's width P). */
  keyDim: number;
  /** Width of the stored actions (k, 32). */
  actionDim?: number;
  /** Entries kept (2048). */
  capacity?: number;
  /** Initial write threshold theta (0.2). */
  thetaInit?: number;
  /** EMA decay of theta (0.95). */
  thetaDecay?: number;
  /** Entries a read averages at most (4). */
  topK?: number;
  /** Least cosine similarity for an entry to count (0.5). */
  minSimilarity?: number;
  device?: Device;
}

export interface MemoryRead {
  /** Similarity-weighted mean of the qualifying entries' actions [k], or null when none qualify. */
  bias: Tensor | null;
  /** Entries that qualified (0..topK). */
  hits: number;
  /** Their cosine similarities, highest first. */
  similarities: number[];
  /** Their rows, in the same order. */
  slots: number[];
}

/** A batch read, as device tensors. */
export interface MemoryBatchRead {
  /** [B, k]: each row's similarity-weighted mean action, zeros where nothing qualified. */
  bias: Tensor;
  /** [B] float32: entries that qualified per row. */
  hits: Tensor;
  /** [B, K]: the top-K similarities, highest first, NaN where an entry did not qualify. */
  similarities: Tensor;
  /** [B, K] int64: their rows, -1 where an entry did not qualify. */
  slots: Tensor;
}

export interface MemoryUpdate {
  written: boolean;
  /** A stored entry was replaced to make room. */
  evicted: boolean;
  /** The row written, or -1. */
  slot: number;
  /** The threshold this example was judged against. */
  thresholdUsed: number;
  /** The threshold after this example. */
  theta: number;
}

/** Everything about the memory that is not a tensor (checkpoint state.json). */
export interface EpisodicMemoryState {
  version: 1;
  keyDim: number;
  actionDim: number;
  capacity: number;
  size: number;
  theta: number;
  thetaInit: number;
  thetaDecay: number;
  topK: number;
  minSimilarity: number;
  /** Write order of each filled row (ties in eviction go to the oldest). */
  stamps: number[];
  /** Counter behind the stamps. */
  clock: number;
  updates: number;
  writes: number;
  evictions: number;
  /** Qualified writes refused because the memory was full of better entries. */
  rejected: number;
  reads: number;
  /** Reads that returned a bias. */
  hitReads: number;
}

/** Tolerance on the similarity cut, so a key at exactly minSimilarity is not lost to float32 rounding. */
const SIM_EPS = 1e-6;

type Counters = { updates: number; writes: number; evictions: number; rejected: number; reads: number; hitReads: number };

export class EpisodicMemory {
  readonly keyDim: number;
  readonly actionDim: number;
  readonly capacity: number;
  thetaInit: number;
  thetaDecay: number;
  topK: number;
  minSimilarity: number;

  private keys: Tensor;
  private actions: Tensor;
  private rewards: number[] = [];
  private stamps: number[] = [];
  private _theta: number;
  private clock = 0;
  private counters: Counters = { updates: 0, writes: 0, evictions: 0, rejected: 0, reads: 0, hitReads: 0 };

  constructor(opts: EpisodicMemoryOptions) {
    this.keyDim = opts.keyDim;
    this.actionDim = opts.actionDim ?? 32;
    this.capacity = opts.capacity ?? 2048;
    this.thetaInit = opts.thetaInit ?? 0.2;
    this.thetaDecay = opts.thetaDecay ?? 0.95;
    this.topK = opts.topK ?? 4;
    this.minSimilarity = opts.minSimilarity ?? 0.5;
    for (const [name, v] of [["keyDim", this.keyDim], ["actionDim", this.actionDim], ["capacity", this.capacity], ["topK", this.topK]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`EpisodicMemory: ${name} must be a positive integer, got ${v}`);
    }
    if (!(this.thetaDecay >= 0 && this.thetaDecay <= 1)) throw new RangeError(`EpisodicMemory: thetaDecay must be in [0, 1], got ${this.thetaDecay}`);
    if (!Number.isFinite(this.thetaInit)) throw new RangeError(`EpisodicMemory: thetaInit must be finite, got ${this.thetaInit}`);
    this._theta = this.thetaInit;
    const device = opts.device ?? "cpu";
    this.keys = torch.keep(torch.zeros([this.capacity, this.keyDim], { device }));
    this.actions = torch.keep(torch.zeros([this.capacity, this.actionDim], { device }));
  }

  /** Entries stored. */
  get size(): number {
    return this.rewards.length;
  }

  /** The current write threshold. */
  get theta(): number {
    return this._theta;
  }

  get device(): Device {
    return this.keys.device;
  }

  /** Counters since creation (restored by loadState). */
  get stats(): Counters & { size: number; theta: number; meanReward: number } {
    const n = this.rewards.length;
    return { size: n, theta: this._theta, ...this.counters, meanReward: n ? this.rewards.reduce((a, b) => a + b, 0) / n : 0 };
  }

  /** The stored rewards R_after, by row. */
  storedRewards(): number[] {
    return [...this.rewards];
  }

  /** The unit key of p: [P] float32 on the memory's device (a zero vector stays zero). */
  private key(p: Tensor): Tensor {
    if (p.numel() !== this.keyDim) throw new RangeError(`EpisodicMemory: p must have ${this.keyDim} values, got [${p.shape}]`);
    const v = p.detach().reshape([this.keyDim]).to({ dtype: "float32", device: this.device });
    return v.div(v.norm(2).clamp(1e-12));
  }

  /** Up to topK stored entries with cosine >= minSimilarity to p, and their weighted mean action. */
  read(p: Tensor): MemoryRead {
    this.counters.reads += 1;
    const n = this.size;
    if (n === 0) {
      this.key(p).dispose(); // validates p like a non-empty read would
      return { bias: null, hits: 0, similarities: [], slots: [] };
    }
    const result = torch.noGrad(() =>
      torch.scope((): MemoryRead => {
        const q = this.key(p);
        const sims = this.keys.narrow(0, 0, n).matmul(q); // [n]
        const top = sims.topk(Math.min(this.topK, n));
        const values = top.values.tolist() as number[];
        const rows = top.indices.tolist() as number[];
        const similarities: number[] = [];
        const slots: number[] = [];
        values.forEach((s, i) => {
          if (s >= this.minSimilarity - SIM_EPS) {
            similarities.push(s);
            slots.push(rows[i]);
          }
        });
        if (slots.length === 0) return { bias: null, hits: 0, similarities, slots };
        const w = torch.tensor(similarities, { device: this.device });
        const picked = this.actions.indexSelect(0, torch.tensor(slots, { dtype: "int64", device: this.device }));
        const bias = picked.mul(w.unsqueeze(1)).sum(0).div(w.sum());
        return { bias, hits: slots.length, similarities, slots };
      }),
    );
    if (result.hits > 0) this.counters.hitReads += 1;
    return result;
  }

  /**
   * read() for a batch [B, P], on the device: one similarity matmul and one top-k, no host transfer.
   * Every row reads the memory as it stands now (a batch reads it as at its start, like the weights);
   * rows without a qualifying entry get a zero bias, which adds nothing to the policy's mean, exactly as
   * no bias. Call countReads() with the host copy of `hits` once the batch has it.
   */
  readBatch(p: Tensor): MemoryBatchRead {
    const [B, P] = p.shape;
    if (p.ndim !== 2 || P !== this.keyDim) throw new RangeError(`EpisodicMemory: a batch of p must be [B, ${this.keyDim}], got [${p.shape}]`);
    const n = this.size;
    return torch.noGrad(() =>
      torch.scope((): MemoryBatchRead => {
        if (n === 0) {
          const none = torch.zeros([B, 0], { device: this.device });
          return { bias: torch.zeros([B, this.actionDim], { device: this.device }), hits: torch.zeros([B], { device: this.device }), similarities: none, slots: none.long() };
        }
        const v = p.detach().to({ dtype: "float32", device: this.device });
        const q = v.div(v.norm(2, -1, true).clamp(1e-12)); // [B, P] unit keys
        const top = q.matmul(this.keys.narrow(0, 0, n).t()).topk(Math.min(this.topK, n), -1); // [B, K]
        const qualifies = top.values.ge(this.minSimilarity - SIM_EPS);
        const w = top.values.mul(qualifies.float()); // a non-qualifying entry weighs 0
        const K = w.shape[1];
        const picked = this.actions.indexSelect(0, top.indices.flatten()).view(B, K, this.actionDim);
        const bias = picked.mul(w.unsqueeze(2)).sum(1).div(w.sum(1, true).clamp(1e-30));
        return { bias, hits: qualifies.float().sum(1), similarities: top.values.maskedFill(qualifies.logicalNot(), Number.NaN), slots: top.indices.maskedFill(qualifies.logicalNot(), -1) };
      }),
    );
  }

  /** The read counters for a batch read (the host copy of readBatch's `hits`). */
  countReads(hits: number[]): void {
    this.counters.reads += hits.length;
    this.counters.hitReads += hits.filter((h) => h > 0).length;
  }

  /**
   * After one example: write (p, action, rAfter) when rAfter >= theta and r > 0 (evicting the lowest
   * reward when full, if rAfter is higher), then move theta toward rAfter.
   */
  update(p: Tensor, action: Tensor, rAfter: number, r: number): MemoryUpdate {
    if (!Number.isFinite(rAfter) || !Number.isFinite(r)) throw new RangeError(`EpisodicMemory.update: rewards must be finite, got rAfter ${rAfter}, r ${r}`);
    if (action.numel() !== this.actionDim) throw new RangeError(`EpisodicMemory: action must have ${this.actionDim} values, got [${action.shape}]`);
    if (p.numel() !== this.keyDim) throw new RangeError(`EpisodicMemory: p must have ${this.keyDim} values, got [${p.shape}]`);
    const thresholdUsed = this._theta;
    let slot = -1;
    let evicted = false;
    if (rAfter >= thresholdUsed && r > 0) {
      if (this.size < this.capacity) {
        slot = this.size;
      } else {
        const low = this.lowest();
        if (rAfter > this.rewards[low]) {
          slot = low;
          evicted = true;
        } else {
          this.counters.rejected += 1;
        }
      }
    }
    if (slot >= 0) {
      torch.noGrad(() =>
        torch.scope(() => {
          this.keys.select(0, slot).copy_(this.key(p));
          this.actions.select(0, slot).copy_(action.detach().reshape([this.actionDim]));
        }),
      );
      this.rewards[slot] = rAfter;
      this.stamps[slot] = this.clock++;
      this.counters.writes += 1;
      if (evicted) this.counters.evictions += 1;
    }
    this._theta = this.thetaDecay * this._theta + (1 - this.thetaDecay) * rAfter;
    this.counters.updates += 1;
    return { written: slot >= 0, evicted, slot, thresholdUsed, theta: this._theta };
  }

  /** Row of the lowest reward; the oldest among equals. */
  private lowest(): number {
    let best = 0;
    for (let i = 1; i < this.rewards.length; i++) {
      const r = this.rewards[i];
      if (r < this.rewards[best] || (r === this.rewards[best] && this.stamps[i] < this.stamps[best])) best = i;
    }
    return best;
  }

  /** Forgets every entry and resets theta to thetaInit (counters stay). */
  clear(): void {
    torch.noGrad(() => {
      this.keys.zero_();
      this.actions.zero_();
    });
    this.rewards = [];
    this.stamps = [];
    this._theta = this.thetaInit;
  }

  /**
   * The filled rows as tensors for a checkpoint: keys [size, P] and actions [size, k] (float32 copies)
   * and rewards [size] (float64). They belong to the caller's scope.
   */
  stateTensors(): Record<string, Tensor> {
    const n = this.size;
    return torch.scope(() => ({
      keys: this.keys.narrow(0, 0, n).clone(),
      actions: this.actions.narrow(0, 0, n).clone(),
      rewards: torch.fromTypedArray(Float64Array.from(this.rewards), [n], { device: this.device }),
    }));
  }

  stateJson(): EpisodicMemoryState {
    return {
      version: 1,
      keyDim: this.keyDim,
      actionDim: this.actionDim,
      capacity: this.capacity,
      size: this.size,
      theta: this._theta,
      thetaInit: this.thetaInit,
      thetaDecay: this.thetaDecay,
      topK: this.topK,
      minSimilarity: this.minSimilarity,
      stamps: [...this.stamps],
      clock: this.clock,
      ...this.counters,
    };
  }

  /**
   * Restores entries, theta, hyperparameters and counters (the tensors are copied; the caller keeps its own).
   * `json` is a whole stateJson(): a checkpoint's is brought to that shape when it loads (run/migrations.ts).
   */
  loadState(tensors: Record<string, Tensor>, json: EpisodicMemoryState): void {
    if (json?.version !== 1) throw new RangeError(`EpisodicMemory: unsupported state version ${json?.version}`);
    if (json.keyDim !== this.keyDim || json.actionDim !== this.actionDim)
      throw new RangeError(`EpisodicMemory: checkpoint has keys ${json.keyDim} / actions ${json.actionDim}, this memory has ${this.keyDim} / ${this.actionDim}`);
    const n = json.size;
    if (!Number.isInteger(n) || n < 0 || n > this.capacity) throw new RangeError(`EpisodicMemory: checkpoint holds ${n} entries, capacity is ${this.capacity}`);
    // An empty memory may come back without tensors (there was nothing to save).
    const { keys, actions, rewards } = tensors;
    if (n > 0 || keys || actions || rewards) {
      const shapeIs = (t: Tensor | undefined, s: number[]) => t !== undefined && t.shape.join(",") === s.join(",");
      if (!shapeIs(keys, [n, this.keyDim])) throw new RangeError(`EpisodicMemory: checkpoint keys must be [${n}, ${this.keyDim}], got ${keys ? `[${keys.shape}]` : "none"}`);
      if (!shapeIs(actions, [n, this.actionDim])) throw new RangeError(`EpisodicMemory: checkpoint actions must be [${n}, ${this.actionDim}], got ${actions ? `[${actions.shape}]` : "none"}`);
      if (!shapeIs(rewards, [n])) throw new RangeError(`EpisodicMemory: checkpoint rewards must be [${n}], got ${rewards ? `[${rewards.shape}]` : "none"}`);
    }
    const stamps = json.stamps;
    if (stamps.length !== n) throw new RangeError(`EpisodicMemory: checkpoint has ${stamps.length} stamps for ${n} entries`);
    const rewardValues = n === 0 ? [] : torch.scope(() => Array.from(rewards.to({ dtype: "float64", device: "cpu" }).data() as Float64Array));
    torch.noGrad(() =>
      torch.scope(() => {
        this.keys.zero_();
        this.actions.zero_();
        if (n > 0) {
          this.keys.narrow(0, 0, n).copy_(keys);
          this.actions.narrow(0, 0, n).copy_(actions);
        }
      }),
    );
    this.rewards = rewardValues;
    this.stamps = [...stamps];
    this.clock = json.clock;
    this._theta = json.theta;
    this.thetaInit = json.thetaInit;
    this.thetaDecay = json.thetaDecay;
    this.topK = json.topK;
    this.minSimilarity = json.minSimilarity;
    for (const k of Object.keys(this.counters) as (keyof Counters)[]) this.counters[k] = json[k];
  }

  /** A memory rebuilt from stateTensors() + stateJson() (capacity and hyperparameters from the JSON). */
  static fromState(tensors: Record<string, Tensor>, json: EpisodicMemoryState, opts: { device?: Device; capacity?: number } = {}): EpisodicMemory {
    const m = new EpisodicMemory({
      keyDim: json.keyDim,
      actionDim: json.actionDim,
      capacity: opts.capacity ?? json.capacity,
      thetaInit: json.thetaInit,
      thetaDecay: json.thetaDecay,
      topK: json.topK,
      minSimilarity: json.minSimilarity,
      device: opts.device,
    });
    try {
      m.loadState(tensors, json);
    } catch (e) {
      m.dispose();
      throw e;
    }
    return m;
  }

  /** Moves the banks to another device. */
  to(device: Device): this {
    if (torch.normalizeDevice(device) === torch.normalizeDevice(this.device)) return this;
    const move = (t: Tensor) => {
      const moved = torch.keep(torch.scope(() => t.to({ device })));
      t.dispose();
      return moved;
    };
    this.keys = move(this.keys);
    this.actions = move(this.actions);
    return this;
  }

  /** Frees the banks. */
  dispose(): void {
    this.keys.dispose();
    this.actions.dispose();
  }
}
