// Checkpoints and run folders (docs/pipeline.md, "Checkpoint format"): round trips, verification, keep_last, best/, resolve, backup,
// leftovers of killed writers, and a writer killed with SIGKILL 20 times at random moments.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync,
  truncateSync, unlinkSync, writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import * as torch from "../../src/torch";
import {
  CHECKPOINT_VERSION, type CheckpointManifest, cleanupLeftovers, listCheckpoints, latestVerifiedCheckpoint, loadCheckpoint, saveCheckpoint, stepDirName, verifyCheckpoint,
} from "../../src/pipeline/run/checkpoint";
import { mirrorCheckpoint } from "../../src/pipeline/run/backup";
import { resolveCheckpoint } from "../../src/pipeline/run/resolve";
import { pruneCheckpoints, readBest, updateBest } from "../../src/pipeline/run/retention";
import { appendMetrics, createRun, latestRun, listRuns, openRun, readMetrics, RUN_NAME_RE, trimMetrics } from "../../src/pipeline/run/run-folder";
import { expected, numelOf } from "./fixtures/ckpt-writer";
import { lineWatcher } from "../helpers/lines";

const root = mkdtempSync(join(tmpdir(), "persist-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let nextId = 0;
const fresh = (label: string) => {
  const d = join(root, `${label}-${nextId++}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
/** A pid that no process has (above Linux's largest pid_max). */
const DEAD_PID = 2 ** 22 + 12345;

/** A small checkpoint whose every value depends on `v`. */
function smallTensors(v: number) {
  return {
    model: { "agent.w": torch.full([4, 5], v, { dtype: "float32" }), "agent.b": torch.full([3], -v, { dtype: "int64" }) },
    optimizer: { "agent.state.0.exp_avg": torch.full([4, 5], v / 2, { dtype: "float32" }) },
  };
}
const saveSmall = (runDir: string, step: number, v = step) =>
  torch.scope(() => saveCheckpoint(runDir, { step, epoch: 0, tensors: smallTensors(v), state: { step, v } }));
const modelValue = (dir: string) => torch.scope(() => loadCheckpoint(dir).tensors.model["agent.w"].max().item());

describe("run folders", () => {
  test("createRun makes arc_YYYYMMDD_HHMMSS with config.json, metrics.jsonl, checkpoints/; same second gets a suffix", () => {
    const base = fresh("runs");
    const now = new Date(2025, 0, 2, 3, 4, 5);
    const a = createRun(base, { lr: 1e-4, note: "first" }, { now });
    const b = createRun(base, { lr: 2e-4 }, { now });
    const c = createRun(base, { lr: 3e-4 }, { now });
    expect(a.name).toBe("arc_20250102_030405");
    expect(b.name).toBe("arc_20250102_030405_2");
    expect(c.name).toBe("arc_20250102_030405_3");
    for (const r of [a, b, c]) expect(r.name).toMatch(RUN_NAME_RE);
    expect(JSON.parse(readFileSync(a.configPath, "utf8"))).toEqual({ lr: 1e-4, note: "first" });
    expect(readFileSync(a.metricsPath, "utf8")).toBe("");
    expect(statSync(a.checkpointsDir).isDirectory()).toBe(true);
    expect(openRun(b.dir).config).toEqual({ lr: 2e-4 });
    // Real clock: a name of now, unique even when many start in the same second.
    const names = Array.from({ length: 5 }, () => createRun(base, {}).name);
    expect(new Set(names).size).toBe(5);
    for (const n of names) expect(n).toMatch(RUN_NAME_RE);
    expect(() => createRun(base, {}, { name: "../escape" })).toThrow(/not a plain folder name/);
  });

  test("latestRun: the newest run (by the time in its name, then the suffix) that has a checkpoint", () => {
    const base = fresh("latest");
    expect(latestRun(base)).toBeNull();
    const old = createRun(base, {}, { now: new Date(2024, 11, 31, 23, 59, 59) });
    const mid = createRun(base, {}, { now: new Date(2025, 0, 1, 0, 0, 0) });
    const mid2 = createRun(base, {}, { now: new Date(2025, 0, 1, 0, 0, 0) });
    const newest = createRun(base, {}, { now: new Date(2025, 5, 1, 0, 0, 0) }); // no checkpoint yet
    expect(listRuns(base)).toEqual([old.dir, mid.dir, mid2.dir, newest.dir]);
    expect(latestRun(base)).toBeNull();
    expect(latestRun(base, { withCheckpoint: false })).toBe(newest.dir);
    saveSmall(old.dir, 1);
    expect(latestRun(base)).toBe(old.dir);
    saveSmall(mid.dir, 1);
    saveSmall(mid2.dir, 1);
    expect(latestRun(base)).toBe(mid2.dir);
  });

  test("metrics.jsonl: appended lines read back; a torn last line is skipped and the next append stays whole", () => {
    const run = createRun(fresh("metrics"), {});
    appendMetrics(run.dir, { step: 50, efe_loss: 3.456, d_acc: 0.05 });
    appendMetrics(run.dir, { step: 100, efe_loss: 3.1, d_acc: 0.07 });
    appendFileSync(run.metricsPath, '{"step": 150, "efe_lo'); // a crash mid-write
    const skipped: number[] = [];
    expect(readMetrics(run.dir, { onSkip: (n) => skipped.push(n) })).toEqual([
      { step: 50, efe_loss: 3.456, d_acc: 0.05 },
      { step: 100, efe_loss: 3.1, d_acc: 0.07 },
    ]);
    expect(skipped).toEqual([3]);
    // The resumed run appends: the torn line stays alone on its line, the new record is intact.
    appendMetrics(run.dir, { step: 150, efe_loss: 2.9 });
    expect(readMetrics(run.dir).map((r) => r.step)).toEqual([50, 100, 150]);
    expect(readFileSync(run.metricsPath, "utf8").endsWith('{"step":150,"efe_loss":2.9}\n')).toBe(true);
    // Resume from step 100: the abandoned steps' records can be dropped.
    expect(trimMetrics(run.dir, (r) => !(r.step > 100))).toBe(1);
    expect(readMetrics(run.dir).map((r) => r.step)).toEqual([50, 100]);
    expect(readMetrics(fresh("no-metrics"))).toEqual([]);
  });
});

describe("checkpoint round trip and verification", () => {
  test("tensors of several dtypes, extra tensor files and JSON state come back identical; manifest is right", () => {
    const run = createRun(fresh("rt"), { model: "tiny" });
    const state = {
      epoch: 3, batch: 17, order: [5, 2, 9, 0], rng: { cpu: Buffer.from("state-bytes").toString("base64") },
      scaler: { scale: 65536, growth_factor: 2, backoff_factor: 0.5, growth_interval: 2000, _growth_tracker: 7 },
      memory: { theta: 0.2345, entries: [{ r: 0.5, a: [0.1, -0.2] }] }, baseline: -0.125, metrics: { val_acc: 0.0367 },
      config: { agent_lr: 1e-4, name: "ünïcode ✓" }, nothing: null, flag: true,
    };
    const specs = {
      f32: torch.tensor([1.5, -2.25, 3e-8, 1e30], { dtype: "float32" }).view(2, 2),
      f64: torch.tensor([Math.PI, -1e-300], { dtype: "float64" }),
      f16: torch.tensor([0.5, -65504, 1 / 1024], { dtype: "float16" }),
      bf16: torch.tensor([1, -3.5, 1e20], { dtype: "bfloat16" }),
      i64: torch.tensor([0, -1, 2 ** 40, -(2 ** 50)], { dtype: "int64" }),
      i32: torch.tensor([7, -2147483648], { dtype: "int32" }),
      u8: torch.tensor([0, 128, 255], { dtype: "uint8" }),
      b: torch.tensor([true, false, true]),
      scalar: torch.tensor(42.5),
      empty: torch.zeros(0, 3),
    };
    const dir = torch.scope(() =>
      saveCheckpoint(run.dir, {
        step: 50, epoch: 3, state,
        tensors: { model: specs, optimizer: { "agent.state.3.exp_avg": torch.full([2, 3], 0.25) } },
        files: { rng: { cpu: torch.tensor([1, 2, 3, 250], { dtype: "uint8" }) }, memory: {} },
      }),
    );
    expect(basename(dir)).toBe("step_000000050");
    expect(stepDirName(50)).toBe("step_000000050");
    const manifest: CheckpointManifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ format: "arc-efe-checkpoint", version: CHECKPOINT_VERSION, step: 50, epoch: 3 });
    expect(Number.isNaN(Date.parse(manifest.created))).toBe(false);
    expect(Object.keys(manifest.files).sort()).toEqual(["memory.safetensors", "model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"]);
    for (const [name, e] of Object.entries(manifest.files)) {
      expect(e.bytes).toBe(statSync(join(dir, name)).size);
      expect(e.sha256).toBe(sha(join(dir, name)));
    }
    expect(readdirSync(dir).sort()).toEqual(["manifest.json", "memory.safetensors", "model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"]);
    expect(verifyCheckpoint(dir)).toEqual({ ok: true, manifest });

    torch.scope(() => {
      const back = loadCheckpoint(dir, { device: "cpu" });
      expect(back.state).toEqual(state);
      expect(back.manifest).toEqual(manifest);
      expect(Object.keys(back.tensors).sort()).toEqual(["memory", "model", "optimizer", "rng"]);
      expect(back.tensors.memory).toEqual({});
      expect(Object.keys(back.tensors.model)).toEqual(Object.keys(specs));
      for (const [k, t] of Object.entries(specs)) {
        const b = back.tensors.model[k];
        expect(b.dtype).toBe(t.dtype);
        expect(b.shape).toEqual(t.shape);
        expect(b.tolist()).toEqual(t.tolist());
      }
      expect(back.tensors.optimizer["agent.state.3.exp_avg"].tolist()).toEqual([[0.25, 0.25, 0.25], [0.25, 0.25, 0.25]]);
      expect(back.tensors.rng.cpu.tolist()).toEqual([1, 2, 3, 250]);
      const only = loadCheckpoint(dir, { files: ["model"] });
      expect(Object.keys(only.tensors)).toEqual(["model"]);
      expect(() => loadCheckpoint(dir, { files: ["ema"] })).toThrow(/has no ema\.safetensors/);
    });
    for (const t of Object.values(specs)) t.dispose();
  });

  test("state mistakes are clear errors and leave nothing behind", () => {
    const run = createRun(fresh("bad-state"), {});
    torch.scope(() => {
      const t = torch.zeros(2);
      expect(() => saveCheckpoint(run.dir, { step: 1, tensors: { model: { t } }, state: { rng: { cuda: t } } })).toThrow(/state\.rng\.cuda is a tensor/);
      expect(() => saveCheckpoint(run.dir, { step: 1, tensors: { model: { t } }, state: { seed: 1n } })).toThrow(/state\.seed is a BigInt/);
      expect(() => saveCheckpoint(run.dir, { step: 1, tensors: { "../x": { t } } })).toThrow(/not allowed/);
      expect(() => saveCheckpoint(run.dir, { step: -1, tensors: { model: { t } } })).toThrow(/non-negative integer/);
      const gone = torch.zeros(1);
      gone.dispose();
      expect(() => saveCheckpoint(run.dir, { step: 2, tensors: { model: { gone } } })).toThrow(/disposed/);
    });
    expect(readdirSync(run.checkpointsDir)).toEqual([]);
  });

  test("verify names the file and the problem: flipped byte, truncation, missing file, missing or garbled manifest", () => {
    const run = createRun(fresh("verify"), {});
    const make = (step: number) => saveSmall(run.dir, step);

    const flipped = make(1);
    const p = join(flipped, "model.safetensors");
    const buf = readFileSync(p);
    buf[buf.length - 3] ^= 0x01;
    writeFileSync(p, buf);
    const r1 = verifyCheckpoint(flipped);
    expect(r1.ok).toBe(false);
    expect(!r1.ok && r1.reason).toMatch(/^model\.safetensors is corrupt: sha256/);
    expect(() => loadCheckpoint(flipped)).toThrow(/step_000000001 is unusable: model\.safetensors is corrupt/);

    const truncated = make(2);
    const q = join(truncated, "optimizer.safetensors");
    truncateSync(q, statSync(q).size - 10);
    const r2 = verifyCheckpoint(truncated);
    expect(!r2.ok && r2.reason).toMatch(/^optimizer\.safetensors has \d+ bytes, the manifest says \d+ \(truncated\)/);

    const missing = make(3);
    unlinkSync(join(missing, "state.json"));
    const r3 = verifyCheckpoint(missing);
    expect(!r3.ok && r3.reason).toBe("state.json is missing");

    const noManifest = make(4);
    unlinkSync(join(noManifest, "manifest.json"));
    const r4 = verifyCheckpoint(noManifest);
    expect(!r4.ok && r4.reason).toMatch(/^manifest\.json is missing/);

    const garbled = make(5);
    writeFileSync(join(garbled, "manifest.json"), '{"format": "arc-efe-checkpoint", "vers');
    const r5 = verifyCheckpoint(garbled);
    expect(!r5.ok && r5.reason).toMatch(/^manifest\.json is not valid JSON/);

    const wrongShape = make(6);
    const m = JSON.parse(readFileSync(join(wrongShape, "manifest.json"), "utf8"));
    m.files["model.safetensors"].sha256 = "nothex";
    writeFileSync(join(wrongShape, "manifest.json"), JSON.stringify(m));
    const r6 = verifyCheckpoint(wrongShape);
    expect(!r6.ok && r6.reason).toMatch(/malformed entry for model\.safetensors/);

    const r7 = verifyCheckpoint(join(run.checkpointsDir, "step_000000099"));
    expect(!r7.ok && r7.reason).toMatch(/does not exist/);
    // Sizes-only mode catches the truncation but not the flipped byte.
    expect(verifyCheckpoint(flipped, { hash: false }).ok).toBe(true);
    expect(verifyCheckpoint(truncated, { hash: false }).ok).toBe(false);
  });

  test("a corrupt newest checkpoint is reported through onSkip and the previous one is used", () => {
    const run = createRun(fresh("skip"), {});
    saveSmall(run.dir, 10);
    const good = saveSmall(run.dir, 20);
    const bad = saveSmall(run.dir, 30);
    const p = join(bad, "model.safetensors");
    const b = readFileSync(p);
    b[200] ^= 0xff;
    writeFileSync(p, b);
    const skipped: [string, string][] = [];
    const latest = latestVerifiedCheckpoint(run.dir, { onSkip: (d, why) => skipped.push([d, why]) });
    expect(latest?.dir).toBe(good);
    expect(latest?.step).toBe(20);
    expect(skipped).toHaveLength(1);
    expect(skipped[0][0]).toBe(bad);
    expect(skipped[0][1]).toMatch(/model\.safetensors is corrupt/);
    expect(resolveCheckpoint("latest", { runDir: run.dir }).dir).toBe(good);
    expect(modelValue(good)).toBe(20);
  });

  test("re-saving a step replaces it safely; killed writers' leftovers are cleaned; a lost replacement is undone", () => {
    const run = createRun(fresh("replace"), {});
    const d = saveSmall(run.dir, 7, 1);
    expect(modelValue(d)).toBe(1);
    expect(saveSmall(run.dir, 7, 2)).toBe(d);
    expect(modelValue(d)).toBe(2);
    expect(readdirSync(run.checkpointsDir)).toEqual(["step_000000007"]);

    // Leftovers of a killed writer (a dead pid): half-written temp folder, half-deleted pruned folder.
    const tmp = join(run.checkpointsDir, `.tmp-step_000000008-${DEAD_PID}-0badf00d`);
    mkdirSync(tmp);
    writeFileSync(join(tmp, "model.safetensors"), "partial");
    const del = join(run.checkpointsDir, `.del-step_000000003-${DEAD_PID}-0badf00d`);
    mkdirSync(del);
    // A live writer's temp folder (this process's parent is alive) is left alone.
    const live = join(run.checkpointsDir, `.tmp-step_000000009-${process.ppid}-12345678`);
    mkdirSync(live);
    expect(listCheckpoints(run.dir).map((c) => c.step)).toEqual([7]);
    expect(latestVerifiedCheckpoint(run.dir)?.step).toBe(7);
    saveSmall(run.dir, 8);
    expect(readdirSync(run.checkpointsDir).sort()).toEqual([basename(live), "step_000000007", "step_000000008"]);
    rmSync(live, { recursive: true });

    // A crash between "rename the old folder aside" and "rename the new one in": the old one comes back.
    const aside = join(run.checkpointsDir, `.old-step_000000008-${DEAD_PID}-0badf00d`);
    renameSync(join(run.checkpointsDir, "step_000000008"), aside);
    expect(latestVerifiedCheckpoint(run.dir)?.step).toBe(7);
    cleanupLeftovers(run.checkpointsDir);
    expect(existsSync(aside)).toBe(false);
    expect(latestVerifiedCheckpoint(run.dir)?.step).toBe(8);
  });
});

describe("keep_last and best", () => {
  test("pruneCheckpoints keeps exactly the newest keep_last step folders and never touches best/", () => {
    const run = createRun(fresh("prune"), {});
    for (let s = 1; s <= 8; s++) saveSmall(run.dir, s * 50);
    expect(updateBest(run.dir, listCheckpoints(run.dir)[0].dir, "val_accuracy", 0.5)).toBe(true);
    const removed = pruneCheckpoints(run.dir, 3);
    expect(removed.map((d) => basename(d))).toEqual([50, 100, 150, 200, 250].map(stepDirName));
    expect(listCheckpoints(run.dir).map((c) => c.step)).toEqual([300, 350, 400]);
    expect(readdirSync(run.checkpointsDir).sort()).toEqual(["best", ...[300, 350, 400].map(stepDirName)]);
    // best/ still holds step 50 (its own copy of the files outlives the step folder).
    const best = join(run.checkpointsDir, "best");
    expect(verifyCheckpoint(best).ok).toBe(true);
    expect(modelValue(best)).toBe(50);
    expect(pruneCheckpoints(run.dir, 3)).toEqual([]);
    expect(pruneCheckpoints(run.dir, 1).length).toBe(2);
    expect(listCheckpoints(run.dir).map((c) => c.step)).toEqual([400]);
    // A protected folder survives whatever keep_last says.
    saveSmall(run.dir, 10);
    pruneCheckpoints(run.dir, 1, { protect: [join(run.checkpointsDir, stepDirName(10))] });
    expect(listCheckpoints(run.dir).map((c) => c.step)).toEqual([10, 400]);
    expect(() => pruneCheckpoints(run.dir, -1)).toThrow(/keep_last/);
  });

  test("best follows the metric: better values replace it, worse ones leave it untouched", () => {
    const run = createRun(fresh("best"), {});
    const dirs = [1, 2, 3, 4].map((s) => saveSmall(run.dir, s));
    const best = join(run.checkpointsDir, "best");
    expect(readBest(run.dir)).toBeNull();
    expect(updateBest(run.dir, dirs[0], "val_accuracy", 0.1)).toBe(true);
    expect(readBest(run.dir)).toMatchObject({ metric: "val_accuracy", value: 0.1, step: 1, higherIsBetter: true });
    expect(updateBest(run.dir, dirs[1], "val_accuracy", 0.3)).toBe(true);
    expect(updateBest(run.dir, dirs[2], "val_accuracy", 0.2)).toBe(false);
    expect(updateBest(run.dir, dirs[2], "val_accuracy", 0.3)).toBe(false); // a tie keeps the earlier one
    expect(updateBest(run.dir, dirs[2], "val_accuracy", NaN)).toBe(false);
    expect(readBest(run.dir)).toMatchObject({ metric: "val_accuracy", value: 0.3, step: 2 });
    const v = verifyCheckpoint(best);
    expect(v.ok && v.manifest.best).toMatchObject({ metric: "val_accuracy", value: 0.3, step: 2 });
    expect(modelValue(best)).toBe(2);
    expect(torch.scope(() => loadCheckpoint(best).state)).toEqual({ step: 2, v: 2 });
    // An independent copy: its own inode, not a hard link to the step folder's file.
    expect(statSync(join(best, "model.safetensors")).ino).not.toBe(statSync(join(dirs[1], "model.safetensors")).ino);
    expect(readdirSync(run.checkpointsDir).filter((n) => n.startsWith("."))).toEqual([]);
    expect(updateBest(run.dir, dirs[3], "val_accuracy", 0.9)).toBe(true);
    expect(modelValue(best)).toBe(4);
    expect(resolveCheckpoint("best", { runDir: run.dir }).dir).toBe(best);
  });

  test("best with higherIsBetter=false (a loss): lower values win", () => {
    const run = createRun(fresh("best-low"), {});
    const dirs = [1, 2, 3].map((s) => saveSmall(run.dir, s));
    expect(updateBest(run.dir, dirs[0], "val_loss", 2.5, false)).toBe(true);
    expect(updateBest(run.dir, dirs[1], "val_loss", 3.0, false)).toBe(false);
    expect(updateBest(run.dir, dirs[2], "val_loss", 1.25, false)).toBe(true);
    expect(readBest(run.dir)).toMatchObject({ metric: "val_loss", value: 1.25, step: 3, higherIsBetter: false });
    expect(modelValue(join(run.checkpointsDir, "best"))).toBe(3);
    // Another metric cannot be compared: the new metric takes over.
    expect(updateBest(run.dir, dirs[1], "accuracy_delta", 0.01)).toBe(true);
    expect(readBest(run.dir)).toMatchObject({ metric: "accuracy_delta", step: 2 });
  });
});

describe("best/ stands alone", () => {
  test("damage to a step folder's file in place leaves best/ intact; a damaged step is never copied into best/", () => {
    const run = createRun(fresh("best-alone"), {});
    const d = saveSmall(run.dir, 5);
    expect(updateBest(run.dir, d, "val_exact", 0.5)).toBe(true);
    const best = join(run.checkpointsDir, "best");
    // Overwrite bytes in the middle of the step's weights without changing the size (bit rot, a bad write).
    const f = join(d, "model.safetensors");
    const buf = readFileSync(f);
    buf.fill(0x7f, buf.length - 16);
    writeFileSync(f, buf);
    expect(verifyCheckpoint(d)).toMatchObject({ ok: false, reason: expect.stringMatching(/model\.safetensors is corrupt/) });
    expect(verifyCheckpoint(best).ok).toBe(true);
    expect(modelValue(best)).toBe(5);
    // The copy is hashed against the manifest: the damaged step cannot become best/, and best/ stays as it was.
    expect(() => updateBest(run.dir, d, "val_exact", 0.9)).toThrow(/copy of .*step_000000005 into best\/ does not match its manifest: model\.safetensors is corrupt/);
    expect(readBest(run.dir)).toMatchObject({ value: 0.5, step: 5 });
    expect(readdirSync(run.checkpointsDir).filter((n) => n.startsWith("."))).toEqual([]);
  });

  test("resolveCheckpoint('best') with best/ damaged falls back to the newest intact step folder, saying so", () => {
    const base = fresh("best-fallback");
    const run = createRun(base, {});
    const d1 = saveSmall(run.dir, 1);
    const d2 = saveSmall(run.dir, 2);
    updateBest(run.dir, d1, "val_exact", 0.5);
    const best = join(run.checkpointsDir, "best");
    truncateSync(join(best, "model.safetensors"), 10);
    const told: string[] = [];
    const r = resolveCheckpoint("best", { runDir: run.dir, onFallback: (m) => told.push(m) });
    expect(r.dir).toBe(d2);
    expect(told).toEqual([expect.stringMatching(/^best checkpoint .*best is unusable \(model\.safetensors has 10 bytes.*\); using the newest intact checkpoint .*step_000000002 \(step 2\) instead$/)]);
    // Nothing intact at all: one error naming best/'s problem and every step folder's.
    truncateSync(join(d1, "state.json"), 1);
    truncateSync(join(d2, "state.json"), 1);
    expect(() => resolveCheckpoint("best", { runDir: run.dir, onFallback: () => {} })).toThrow(/best checkpoint .* is unusable \(model\.safetensors .*\), and no intact checkpoint in .*step_000000002: state\.json.*step_000000001: state\.json/);
  });
});

describe("resolve and backup", () => {
  test("resolveCheckpoint: best, latest, a path, a run folder; clear errors naming what is missing", () => {
    const base = fresh("resolve");
    expect(() => resolveCheckpoint("latest", { runsBase: base })).toThrow(/no run with a checkpoint under .*: train first with bun scripts\/train\.ts/);
    const run = createRun(base, {}, { now: new Date(2025, 0, 1, 10, 0, 0) });
    expect(() => resolveCheckpoint("latest", { runDir: run.dir })).toThrow(new RegExp(`no checkpoint in ${run.dir}: train first with bun scripts/train\\.ts`));
    expect(() => resolveCheckpoint("best", { runDir: run.dir })).toThrow(/no best checkpoint in .*train first/);
    expect(() => resolveCheckpoint("latest", { runDir: join(base, "arc_nope") })).toThrow(/run folder .*arc_nope does not exist/);
    const d1 = saveSmall(run.dir, 100);
    const d2 = saveSmall(run.dir, 200);
    expect(() => resolveCheckpoint("best", { runsBase: base })).toThrow(/no best checkpoint in .*use --checkpoint latest/);
    expect(resolveCheckpoint("latest", { runsBase: base })).toMatchObject({ dir: d2, runDir: run.dir });
    expect(resolveCheckpoint(d1)).toMatchObject({ dir: d1, runDir: run.dir });
    expect(resolveCheckpoint(run.dir).dir).toBe(d2);
    expect(resolveCheckpoint(run.checkpointsDir).dir).toBe(d2);
    updateBest(run.dir, d1, "val_accuracy", 0.5);
    expect(resolveCheckpoint("best", { runsBase: base }).dir).toBe(join(run.checkpointsDir, "best"));
    expect(() => resolveCheckpoint(join(base, "missing"))).toThrow(/checkpoint .*missing does not exist/);
    expect(() => resolveCheckpoint(base)).toThrow(/neither a checkpoint folder .* nor a run folder/);
    truncateSync(join(d2, "model.safetensors"), 100);
    expect(() => resolveCheckpoint(d2)).toThrow(/unusable: model\.safetensors has 100 bytes/);
    // Every checkpoint corrupt: the error lists them.
    truncateSync(join(d1, "state.json"), 1);
    expect(() => resolveCheckpoint("latest", { runDir: run.dir })).toThrow(/no intact checkpoint in .*step_000000200: model\.safetensors.*step_000000100: state\.json/);
  });

  test("mirrorCheckpoint copies a finished checkpoint into <backup>/<run>/checkpoints/ with the same protocol", () => {
    const run = createRun(fresh("mirror-src"), { lr: 1 });
    appendMetrics(run.dir, { step: 1, loss: 1 });
    const backup = fresh("mirror-dst");
    const dirs = [1, 2, 3].map((s) => saveSmall(run.dir, s));
    for (const d of dirs) {
      const m = mirrorCheckpoint(d, backup, { keepLast: 2 });
      expect(m).toBe(join(backup, run.name, "checkpoints", basename(d)));
      expect(verifyCheckpoint(m).ok).toBe(true);
      expect(statSync(join(m, "model.safetensors")).ino).not.toBe(statSync(join(d, "model.safetensors")).ino);
    }
    const mirrorRun = join(backup, run.name);
    expect(listCheckpoints(mirrorRun).map((c) => c.step)).toEqual([2, 3]);
    expect(JSON.parse(readFileSync(join(mirrorRun, "config.json"), "utf8"))).toEqual({ lr: 1 });
    expect(readMetrics(mirrorRun)).toEqual([{ step: 1, loss: 1 }]);
    expect(resolveCheckpoint("latest", { runDir: mirrorRun }).dir).toBe(join(mirrorRun, "checkpoints", "step_000000003"));
    expect(modelValue(join(mirrorRun, "checkpoints", "step_000000003"))).toBe(3);
    // Mirroring again replaces the copy; best/ mirrors too.
    mirrorCheckpoint(dirs[2], backup);
    updateBest(run.dir, dirs[1], "val_accuracy", 1);
    const mb = mirrorCheckpoint(join(run.checkpointsDir, "best"), backup);
    expect(verifyCheckpoint(mb).ok && verifyCheckpoint(mb)).toMatchObject({ manifest: { best: { step: 2 } } });
    expect(readdirSync(join(mirrorRun, "checkpoints")).filter((n) => n.startsWith("."))).toEqual([]);
    // A corrupt source is refused.
    truncateSync(join(dirs[0], "model.safetensors"), 5);
    expect(() => mirrorCheckpoint(dirs[0], backup)).toThrow(/cannot back up .*model\.safetensors has 5 bytes/);
  });
});

// ---- crash safety --------------------------------------------------------------------------------------

const FIXTURE = join(import.meta.dir, "fixtures", "ckpt-writer.ts");
const NUMEL = 400_000; // model ~2.6 MB + optimizer ~0.8 MB per checkpoint

function checkAgainstStep(dir: string, step: number) {
  const e = expected(step);
  const n = numelOf(NUMEL);
  torch.scope(() => {
    const ck = loadCheckpoint(dir);
    expect(ck.manifest.step).toBe(step);
    expect(ck.state).toEqual(e.state);
    const uniform = (t: torch.Tensor, v: number, numel: number) => {
      expect(t.numel()).toBe(numel);
      expect([t.min().item(), t.max().item()]).toEqual([v, v]);
    };
    uniform(ck.tensors.model["agent.w"], e.w, n.w);
    uniform(ck.tensors.model["agent.b"], e.b, n.b);
    uniform(ck.tensors.model["policy.h"], e.h, n.h);
    uniform(ck.tensors.optimizer["agent.state.0.exp_avg"], e.m, n.m);
    uniform(ck.tensors.rng.cpu, e.rng, 64);
  });
}

describe("crash safety", () => {
  test("a writer killed with SIGKILL 20 times at random moments always leaves an intact newest checkpoint", async () => {
    const run = createRun(fresh("crash"), {});
    const rounds = 20;
    let lastStep = 0;
    let midWrite = 0;
    const hits: string[] = [];
    // Each writer loads LibTorch (over half a second of CPU) before it is told to start: the next two
    // warm up while the current one runs, so the kills do not wait for start-ups.
    const spawnWriter = () =>
      Bun.spawn([process.execPath, FIXTURE, run.dir, String(NUMEL)], {
        stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { ...process.env, OMP_NUM_THREADS: "1" },
      });
    const warm = [spawnWriter(), spawnWriter()];
    try {
    for (let round = 0; round < rounds; round++) {
      const proc = warm.shift()!;
      const out = lineWatcher(proc.stdout);
      proc.stdin.write("loop\n");
      proc.stdin.end();
      // Wait until the writer runs, then kill it a random moment later: anywhere in writing, hashing,
      // renaming, pruning. The first round waits for one finished checkpoint so there is always
      // something to resume from.
      const ready = await out.next(round === 0 ? "saved" : "begin", 0);
      if (ready === null) throw new Error(`writer exited early: ${await new Response(proc.stderr).text()}`);
      warm.push(spawnWriter());
      await Bun.sleep(Math.random() * 160);
      proc.kill("SIGKILL");
      await proc.exited;
      const sawSave = out.lines.some((l) => l.startsWith("saved"));

      const names = readdirSync(run.checkpointsDir);
      const leftovers = names.filter((n) => n.startsWith("."));
      if (leftovers.some((n) => n.startsWith(".tmp-"))) midWrite++;
      // Leftovers can only be the just-killed writer's (the restarted writer cleans the earlier ones
      // before its first save).
      if (sawSave) for (const n of leftovers) expect(n).toContain(`-${proc.pid}-`);
      // Every final-named folder is complete: the kill never leaves a half-written one.
      const skipped: string[] = [];
      const latest = latestVerifiedCheckpoint(run.dir, { onSkip: (d, why) => skipped.push(`${d}: ${why}`) });
      expect(skipped).toEqual([]);
      for (const c of listCheckpoints(run.dir)) expect(verifyCheckpoint(c.dir).ok).toBe(true);
      expect(latest).not.toBeNull();
      expect(basename(latest!.dir)).toMatch(/^step_\d{9}$/);
      expect(latest!.step).toBeGreaterThanOrEqual(lastStep);
      checkAgainstStep(latest!.dir, latest!.step);
      lastStep = latest!.step;
      hits.push(`${latest!.step}${leftovers.length ? "*" : ""}`);
    }
    // Restarted once more and left to finish one checkpoint: leftovers gone, the step continues, keep_last=3 holds.
    const last = warm.shift()!;
    last.stdin.write("once\n");
    last.stdin.end();
    expect(await last.exited).toBe(0);
    for (const spare of warm) spare.stdin.end(); // told nothing: exits without touching the run
    } finally {
      for (const p of warm) if (p.exitCode === null) p.kill("SIGKILL");
    }
    expect(readdirSync(run.checkpointsDir).filter((n) => n.startsWith("."))).toEqual([]);
    const final = latestVerifiedCheckpoint(run.dir)!;
    expect(final.step).toBe(lastStep + 1);
    checkAgainstStep(final.dir, final.step);
    expect(listCheckpoints(run.dir).length).toBe(Math.min(3, final.step));
    console.log(`crash test: newest intact step after each kill ${hits.join(" ")} (* = leftovers present); ${midWrite}/${rounds} kills landed mid-write`);
    expect(midWrite).toBeGreaterThanOrEqual(3);
  }, 90_000);
});
