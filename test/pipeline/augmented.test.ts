// --augment: each training example under a dihedral transform and colour permutation of its whole task
// (prompt and grids alike), drawn from (seed, epoch, batch, slot) so a resumed run sees the same batches;
// a run with --augment (and test-time training in validation) resumes exactly.
import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type Example, type Grid, loadTask } from "../../src/arc";
import { dihedral, permuteColours } from "../../src/arc/augment";
import { trainingAugmentation } from "../../src/pipeline/system/augmentation";
import { FIXTURE_ARC } from "../helpers/fixtures";
import { CPU, TRAIN, runScript, tempFolders } from "../helpers/scripts";

const fresh = tempFolders("arc-augment-");
const ex: Example = { task: loadTask(join(FIXTURE_ARC, "training", "rotate90.json")), index: 1 };

/** The (dihedral, colour map) that turns `a` into `b`, if one does (the colour map read off the cells). */
function relation(a: Grid, b: Grid): { k: number; colours: Map<number, number> } | null {
  for (let k = 0; k < 8; k++) {
    const m = dihedral(a, k);
    if (m.length !== b.length || m[0]!.length !== b[0]!.length) continue;
    const colours = new Map<number, number>();
    const ok = m.every((row, i) => row.every((c, j) => (colours.get(c) ?? b[i]![j]) === b[i]![j] && colours.set(c, b[i]![j]!)));
    if (ok) return { k, colours };
  }
  return null;
}

describe("trainingAugmentation", () => {
  test("one transform for every grid of the task; deterministic in (seed, epoch, batch, slot); 0 stays 0", () => {
    const a = trainingAugmentation(ex, 3, 0, 5, 1);
    expect(trainingAugmentation(ex, 3, 0, 5, 1)).toEqual(a);
    const others = [trainingAugmentation(ex, 3, 0, 5, 2), trainingAugmentation(ex, 3, 1, 5, 1), trainingAugmentation(ex, 4, 0, 5, 1)];
    expect(others.every((o) => o.augmentation !== a.augmentation)).toBe(true);
    expect(a.augmentation).toBeTruthy();
    expect(a.index).toBe(ex.index);
    const grids = (e: Example) => e.task.train.flatMap((p) => [p.input, p.output]).concat(e.task.test.flatMap((p) => [p.input, ...(p.output ? [p.output] : [])]));
    const rel = relation(grids(ex)[0]!, grids(a)[0]!)!;
    expect(rel).not.toBeNull();
    const perm = Array.from({ length: 10 }, (_, c) => rel.colours.get(c) ?? c);
    grids(ex).forEach((g, i) => expect(permuteColours(dihedral(g, rel.k), perm)).toEqual(grids(a)[i]!));
    expect(rel.colours.get(0) ?? 0).toBe(0);
  });

  test("a run with --augment and --val_ttt_steps: 4 batches, stop, --resume to 6 equals 6 straight", () => {
    const args = ["--preset", "smoke", "--augment", "--val_ttt_steps", "1", "--val_max", "2", "--ckpt_every", "2", ...CPU];
    const batchLosses = (runs: string) => {
      const run = join(runs, readdirSync(runs).filter((n) => n.startsWith("arc_"))[0]!);
      return readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.type === "batch").map((r) => [r.step, r.loss]);
    };
    const straight = fresh("straight");
    const a = runScript(TRAIN, [...args, "--max_batches", "6", "--log_every", "1", "--run_dir", straight], 300_000);
    if (a.code !== 0) throw new Error(a.err);
    const resumed = fresh("resumed");
    const b = runScript(TRAIN, [...args, "--max_batches", "4", "--log_every", "1", "--run_dir", resumed], 300_000);
    if (b.code !== 0) throw new Error(b.err);
    const c = runScript(TRAIN, ["--resume", "--run_dir", resumed, "--max_batches", "6", ...CPU], 300_000);
    if (c.code !== 0) throw new Error(c.err);
    expect(batchLosses(resumed)).toEqual(batchLosses(straight));
    expect(batchLosses(straight).length).toBe(6);
  }, 600_000);
});
