import { describe, expect, test } from "bun:test";
import { hash32, Rng, seedOf } from "../../src/arc/rng.ts";

/** The published mulberry32 (Tommy Ettinger), verbatim in spirit: our Rng must produce the same stream. */
function mulberry32(a: number) {
  return () => {
    let t = (a = (a + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("seeded rng", () => {
  test("matches the reference mulberry32 stream", () => {
    for (const seed of [0, 1, 42, 0xffffffff, 123456789]) {
      const ref = mulberry32(seed), r = new Rng(seed);
      for (let i = 0; i < 1000; i++) expect(r.next()).toBe(ref());
    }
  });

  test("pinned hashes and seeds (changing them would change every split and order)", () => {
    expect(hash32("")).toBe(2872998923);
    expect(hash32("a")).toBe(444641715);
    expect(seedOf(1, "x")).toBe(1339704860);
    expect(new Rng(7).nextU32()).toBe(50271532);
    // Numbers and strings are kept apart, and so are the parts.
    expect(seedOf(1)).not.toBe(seedOf("1"));
    expect(seedOf("ab", "c")).not.toBe(seedOf("a", "bc"));
    expect(seedOf(2 ** 40)).not.toBe(seedOf(0));
  });

  test("int, pick, shuffle, sample stay in range and are roughly uniform", () => {
    const r = new Rng(5);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[r.int(0, 5)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
    const xs = [1, 2, 3, 4, 5, 6, 7];
    expect(r.shuffle(xs.slice()).sort()).toEqual(xs);
    const s = r.sample(xs, 3);
    expect(new Set(s).size).toBe(3);
    expect(s.every((x) => xs.includes(x))).toBe(true);
    expect(() => r.pick([])).toThrow("Rng.pick from an empty list");
  });
});
