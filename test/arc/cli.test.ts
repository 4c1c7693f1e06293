import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { strToU8, zipSync } from "fflate";
import { generateTask } from "../../src/arc/synthetic.ts";
import { main } from "../../scripts/data.ts";
import { FIXTURE_ARC } from "../helpers/fixtures.ts";

const SCRIPT = path.join(import.meta.dir, "../../scripts/data.ts");

/** Run main() in this process, capturing its output. */
async function run(...argv: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** Run the script as a process, as a user would (exit codes, stdout/stderr). */
async function spawn(argv: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([process.execPath, SCRIPT, ...argv], { env: { ...process.env, NO_COLOR: "1", ...env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe("scripts/data.ts", () => {
  test("--help lists the commands; exit 0", async () => {
    const r = await spawn(["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toStartWith("Usage: bun scripts/data.ts <command> [options]");
    for (const c of ["download NAME", "stats", "show TASK", "synth"]) expect(r.out).toContain(`  ${c}`);
    expect((await run("stats", "--help")).code).toBe(0);
  });

  test("bad arguments: one line on stderr, exit 2", async () => {
    const cases: [string[], string][] = [
      [[], "data.ts: missing command: download, stats, show or synth (see --help)"],
      [["frob"], 'data.ts: unknown command "frob": download, stats, show or synth (see --help)'],
      [["stats", "--bogus"], "data.ts: Unknown option '--bogus' (see --help)"],
      [["stats", "--family", "x"], "data.ts: stats does not take --family (see --help)"],
      [["show"], "data.ts: show needs a task id or file (see --help)"],
      [["show", "a", "b"], 'data.ts: show: unexpected argument "b" (see --help)'],
      [["download"], "data.ts: download needs a dataset name: arc-agi-1 or arc-agi-2 (see --help)"],
      [["download", "arc-agi-3"], 'data.ts: unknown dataset "arc-agi-3": arc-agi-1 or arc-agi-2 (see --help)'],
      [["synth"], "data.ts: synth needs --family F (see synth --list) (see --help)"],
      [["synth", "--family", "flip_h", "--seed", "x"], 'data.ts: --seed must be an integer 0..9007199254740991, got "x" (see --help)'],
      [["synth", "--family", "flip_h", "--augment", "8"], 'data.ts: --augment must be an integer 0..7, got "8" (see --help)'],
    ];
    for (const [argv, msg] of cases) {
      const r = await run(...argv);
      expect([r.code, r.err, r.out]).toEqual([2, msg, ""]);
    }
    const p = await spawn(["stats", "--bogus"]);
    expect([p.code, p.out, p.err]).toEqual([2, "", "data.ts: Unknown option '--bogus' (see --help)\n"]);
  });

  // The evaluation split's croptrap: the demonstrations make the output size certain, and it is wrong.
  test("stats on the fixture set: counts, size changes, certain (and right) output sizes", async () => {
    const r = await run("stats", "--data", FIXTURE_ARC);
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    expect(lines[0]).toBe(`data: ${FIXTURE_ARC}`);
    expect(lines).toContain("tasks                                24           8");
    expect(lines).toContain("train pairs                          85          23");
    expect(lines).toContain("test pairs                           25          10");
    expect(lines).toContain("size-changing train pairs    42 (49.4%)  14 (60.9%)");
    const j = JSON.parse((await run("stats", "--data", FIXTURE_ARC, "--json")).out);
    expect([j.training.tasks, j.training.trainPairs, j.evaluation.tasks, j.evaluation.testPairs]).toEqual([24, 85, 8, 10]);
    expect([j.training.sizeChangingTrainPairs, j.training.sizeChangingPairs]).toEqual([42, 55]);
    expect([j.evaluation.tasksWithCertainSize, j.evaluation.tasksWithCertainSizeRight]).toEqual([6, 5]);
    expect(j.training.inputSides.reduce((a: number, b: number) => a + b, 0)).toBe(85 + 25);
  });

  test("show: by id, by file, a synthetic id; --json, --html, --png, --augment", async () => {
    const r = await run("show", "mirrortile2x2", "--data", FIXTURE_ARC, "--no-colour");
    expect(r.code).toBe(0);
    expect(r.out.split("\n").slice(0, 6)).toEqual([
      `mirrortile2x2 (${FIXTURE_ARC} training)`, "task mirrortile2x2: 2 train, 1 test", "", "train[0]  2x2 -> 6x6", "4 3       4 3 4 3 4 3", "3 4       3 4 3 4 3 4",
    ]);
    const file = path.join(FIXTURE_ARC, "evaluation", "croptrap.json");
    const j = JSON.parse((await run("show", file, "--json")).out);
    expect(j.id).toBe("croptrap");
    expect(JSON.parse((await run("show", "tile-4", "--json")).out)).toEqual(generateTask("tile", 4));
    const dir = mkdtempSync(path.join(os.tmpdir(), "arc-cli-"));
    const aug = await run("show", "mirrortile2x2", "--data", FIXTURE_ARC, "--augment", "1", "--no-colour", "--html", path.join(dir, "t.html"), "--png", path.join(dir, "t.png"));
    expect(aug.out.split("\n")[0]).toBe(`mirrortile2x2 (${FIXTURE_ARC} training) (augmented: rot90, colours permuted)`);
    expect(readFileSync(path.join(dir, "t.html"), "utf8")).toContain('<section class="arc-task" id="task-mirrortile2x2">');
    expect([...readFileSync(path.join(dir, "t.png")).subarray(1, 4)]).toEqual([0x50, 0x4e, 0x47]);
    expect(await run("show", "nothere", "--data", FIXTURE_ARC)).toEqual({ code: 1, out: "", err: `data.ts: task "nothere" is not in ${FIXTURE_ARC} (neither training nor evaluation)` });
    expect((await run("show", path.join(dir, "missing.json"))).err).toBe(`data.ts: ${path.join(dir, "missing.json")}: no such file`);
  });

  test("synth: --list, and the same task as generateTask", async () => {
    const list = (await run("synth", "--list")).out.split("\n");
    expect(list.length).toBeGreaterThanOrEqual(12);
    expect(list[0]).toMatch(/^flip_h +same size +mirror left-right$/);
    const r = await run("synth", "--family", "scale_up", "--seed", "9", "--json");
    expect(JSON.parse(r.out)).toEqual(generateTask("scale_up", 9));
    const drawn = await spawn(["synth", "--family", "scale_up", "--seed", "9"]);
    expect(drawn.code).toBe(0);
    expect(drawn.out).toStartWith("scale_up-9 (synthetic scale_up, params {\"k\":");
    expect(drawn.out).not.toContain("\x1b["); // NO_COLOR and not a terminal: digits
  });

  describe("download", () => {
    const zip = zipSync({ "ARC-AGI-master/data/training/t1.json": strToU8(JSON.stringify(generateTask("flip_h", 1))), "ARC-AGI-master/data/evaluation/e1.json": strToU8(JSON.stringify(generateTask("tile", 1))) });
    const server = Bun.serve({ port: 0, fetch: (req) => (new URL(req.url).pathname === "/fchollet/ARC-AGI/archive/refs/heads/master.zip" ? new Response(zip) : new Response("", { status: 404 })) });
    afterAll(() => server.stop(true));

    test("downloads into ARC_DATA_DIR from ARC_DATA_URL_BASE; offline fails with exit 1", async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), "arc-cli-dl-"));
      const env = { ARC_DATA_DIR: dir, ARC_DATA_URL_BASE: `http://127.0.0.1:${server.port}` };
      const r = await spawn(["download", "arc-agi-1"], env);
      expect(r.code).toBe(0);
      expect(r.out).toBe(`arc-agi-1: 1 training and 1 evaluation tasks in ${path.join(dir, "arc-agi-1")} (cache ${dir})\n`);
      expect(r.err).toContain("Downloading arc-agi-1 from");
      expect(existsSync(path.join(dir, "arc-agi-1", "training", "t1.json"))).toBe(true);
      const s = await spawn(["stats", "--data", "arc-agi-1", "--json"], env);
      expect(JSON.parse(s.out).training.tasks).toBe(1);
      expect(s.err).toBe(""); // cached: no download
      const off = await spawn(["stats", "--data", "arc-agi-2"], { ...env, ARC_DATA_OFFLINE: "1" });
      expect(off.code).toBe(1);
      expect(off.err).toStartWith(`data.ts: arc-agi-2 is not in ${dir} and downloads are off (ARC_DATA_OFFLINE=1). To get it by hand:`);
      expect(off.err.trim().split("\n").length).toBe(1);
    });
  });
});
