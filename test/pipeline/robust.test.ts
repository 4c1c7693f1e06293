// scripts/train.ts and scripts/eval.ts under faults and bad input, as subprocesses on the CPU: two
// trainers on one run, SIGINT/SIGTERM, best/ after in-place damage, refusals before any work, resume
// semantics (flags it cannot change, checkpoints that verify but do not load, a lost config.json, a
// stale lock), a failing backup, and bad task files.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { syntheticDataset, writeSplitFolder } from "../../src/arc";
import { LOCK_FILE } from "../../src/pipeline/run/lock";
import { latestVerifiedCheckpoint, listCheckpoints, verifyCheckpoint } from "../../src/pipeline/run/checkpoint";
import { readMetrics } from "../../src/pipeline/run/run-folder";
import { lineWatcher } from "../helpers/lines";
import { replaceVerified } from "../helpers/checkpoints";
import { CPU, EVAL, ROOT, TRAIN, runScript, tempFolders, type Result } from "../helpers/scripts";

const fresh = tempFolders("arc-robust-test-");
const run = (script: string, args: string[], timeoutMs = 240_000): Result => runScript(script, args, timeoutMs);
function ok(script: string, args: string[]): Result {
  const r = run(script, args);
  if (r.code !== 0) throw new Error(`${basename(script)} ${args.join(" ")} exited ${r.code}:\n${r.err.slice(-3000)}`);
  return r;
}
const batchSteps = (runDir: string) => readMetrics(runDir).filter((r) => r.type === "batch").map((r) => r.step as number);
const ck = (runDir: string, step: number) => join(runDir, "checkpoints", `step_${String(step).padStart(9, "0")}`);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** A trainer as a live child process, with its stdout and stderr lines as they arrive. */
function spawnTrain(args: string[]) {
  const proc = Bun.spawn([process.execPath, TRAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const out = lineWatcher(proc.stdout);
  const err = lineWatcher(proc.stderr);
  return {
    proc,
    out,
    err,
    /** Waits for a stdout line starting with `prefix`; fails with the trainer's stderr if it exits first. */
    async waitOut(prefix: string) {
      const line = await out.next(prefix, 0);
      if (line === null) throw new Error(`trainer exited (${await proc.exited}) before "${prefix}":\n${err.lines.join("\n").slice(-3000)}`);
      return line;
    },
    async waitErr(prefix: string) {
      const line = await err.next(prefix, 0);
      if (line === null) throw new Error(`trainer exited (${await proc.exited}) before stderr "${prefix}":\n${err.lines.join("\n").slice(-3000)}`);
      return line;
    },
  };
}

// One short smoke run that the tests copy: checkpoints at steps 2, 4 and 6, best/ from step 6's validation.
let BASE_RUN = "";
beforeAll(() => {
  const base = fresh("base");
  ok(TRAIN, ["--preset", "smoke", ...CPU, "--max_batches", "6", "--ckpt_every", "2", "--log_every", "1", "--run_dir", base]);
  BASE_RUN = join(base, readdirSync(base).find((n) => n.startsWith("arc_"))!);
  expect(listCheckpoints(BASE_RUN).map((c) => c.step)).toEqual([2, 4, 6]);
  expect(verifyCheckpoint(join(BASE_RUN, "checkpoints", "best")).ok).toBe(true);
}, 300_000);

/** A copy of the base run under a fresh folder (the same run name). */
function copyRun(label: string): string {
  const dir = join(fresh(label), basename(BASE_RUN));
  cpSync(BASE_RUN, dir, { recursive: true });
  return dir;
}

describe("one trainer per run", () => {
  test("a second trainer on a run in training is refused (exit 2, naming the first); metrics.jsonl stays whole; eval reads meanwhile", async () => {
    const runDir = copyRun("lock");
    const a = spawnTrain(["--resume", runDir, "--max_batches", "20", "--log_every", "1", ...CPU]);
    try {
      await a.waitOut("[batch");
      expect(JSON.parse(readFileSync(join(runDir, LOCK_FILE), "utf8"))).toMatchObject({ pid: a.proc.pid, host: hostname() });
      const b = run(TRAIN, ["--resume", runDir, "--max_batches", "10", ...CPU]);
      expect(b.code).toBe(2);
      expect(b.err.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`^train: ${runDir} is in use by another trainer \\(pid ${a.proc.pid} on ${hostname()}, since .*\\); wait for it to finish or stop it \\(kill ${a.proc.pid}\\)$`))]);
      // A reader needs no lock: eval of the newest checkpoint works while the trainer holds the run.
      const e = run(EVAL, ["--checkpoint", "latest", "--run", runDir, "--split", "val", "--max", "1", "--quiet", "--out", join(runDir, "eval-during")]);
      expect({ code: e.code, err: e.err.slice(-500) }).toEqual({ code: 0, err: "" });
    } finally {
      if ((await Promise.race([a.proc.exited, Bun.sleep(240_000).then(() => "timeout")])) === "timeout") a.proc.kill("SIGKILL");
    }
    expect(a.proc.exitCode).toBe(0);
    // Every batch exactly once, in order: the refused trainer trimmed and wrote nothing.
    expect(batchSteps(runDir)).toEqual(range(1, 20));
    expect(latestVerifiedCheckpoint(runDir)!.step).toBe(20);
    expect(existsSync(join(runDir, LOCK_FILE))).toBe(false);
  }, 300_000);
});

describe("graceful stop", () => {
  test("SIGINT: the batch finishes, a checkpoint at that step, no validation, exit 130; SIGTERM with --validate_on_stop: validated, exit 143", async () => {
    const runDir = copyRun("signals");
    const valsBefore = readMetrics(runDir).filter((r) => r.type === "val").length;
    const t = spawnTrain(["--resume", runDir, "--max_batches", "500", "--log_every", "1", ...CPU]);
    await t.waitOut("[batch");
    t.proc.kill("SIGINT");
    expect(await t.proc.exited).toBe(130);
    expect(t.err.lines.join("\n")).toMatch(/SIGINT: finishing this batch, then saving a checkpoint \(Ctrl-C again quits at once/);
    expect(t.err.lines.at(-1)).toMatch(/^stopped by SIGINT: \d+ batches; checkpoint .*step_\d+$/);
    const stopped = latestVerifiedCheckpoint(runDir)!;
    expect(stopped.step).toBeGreaterThan(6);
    expect(batchSteps(runDir)).toEqual(range(1, stopped.step)); // the checkpoint is at the last logged batch
    expect(readMetrics(runDir).filter((r) => r.type === "val").length).toBe(valsBefore);
    expect(existsSync(join(runDir, LOCK_FILE))).toBe(false);

    const t2 = spawnTrain(["--resume", runDir, "--max_batches", "500", "--log_every", "1", "--validate_on_stop", ...CPU]);
    await t2.waitOut("[batch");
    t2.proc.kill("SIGTERM");
    expect(await t2.proc.exited).toBe(143);
    const again = latestVerifiedCheckpoint(runDir)!;
    expect(again.step).toBeGreaterThan(stopped.step);
    expect(readMetrics(runDir).filter((r) => r.type === "val").map((r) => r.step)).toContain(again.step);
    expect(t2.err.lines.join("\n")).toContain(`resuming ${runDir} from ${stopped.dir} (step ${stopped.step},`);
  }, 300_000);

  test("a second SIGINT ends the process at once (here: during the stop's validation); the last checkpoint is intact", async () => {
    const runDir = copyRun("double");
    const before = latestVerifiedCheckpoint(runDir)!;
    const t = spawnTrain(["--resume", runDir, "--max_batches", "500", "--log_every", "1", "--validate_on_stop", ...CPU]);
    await t.waitOut("[batch");
    t.proc.kill("SIGINT");
    await t.waitErr("SIGINT: finishing this batch");
    t.proc.kill("SIGINT");
    await t.proc.exited;
    // Killed by the signal's default action, not a clean exit after a checkpoint.
    expect(t.proc.signalCode).toBe("SIGINT");
    expect(t.out.lines.some((l) => l.startsWith("val: "))).toBe(false);
    const skipped: string[] = [];
    expect(latestVerifiedCheckpoint(runDir, { onSkip: (d, why) => skipped.push(`${d}: ${why}`) })!.step).toBe(before.step);
    expect(skipped).toEqual([]);
    // The lock it left names a dead process: the next resume takes it over and continues.
    const r = ok(TRAIN, ["--resume", runDir, "--max_batches", String(before.step + 1), ...CPU]);
    expect(r.err).toMatch(/taking over the stale run lock .*train\.lock \(pid \d+ on .*is gone\)/);
  }, 300_000);
});

describe("best/ stands alone", () => {
  test("a step folder damaged in place leaves best/ usable by eval; best/ damaged, eval falls back to the newest intact step, saying so", () => {
    const runDir = copyRun("best");
    const best = join(runDir, "checkpoints", "best");
    expect(JSON.parse(readFileSync(join(best, "manifest.json"), "utf8")).step).toBe(6);
    const damage = (file: string) => {
      const buf = readFileSync(file);
      buf.fill(0x41, buf.length - 64);
      writeFileSync(file, buf); // same size, new bytes: in place, as bit rot or a stray write would
    };
    damage(join(ck(runDir, 6), "model.safetensors"));
    expect(verifyCheckpoint(ck(runDir, 6)).ok).toBe(false);
    expect(verifyCheckpoint(best).ok).toBe(true);
    const e1 = ok(EVAL, ["--run", runDir, "--split", "val", "--max", "1", "--quiet", "--out", join(runDir, "e1")]);
    expect(e1.out).toContain(`evaluating ${best} (step 6)`);

    damage(join(best, "model.safetensors"));
    const e2 = ok(EVAL, ["--run", runDir, "--split", "val", "--max", "1", "--quiet", "--out", join(runDir, "e2")]);
    expect(e2.err).toMatch(new RegExp(`best checkpoint ${best} is unusable \\(model\\.safetensors is corrupt: .*\\); using the newest intact checkpoint ${ck(runDir, 4)} \\(step 4\\) instead`));
    expect(e2.out).toContain(`evaluating ${ck(runDir, 4)} (step 4)`);
  }, 300_000);
});

describe("refused before any work", () => {
  test("bad flags, folders and data: one line, exit 2, no run folder made", () => {
    const base = fresh("refuse");
    const aFile = join(base, "a-file");
    writeFileSync(aFile, "x");
    const model = join(base, "model");
    mkdirSync(model);
    writeFileSync(join(model, "config.json"), '{"model_type": "qwen2", "hidden_size": 15');
    const bad = join(base, "bad-data");
    writeSplitFolder(bad, syntheticDataset({ training: 4, evaluation: 2, seed: 3 }));
    writeFileSync(join(bad, "training", "zz-broken.json"), "{");
    writeFileSync(join(bad, "evaluation", "zz-cells.json"), JSON.stringify({ train: [{ input: [[1]], output: [[10]] }], test: [{ input: [[1]] }] }));
    const runs = join(base, "runs");
    const cases: { args: string[]; says: RegExp }[] = [
      { args: ["--resume", ""], says: /--resume was given an empty value \(an unset shell variable\?\)/ },
      { args: ["--num_threads", "100000"], says: /--num_threads must be <= \d+, got 100000/ },
      { args: ["--seed", "99999999999999999999999"], says: /--seed 99999999999999999999999 is too large \(at most 9007199254740991\)/ },
      { args: ["--seed", "1", "--seed=2"], says: /--seed is given more than once/ },
      { args: ["--agent_lr", "0x10"], says: /--agent_lr must be a decimal number .*got "0x10"/ },
      { args: ["--lora_alpha", "-5"], says: /--lora_alpha must be positive, got -5/ },
      { args: ["--run_dir", aFile], says: /--run_dir .*a-file is a file, not a folder/ },
      { args: ["--run_dir", join(aFile, "runs")], says: /--run_dir .*a-file\/runs: .*a-file is a file/ },
      { args: ["--run_dir", ""], says: /--run_dir was given an empty value/ },
      { args: ["--model", model], says: new RegExp(`--model ${model}: ${model}/config\\.json is not valid JSON`) },
      // These pass the flag checks and are found by the trainer before it makes a folder or loads a model.
      { args: ["--val_fraction", "0.999"], says: /--val_fraction 0\.999 leaves no training task \(all \d+ of --data synthetic go to validation\)/ },
      { args: ["--data", bad], says: /--data .*bad-data: 2 bad task files: .*training\/zz-broken\.json: not valid JSON.*evaluation\/zz-cells\.json: train\[0\]\.output: cell \(0,0\) is 10.*\(--skip_bad_tasks trains without them/ },
      { args: ["--run_dir", "/proc/arc-efe-test-runs"], says: /--run_dir \/proc\/arc-efe-test-runs: cannot create \/proc\/arc-efe-test-runs/ },
      { args: ["--backup_dir", "/proc/arc-efe-test-backup"], says: /--backup_dir \/proc\/arc-efe-test-backup: cannot create/ },
    ];
    for (const c of cases) {
      const where = c.args.includes("--run_dir") ? [] : ["--run_dir", runs];
      const r = run(TRAIN, ["--preset", "smoke", ...CPU, ...where, ...c.args]);
      const lines = r.err.trim().split("\n");
      expect({ args: c.args, code: r.code, lines: lines.length }).toEqual({ args: c.args, code: 2, lines: 1 });
      expect(lines[0]).toMatch(/^train: /);
      expect(lines[0]).toMatch(c.says);
      expect(existsSync(runs) ? readdirSync(runs) : []).toEqual([]);
    }
    expect(readdirSync(model)).toEqual(["config.json"]);

    // A model that fails only while loading (a valid config.json, no weights) is a failure (exit 1), but
    // the run folder is made after the model loads, so none is left behind.
    writeFileSync(join(model, "config.json"), JSON.stringify({
      model_type: "qwen2", vocab_size: 151936, hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, torch_dtype: "float32", tie_word_embeddings: true,
    }));
    const r = run(TRAIN, ["--preset", "smoke", ...CPU, "--run_dir", runs, "--model", model]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^train: .*model has neither model\.safetensors nor model\.safetensors\.index\.json$/m);
    expect(readdirSync(runs)).toEqual([]);
  }, 300_000);

  test("eval: --max -1, a duplicate flag and a device without CUDA are usage errors (exit 2) before anything loads", async () => {
    const torch = await import("../../src/torch");
    const cases: { args: string[]; says: RegExp }[] = [
      { args: ["--max", "-1"], says: /^eval: --max must be a non-negative integer, got "-1"/ },
      { args: ["--max", "1", "--max", "2"], says: /^eval: --max is given more than once/ },
      { args: ["--run", ""], says: /^eval: --run was given an empty value/ },
      torch.cuda.isAvailable()
        ? { args: ["--device", `cuda:${torch.cuda.deviceCount()}`], says: /only \d+ CUDA device/ }
        : { args: ["--device", "cuda"], says: /^eval: --device cuda: CUDA is not available/ },
    ];
    for (const c of cases) {
      const r = run(EVAL, [...(c.args.includes("--run") ? [] : ["--run", BASE_RUN]), ...c.args]);
      expect({ args: c.args, code: r.code }).toEqual({ args: c.args, code: 2 });
      expect(r.err.trim().split("\n").length).toBe(1);
      expect(r.err).toMatch(c.says);
      expect(r.out).toBe("");
    }
  }, 120_000);
});

describe("resume semantics", () => {
  test("flags a resume cannot change are refused, each named; nothing in the run changes", () => {
    const runDir = copyRun("flags");
    const metrics = readFileSync(join(runDir, "metrics.jsonl"), "utf8");
    const r = run(TRAIN, ["--resume", runDir, "--batch_size", "8", "--agent_lr", "0.5", "--seed", "42", ...CPU]);
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toEqual([
      expect.stringMatching(/^train: --resume .*: these flags cannot change on resume: --agent_lr 0\.5 \(the run has 0\.001\), --seed 42 \(the run has 0\), --batch_size 8 \(the run has 2\); drop them/),
    ]);
    expect(readFileSync(join(runDir, "metrics.jsonl"), "utf8")).toBe(metrics);
    expect(existsSync(join(runDir, LOCK_FILE))).toBe(false);
  }, 120_000);

  test("checkpoints that verify but do not load are skipped like corrupt ones; the newest step folder bad: its copy best/ is used before older step folders; config.json gone; a stale lock", () => {
    const runDir = copyRun("fallback");
    // step 6: state.json "{}" (a broken writer); step 4: a tensor header the reader rejects; both re-manifested so they verify.
    replaceVerified(ck(runDir, 6), "state.json", "{}\n");
    const model4 = readFileSync(join(ck(runDir, 4), "model.safetensors"));
    const badHeader = Buffer.from(model4);
    badHeader.write('{"agent.x":{"dtype":"F99"', 8, "latin1");
    replaceVerified(ck(runDir, 4), "model.safetensors", badHeader);
    truncateSync(join(ck(runDir, 2), "optimizer.safetensors"), 100);
    unlinkSync(join(runDir, "config.json"));
    // Left by a trainer that is gone (a pid no process has).
    writeFileSync(join(runDir, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 4321, host: hostname(), started: "2026-12-01T00:00:00.000Z", startTicks: null, argv: [] }));

    const r = ok(TRAIN, ["--resume", runDir, "--max_batches", "7", "--log_every", "1", ...CPU]);
    const best = join(runDir, "checkpoints", "best");
    const lines = r.err.split("\n");
    const find = (re: RegExp) => {
      const l = lines.find((x) => re.test(x));
      expect(l ?? `no line matching ${re}`).toMatch(re);
    };
    find(/^taking over the stale run lock .*train\.lock \(pid 4198625 .* is gone\)$/);
    find(/config\.json is missing; restored it from .*checkpoints\/best\/state\.json$/); // the newest checkpoint with a config: best/, step 6
    // best/ (a copy of step 6) comes right after step 6, before the older step folders (finding 7).
    find(new RegExp(`^checkpoint ${ck(runDir, 6)} is unusable \\(it verifies but cannot be loaded: state\\.json has no "position"\\); trying best/ \\(the best checkpoint, an independent copy\\)$`));
    find(new RegExp(`^resuming ${runDir} from ${best} \\(step 6, `));
    expect(lines.filter((l) => l.includes(ck(runDir, 4)) || l.includes(ck(runDir, 2)))).toEqual([]);
    expect(JSON.parse(readFileSync(join(runDir, "config.json"), "utf8"))).toMatchObject({ model: "tiny", data: "synthetic", max_batches: 6 });
    expect(latestVerifiedCheckpoint(runDir)!.step).toBe(7);
    expect(batchSteps(runDir)).toEqual(range(1, 7));
  }, 300_000);

  test("a backup that fails mid-run is a warning, training goes on, and the next checkpoint is backed up again", async () => {
    const runDir = copyRun("backup");
    const backup = fresh("backup-dir");
    // The run's folder in the backup is a file: every mirror fails until it is removed.
    writeFileSync(join(backup, basename(runDir)), "in the way");
    const t = spawnTrain(["--resume", runDir, "--max_batches", "14", "--ckpt_every", "2", "--log_every", "1", "--backup_dir", backup, ...CPU]);
    const warning = await t.waitErr("warning: backup of");
    expect(warning).toMatch(new RegExp(`^warning: backup of ${ck(runDir, 8)} to ${backup} failed \\(.*\\); training goes on, the next checkpoint is backed up again$`));
    unlinkSync(join(backup, basename(runDir)));
    expect(await t.proc.exited).toBe(0);
    expect(t.err.lines.some((l) => l.startsWith(`backup to ${backup} works again`))).toBe(true);
    const mirrored = join(backup, basename(runDir));
    expect(verifyCheckpoint(ck(mirrored, 14)).ok).toBe(true);
    expect(latestVerifiedCheckpoint(runDir)!.step).toBe(14);
  }, 300_000);
});

describe("bad task files", () => {
  test("--skip_bad_tasks trains without them and lists every one", () => {
    const data = fresh("skip-data");
    writeSplitFolder(data, syntheticDataset({ training: 6, evaluation: 2, seed: 5 }));
    writeFileSync(join(data, "training", "zz-broken.json"), "[]");
    writeFileSync(join(data, "evaluation", "zz-empty.json"), "");
    const base = fresh("skip-runs");
    const r = ok(TRAIN, ["--preset", "smoke", ...CPU, "--data", data, "--skip_bad_tasks", "--max_batches", "1", "--val_fraction", "0.2", "--run_dir", base]);
    expect(r.err).toMatch(/--skip_bad_tasks: skipping 2 bad task file\(s\):\n {2}.*training\/zz-broken\.json: is a list.*\n {2}.*evaluation\/zz-empty\.json: not valid JSON/);
    const runDir = join(base, readdirSync(base)[0]);
    expect(JSON.parse(readFileSync(join(runDir, "config.json"), "utf8")).skip_bad_tasks).toBe(true);
  }, 300_000);
});
