// Issue 26's red-team findings, each as a subprocess run of the scripts on the CPU that failed before the
// change: divergence stops the run (exit 3) and no checkpoint holds non-finite weights; eval and TTT refuse
// non-finite weights and outputs; eval's --out is probed before any work; eval takes the run's
// config.json when a checkpoint lacks one, skips a checkpoint without weights and survives a checkpoint
// pruned while it loads; the data's identity in the run; resume and best/; the finished run; bounds.
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import * as torch from "../../src/torch";
import { listCheckpoints } from "../../src/pipeline/run/checkpoint";
import { nonFiniteTensors } from "../../src/pipeline/system/nonfinite";
import { replaceVerified } from "../helpers/checkpoints";
import { CPU, EVAL, TRAIN, runScript, tempFolders, type Result } from "../helpers/scripts";

const fresh = tempFolders("arc-silent-test-");
const run = (script: string, args: string[], timeoutMs = 240_000): Result => runScript(script, args, timeoutMs);
function ok(script: string, args: string[]): Result {
  const r = run(script, args);
  if (r.code !== 0) throw new Error(`${basename(script)} ${args.join(" ")} exited ${r.code}:\n${r.err.slice(-3000)}`);
  return r;
}
const onlyRun = (base: string) => join(base, readdirSync(base).find((n) => n.startsWith("arc_"))!);
const ck = (runDir: string, step: number) => join(runDir, "checkpoints", `step_${String(step).padStart(9, "0")}`);
const lines = (s: string) => s.trim().split("\n").filter((l) => l !== "");

// One short smoke run that the tests copy: checkpoints at steps 2 and 4, best/ from step 4's validation.
let BASE_RUN = "";
beforeAll(() => {
  const base = fresh("base");
  ok(TRAIN, ["--preset", "smoke", ...CPU, "--max_batches", "4", "--ckpt_every", "2", "--log_every", "1", "--run_dir", base]);
  BASE_RUN = onlyRun(base);
  expect(listCheckpoints(BASE_RUN).map((c) => c.step)).toEqual([2, 4]);
}, 300_000);

function copyRun(label: string): string {
  const dir = join(fresh(label), basename(BASE_RUN));
  cpSync(BASE_RUN, dir, { recursive: true });
  return dir;
}

describe("divergence (finding 1)", () => {
  test("lr 1e6, no clipping: non-finite steps are skipped and named, the run exits 3 at --max_nonfinite_steps, no checkpoint holds non-finite weights", () => {
    const base = fresh("diverge");
    const r = run(TRAIN, ["--preset", "smoke", ...CPU, "--max_batches", "10", "--log_every", "1", "--ckpt_every", "1", "--agent_lr", "1e6", "--qwen_lr", "1e6", "--rl_lr", "1e6", "--clip", "1e30", "--run_dir", base]);
    expect(r.code).toBe(3);
    const last = lines(r.err).at(-1)!;
    expect(last).toMatch(/^train: stopped: 3 optimizer steps had non-finite losses or gradients \(--max_nonfinite_steps 3\); the first at step \d+: the (risk|ambiguity|complexity|size cross-entropy|soft reward|EFE|total) term of the loss of task .*; the last finite checkpoint is .*step_\d+; lower the learning rates/);
    expect(r.err).toMatch(/step \d+: non-finite numbers \(.*\); .* \(1 non-finite step\(s\) of --max_nonfinite_steps 3\)/);
    expect(r.err).not.toContain("    at "); // no stack trace
    const runDir = onlyRun(base);
    const dirs = [...listCheckpoints(runDir).map((c) => c.dir), join(runDir, "checkpoints", "best")].filter((d) => existsSync(d));
    expect(dirs.length).toBeGreaterThan(0);
    for (const d of dirs) torch.scope(() => expect(nonFiniteTensors(torch.safetensors.loadFile(join(d, "model.safetensors")))).toEqual([]));
  }, 300_000);

  test("eval refuses a checkpoint with non-finite weights (before building the model); TTT at --ttt_lr 1e30 is an error, not a gain", () => {
    const runDir = copyRun("nan-eval");
    const dir = ck(runDir, 4);
    const bad = torch.scope(() => {
      const m = torch.safetensors.loadFile(join(dir, "model.safetensors"));
      const name = Object.keys(m).find((k) => k.startsWith("agent.") && m[k].dtype === "float32")!;
      m[name] = m[name].mul(Number.NaN);
      const path = join(fresh("nan-file"), "model.safetensors");
      torch.safetensors.saveFile(path, m);
      return { name, buf: readFileSync(path) };
    });
    replaceVerified(dir, "model.safetensors", bad.buf);
    const e = run(EVAL, ["--checkpoint", dir, "--split", "val", "--max", "1", "--quiet"]);
    expect(e.code).toBe(1);
    expect(lines(e.err)).toEqual([`eval: checkpoint ${dir} has non-finite weights (${bad.name}): its training diverged; evaluate an earlier checkpoint (--checkpoint PATH)`]);

    const t = run(EVAL, ["--checkpoint", ck(BASE_RUN, 2), "--split", "val", "--max", "1", "--quiet", "--ttt_steps", "3", "--ttt_lr", "1e30", "--out", fresh("ttt-out")]);
    expect(t.code).toBe(1);
    expect(lines(t.err).at(-1)).toMatch(/^eval: (test-time training of task .* (diverged at step \d of 3|made \d+ adapted weight tensor\(s\) non-finite)|the model's outputs for task .* are non-finite)/);
  }, 300_000);
});

describe("eval's output folder and its checkpoint (findings 4, 6, 9)", () => {
  test("--out to an unwritable path fails at once, before the checkpoint or the model loads", () => {
    for (const out of ["/etc/passwd", "/proc/x/y"]) {
      // With the addon's path pointing nowhere, loading LibTorch (let alone a checkpoint) would fail otherwise.
      const e = runScript(EVAL, ["--checkpoint", ck(BASE_RUN, 2), "--split", "val", "--max", "1", "--quiet", "--out", out], 240_000, { ARC_TORCH_ADDON: join(fresh("no-addon"), "arc_torch.node") });
      expect(e.code).toBe(2);
      expect(lines(e.err)).toEqual([expect.stringMatching(new RegExp(`^eval: --out ${out}: .*(not a folder|cannot create|not writable)`))]);
    }
  }, 60_000);

  test("a checkpoint whose state.json lacks config uses the run's config.json (no download of the defaults)", () => {
    const runDir = copyRun("no-config");
    const dir = ck(runDir, 4);
    const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
    delete state.config;
    replaceVerified(dir, "state.json", JSON.stringify(state));
    const e = run(EVAL, ["--checkpoint", dir, "--split", "val", "--max", "1", "--quiet", "--out", fresh("nc-out")]);
    expect({ code: e.code, err: e.err.slice(-1500) }).toEqual({ code: 0, err: `checkpoint ${dir} records no config; using its run's ${join(runDir, "config.json")}\n` });
  }, 120_000);

  test("a checkpoint that lists no weights is unusable: latest goes on to the next one", () => {
    const runDir = copyRun("no-weights");
    replaceVerified(ck(runDir, 4), "model.safetensors", null);
    const e = run(EVAL, ["--checkpoint", "latest", "--run", runDir, "--split", "val", "--max", "1", "--quiet"]);
    expect(e.code).toBe(0);
    expect(e.err).toContain(`skipping ${ck(runDir, 4)}: manifest.json lists no model.safetensors`);
    expect(e.out).toContain(`evaluating ${ck(runDir, 2)} (step 2)`);
    const p = run(EVAL, ["--checkpoint", ck(runDir, 4), "--split", "val", "--max", "1", "--quiet"]);
    expect(p.code).toBe(1);
    expect(lines(p.err)).toEqual([`eval: checkpoint ${ck(runDir, 4)} is unusable: manifest.json lists no model.safetensors (the checkpoint holds no weights)`]);
  }, 120_000);
});

describe("a checkpoint pruned while eval loads it (finding 9)", () => {
  test("latest: the folder vanishes between choosing and loading; eval says so and evaluates the next newest", async () => {
    const runDir = copyRun("pruned");
    const { runEvaluation } = await import("../../src/pipeline/commands/eval-checkpoint");
    const chosen: string[] = [];
    const errs: string[] = [];
    const error = console.error;
    console.error = (...a: unknown[]) => void errs.push(a.join(" "));
    let report;
    try {
      report = await runEvaluation({
        checkpoint: "latest", runDir, runsBase: fresh("unused"), split: "val", max: 1, quiet: true, log: () => {}, out: fresh("pruned-out"),
        onChosen: (dir) => {
          chosen.push(dir);
          if (chosen.length === 1) rmSync(dir, { recursive: true }); // what --keep_last does to it meanwhile
        },
      });
    } finally {
      console.error = error;
    }
    expect(chosen).toEqual([ck(runDir, 4), ck(runDir, 2)]);
    expect(report.checkpoint).toBe(ck(runDir, 2));
    expect(errs.join("")).toContain(`checkpoint ${ck(runDir, 4)} was removed while it loaded (a live run prunes old checkpoints); trying the next newest`);
  }, 120_000);
});

describe("the data's identity (finding 2)", () => {
  test("a relative --data is recorded absolutely; a moved folder resumes by its new path; a changed task set is refused naming the change; --allow_data_change goes on and is recorded", () => {
    const { renameSync, unlinkSync } = require("node:fs") as typeof import("node:fs");
    const { relative } = require("node:path") as typeof import("node:path");
    const { syntheticDataset, writeSplitFolder } = require("../../src/arc") as typeof import("../../src/arc");
    const { readMetrics } = require("../../src/pipeline/run/run-folder") as typeof import("../../src/pipeline/run/run-folder");
    const { ROOT } = require("../helpers/scripts") as typeof import("../helpers/scripts");
    const where = fresh("data");
    const first = writeSplitFolder(join(where, "tasks"), syntheticDataset({ training: 18, evaluation: 2, seed: 7 }));
    const base = fresh("data-run");
    const common = ["--preset", "smoke", ...CPU, "--ckpt_every", "2", "--val_fraction", "0.2", "--val_max", "2"];
    ok(TRAIN, [...common, "--data", relative(ROOT, first), "--max_batches", "2", "--run_dir", base]);
    const runDir = onlyRun(base);
    const state = JSON.parse(readFileSync(join(ck(runDir, 2), "state.json"), "utf8"));
    expect(state.data).toMatchObject({ path: first, count: 18 });

    const moved = join(where, "moved");
    renameSync(first, moved);
    const r = run(TRAIN, ["--resume", runDir, ...CPU, "--data", moved, "--max_batches", "4"]);
    expect({ code: r.code, err: r.err.slice(-1500) }).toMatchObject({ code: 0 });
    expect(listCheckpoints(runDir).at(-1)!.step).toBe(4);

    const ids = readdirSync(join(moved, "training")).sort();
    for (const f of ids.slice(0, 12)) unlinkSync(join(moved, "training", f));
    const refused = run(TRAIN, ["--resume", runDir, ...CPU, "--data", moved, "--max_batches", "6"]);
    expect(refused.code).toBe(2);
    expect(lines(refused.err)).toEqual([
      expect.stringMatching(new RegExp(`^train: --resume ${runDir}: the run's training tasks have changed since its checkpoint in ${moved}: 12 of 18 tasks removed \\(${ids[0].replace(".json", "")}, .*\\); restore them, or pass --allow_data_change`)),
    ]);
    expect(listCheckpoints(runDir).at(-1)!.step).toBe(4);

    const allowed = run(TRAIN, ["--resume", runDir, ...CPU, "--data", moved, "--max_batches", "6", "--allow_data_change"]);
    expect({ code: allowed.code, err: allowed.err.slice(-1500) }).toMatchObject({ code: 0 });
    expect(allowed.err).toContain("--allow_data_change: the training tasks changed since the checkpoint: 12 of 18 tasks removed");
    expect(readMetrics(runDir).filter((m) => m.type === "data_change")).toEqual([expect.objectContaining({ step: 4, tasks: 6, path: moved })]);
  }, 300_000);
});

describe("reports and output files (findings 4, 5, 14)", () => {
  const REPORT = join(import.meta.dir, "..", "..", "scripts", "report.ts");
  const DATA = join(import.meta.dir, "..", "..", "scripts", "data.ts");
  test("report.ts on a garbage or null config.json, a torn or wrong-shaped val_latest.json, metrics.jsonl a folder: one warning line each, the report written, no stack trace", () => {
    const { mkdirSync } = require("node:fs") as typeof import("node:fs");
    const cases: [string, (dir: string) => void, RegExp][] = [
      ["garbage config", (d) => writeFileSync(join(d, "config.json"), "{not json"), /config\.json could not be read \(/],
      ["null config", (d) => writeFileSync(join(d, "config.json"), "null"), /config\.json could not be read \(not a JSON object\)/],
      ["torn gallery", (d) => writeFileSync(join(d, "val_latest.json"), '{"step": 3, "results": [{"ta'), /val_latest\.json could not be read \(/],
      ["wrong-shaped gallery", (d) => writeFileSync(join(d, "val_latest.json"), '{"step": 3, "examples": 2}'), /val_latest\.json could not be read \(/],
      ["metrics a folder", (d) => mkdirSync(join(d, "metrics.jsonl")), /metrics\.jsonl could not be read \(EISDIR/],
    ];
    for (const [label, damage, warning] of cases) {
      const runDir = join(fresh(label.replace(/ /g, "-")), "arc_20260101_000000");
      mkdirSync(runDir, { recursive: true });
      writeFileSync(join(runDir, "config.json"), JSON.stringify({ model: "tiny" }));
      damage(runDir);
      const r = run(REPORT, ["--run", runDir]);
      expect({ label, code: r.code, err: lines(r.err) }).toEqual({ label, code: 0, err: [expect.stringMatching(new RegExp(`^report: warning: ${runDir}/.*${warning.source}.*the report is made without it$`))] });
      expect(existsSync(join(runDir, "report.html"))).toBe(true);
    }
  }, 120_000);

  test("data.ts show --png/--html to a path it cannot write: one line, exit 2, before any work", () => {
    for (const [flag, path, why] of [["--png", "/proc/x.png", "not writable"], ["--html", "/tmp", "is a folder"]]) {
      const r = run(DATA, ["show", flag, path, "flip_h-1"]);
      expect({ code: r.code, err: lines(r.err) }).toEqual({ code: 2, err: [expect.stringMatching(new RegExp(`^data\\.ts: ${flag} ${path}: cannot write it: .*${why}`))] });
    }
  }, 60_000);

  test("WORLD_SIZE=2 without RANK: one clear line naming RANK (not 'rank undefined')", () => {
    const { spawnSync } = require("node:child_process") as typeof import("node:child_process");
    const { ROOT } = require("../helpers/scripts") as typeof import("../helpers/scripts");
    const r = spawnSync(process.execPath, [TRAIN, "--preset", "smoke", ...CPU, "--max_batches", "1", "--run_dir", fresh("ws")], { cwd: ROOT, encoding: "utf8", env: { ...process.env, WORLD_SIZE: "2", RANK: undefined, LOCAL_RANK: undefined } });
    expect(r.status).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^train: data-parallel training: RANK=\(unset\) is not an integer/)]);
  }, 60_000);
});

describe("stops and finished runs (findings 8, 10)", () => {
  test("a SIGINT during the final validation is acknowledged at once, ends it at the next batch, checkpoints and exits 130", async () => {
    const base = fresh("sig-val");
    const { lineWatcher } = await import("../helpers/lines");
    const { ROOT } = await import("../helpers/scripts");
    const proc = Bun.spawn([process.execPath, TRAIN, "--preset", "smoke", ...CPU, "--max_batches", "2", "--log_every", "1", "--val_fraction", "0.3", "--val_max", "400", "--run_dir", base], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const out = lineWatcher(proc.stdout);
    const err = lineWatcher(proc.stderr);
    expect(await out.next("[batch    2]", 0)).not.toBeNull();
    await Bun.sleep(500); // validating by now (400 examples take far longer)
    proc.kill("SIGINT");
    expect(await err.next("SIGINT: stopping validation at the next batch of examples", 0)).not.toBeNull();
    expect(await proc.exited).toBe(130);
    expect(out.lines.some((l) => l.startsWith("val: "))).toBe(false);
    const stopped = /SIGINT: validation at step 2 stopped after (\d+) of (\d+) examples \(not recorded\)/.exec(err.lines.join("\n"));
    expect(stopped).not.toBeNull();
    expect(Number(stopped![1])).toBeLessThan(Number(stopped![2])); // ended at the next batch, not after all 400
    expect(err.lines.at(-1)).toMatch(/^stopped by SIGINT: 2 batches; checkpoint .*step_000000002$/);
    const runDir = onlyRun(base);
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([2]);
    const { readMetrics } = await import("../../src/pipeline/run/run-folder");
    expect(readMetrics(runDir).filter((r) => r.type === "val")).toEqual([]);
  }, 300_000);

  test("resuming a finished run with nothing to do says so, exits 0 and writes nothing", () => {
    const runDir = copyRun("finished");
    const snapshot = () => Object.fromEntries(["metrics.jsonl", "config.json", "report.html"].filter((f) => existsSync(join(runDir, f))).map((f) => [f, readFileSync(join(runDir, f), "utf8")]));
    const before = snapshot();
    const tb = readdirSync(join(runDir, "tb")).sort();
    const r = run(TRAIN, ["--resume", runDir, ...CPU, "--max_batches", "2"]);
    expect(r.code).toBe(0);
    expect(lines(r.err).at(-1)).toBe(`--resume ${runDir}: nothing to do, it is at step 4, --max_batches 2 (checkpoint ${ck(runDir, 4)}); raise --epochs or --max_batches to train further. Nothing was written`);
    expect(r.out).not.toMatch(/^val: /m);
    expect(snapshot()).toEqual(before);
    expect(readdirSync(join(runDir, "tb")).sort()).toEqual(tb);
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([2, 4]);
  }, 120_000);
});

describe("flags that stretched silently (finding 12)", () => {
  test("--ckpt_every not a multiple of --grad_accum is one line naming both, exit 2, before anything loads", () => {
    const r = run(TRAIN, ["--preset", "smoke", ...CPU, "--ckpt_every", "5", "--grad_accum", "3", "--run_dir", fresh("accum")]);
    expect({ code: r.code, err: lines(r.err) }).toEqual({ code: 2, err: ["train: --ckpt_every 5 is not a multiple of --grad_accum 3: checkpoints are written only at optimizer steps (every 3 batches); give --ckpt_every 6 or 3 (see --help)"] });
  }, 60_000);
});

describe("bounds from the machine (finding 3)", () => {
  test("--batch_size over the training examples and --hint_tokens past the model's context are one line, exit 2, before the model loads", () => {
    const b = run(TRAIN, ["--preset", "smoke", ...CPU, "--batch_size", "100000", "--run_dir", fresh("bs")]);
    expect({ code: b.code, err: lines(b.err) }).toEqual({ code: 2, err: [expect.stringMatching(/^train: --batch_size 100000 is more than the \d+ training examples of --data synthetic; give --batch_size \d+ or fewer$/)] });
    const h = run(TRAIN, ["--preset", "smoke", ...CPU, "--hint_tokens", "100000", "--run_dir", fresh("hint")]);
    expect({ code: h.code, err: lines(h.err) }).toEqual({ code: 2, err: ["train: --max_prompt_tokens 1024 + --hint_tokens 100000 is more than the model's context (32768 positions, max_position_embeddings of --model tiny); lower them"] });
  }, 120_000);
});
