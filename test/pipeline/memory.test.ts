// EpisodicMemory (docs/pipeline.md, "Memory"): the dynamic threshold, the write rule, eviction at capacity, top-k
// cosine reads with a similarity-weighted mean, exact checkpoint round trips, and no leak.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch";
import { EpisodicMemory, type EpisodicMemoryState } from "../../src/pipeline/system/episodic-memory";
import { expectClose } from "../helpers/numeric";

const t = (xs: number[]) => torch.tensor(xs);

/** Writes (key, action, rAfter) with r = 1 into a memory whose threshold stays at 0. */
function filled(entries: [number[], number[], number][], opts: { capacity?: number; topK?: number } = {}): EpisodicMemory {
  const m = new EpisodicMemory({ keyDim: entries[0][0].length, actionDim: entries[0][1].length, thetaInit: 0, thetaDecay: 1, ...opts });
  for (const [k, a, rAfter] of entries) torch.scope(() => expect(m.update(t(k), t(a), rAfter, 1).written).toBe(true));
  return m;
}

const read = (m: EpisodicMemory, q: number[]) =>
  torch.scope(() => {
    const r = m.read(t(q));
    return { bias: r.bias ? (r.bias.tolist() as number[]) : null, hits: r.hits, similarities: r.similarities, slots: r.slots };
  });

describe("EpisodicMemory", () => {
  test("theta follows R_after (up after good examples, down after bad); writes need R_after >= theta and r > 0", () => {
    const m = new EpisodicMemory({ keyDim: 3, actionDim: 2 });
    expect(m.theta).toBe(0.2);
    expect(m.size).toBe(0);
    const steps: [number, number, boolean, number][] = [
      // rAfter, r, written, theta after
      [0.3, 0.1, true, 0.205],
      [0.9, 0.0, false, 0.23975], // r = 0: no write, theta still rises
      [0.22, 0.5, false, 0.2387625], // below theta (0.23975): no write, theta falls
      [0.2387625, 0.01, true, 0.2387625], // exactly theta: written
      [0.0, -0.5, false, 0.226824375],
      [1.0, 0.2, true, 0.26548315625],
    ];
    let before = 0.2;
    const stored: number[] = [];
    for (const [value, r, written, theta] of steps) {
      // The fourth example sits exactly on the threshold (the float theta, not its rounded literal).
      const rAfter = value === 0.2387625 ? m.theta : value;
      expect(rAfter).toBeCloseTo(value, 12);
      if (written) stored.push(rAfter);
      const u = torch.scope(() => m.update(t([1, 2, 3]), t([0.5, -0.5]), rAfter, r));
      expect(u.written).toBe(written);
      expect(u.evicted).toBe(false);
      expect(u.thresholdUsed).toBeCloseTo(before, 12);
      expect(u.theta).toBeCloseTo(theta, 12);
      expect(m.theta).toBe(u.theta);
      before = u.theta;
    }
    expect(m.size).toBe(3);
    expect(m.storedRewards()).toEqual(stored);
    expect(m.stats).toMatchObject({ size: 3, updates: 6, writes: 3, evictions: 0, rejected: 0 });
    m.dispose();
  });

  test("at capacity the lowest reward (the oldest among equals) is evicted for a higher one; lower or equal ones are not written", () => {
    const e = (i: number) => [0, 1, 2, 3, 4].map((j) => (j === i ? 1 : 0));
    const m = filled([[e(0), [0], 0.5], [e(1), [1], 0.3], [e(2), [2], 0.7]], { capacity: 3 });
    expect(m.size).toBe(3);
    let u = torch.scope(() => m.update(t(e(3)), t([3]), 0.6, 1));
    expect(u).toMatchObject({ written: true, evicted: true, slot: 1 });
    expect(m.storedRewards()).toEqual([0.5, 0.6, 0.7]);
    expect(read(m, e(3))).toEqual({ bias: [3], hits: 1, similarities: [1], slots: [1] });
    expect(read(m, e(1)).bias).toBeNull(); // the evicted key is gone
    u = torch.scope(() => m.update(t(e(4)), t([4]), 0.45, 1));
    expect(u).toMatchObject({ written: false, evicted: false, slot: -1 });
    u = torch.scope(() => m.update(t(e(4)), t([4]), 0.5, 1)); // equal to the lowest: not higher
    expect(u.written).toBe(false);
    expect(m.storedRewards()).toEqual([0.5, 0.6, 0.7]);
    expect(m.stats).toMatchObject({ writes: 4, evictions: 1, rejected: 2 });

    // Ties: the oldest of the lowest goes first.
    const n = filled([[e(0), [0], 0.4], [e(1), [1], 0.4], [e(2), [2], 0.9]], { capacity: 3 });
    expect(torch.scope(() => n.update(t(e(3)), t([3]), 0.5, 1)).slot).toBe(0);
    expect(torch.scope(() => n.update(t(e(4)), t([4]), 0.6, 1)).slot).toBe(1);
    expect(n.storedRewards()).toEqual([0.5, 0.6, 0.9]);
    expect(torch.scope(() => n.update(t(e(0)), t([9]), 0.55, 1)).slot).toBe(0);
    m.dispose();
    n.dispose();
  });

  test("reads: top-k by cosine >= 0.5, bias = sum s_i a_i / sum s_i", () => {
    const m = filled([
      [[2, 0, 0], [1, 0], 0.5],
      [[0, 3, 0], [0, 1], 0.5],
      [[1, 1, 0], [2, 2], 0.5],
      [[5, 0, 5], [-1, 3], 0.5],
      [[-1, 0, 0], [5, 5], 0.5],
      [[1, 0.1, 0], [0, -2], 0.5],
    ]);
    const s = Math.SQRT1_2;
    const s5 = 1 / Math.sqrt(1.01);
    // Query e0: rows 0 (1), 5 (0.995), 2 and 3 (0.707 each); row 1 (0) and row 4 (-1) do not count.
    let r = read(m, [3, 0, 0]);
    expect(r.hits).toBe(4);
    expect(r.slots.slice(0, 2)).toEqual([0, 5]);
    expect([...r.slots.slice(2)].sort()).toEqual([2, 3]);
    expectClose(r.similarities, [1, s5, s, s], 1e-6);
    const w = 1 + s5 + 2 * s;
    expectClose(r.bias, [(1 + 2 * s - s) / w, (-2 * s5 + 2 * s + 3 * s) / w], 1e-6);
    // top-2
    m.topK = 2;
    r = read(m, [1, 0, 0]);
    expect(r.slots).toEqual([0, 5]);
    expectClose(r.bias, [1 / (1 + s5), (-2 * s5) / (1 + s5)], 1e-6);
    m.topK = 4;
    // One qualifying entry: its action exactly.
    r = read(m, [0, 0, 0.1]);
    expect(r.hits).toBe(1);
    expect(r.slots).toEqual([3]);
    expectClose(r.bias, [-1, 3], 1e-6);
    // None qualify.
    expect(read(m, [0, -1, 0])).toEqual({ bias: null, hits: 0, similarities: [], slots: [] });
    // A zero query matches nothing.
    expect(read(m, [0, 0, 0]).bias).toBeNull();
    m.dispose();

    // The 0.5 cut is inclusive (cos 60 degrees counts, 61 does not); an empty memory reads null.
    const b = filled([[[1, Math.sqrt(3), 0], [7], 1]]);
    expect(read(b, [1, 0, 0]).hits).toBe(1);
    const c = filled([[[1, Math.tan((61 * Math.PI) / 180), 0], [7], 1]]);
    expect(read(c, [1, 0, 0]).hits).toBe(0);
    const empty = new EpisodicMemory({ keyDim: 3, actionDim: 1 });
    expect(read(empty, [1, 0, 0])).toEqual({ bias: null, hits: 0, similarities: [], slots: [] });
    expect(empty.stats).toMatchObject({ reads: 1, hitReads: 0 });
    expect(b.stats).toMatchObject({ reads: 1, hitReads: 1 });
    for (const x of [b, c, empty]) x.dispose();
  });

  test("round trip through stateTensors/stateJson (and a safetensors file) gives identical reads, theta and evictions", () => {
    torch.manualSeed(7);
    const P = 8;
    const K = 4;
    const a = new EpisodicMemory({ keyDim: P, actionDim: K, capacity: 5, thetaInit: 0.1, topK: 3, minSimilarity: 0.2 });
    const keys = Array.from({ length: 12 }, () => torch.randn([P]));
    const acts = Array.from({ length: 12 }, () => torch.randn([K]));
    const rew = [0.5, 0.2, 0.9, 0.4, 0.45, 0.8, 0.3, 0.95, 0.6, 0.7, 0.85, 0.1];
    for (let i = 0; i < 8; i++) torch.scope(() => a.update(keys[i], acts[i], rew[i], 0.1));
    expect(a.size).toBe(5);
    expect(a.stats.evictions).toBeGreaterThan(0);

    const dir = mkdtempSync(join(tmpdir(), "memory-test-"));
    try {
      const file = join(dir, "memory.safetensors");
      torch.scope(() => torch.safetensors.saveFile(file, a.stateTensors()));
      const json = JSON.parse(JSON.stringify(a.stateJson())) as EpisodicMemoryState;
      expect(json).toMatchObject({ version: 1, keyDim: P, actionDim: K, capacity: 5, size: 5, topK: 3, minSimilarity: 0.2 });
      const loaded = torch.safetensors.loadFile(file);
      expect(loaded.rewards.dtype).toBe("float64");
      const b = EpisodicMemory.fromState(loaded, json);
      torch.dispose(loaded);
      expect(b.theta).toBe(a.theta);
      expect(b.size).toBe(a.size);
      expect(b.capacity).toBe(5);
      expect(b.storedRewards()).toEqual(a.storedRewards());
      expect(b.stats).toEqual(a.stats);
      const sameRead = (q: torch.Tensor) =>
        torch.scope(() => {
          const x = a.read(q);
          const y = b.read(q);
          expect(y.slots).toEqual(x.slots);
          expect(y.similarities).toEqual(x.similarities);
          expect(x.bias === null).toBe(y.bias === null);
          if (x.bias && y.bias) expect(y.bias.equal(x.bias)).toBe(true);
          return x.hits;
        });
      let hits = 0;
      for (const q of keys) hits += sameRead(q);
      expect(hits).toBeGreaterThan(0);
      // The rest of the stream behaves the same on both (same writes, same evictions, same theta).
      for (let i = 8; i < 12; i++) {
        const x = torch.scope(() => a.update(keys[i], acts[i], rew[i], 0.1));
        const y = torch.scope(() => b.update(keys[i], acts[i], rew[i], 0.1));
        expect(y).toEqual(x);
      }
      for (const q of keys) sameRead(q);
      expect(b.stateJson()).toEqual(a.stateJson());

      // loadState into an existing memory; an empty memory round-trips too.
      const c = new EpisodicMemory({ keyDim: P, actionDim: K, capacity: 5 });
      torch.scope(() => c.loadState(a.stateTensors(), a.stateJson()));
      expect(c.stateJson()).toEqual(a.stateJson());
      for (const q of keys) torch.scope(() => expect(c.read(q).slots).toEqual(a.read(q).slots));
      const e = new EpisodicMemory({ keyDim: P, actionDim: K });
      const emptyFile = join(dir, "empty.safetensors");
      torch.scope(() => torch.safetensors.saveFile(emptyFile, e.stateTensors()));
      const e2 = torch.scope(() => EpisodicMemory.fromState(torch.safetensors.loadFile(emptyFile), e.stateJson()));
      expect(e2.size).toBe(0);
      expect(e2.theta).toBe(0.2);
      // ... and so does an empty one whose tensors were left out.
      const e3 = EpisodicMemory.fromState({}, e.stateJson());
      expect(e3.stateJson()).toEqual(e.stateJson());
      expect(() => EpisodicMemory.fromState({}, a.stateJson())).toThrow(/keys must be \[5, 8\], got none/);
      // Mismatches are clear errors.
      const other = new EpisodicMemory({ keyDim: P + 1, actionDim: K });
      expect(() => torch.scope(() => other.loadState(a.stateTensors(), a.stateJson()))).toThrow(/keys 8/);
      const small = new EpisodicMemory({ keyDim: P, actionDim: K, capacity: 2 });
      expect(() => torch.scope(() => small.loadState(a.stateTensors(), a.stateJson()))).toThrow(/capacity is 2/);
      for (const x of [b, c, e, e2, e3, other, small]) x.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    a.dispose();
    torch.dispose([keys, acts]);
  });

  test("bad input is a clear error and changes nothing", () => {
    const m = new EpisodicMemory({ keyDim: 3, actionDim: 2 });
    torch.scope(() => {
      expect(() => m.read(t([1, 2]))).toThrow(/3 values/);
      expect(() => m.update(t([1, 2, 3]), t([1]), 0.5, 0.1)).toThrow(/action must have 2/);
      expect(() => m.update(t([1, 2, 3]), t([1, 2]), Number.NaN, 0.1)).toThrow(/finite/);
    });
    expect(m.size).toBe(0);
    expect(m.theta).toBe(0.2);
    expect(() => new EpisodicMemory({ keyDim: 0 })).toThrow(/keyDim/);
    m.dispose();
  });

  test("no leak: liveTensors is flat over many reads and updates (with evictions)", () => {
    torch.manualSeed(3);
    const m = new EpisodicMemory({ keyDim: 16, actionDim: 4, capacity: 8, minSimilarity: 0 });
    const before = torch.liveTensors();
    let hits = 0;
    for (let i = 0; i < 300; i++) {
      torch.scope(() => {
        const p = torch.randn([16]);
        const r = m.read(p);
        hits += r.hits;
        const a = r.bias ? r.bias.add(torch.randn([4]).mul(0.1)) : torch.randn([4]);
        const [rAfter, u] = torch.rand([2]).tolist() as number[];
        m.update(p, a, rAfter, u - 0.3);
      });
    }
    expect(torch.liveTensors()).toBe(before);
    expect(m.size).toBe(8);
    expect(m.stats.evictions).toBeGreaterThan(0);
    expect(hits).toBeGreaterThan(0);
    m.dispose();
    expect(torch.liveTensors()).toBe(before - 2);
  });
});
