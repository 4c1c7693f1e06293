// ARC Prize's combined files (src/arc/prize.ts): a challenges file (with its solutions beside it) loads to
// the tasks of the equivalent folder; malformed files give one line naming the task and the field; the
// submission rule (either attempt right) scores as the Kaggle scorer does.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ArcDataError, loadDataset, loadTasks, scoreSubmission, submissionProblems, type Grid, type Task } from "../../src/arc";
import { tempFolders } from "../helpers/scripts";

const fresh = tempFolders("arc-prize-test-");
const FOLDER = join(import.meta.dir, "..", "fixtures", "arc", "evaluation");

/** The folder's tasks as ARC Prize ships them: challenges without test outputs, solutions apart. */
function writeCombined(dir: string, tasks: Task[], name = "arc-agi_evaluation"): { challenges: string; solutions: string } {
  const ch: Record<string, unknown> = {};
  const sol: Record<string, Grid[]> = {};
  // Reverse order: the loader sorts by id, as a folder loads.
  for (const t of [...tasks].reverse()) {
    ch[t.id] = { train: t.train, test: t.test.map((p) => ({ input: p.input })) };
    sol[t.id] = t.test.map((p) => p.output!);
  }
  const challenges = join(dir, `${name}_challenges.json`);
  const solutions = join(dir, `${name}_solutions.json`);
  writeFileSync(challenges, JSON.stringify(ch));
  writeFileSync(solutions, JSON.stringify(sol));
  return { challenges, solutions };
}

async function loadError(spec: string): Promise<string> {
  try {
    await loadDataset(spec);
  } catch (e) {
    expect(e).toBeInstanceOf(ArcDataError);
    return (e as Error).message;
  }
  throw new Error(`${spec} loaded`);
}

describe("ARC Prize combined files", () => {
  const tasks = loadTasks(FOLDER);

  test("challenges + solutions beside them load to the folder's tasks; without solutions, test outputs are absent", async () => {
    const dir = fresh("combined");
    const { challenges, solutions } = writeCombined(dir, tasks);
    const folder = await loadDataset(FOLDER);
    const ds = await loadDataset(challenges);
    expect(ds.flat).toBe(true);
    expect(ds.evaluation).toEqual(folder.evaluation);
    expect(ds.training).toEqual(folder.training);
    // the same challenges without the solutions file: hidden outputs
    const alone = fresh("alone");
    const c2 = join(alone, "arc-agi_test_challenges.json");
    writeFileSync(c2, readFileSync(challenges, "utf8"));
    const hidden = await loadDataset(c2);
    expect(hidden.evaluation.map((t) => t.id)).toEqual(folder.evaluation.map((t) => t.id));
    expect(hidden.evaluation.every((t) => t.test.every((p) => p.output === undefined))).toBe(true);
    expect(hidden.evaluation.map((t) => t.train)).toEqual(folder.evaluation.map((t) => t.train));
    expect(solutions).toContain("_solutions.json");
  });

  test("malformed files: one line naming the file, the task and the field", async () => {
    const dir = fresh("bad");
    const good = () => writeCombined(dir, tasks.slice(0, 3));
    const id = [...tasks.slice(0, 3)].map((t) => t.id).sort()[1];
    const cases: [string, (ch: any, sol: any) => void, RegExp][] = [
      ["a ragged test input", (ch) => ch[id].test[0].input[1].push(3), new RegExp(`_challenges\\.json: task ${id}: test\\[0\\]\\.input: row 1 has \\d+ cells, row 0 has \\d+$`)],
      ["a colour out of range in a demonstration", (ch) => (ch[id].train[1].output[0][0] = 12), new RegExp(`task ${id}: train\\[1\\]\\.output: cell \\(0,0\\) is 12, not an integer 0\\.\\.9$`)],
      ["no train pairs", (ch) => delete ch[id].train, new RegExp(`task ${id}: missing "train"$`)],
      ["a solution that is not a grid", (_, sol) => (sol[id][0] = "x"), new RegExp(`_solutions\\.json: task ${id}: test\\[0\\]: is a string \\("x"\\), not a list of rows$`)],
      ["too few solutions", (_, sol) => sol[id].pop(), new RegExp(`_solutions\\.json: task ${id}: 1 test output\\(s\\) for 2 test input\\(s\\)$`)],
      ["a solution for an unknown task", (_, sol) => (sol.nosuchtask = [[[1]]]), /_solutions\.json: task nosuchtask: not among the challenges' tasks$/],
    ];
    for (const [what, spoil, want] of cases) {
      const { challenges, solutions } = good();
      const ch = JSON.parse(readFileSync(challenges, "utf8"));
      const sol = JSON.parse(readFileSync(solutions, "utf8"));
      spoil(ch, sol);
      writeFileSync(challenges, JSON.stringify(ch));
      writeFileSync(solutions, JSON.stringify(sol));
      const msg = await loadError(challenges);
      expect(msg.split("\n").length, what).toBe(1);
      expect(msg, what).toMatch(want);
    }
  });

  test("submissions: the format is checked, and either attempt counts (the Kaggle rule)", () => {
    const ts = tasks.slice(0, 2);
    const [a, b] = ts;
    const wrong = [[9]];
    const sub = {
      [a.id]: a.test.map((p) => ({ attempt_1: wrong, attempt_2: p.output! })),
      [b.id]: b.test.map(() => ({ attempt_1: wrong, attempt_2: wrong })),
    };
    expect(submissionProblems(sub, ts)).toEqual([]);
    const sol = new Map(ts.map((t) => [t.id, t.test.map((p) => p.output!)]));
    const s = scoreSubmission(sub, sol);
    expect(s).toMatchObject({ score: 0.5, tasks: 2, solved: a.test.length, outputs: a.test.length + b.test.length });
    expect(submissionProblems({ [a.id]: [{ attempt_1: wrong }] }, ts)).toEqual([
      `task ${a.id}: [0].attempt_2: is missing, not a list of rows`,
      `task ${b.id}: missing`,
    ]);
  });
});
