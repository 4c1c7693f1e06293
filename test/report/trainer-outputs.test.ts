// What a training run leaves to watch, from scripts/train.ts run as a subprocess (smoke preset, CPU):
// TensorBoard event files holding every scalar of metrics.jsonl at its step (read back by TensorBoard's
// EventAccumulator where python3 has it, and by the test reader), the config as text, a resume that
// crashed past its checkpoint continuing the same file without repeated steps, `--tensorboard false`,
// report.html and val_latest.json after validation, and scripts/report.ts rebuilding the page.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readMetrics } from "../../src/pipeline/run/run-folder";
import { configMarkdown, latestEventFile, metricScalars } from "../../src/pipeline/observe/tensorboard";
import { readEvents, readEventsWithTestReader } from "../helpers/tb-reader";

const ROOT = join(import.meta.dir, "..", "..");
const TMP = mkdtempSync(join(tmpdir(), "arc-trainer-outputs-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

function script(name: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "scripts", name), ...args], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
  return { code: r.status, out: r.stdout ?? "", err: r.stderr ?? "" };
}
function trainOk(args: string[]) {
  const r = script("train.ts", [...args, "--device", "cpu", "--quiet"]);
  if (r.code !== 0) throw new Error(`train ${args.join(" ")} exited ${r.code}:\n${r.err.slice(-3000)}`);
  return r;
}
const onlyRun = (base: string) => join(base, readdirSync(base).find((n) => n.startsWith("arc_"))!);

/** tag -> [step, value as float32] of every scalar in metrics.jsonl, in file order. */
function scalarsOfMetrics(runDir: string): Record<string, [number, number][]> {
  const out: Record<string, [number, number][]> = {};
  for (const r of readMetrics(runDir)) for (const { tag, value } of metricScalars(r)) (out[tag] ??= []).push([r.step, Math.fround(value)]);
  return out;
}

const readers = (path: string) => [readEvents(path), { ...readEventsWithTestReader(path), reader: "test reader" }];

describe("a training run's event files and report", () => {
  const base = join(TMP, "runs");
  let runDir = "";

  test("every scalar of metrics.jsonl is in the event file at its step with its value; the config as text", () => {
    trainOk(["--preset", "smoke", "--max_batches", "10", "--log_every", "1", "--run_dir", base]);
    runDir = onlyRun(base);
    const path = latestEventFile(runDir)!;
    expect(path).toMatch(/\/tb\/events\.out\.tfevents\.\d+\.[^/]+$/);
    const want = scalarsOfMetrics(runDir);
    // What the issue asks to see: EFE, its terms and the loss, accuracies, size error, mask, Qwen grad, RL reward, memory
    // threshold and size, GradScaler scale, learning rates, examples/s, process memory, validation figures.
    for (const tag of ["train/efe", "train/risk", "train/ambiguity", "train/complexity", "train/size_ce", "train/soft_reward", "train/loss", "train/acc", "train/d_acc", "train/d_size", "train/mask", "train/qwen_grad", "train/rl_reward", "train/theta",
      "train/memory", "train/scale", "train/lr_agent", "train/lr_qwen", "train/lr_rl", "train/examples_per_s", "train/rss_mb", "val/exact", "val/pass2", "val/cell_acc", "val/accuracy_delta"])
      expect({ tag, points: want[tag]?.length ?? 0 }).toEqual({ tag, points: tag.startsWith("val/") ? 1 : 10 });
    const config = JSON.parse(readFileSync(join(runDir, "config.json"), "utf8"));
    for (const got of readers(path)) {
      console.log(`event file read with ${got.reader}`);
      expect({ reader: got.reader, scalars: got.scalars }).toEqual({ reader: got.reader, scalars: want });
      expect(got.texts.config.length).toBe(1);
      expect(got.texts.config[0][0]).toBe(0);
      expect(got.texts.config[0][1]).toBe(configMarkdown({ ...config, resume: config.resume ?? null }));
      expect(got.texts.config[0][1]).toContain("| model | tiny |");
    }
    expect(existsSync(join(runDir, "report.html"))).toBe(true);
    const gallery = JSON.parse(readFileSync(join(runDir, "val_latest.json"), "utf8"));
    expect(gallery.step).toBe(10);
    expect(gallery.results.length).toBe(8); // the smoke preset validates 8 examples
    expect(readFileSync(join(runDir, "report.html"), "utf8")).toContain("Validation grids at step 10");
  });

  test("a resume from an earlier checkpoint (the crash came after step 10 was logged) repeats no step", () => {
    // Without step 10's checkpoint the resume starts from step 5, with steps 6..10 already in the logs. A
    // crash before step 10's checkpoint also came before its best/ copy: best/ (step 10 here) goes too, or
    // the resume would take it (best/ counts among the checkpoints by its step).
    rmSync(join(runDir, "checkpoints", "step_000000010"), { recursive: true });
    rmSync(join(runDir, "checkpoints", "best"), { recursive: true, force: true });
    const eventFile = latestEventFile(runDir)!;
    const r = trainOk(["--resume", runDir, "--max_batches", "10"]);
    expect(r.err).toContain("(step 5,");
    expect(readdirSync(join(runDir, "tb"))).toEqual([eventFile.split("/").pop()!]);
    const want = scalarsOfMetrics(runDir);
    expect(want["train/efe"].map((p) => p[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const got of readers(eventFile)) {
      expect({ reader: got.reader, scalars: got.scalars }).toEqual({ reader: got.reader, scalars: want });
      for (const [tag, pts] of Object.entries(got.scalars)) expect({ reader: got.reader, tag, repeated: pts.length - new Set(pts.map((p) => p[0])).size }).toEqual({ reader: got.reader, tag, repeated: 0 });
      expect(got.texts.config.length).toBe(1);
    }
  });

  test("scripts/report.ts rebuilds report.html from the run folder; a wrong --run is exit code 2", () => {
    rmSync(join(runDir, "report.html"));
    const r = script("report.ts", ["--run", runDir]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(join(runDir, "report.html"));
    const html = readFileSync(join(runDir, "report.html"), "utf8");
    expect(html).toContain("Validation grids at step 10");
    // Self-contained: no script or stylesheet is fetched from anywhere.
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
    expect(html).toContain("uPlot");
    const bad = script("report.ts", ["--run", join(TMP, "no-such-run")]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("no such folder");
  });

  test("--tensorboard false writes no event file; another value is a usage error", () => {
    const off = join(TMP, "off");
    trainOk(["--preset", "smoke", "--max_batches", "2", "--val_max", "2", "--tensorboard", "false", "--run_dir", off]);
    const dir = onlyRun(off);
    expect(existsSync(join(dir, "tb"))).toBe(false);
    expect(readMetrics(dir).length).toBeGreaterThan(0);
    const bad = script("train.ts", ["--preset", "smoke", "--tensorboard", "maybe", "--run_dir", off]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--tensorboard must be one of true, false");
  });
});
