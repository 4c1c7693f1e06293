import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ArcDataError } from "../../src/arc/errors.ts";
import { Rng } from "../../src/arc/rng.ts";
import { MAX_SIDE, type Task } from "../../src/arc/types.ts";
import { parseTask, validateTask } from "../../src/arc/validate.ts";
import { loadTask } from "../../src/arc/load.ts";
import { FIXTURE_ARC } from "../helpers/fixtures.ts";

const ok = { train: [{ input: [[1, 2], [3, 4]], output: [[4]] }, { input: [[0]], output: [[0, 0]] }], test: [{ input: [[5]], output: [[6]] }] };
/** A copy of `ok` with one change. */
const mutate = (f: (t: any) => void) => { const t = structuredClone(ok) as any; f(t); return t; };
const errorOf = (json: unknown): string => {
  try {
    validateTask(json, "t.json", "t");
  } catch (e) {
    expect(e).toBeInstanceOf(ArcDataError);
    return (e as Error).message;
  }
  throw new Error("expected an ArcDataError");
};

describe("validation: each kind of bad input has its own message", () => {
  test("a valid task passes and is copied", () => {
    const t = validateTask(ok, "t.json", "t");
    expect(t).toEqual({ id: "t", ...ok });
    expect(t.train[0]!.input).not.toBe(ok.train[0]!.input);
  });

  const cases: [string, unknown, string][] = [
    ["not an object", [1, 2], `t.json: is a list, not a task object with "train" and "test"`],
    ["null", null, `t.json: is null, not a task object with "train" and "test"`],
    ["missing train", { test: ok.test }, `t.json: missing "train"`],
    ["missing test", { train: ok.train }, `t.json: missing "test"`],
    ["train not a list", mutate((t) => (t.train = { a: 1 })), `t.json: "train" is an object, not a list of pairs`],
    ["empty train", mutate((t) => (t.train = [])), `t.json: "train" is empty`],
    ["empty test", mutate((t) => (t.test = [])), `t.json: "test" is empty`],
    ["pair not an object", mutate((t) => (t.train[1] = "x")), `t.json: train[1] is a string ("x"), not an object with "input" and "output"`],
    ["missing input", mutate((t) => delete t.test[0].input), `t.json: test[0]: missing "input"`],
    ["missing train output", mutate((t) => delete t.train[1].output), `t.json: train[1]: missing "output"`],
    ["grid is a string", mutate((t) => (t.train[0].output = "[[4]]")), `t.json: train[0].output: is a string ("[[4]]"), not a list of rows`],
    ["empty grid", mutate((t) => (t.train[0].input = [])), `t.json: train[0].input: has no rows (an empty list)`],
    ["empty row", mutate((t) => (t.train[0].input = [[]])), `t.json: train[0].input: row 0 is empty`],
    ["row not a list", mutate((t) => (t.train[0].input[1] = 7)), `t.json: train[0].input: row 1 is the number 7, not a list of cells`],
    ["ragged rows", mutate((t) => (t.train[2 - 2].input = [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4, 5]])), `t.json: train[0].input: row 3 has 5 cells, row 0 has 4`],
    ["cell 11", mutate((t) => (t.test[0].output = [[0, 0, 0], [0, 0, 11]])), `t.json: test[0].output: cell (1,2) is 11, not an integer 0..9`],
    ["cell -1", mutate((t) => (t.test[0].input = [[-1]])), `t.json: test[0].input: cell (0,0) is -1, not an integer 0..9`],
    ["cell 1.5", mutate((t) => (t.test[0].input = [[1.5]])), `t.json: test[0].input: cell (0,0) is 1.5, not an integer 0..9`],
    ["cell string", mutate((t) => (t.train[0].input[0][1] = "2")), `t.json: train[0].input: cell (0,1) is a string ("2"), not an integer 0..9`],
    ["cell null", mutate((t) => (t.train[0].input[0][1] = null)), `t.json: train[0].input: cell (0,1) is null, not an integer 0..9`],
    ["cell boolean", mutate((t) => (t.train[0].input[0][1] = true)), `t.json: train[0].input: cell (0,1) is the boolean true, not an integer 0..9`],
    ["cell list", mutate((t) => (t.train[0].input[0][1] = [2])), `t.json: train[0].input: cell (0,1) is a list, not an integer 0..9`],
    ["31 rows", mutate((t) => (t.train[0].input = Array.from({ length: 31 }, () => [1]))), `t.json: train[0].input: has 31 rows, more than ${MAX_SIDE}`],
    ["31 columns", mutate((t) => (t.train[0].output = [new Array(31).fill(1)])), `t.json: train[0].output: row 0 has 31 cells, more than ${MAX_SIDE}`],
    ["null test output", mutate((t) => (t.test[0].output = null)), `t.json: test[0].output: is null, not a list of rows`],
  ];
  for (const [name, json, msg] of cases) test(name, () => expect(errorOf(json)).toBe(msg));

  test("30 x 30 is fine; extra keys are ignored; -0 becomes 0", () => {
    const big = Array.from({ length: 30 }, () => new Array(30).fill(9));
    const t = validateTask({ train: [{ input: big, output: [[-0]], note: "x" }], test: [{ input: big }], name: "n" }, "t.json", "t");
    expect(t.train[0]!.input.length).toBe(30);
    expect(Object.is(t.train[0]!.output[0]![0], 0)).toBe(true);
    expect(Object.keys(t.train[0]!)).toEqual(["input", "output"]);
  });

  test("bad JSON names the file; a BOM is tolerated", () => {
    expect(() => parseTask("{\"train\": [", "x.json", "x")).toThrow(/^x\.json: not valid JSON \(/);
    expect(() => parseTask("", "x.json", "x")).toThrow(/^x\.json: not valid JSON/);
    expect(parseTask("\uFEFF" + JSON.stringify(ok), "x.json", "x").id).toBe("x");
    const deep = "[".repeat(100000) + "]".repeat(100000);
    expect(() => parseTask(deep, "d.json", "d")).toThrow(ArcDataError);
  });
});

describe("fuzz: mutated task files never crash the loader", () => {
  const files = readdirSync(path.join(FIXTURE_ARC, "training")).map((n) => readFileSync(path.join(FIXTURE_ARC, "training", n), "utf8"));
  const rng = new Rng(12345);
  const junk = () => rng.pick<unknown>([null, true, "7", 10, -1, 2.5, 1e400, [], {}, [[]], [[1, 2], [3]], "", 0, [[0]], { input: [[1]] }]);

  /** Replace, delete or duplicate a random node of the parsed JSON. */
  function mutateJson(v: any, depth = 0): any {
    if (Array.isArray(v) && v.length && rng.bool(0.8)) {
      const i = rng.int(0, v.length - 1);
      const r = rng.next();
      if (r < 0.15) v.splice(i, 1);
      else if (r < 0.25) v.push(structuredClone(v[i]));
      else if (r < 0.4 || depth > 6) v[i] = junk();
      else v[i] = mutateJson(v[i], depth + 1);
      return v;
    }
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (!keys.length) return junk();
      const k = rng.pick(keys);
      const r = rng.next();
      if (r < 0.15) delete v[k];
      else if (r < 0.25) v[k + "x"] = v[k];
      else if (r < 0.35) v[k] = junk();
      else v[k] = mutateJson(v[k], depth + 1);
      return v;
    }
    return rng.bool(0.5) ? junk() : v;
  }

  /** Flip, delete, insert or truncate bytes of the text. */
  function mutateText(s: string): string {
    const n = rng.int(1, 4);
    for (let k = 0; k < n; k++) {
      const i = rng.int(0, Math.max(0, s.length - 1));
      const r = rng.next();
      if (r < 0.3) s = s.slice(0, i) + s.slice(i + 1);
      else if (r < 0.6) s = s.slice(0, i) + rng.pick(["[", "]", ",", "{", "}", "\"", "9", "1", "-", " ", "x", "\u0000", "\u00ff"]) + s.slice(i + 1);
      else if (r < 0.8) s = s.slice(0, i) + rng.pick(["0", "10", "[", "]]", "null", ".5"]) + s.slice(i);
      else s = s.slice(0, i);
    }
    return s;
  }

  test("4000 mutations: each is a valid task or an ArcDataError with a file-prefixed message", () => {
    let valid = 0, invalid = 0;
    const check = (text: string) => {
      let t: Task;
      try {
        t = parseTask(text, "f.json", "f");
      } catch (e) {
        if (!(e instanceof ArcDataError)) throw new Error(`not an ArcDataError: ${e}\non input: ${text.slice(0, 300)}`);
        expect(e.message.startsWith("f.json: ")).toBe(true);
        invalid++;
        return;
      }
      // Whatever passes must really satisfy the format.
      for (const p of [...t.train, ...t.test]) {
        for (const g of p.output ? [p.input, p.output] : [p.input]) {
          expect(g.length >= 1 && g.length <= 30 && g.every((r) => r.length === g[0]!.length && r.length <= 30 && r.every((v) => Number.isInteger(v) && v >= 0 && v <= 9))).toBe(true);
        }
      }
      expect(t.train.length > 0 && t.test.length > 0).toBe(true);
      valid++;
    };
    for (let i = 0; i < 2000; i++) {
      const src = rng.pick(files);
      check(JSON.stringify(mutateJson(JSON.parse(src))));
      check(mutateText(src));
    }
    expect(valid + invalid).toBe(4000);
    // Both outcomes must be exercised, or the fuzzer is not testing anything.
    expect(valid).toBeGreaterThan(100);
    expect(invalid).toBeGreaterThan(1000);
  });

  test("through files too: 100 mutated files load or give an ArcDataError naming the file", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "arc-fuzz-"));
    for (let i = 0; i < 100; i++) {
      const f = path.join(dir, `m${i}.json`);
      const text = mutateText(rng.pick(files));
      writeFileSync(f, i % 10 === 0 ? Buffer.from(text, "latin1") : text);
      try {
        expect(loadTask(f).id).toBe(`m${i}`);
      } catch (e) {
        expect(e).toBeInstanceOf(ArcDataError);
        expect((e as Error).message.startsWith(`${f}: `)).toBe(true);
      }
    }
  });
});
