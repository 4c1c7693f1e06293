// scripts/predict.ts and eval.ts's output folders, as subprocesses on a tiny smoke run (2 batches): a
// submission for tasks whose test outputs are hidden, checked by a scorer written here from ARC Prize's
// format description alone, scores with --solutions exactly what eval.ts scores on the same tasks; the
// outputs never change the answers; evaluations with other settings keep their own folders.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { CPU, EVAL, ROOT, TRAIN, runScript, tempFolders, type Result } from "../helpers/scripts";

const PREDICT = join(ROOT, "scripts", "predict.ts");
const FIXTURES = join(ROOT, "test", "fixtures", "arc");
const fresh = tempFolders("arc-predict-test-");
const ok = (script: string, args: string[]): Result => {
  const r = runScript(script, args, 240_000);
  if (r.code !== 0) throw new Error(`${basename(script)} ${args.join(" ")} exited ${r.code}:\n${r.err.slice(-3000)}`);
  return r;
};

type Grid = number[][];
/** ARC Prize's challenges and solutions for the fixture's evaluation tasks (outputs hidden in the challenges). */
function writePrize(dir: string): { challenges: string; solutions: string; tests: Record<string, number> } {
  const ch: Record<string, unknown> = {};
  const sol: Record<string, Grid[]> = {};
  const tests: Record<string, number> = {};
  for (const f of readdirSync(join(FIXTURES, "evaluation")).sort()) {
    const t = JSON.parse(readFileSync(join(FIXTURES, "evaluation", f), "utf8"));
    const id = f.replace(/\.json$/, "");
    ch[id] = { train: t.train, test: t.test.map((p: { input: Grid }) => ({ input: p.input })) };
    sol[id] = t.test.map((p: { output: Grid }) => p.output);
    tests[id] = t.test.length;
  }
  const challenges = join(dir, "arc-agi_test_challenges.json");
  const solutions = join(dir, "answers.json"); // not beside the challenges by name: the outputs stay hidden
  writeFileSync(challenges, JSON.stringify(ch));
  writeFileSync(solutions, JSON.stringify(sol));
  return { challenges, solutions, tests };
}

/**
 * A scorer from ARC Prize's description: the submission is an object with every task id; each value a list
 * with one {attempt_1, attempt_2} per test input; a test input counts when either attempt equals its output;
 * a task's score is the share of its test inputs that count; the total is the mean over the tasks.
 */
function prizeScore(sub: any, sol: Record<string, Grid[]>): number {
  const isGrid = (g: any) => Array.isArray(g) && g.length >= 1 && g.length <= 30 && g.every((r: any) => Array.isArray(r) && r.length === g[0].length && r.length >= 1 && r.length <= 30 && r.every((c: any) => Number.isInteger(c) && c >= 0 && c <= 9));
  let total = 0;
  for (const [id, outs] of Object.entries(sol)) {
    const entries = sub[id];
    if (!Array.isArray(entries) || entries.length !== outs.length) throw new Error(`task ${id}: ${entries?.length} entries for ${outs.length} test inputs`);
    let hits = 0;
    outs.forEach((out, i) => {
      const e = entries[i];
      if (!isGrid(e.attempt_1) || !isGrid(e.attempt_2)) throw new Error(`task ${id}[${i}]: attempts are not grids`);
      if ([e.attempt_1, e.attempt_2].some((a) => JSON.stringify(a) === JSON.stringify(out))) hits++;
    });
    total += hits / outs.length;
  }
  return total / Object.keys(sol).length;
}

let runDir = "";
beforeAll(() => {
  const runs = fresh("runs");
  ok(TRAIN, ["--preset", "smoke", "--max_batches", "2", "--data", FIXTURES, "--run_dir", runs, ...CPU]);
  runDir = join(runs, readdirSync(runs).find((n) => n.startsWith("arc_"))!);
}, 240_000);

describe("scripts/predict.ts", () => {
  test("hidden test outputs: a well-formed submission; --solutions scores what eval.ts scores; outputs change nothing", () => {
    const dir = fresh("prize");
    const { challenges, solutions, tests } = writePrize(dir);
    const out = join(dir, "hidden", "submission.json");
    const p = ok(PREDICT, ["--run", runDir, "--data", challenges, "--solutions", solutions, "--out", out, "--votes", "2", ...CPU]);
    const sub = JSON.parse(readFileSync(out, "utf8"));
    expect(Object.keys(sub).sort()).toEqual(Object.keys(tests).sort());
    for (const [id, n] of Object.entries(tests)) expect(sub[id].length).toBe(n);
    const sol = JSON.parse(readFileSync(solutions, "utf8"));
    const mine = prizeScore(sub, sol);

    // eval.ts on the same tasks as a folder (outputs known), with the same votes.
    const evalOut = join(dir, "eval");
    ok(EVAL, ["--run", runDir, "--data", FIXTURES, "--split", "evaluation", "--votes", "2", "--out", evalOut, ...CPU]);
    const ev = JSON.parse(readFileSync(join(evalOut, "eval.json"), "utf8"));
    expect(ev.score.kaggle).toBe(mine);
    expect(p.out).toContain(`ARC Prize score (either attempt right, mean over tasks): ${mine.toFixed(4)}`);
    expect(p.out).toContain(`${ev.score.solved}/${ev.score.outputs} test outputs`);
    expect(ev.score.solved).toBe(ev.summary.pass2Count);
    // the attempts themselves are eval.ts's
    for (const r of ev.results) expect([sub[r.task][r.index].attempt_1, sub[r.task][r.index].attempt_2]).toEqual(r.attempts);

    // The same tasks with their outputs present (the solutions file beside the challenges): the same answers.
    const withOutputs = fresh("with-outputs");
    const c2 = join(withOutputs, "arc-agi_evaluation_challenges.json");
    writeFileSync(c2, readFileSync(challenges));
    writeFileSync(join(withOutputs, "arc-agi_evaluation_solutions.json"), readFileSync(solutions));
    ok(PREDICT, ["--run", runDir, "--data", c2, "--out", join(withOutputs, "submission.json"), "--votes", "2", ...CPU]);
    expect(JSON.parse(readFileSync(join(withOutputs, "submission.json"), "utf8"))).toEqual(sub);

    // report.html: every task's demonstrations, every test input, both attempts with their sources.
    const html = readFileSync(join(dir, "hidden", "report.html"), "utf8");
    expect(html.match(/class="arc-demos"/g)!.length).toBe(Object.keys(tests).length);
    expect(html.match(/<section class="arc-task"/g)!.length).toBe(Object.values(tests).reduce((a, b) => a + b, 0));
    expect(html).toContain("attempt 1 (vote rank 1");
  });

  test("a malformed challenges file: exit 2, one line naming the task and the field", () => {
    const dir = fresh("bad");
    const { challenges } = writePrize(dir);
    const ch = JSON.parse(readFileSync(challenges, "utf8"));
    ch.flipv.test[1].input[0] = "row";
    writeFileSync(challenges, JSON.stringify(ch));
    const r = runScript(PREDICT, ["--run", runDir, "--data", challenges, "--out", join(dir, "s.json"), ...CPU], 60_000);
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toEqual([`predict: ${challenges}: task flipv: test[1].input: row 0 is a string ("row"), not a list of cells`]);
    expect(existsSync(join(dir, "s.json"))).toBe(false);
  });
});

describe("eval.ts output folders", () => {
  test("two evaluations with different settings leave two folders, each eval.json with its settings; another evaluation is never overwritten", () => {
    const args = ["--run", runDir, "--max", "3", ...CPU];
    ok(EVAL, args);
    ok(EVAL, [...args, "--votes", "2", "--vote_seed", "1"]);
    const evalDir = join(runDir, "eval");
    expect(readdirSync(evalDir).sort()).toEqual(["best_evaluation_max3", "best_evaluation_votes2_vseed1_max3"]);
    const plain = JSON.parse(readFileSync(join(evalDir, "best_evaluation_max3", "eval.json"), "utf8"));
    const voted = JSON.parse(readFileSync(join(evalDir, "best_evaluation_votes2_vseed1_max3", "eval.json"), "utf8"));
    expect(plain.settings).toEqual({ votes: 1, vote_seed: 0, ttt_steps: 0, ttt_lr: 0.001, ttt_batch: 2, ttt_seed: 0, ttt_qwen: false, max: 3 });
    expect(voted.settings).toMatchObject({ votes: 2, vote_seed: 1, max: 3 });
    expect(plain.step).toBe(2);
    const html = readFileSync(join(evalDir, "best_evaluation_votes2_vseed1_max3", "report.html"), "utf8");
    expect(html).toContain("<title>arc-efe evaluation: best (step 2), evaluation, votes 2 (seed 1), no TTT, first 3 examples</title>");
    expect(html).toContain("size accuracy");
    expect(html).toContain("copying the input");
    // The same evaluation again reuses its folder; one whose eval.json is another evaluation's is kept.
    ok(EVAL, args);
    expect(readdirSync(evalDir).length).toBe(2);
    const file = join(evalDir, "best_evaluation_max3", "eval.json");
    writeFileSync(file, JSON.stringify({ ...plain, step: 1 }));
    ok(EVAL, args);
    expect(readdirSync(evalDir).sort()).toEqual(["best_evaluation_max3", "best_evaluation_max3_2", "best_evaluation_votes2_vseed1_max3"]);
    expect(JSON.parse(readFileSync(file, "utf8")).step).toBe(1);
  });
});
