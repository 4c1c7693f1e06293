// The bad-task policy of loadDataset: by default every bad file of the data (both splits) is named in one
// error; with skipBadTasks they are left out and listed once.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { BadTaskFilesError, loadDataset } from "../../src/arc";

const root = mkdtempSync(path.join(tmpdir(), "bad-tasks-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const GOOD = JSON.stringify({ train: [{ input: [[1]], output: [[2]] }], test: [{ input: [[3]], output: [[4]] }] });

function dataFolder(): string {
  const d = path.join(root, "data");
  for (const split of ["training", "evaluation"]) mkdirSync(path.join(d, split), { recursive: true });
  writeFileSync(path.join(d, "training", "a.json"), GOOD);
  writeFileSync(path.join(d, "training", "b.json"), "{\"train\": [");
  writeFileSync(path.join(d, "training", "c.json"), GOOD);
  writeFileSync(path.join(d, "evaluation", "d.json"), JSON.stringify({ train: [{ input: [[1]], output: [[12]] }], test: [{ input: [[1]] }] }));
  writeFileSync(path.join(d, "evaluation", "e.json"), GOOD);
  return d;
}

describe("bad task files", () => {
  test("default: one error naming every bad file in both splits, not only the first", async () => {
    const d = dataFolder();
    let err: unknown = null;
    try {
      await loadDataset(d);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadTaskFilesError);
    const e = err as BadTaskFilesError;
    expect(e.messages).toEqual([
      expect.stringMatching(new RegExp(`^${path.join(d, "training", "b.json")}: not valid JSON`)),
      `${path.join(d, "evaluation", "d.json")}: train[0].output: cell (0,0) is 12, not an integer 0..9`,
    ]);
    expect(e.message).toStartWith("2 bad task files: ");
    expect(e.message).toContain("b.json");
    expect(e.message).toContain("d.json");
  });

  test("skipBadTasks: the good tasks load and the bad ones are listed once", async () => {
    const d = dataFolder();
    const told: string[][] = [];
    const ds = await loadDataset(d, { skipBadTasks: true, onSkip: (m) => told.push(m) });
    expect(ds.training.map((t) => t.id)).toEqual(["a", "c"]);
    expect(ds.evaluation.map((t) => t.id)).toEqual(["e"]);
    expect(told.length).toBe(1);
    expect(told[0].map((m) => path.basename(m.split(":")[0]))).toEqual(["b.json", "d.json"]);
  });
});
