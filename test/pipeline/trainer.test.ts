// scripts/train.ts end to end, as subprocesses on the CPU (docs/pipeline.md, "Training loop"): the smoke run, the command line
// (help, usage errors before anything loads), exact resume, SIGKILL at random moments, keep_last and
// best/ (and scripts/eval.ts reproducing best's validation figures), and the loss going down.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { resizeNearest, syntheticDataset, testExamples, writeSplitFolder } from "../../src/arc";
import { cellAccuracy } from "../../src/pipeline/objective/reward";
import { CUDA_DEFAULTS, DEFAULTS, FLAGS } from "../../src/pipeline/config/train-config";
import { latestVerifiedCheckpoint, listCheckpoints, verifyCheckpoint } from "../../src/pipeline/run/checkpoint";
import { readBest } from "../../src/pipeline/run/retention";
import { readMetrics } from "../../src/pipeline/run/run-folder";
import { readHeader } from "../../src/torch/safetensors";
import { lineWatcher } from "../helpers/lines";
import { CPU, EVAL, ROOT, TRAIN, runScript, tempFolders, type Result } from "../helpers/scripts";

const fresh = tempFolders("arc-trainer-test-");
const run = (script: string, args: string[], timeoutMs = 180_000): Result => runScript(script, args, timeoutMs);
const train = (args: string[], timeoutMs?: number) => run(TRAIN, args, timeoutMs);
/** A successful run (the test fails with the trainer's stderr otherwise). */
function trainOk(args: string[], timeoutMs?: number): Result {
  const r = train(args, timeoutMs);
  if (r.code !== 0) throw new Error(`train ${args.join(" ")} exited ${r.code}:\n${r.err.slice(-3000)}`);
  return r;
}

/** The one run folder under a --run_dir. */
function onlyRun(base: string): string {
  const names = readdirSync(base).filter((n) => n.startsWith("arc_"));
  expect(names.length).toBe(1);
  return join(base, names[0]);
}
const batchRecords = (runDir: string) => readMetrics(runDir).filter((r) => r.type === "batch");
const valRecords = (runDir: string) => readMetrics(runDir).filter((r) => r.type === "val");
const stepDirs = (runDir: string) => readdirSync(join(runDir, "checkpoints")).filter((n) => /^step_\d+$/.test(n)).sort();
const ckDir = (runDir: string, step: number) => join(runDir, "checkpoints", `step_${String(step).padStart(9, "0")}`);

/** name -> raw bytes of every tensor of a safetensors file (bit-level comparison, NaN and -0 included). */
function tensorBytes(path: string): Map<string, { dtype: string; shape: number[]; bytes: Buffer }> {
  const h = readHeader(path);
  const buf = readFileSync(path);
  return new Map([...h.entries].map(([k, e]) => [k, { dtype: e.dtype, shape: e.shape, bytes: buf.subarray(h.dataStart + e.begin, h.dataStart + e.end) }]));
}
function expectSameTensors(a: string, b: string): number {
  const ta = tensorBytes(a);
  const tb = tensorBytes(b);
  expect([...tb.keys()].sort()).toEqual([...ta.keys()].sort());
  const differ = [...ta].filter(([k, x]) => {
    const y = tb.get(k)!;
    return x.dtype !== y.dtype || JSON.stringify(x.shape) !== JSON.stringify(y.shape) || !x.bytes.equals(y.bytes);
  });
  expect(differ.map(([k]) => k)).toEqual([]);
  return ta.size;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: number[]) => xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1);
/** Welch's t of mean(b) - mean(a). */
const welchT = (a: number[], b: number[]) => (mean(b) - mean(a)) / Math.sqrt(variance(a) / a.length + variance(b) / b.length);

/** A small split folder (training/ + evaluation/) of synthetic tasks: short epochs, so several validations. */
function smallDataFolder(tasks: number, seed: number): string {
  return writeSplitFolder(fresh("data"), syntheticDataset({ training: tasks, evaluation: 2, seed }));
}

// ---- the command line ---------------------------------------------------------------------------------

describe("scripts/train.ts command line", () => {
  test("--help lists every flag with its default (the CPU's and CUDA's where they differ)", () => {
    const r = train(["--help"]);
    expect(r.code).toBe(0);
    for (const [name, spec] of Object.entries(FLAGS)) {
      const d = DEFAULTS[name as keyof typeof DEFAULTS];
      const line = r.out.split("\n").find((l) => l.trimStart().startsWith(`--${name} `));
      expect(line).toBeDefined();
      const onCuda = CUDA_DEFAULTS[name as keyof typeof CUDA_DEFAULTS];
      expect(line!).toContain(onCuda === undefined ? `[${d === null ? "none" : d}]` : `[${d} on the CPU] (on CUDA: ${onCuda})`);
      if (spec.choices) for (const c of spec.choices) expect(line!).toContain(c);
    }
    expect(r.out).toContain("--preset smoke");
  });

  test("bad values: one line on stderr, exit code 2, nothing loaded and no run folder made", async () => {
    const torch = await import("../../src/torch");
    const base = fresh("usage");
    const cases: { args: string[]; says: RegExp; fast: boolean }[] = [
      { args: ["--nope", "1"], says: /unknown flag '--nope'/, fast: true },
      { args: ["--epochs", "-1"], says: /--epochs must be >= 1, got -1/, fast: true },
      { args: ["--epochs", "two"], says: /--epochs must be an integer/, fast: true },
      { args: ["--device", "tpu"], says: /--device must be cpu, cuda or cuda:N, got "tpu"/, fast: true },
      { args: ["--best_metric", "loss"], says: /--best_metric must be one of/, fast: true },
      { args: ["--agent_lr", "0"], says: /--agent_lr must be positive/, fast: true },
      { args: ["--data", join(base, "no-such-folder")], says: /--data .*no-such-folder: no such file or folder/, fast: true },
      { args: ["--data", "synthetic:0"], says: /--data synthetic:0: N in synthetic:N is the number of training tasks, a whole number from 1/, fast: true },
      // Asking about CUDA loads LibTorch (about a second), still before any model or data.
      ...(torch.cuda.isAvailable()
        ? [{ args: ["--device", `cuda:${torch.cuda.deviceCount()}`], says: /only \d+ CUDA device/, fast: false }]
        : [{ args: ["--device", "cuda"], says: /--device cuda: CUDA is not available/, fast: false }]),
    ];
    for (const c of cases) {
      const device = c.args.includes("--device") ? [] : ["--device", "cpu"];
      // Errors that need no CUDA answer without loading LibTorch: with the addon's path pointing nowhere,
      // any load would fail with another message.
      const noAddon = c.fast ? { ARC_TORCH_ADDON: join(base, "no-such-addon.node") } : undefined;
      const r = runScript(TRAIN, ["--preset", "smoke", ...device, "--run_dir", base, ...c.args], 180_000, noAddon);
      const lines = r.err.trim().split("\n");
      expect({ args: c.args, code: r.code, lines: lines.length }).toEqual({ args: c.args, code: 2, lines: 1 });
      expect(lines[0]).toMatch(/^train: /);
      expect(lines[0]).toMatch(c.says);
      expect(r.out).toBe("");
      // Nothing was started: no run folder (the trainer makes one before loading data or the model).
      expect(readdirSync(base)).toEqual([]);
    }
  });
});

// ---- smoke ------------------------------------------------------------------------------------------

describe("smoke run", () => {
  test("--preset smoke --max_batches 10: batch lines, metrics, validation, a verified resumable checkpoint", () => {
    const base = fresh("smoke");
    const r = trainOk(["--preset", "smoke", "--max_batches", "10", ...CPU, "--run_dir", base]);
    // The smoke run is meant to finish in under a minute on 2 idle cores; on a shared machine the time is
    // only reported.
    console.log(`smoke run: ${(r.ms / 1000).toFixed(1)} s (load average ${loadavg()[0].toFixed(1)})`);
    const batchLine = (n: number) =>
      new RegExp(
        `^\\[batch +${n}\\] window means: efe \\d+\\.\\d{3} \\| d_acc [+-]\\d\\.\\d{3} \\| qwen_grad \\d\\.\\d{2}e[+-]\\d+ \\| mask [01]\\.\\d{3}( \\| .*)?$`,
        "m",
      );
    expect(r.out).toMatch(batchLine(5));
    expect(r.out).toMatch(batchLine(10));
    expect(r.out).toMatch(/^\[batch {4}5\] /m); // padded to 4, like "[batch   50]"
    expect(r.out).toMatch(/^val: exact \d\.\d{4} \(\d+\/8\) \| pass2 /m);

    const runDir = onlyRun(base);
    expect(basename(runDir)).toMatch(/^arc_\d{8}_\d{6}(_\d+)?$/);
    const config = JSON.parse(readFileSync(join(runDir, "config.json"), "utf8"));
    expect(config).toMatchObject({ model: "tiny", data: "synthetic", max_batches: 10, device: "cpu" });

    const batches = batchRecords(runDir);
    expect(batches.map((b) => b.step)).toEqual([5, 10]);
    for (const b of batches) {
      for (const k of ["loss", "efe", "d_acc", "acc", "mask", "d_size", "rl_reward", "qwen_grad", "size_weight"]) expect(Number.isFinite(b[k])).toBe(true);
      expect(b.qwen_grad).toBeGreaterThan(1e-5); // LoRA trains: Qwen's gradient reaches it
      expect(b.skipped).toBe(0);
      expect(b.acc).toBeGreaterThanOrEqual(0);
      expect(b.acc).toBeLessThanOrEqual(1);
    }
    // The printed line shows the record's window means.
    expect(r.out).toContain(`efe ${batches[1].efe.toFixed(3)}`);
    const vals = valRecords(runDir);
    expect(vals.length).toBe(1);
    expect(vals[0]).toMatchObject({ step: 10, examples: 8 });

    const latest = latestVerifiedCheckpoint(runDir);
    expect(latest).not.toBeNull();
    expect(latest!.step).toBe(10);
    const v = verifyCheckpoint(latest!.dir);
    expect(v.ok).toBe(true);
    if (v.ok) expect(Object.keys(v.manifest.files).sort()).toEqual(expect.arrayContaining(["model.safetensors", "optimizer.safetensors", "state.json"]));
    expect(verifyCheckpoint(ckDir(runDir, 5)).ok).toBe(true);
    const state = JSON.parse(readFileSync(join(latest!.dir, "state.json"), "utf8"));
    expect(state.position).toMatchObject({ step: 10, epoch: 0, batchInEpoch: 10 });
    const names = [...tensorBytes(join(latest!.dir, "model.safetensors")).keys()];
    expect(names.some((n) => n.startsWith("agent."))).toBe(true);
    expect(names.some((n) => n.startsWith("refiner."))).toBe(true);
    expect(names.some((n) => n.startsWith("qwen.") && n.includes("lora"))).toBe(true);
    expect(readBest(runDir)).toMatchObject({ metric: "val_exact", step: 10 });
  }, 120_000);
});

// ---- exact resume -------------------------------------------------------------------------------------

describe("exact resume", () => {
  test("20 batches straight == 10, stop, --resume to 20 (checkpoint every 5, every 7, and from an older checkpoint)", () => {
    const common = ["--preset", "smoke", ...CPU, "--log_every", "1"];
    const straightBase = fresh("straight");
    trainOk([...common, "--max_batches", "20", "--ckpt_every", "7", "--run_dir", straightBase]);
    const straight = onlyRun(straightBase);
    const reference = batchRecords(straight);
    expect(reference.map((r) => r.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const lossesOf = (recs: Record<string, any>[]) => recs.map((r) => ({ step: r.step, loss: r.loss, efe: r.efe, acc: r.acc, mask: r.mask }));

    const variants: { name: string; ckptEvery: string; resumeFrom: number; dropNewer?: boolean }[] = [
      { name: "ckpt_every 5 (10 is a periodic checkpoint too)", ckptEvery: "5", resumeFrom: 10 },
      { name: "ckpt_every 7 (resume from the checkpoint written at the stop)", ckptEvery: "7", resumeFrom: 10 },
      { name: "ckpt_every 7, the stop's checkpoint lost: resume from step 7", ckptEvery: "7", resumeFrom: 7, dropNewer: true },
    ];
    let firstHalf: string | null = null;
    for (const v of variants) {
      const base = fresh("split");
      if (v.dropNewer) {
        // A copy of the previous variant's run as it was at its stop, minus the newest checkpoint (as if
        // the process had died before writing it): resuming redoes steps 8..10 from step 7.
        cpSync(firstHalf!, join(base, basename(firstHalf!)), { recursive: true });
        rmSync(join(base, basename(firstHalf!), "checkpoints", "step_000000010"), { recursive: true });
        rmSync(join(base, basename(firstHalf!), "checkpoints", "best"), { recursive: true });
      } else {
        trainOk([...common, "--max_batches", "10", "--ckpt_every", v.ckptEvery, "--run_dir", base]);
      }
      const dir = onlyRun(base);
      if (!v.dropNewer) {
        // Keep the stopped run for the next variant before resuming this one.
        firstHalf = join(fresh("stopped"), basename(dir));
        cpSync(dir, firstHalf, { recursive: true });
      }
      const r = trainOk(["--resume", dir, "--max_batches", "20", ...CPU]);
      expect(r.err).toContain(`from ${ckDir(dir, v.resumeFrom)} (step ${v.resumeFrom},`);
      const recs = batchRecords(dir);
      expect(lossesOf(recs)).toEqual(lossesOf(reference)); // bit-equal numbers, every batch 1..20
      const a = ckDir(straight, 20);
      const b = ckDir(dir, 20);
      expect(expectSameTensors(join(a, "model.safetensors"), join(b, "model.safetensors"))).toBeGreaterThan(10);
      expectSameTensors(join(a, "optimizer.safetensors"), join(b, "optimizer.safetensors"));
      expectSameTensors(join(a, "memory.safetensors"), join(b, "memory.safetensors"));
      expectSameTensors(join(a, "rng.safetensors"), join(b, "rng.safetensors"));
      const sa = JSON.parse(readFileSync(join(a, "state.json"), "utf8"));
      const sb = JSON.parse(readFileSync(join(b, "state.json"), "utf8"));
      expect(sb.refiner).toEqual(sa.refiner);
      // The memory is the same, except its read counters (statistics only): the stop at step 10 validated,
      // and validation reads the memory once per example (smoke: 8 validation examples).
      const valReads = v.dropNewer ? 0 : 8;
      const { reads: ra, hitReads: ha, ...ma } = sa.memory;
      const { reads: rb, hitReads: hb, ...mb } = sb.memory;
      expect(mb).toEqual(ma);
      expect(rb - ra).toBe(valReads);
      expect(hb - ha).toBeGreaterThanOrEqual(0);
      expect(hb - ha).toBeLessThanOrEqual(valReads);
      expect(sb.scaler).toEqual(sa.scaler);
      expect(sb.position.step).toBe(20);
      console.log(`exact resume, ${v.name}: 20 batch losses and ${tensorBytes(join(b, "model.safetensors")).size} model tensors bit-identical`);
    }
  }, 240_000);
});

// ---- crash safety -------------------------------------------------------------------------------------

describe("crash safety", () => {
  test("training killed with SIGKILL 20 times at random moments: the newest verified checkpoint is intact and --resume continues from it", async () => {
    const base = fresh("crash");
    const rounds = 20;
    const keepLast = 3;
    const common = [...CPU, "--log_every", "1", "--max_batches", "500"];
    let runDir: string | null = null;
    let latest: { step: number; dir: string } | null = null;
    let midWrite = 0;
    let kills = 0;
    const hits: string[] = [];
    const t0 = performance.now();
    for (let round = 0; round < rounds; round++) {
      const args: string[] = runDir
        ? ["--resume", runDir, ...common]
        : ["--preset", "smoke", "--ckpt_every", "2", "--keep_last", String(keepLast), "--run_dir", base, ...common];
      const proc = Bun.spawn([process.execPath, TRAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
      const out = lineWatcher(proc.stdout);
      const errText: Promise<string> = new Response(proc.stderr).text();
      try {
        // Kill only once it trains (start-up is not interesting): a random moment later, or, every other
        // round, a random moment into the next checkpoint write (a .tmp- folder appearing). Round 0 kills
        // early, most likely before the first checkpoint (nothing to resume: a new run starts); a new run's
        // write-timed kill waits for its first checkpoint, so the loop always ends with one to resume.
        if ((await out.next("[batch", 0)) === null) throw new Error(`trainer exited early (${await proc.exited}): ${(await errText).slice(-2000)}`);
        const ck = join(runDir ?? join(base, readdirSync(base).find((n) => n.startsWith("arc_"))!), "checkpoints");
        const poll = async (what: () => boolean) => {
          const until = performance.now() + 5000;
          while (performance.now() < until && !what()) await Bun.sleep(1);
        };
        if (round === 0) {
          await Bun.sleep(Math.random() * 100);
        } else if (round % 2 === 0) {
          await Bun.sleep(Math.random() * 900);
        } else {
          if (!runDir) await poll(() => readdirSync(ck).some((n) => n.startsWith("step_")));
          await poll(() => readdirSync(ck).some((n) => n.startsWith(".tmp-")));
          await Bun.sleep(Math.random() * 12);
        }
      } finally {
        proc.kill("SIGKILL");
      }
      expect(await proc.exited).not.toBe(0);
      kills++;
      const err: string = await errText;
      if (runDir === null) runDir = /^run (.+?): /m.exec(err)![1];
      else expect(err).toContain(`resuming ${runDir} from ${latest!.dir} (step ${latest!.step},`);

      const names = readdirSync(join(runDir, "checkpoints"));
      const leftovers = names.filter((n) => n.startsWith("."));
      if (leftovers.some((n) => n.startsWith(".tmp-"))) midWrite++;
      // Every final-named step folder is complete; the newest verified one is a step folder, never a
      // temporary one, and training never goes back.
      const skipped: string[] = [];
      const now = latestVerifiedCheckpoint(runDir, { onSkip: (d, why) => skipped.push(`${d}: ${why}`) });
      expect(skipped).toEqual([]);
      for (const c of listCheckpoints(runDir)) expect(verifyCheckpoint(c.dir)).toMatchObject({ ok: true });
      if (now === null) {
        // Killed before the first checkpoint: nothing to resume; start a new run.
        expect(latest).toBeNull();
        expect(names.filter((n) => /^step_/.test(n))).toEqual([]);
        hits.push(`-${leftovers.length ? "*" : ""}`);
        rmSync(runDir, { recursive: true, force: true });
        runDir = null;
        continue;
      }
      expect(basename(now.dir)).toMatch(/^step_\d{9}$/);
      expect(now.step).toBeGreaterThanOrEqual(latest?.step ?? 0);
      const state = JSON.parse(readFileSync(join(now.dir, "state.json"), "utf8"));
      expect(state.position.step).toBe(now.step);
      latest = { step: now.step, dir: now.dir };
      hits.push(`${now.step}${leftovers.length ? "*" : ""}`);
    }
    const killedS = (performance.now() - t0) / 1000;

    // Resumed once more and left to finish: it continues from the newest checkpoint, cleans up, ends verified.
    expect(runDir).not.toBeNull();
    const target = latest!.step + 3;
    const r = trainOk(["--resume", runDir!, ...CPU, "--log_every", "1", "--max_batches", String(target)]);
    expect(r.err).toContain(`from ${latest!.dir} (step ${latest!.step},`);
    expect(readdirSync(join(runDir!, "checkpoints")).filter((n) => n.startsWith("."))).toEqual([]);
    const final = latestVerifiedCheckpoint(runDir!)!;
    expect(final.step).toBe(target);
    expect(stepDirs(runDir!).length).toBe(keepLast);
    // The log has every batch exactly once: what the killed processes logged past their last checkpoint
    // was dropped on resume and logged again.
    expect(batchRecords(runDir!).map((b) => b.step)).toEqual(Array.from({ length: target }, (_, i) => i + 1));
    console.log(
      `crash test: ${kills} kills in ${killedS.toFixed(0)} s; newest verified step after each: ${hits.join(" ")} (* = temporary folders left); ` +
        `${midWrite} kills landed mid-write; resumed to step ${target}`,
    );
    expect(midWrite).toBeGreaterThanOrEqual(3);
  }, 180_000);
});

// ---- keep_last, best/, eval ---------------------------------------------------------------------------

describe("keep_last and best/", () => {
  test("keep_last keeps that many step folders; best/ follows val_cell_acc; eval on best reproduces its validation", () => {
    const data = smallDataFolder(12, 7);
    const base = fresh("best");
    const keepLast = 2;
    trainOk([
      "--preset", "smoke", ...CPU, "--data", data, "--epochs", "5", "--batch_size", "4", "--ckpt_every", "3", "--keep_last", String(keepLast),
      "--best_metric", "val_cell_acc", "--val_fraction", "0.25", "--run_dir", base,
    ]);
    const runDir = onlyRun(base);
    const epochs = readMetrics(runDir).filter((r) => r.type === "epoch");
    expect(epochs.length).toBe(5);
    const lastStep = epochs.at(-1)!.step;

    // keep_last: exactly that many step folders, the newest ones, all intact.
    const steps = listCheckpoints(runDir);
    expect(steps.length).toBe(keepLast);
    expect(steps.at(-1)!.step).toBe(lastStep);
    for (const c of steps) expect(verifyCheckpoint(c.dir).ok).toBe(true);
    expect(readdirSync(join(runDir, "checkpoints")).filter((n) => n.startsWith("."))).toEqual([]);

    // best/: the highest validation cell accuracy (the first step that reached it: only strictly better replaces).
    const vals = valRecords(runDir);
    expect(vals.map((v) => v.step)).toEqual(epochs.map((e) => e.step));
    const top = Math.max(...vals.map((v) => v.cell_acc));
    const bestVal = vals.find((v) => v.cell_acc === top)!;
    const best = readBest(runDir);
    expect(best).toMatchObject({ metric: "val_cell_acc", value: top, step: bestVal.step });
    const bestDir = join(runDir, "checkpoints", "best");
    const vb = verifyCheckpoint(bestDir);
    expect(vb.ok).toBe(true);
    if (vb.ok) expect(vb.manifest.step).toBe(bestVal.step);
    expect(new Set(vals.map((v) => v.cell_acc)).size).toBeGreaterThan(1); // the metric moved, so best/ had a choice

    // scripts/eval.ts --checkpoint best --split val reproduces the trainer's figures at best's step.
    const e = run(EVAL, ["--checkpoint", "best", "--run", runDir, "--split", "val", "--quiet"]);
    if (e.code !== 0) throw new Error(`eval exited ${e.code}: ${e.err}`);
    const report = JSON.parse(readFileSync(join(runDir, "eval", "best_val", "eval.json"), "utf8"));
    expect(report.step).toBe(bestVal.step);
    // eval.json's summary (evaluate()'s fields) against the validation record (the metric names).
    const s = report.summary;
    expect({ examples: s.examples, exact: s.exactFirst, exact_count: s.exactFirstCount, pass2: s.pass2, pass2_count: s.pass2Count, cell_acc: s.cellAcc, cell_acc_before: s.cellAccBefore, accuracy_delta: s.accuracyDelta }).toEqual({
      examples: bestVal.examples, exact: bestVal.exact, exact_count: bestVal.exact_count, pass2: bestVal.pass2, pass2_count: bestVal.pass2_count, cell_acc: bestVal.cell_acc, cell_acc_before: bestVal.cell_acc_before, accuracy_delta: bestVal.accuracy_delta,
    });
    expect(existsSync(join(runDir, "eval", "best_val", "report.html"))).toBe(true);
    // Batched evaluation: eval.json at --batch_size 1 is the default batch's (8), the timing aside.
    const one = join(runDir, "eval", "best_val_b1");
    const e1 = run(EVAL, ["--checkpoint", "best", "--run", runDir, "--split", "val", "--quiet", "--batch_size", "1", "--out", one]);
    if (e1.code !== 0) throw new Error(`eval --batch_size 1 exited ${e1.code}: ${e1.err}`);
    const report1 = JSON.parse(readFileSync(join(one, "eval.json"), "utf8"));
    const untimed = (r: Record<string, any>) => ({ ...r, outDir: null, summary: { ...r.summary, seconds: 0 } });
    expect(untimed(report1)).toEqual(untimed(report));
    console.log(`best/: val_cell_acc ${vals.map((v) => `${v.step}:${v.cell_acc.toFixed(4)}`).join(" ")}; best at step ${bestVal.step}, eval reproduces it`);
  }, 180_000);
});

// ---- learning -----------------------------------------------------------------------------------------

describe("learning", () => {
  test("300 batches of the smoke system on synthetic data lower the EFE loss and raise cell accuracy", () => {
    // --epochs 20 spreads the λ_size warm-up (1.0 -> 0.5 over 30% of the planned batches) over 4000+
    // batches, so the 300 measured here see λ > 0.96 throughout: the EFE drop is learning, not the
    // schedule (with the preset's one epoch, λ halves by batch 206 and alone takes ~3 off the EFE).
    // Without the input prior: the network itself must learn. With it (the default), 300 batches leave the
    // agent at the identity (the test below), which these margins cannot tell from data order.
    // The margins below were measured in the plain epoch order, hence --group_by_length false (grouped, one
    // run went 0.464 -> 0.494 held out: higher at both ends, but a smaller rise than the margin).
    const base = fresh("learn");
    const r = trainOk(["--preset", "smoke", ...CPU, "--agent_input_prior", "0", "--group_by_length", "false", "--epochs", "20", "--max_batches", "300", "--log_every", "1", "--ckpt_every", "20", "--keep_last", "20", "--run_dir", base], 300_000);
    const runDir = onlyRun(base);
    const recs = batchRecords(runDir);
    expect(recs.length).toBe(300);
    expect(recs.every((b) => b.skipped === 0 && Number.isFinite(b.efe) && Number.isFinite(b.acc))).toBe(true);
    const first = recs.slice(0, 20);
    const last = recs.slice(-20);
    const f = (k: string, rs: Record<string, any>[]) => rs.map((b) => b[k] as number);
    const efe = { first: mean(f("efe", first)), last: mean(f("efe", last)), t: welchT(f("efe", first), f("efe", last)) };
    const acc = { first: mean(f("acc", first)), last: mean(f("acc", last)), t: welchT(f("acc", first), f("acc", last)) };
    const sizeW = { first: mean(f("size_weight", first)), last: mean(f("size_weight", last)) };
    console.log(
      `learning (${(r.ms / 1000).toFixed(0)} s): EFE ${efe.first.toFixed(3)} -> ${efe.last.toFixed(3)} (t ${efe.t.toFixed(1)}), ` +
        `cell acc ${acc.first.toFixed(3)} -> ${acc.last.toFixed(3)} (t ${acc.t.toFixed(1)}), λ_size ${sizeW.first.toFixed(3)} -> ${sizeW.last.toFixed(3)}`,
    );
    // λ_size fell by ~0.035 at most: times the size cross-entropy (2 ln 30 ≈ 6.8 untrained) under 0.25 of EFE.
    expect(sizeW.first - sizeW.last).toBeLessThan(0.04);
    // Margins measured against a control run with learning rates of 1e-12 (same data order): there the
    // EFE went 8.77 -> 8.67 and the cell accuracy 0.344 -> 0.367; with learning 8.84 -> 6.83 and 0.355 -> 0.486.
    expect(efe.first - efe.last).toBeGreaterThan(1.0);
    expect(efe.t).toBeLessThan(-6);
    expect(acc.last - acc.first).toBeGreaterThan(0.07);
    expect(acc.t).toBeGreaterThan(1.5);

    // The same 48 held-out examples (the synthetic evaluation tasks, never trained on) scored by
    // scripts/eval.ts at step 20 and at step 300: a paired comparison, free of the batches' sampling noise.
    const heldOut = (step: number) => {
      const out = join(runDir, "eval", `learn_${step}`);
      const e = run(EVAL, ["--checkpoint", ckDir(runDir, step), "--split", "evaluation", "--max", "48", "--quiet", "--out", out]);
      if (e.code !== 0) throw new Error(`eval exited ${e.code}: ${e.err}`);
      return JSON.parse(readFileSync(join(out, "eval.json"), "utf8")).summary.cellAcc as number;
    };
    const held = { at20: heldOut(20), at300: heldOut(300) };
    console.log(`learning: held-out cell accuracy (48 evaluation examples) ${held.at20.toFixed(3)} at step 20 -> ${held.at300.toFixed(3)} at step 300`);
    expect(held.at300 - held.at20).toBeGreaterThan(0.03);
  }, 300_000);

  test("with the input prior (the default), training keeps the identity's held-out cell accuracy, before and after refinement", () => {
    const base = fresh("learn-prior");
    trainOk(["--preset", "smoke", ...CPU, "--epochs", "20", "--max_batches", "300", "--ckpt_every", "300", "--run_dir", base], 300_000);
    const runDir = onlyRun(base);
    const out = join(runDir, "eval", "prior_300");
    const e = run(EVAL, ["--checkpoint", ckDir(runDir, 300), "--split", "evaluation", "--max", "48", "--quiet", "--out", out]);
    if (e.code !== 0) throw new Error(`eval exited ${e.code}: ${e.err}`);
    const { summary, results } = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    // Copying each input, resized to the target's size by nearest neighbour, on the same 48 outputs.
    const copyAcc = ({ input, output }: { input: number[][]; output?: number[][] }) => cellAccuracy(resizeNearest(input, output!.length, output![0]!.length), output!);
    const examples = testExamples(syntheticDataset().evaluation).slice(0, 48);
    const identity = examples.reduce((a, ex) => a + copyAcc(ex.task.test[ex.index]!), 0) / 48;
    console.log(`learning with the prior: held-out cell accuracy ${summary.cellAccBefore.toFixed(4)} (after refinement ${summary.cellAcc.toFixed(4)}), identity ${identity.toFixed(4)}`);
    expect(results.length).toBe(48);
    // Measured: 0.5460 and 0.5425 against the identity's 0.5453; without the prior 0.31 (the test above's run).
    expect(summary.cellAccBefore).toBeGreaterThan(identity - 0.015);
    expect(summary.cellAcc).toBeGreaterThan(identity - 0.015);
  }, 300_000);
});
