import { describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ArcDataError } from "../../src/arc/errors.ts";
import { findSplitRoot, findTask, loadDataset, loadTask, loadTasks } from "../../src/arc/load.ts";
import { FIXTURE_ARC } from "../helpers/fixtures.ts";

const root = FIXTURE_ARC;
const ds = await loadDataset(root);
const tmp = () => mkdtempSync(path.join(os.tmpdir(), "arc-load-"));

describe("a folder with training/ and evaluation/ (the fixture set)", () => {
  test("loads every task and pair of both splits", () => {
    expect(ds.name).toBe(root);
    expect(ds.flat).toBeUndefined();
    expect(ds.training.length).toBe(24);
    expect(ds.training.reduce((n, t) => n + t.train.length, 0)).toBe(85);
    expect(ds.training.reduce((n, t) => n + t.test.length, 0)).toBe(25);
    expect(ds.evaluation.length).toBe(8);
    expect(ds.evaluation.reduce((n, t) => n + t.test.length, 0)).toBe(10);
    expect(ds.evaluation.every((t) => t.test.every((p) => p.output !== undefined))).toBe(true);
  });

  test("tasks are sorted by id, ids are the file names", () => {
    const ids = ds.training.map((t) => t.id);
    expect(ids).toEqual([...ids].sort());
    expect(ids[0]).toBe("andmask3x7");
    expect(ds.training[0]!.train[0]!.input).toEqual([[1, 0, 1, 5, 1, 1, 0], [1, 1, 0, 5, 1, 0, 0], [1, 0, 0, 5, 0, 1, 0]]);
    expect(findTask(ds, "croptrap")?.split).toBe("evaluation");
    expect(findTask(ds, "mirrortile2x2")?.split).toBe("training");
    expect(findTask(ds, "nope")).toBeNull();
  });
});

describe("--data resolution", () => {
  test("one task file: the same task in both splits, flat", async () => {
    const f = path.join(root, "training", "mirrortile2x2.json");
    const one = await loadDataset(f);
    expect(one.flat).toBe(true);
    expect(one.training.map((t) => t.id)).toEqual(["mirrortile2x2"]);
    expect(one.evaluation).toEqual(one.training);
    expect(loadTask(f)).toEqual(one.training[0]!);
  });

  test("a folder of task files is flat; an unpacked repository (data/training) is found", async () => {
    const flat = await loadDataset(path.join(root, "evaluation"));
    expect(flat.flat).toBe(true);
    expect(flat.training.length).toBe(8);

    const repo = tmp();
    mkdirSync(path.join(repo, "data", "training"), { recursive: true });
    cpSync(path.join(root, "training", "mirrortile2x2.json"), path.join(repo, "data", "training", "mirrortile2x2.json"));
    expect(findSplitRoot(repo)).toBe(path.join(repo, "data"));
    const r = await loadDataset(repo);
    expect(r.flat).toBeUndefined();
    expect(r.training.map((t) => t.id)).toEqual(["mirrortile2x2"]);
    expect(r.evaluation).toEqual([]);
  });

  test("a missing path, an empty folder and an unreadable file are ArcDataErrors", async () => {
    await expect(loadDataset("/no/such/place")).rejects.toThrow(
      "/no/such/place: no such file or folder (--data takes a task file, a folder of task files, a folder with training/ and evaluation/, arc-agi-1, arc-agi-2, synthetic or synthetic:N)",
    );
    const empty = tmp();
    expect(() => loadTasks(empty)).toThrow(new ArcDataError(`${empty}: no task files (*.json) in this folder`));
    expect(() => loadTasks(path.join(empty, "x"))).toThrow(`${path.join(empty, "x")}: no such folder`);
    expect(() => loadTask(path.join(empty, "x.json"))).toThrow(`${path.join(empty, "x.json")}: no such file`);
    mkdirSync(path.join(empty, "d.json"));
    expect(() => loadTask(path.join(empty, "d.json"))).toThrow(`${path.join(empty, "d.json")}: is a folder, not a task file`);
  });

  test("a bad file in a folder names the file, pair and reason", async () => {
    const d = tmp();
    writeFileSync(path.join(d, "good.json"), JSON.stringify({ train: [{ input: [[1]], output: [[2]] }], test: [{ input: [[1]] }] }));
    writeFileSync(path.join(d, "bad.json"), JSON.stringify({ train: [{ input: [[1]], output: [[2]] }, { input: [[1, 2], [3]], output: [[1]] }], test: [{ input: [[1]] }] }));
    await expect(loadDataset(d)).rejects.toThrow(new ArcDataError(`${path.join(d, "bad.json")}: train[1].input: row 1 has 1 cells, row 0 has 2`));
  });

  test("a task with a hidden test output loads with output undefined", () => {
    const d = tmp();
    writeFileSync(path.join(d, "h.json"), JSON.stringify({ train: [{ input: [[1]], output: [[2]] }], test: [{ input: [[3]] }] }));
    expect(loadTask(path.join(d, "h.json"))).toEqual({ id: "h", train: [{ input: [[1]], output: [[2]] }], test: [{ input: [[3]] }] });
  });
});
