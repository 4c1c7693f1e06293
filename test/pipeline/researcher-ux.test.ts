// Training as a researcher coming from transformers' Trainer expects it (issue 25): a config file that gives
// the same run as the flags, a learning-rate schedule that resumes exactly, validation every N steps in the
// report, one name per metric from the console to the HTML, and flag errors that suggest the fix.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseTrainArgs } from "../../src/pipeline/config/train-config";
import { chartData } from "../../src/pipeline/observe/report-html";
import { latestEventFile } from "../../src/pipeline/observe/tensorboard";
import { readMetrics } from "../../src/pipeline/run/run-folder";
import { readEventsWithTestReader } from "../helpers/tb-reader";
import { CPU, TRAIN, runScript, tempFolders } from "../helpers/scripts";

const fresh = tempFolders("researcher-");
const LIMIT_MS = 360_000;
const SMOKE = ["--preset", "smoke", "--val_max", "2", ...CPU];

function train(args: string[]): { out: string; err: string } {
  const r = runScript(TRAIN, args, LIMIT_MS);
  if (r.code !== 0) throw new Error(`train ${args.join(" ")} exited ${r.code}:\n${r.err.slice(-3000)}`);
  return r;
}
const onlyRun = (runDir: string) => join(runDir, readdirSync(runDir).filter((d) => !d.startsWith("."))[0]);

describe("--config FILE", () => {
  test("a file and the same flags give the same config.json; the command line wins; a bad key or value is named", () => {
    const flags = { model: "tiny", data: "synthetic", epochs: 1, batch_size: 2, agent_channels: 16, hint_tokens: 2, lora_rank: 4, val_max: 2, max_batches: 1, lr_scheduler: "cosine", warmup_steps: 1 };
    const dir = fresh("config");
    const file = join(dir, "run.yaml");
    writeFileSync(file, Object.entries(flags).map(([k, v]) => `${k}: ${v}`).join("\n") + "\n");
    const asFlags = Object.entries(flags).flatMap(([k, v]) => [`--${k}`, String(v)]);
    const [a, b] = [fresh("flags"), fresh("file")];
    train([...asFlags, ...CPU, "--run_dir", a]);
    train(["--config", file, ...CPU, "--run_dir", b]);
    const config = (runDir: string) => JSON.parse(readFileSync(join(onlyRun(runDir), "config.json"), "utf8"));
    expect({ ...config(b), run_dir: "" }).toEqual({ ...config(a), run_dir: "" });

    // A run's own config.json given back, with one flag changed on the command line.
    const again = parseTrainArgs(["--config", join(onlyRun(a), "config.json"), "--epochs", "3"]);
    expect(again.config).toEqual({ ...config(a), epochs: 3 });
    expect(again.explicit.epochs).toBe(3);

    writeFileSync(file, "epoch: 2\n");
    expect(() => parseTrainArgs(["--config", file])).toThrow(/--config .*run\.yaml: unknown key "epoch"; did you mean "epochs"\?/);
    writeFileSync(file, "epochs: two\n");
    expect(() => parseTrainArgs(["--config", file])).toThrow(/--config .*run\.yaml: epochs must be an integer/);
  }, 600_000);
});

describe("the learning-rate schedule", () => {
  test("cosine with warmup: each batch's lr follows the curve, and a run stopped mid-warmup resumes onto it exactly", () => {
    const schedule = ["--lr_scheduler", "cosine", "--warmup_steps", "4", "--epochs", "1", "--log_every", "1"];
    const [straight, stopped] = [fresh("straight"), fresh("stopped")];
    train([...SMOKE, ...schedule, "--max_batches", "8", "--ckpt_every", "2", "--run_dir", straight]);
    train([...SMOKE, ...schedule, "--max_batches", "3", "--ckpt_every", "3", "--run_dir", stopped]);
    train([...CPU, "--resume", onlyRun(stopped), "--max_batches", "8"]);
    const lrs = (runDir: string) => readMetrics(onlyRun(runDir)).filter((r) => r.type === "batch").map((r) => r.lr_agent as number);
    const base = 1e-3; // the smoke preset's --agent_lr
    // Warmup: step k (0-based) of 4 runs at k/4 of the base rate; then the cosine decays over the epoch.
    expect(lrs(straight).slice(0, 4)).toEqual([0, 0.25, 0.5, 0.75].map((f) => f * base));
    expect(lrs(straight)[4]).toBeLessThanOrEqual(base);
    expect(lrs(stopped)).toEqual(lrs(straight));
    const weights = (runDir: string) => readFileSync(join(onlyRun(runDir), "checkpoints", "step_000000008", "model.safetensors"));
    expect(weights(stopped).equals(weights(straight))).toBe(true);
  }, 600_000);
});

describe("--eval_every and one name per metric", () => {
  test("validation at every 2nd step is in metrics.jsonl and report.html's chart; exact is exact in the console, metrics.jsonl, TensorBoard and the HTML", () => {
    const dir = fresh("every");
    const r = train([...SMOKE, "--max_batches", "6", "--eval_every", "2", "--ckpt_every", "0", "--log_every", "1", "--run_dir", dir]);
    const run = onlyRun(dir);
    const records = readMetrics(run);
    expect(records.filter((x) => x.type === "val").map((x) => x.step)).toEqual([2, 4, 6]);
    const validation = chartData(records).find((c) => c.id === "validation")!;
    expect(validation.x).toEqual([2, 4, 6]);
    // --ckpt_every 0: checkpoints only where validation (or the stop) wrote them.
    expect(readdirSync(join(run, "checkpoints")).filter((d) => d.startsWith("step_")).sort()).toEqual(["step_000000002", "step_000000004", "step_000000006"]);

    // One name: the console's "exact" and "efe", metrics.jsonl's keys, TensorBoard's tags, report.html's labels.
    expect(r.out).toMatch(/^val: exact \d\.\d{4} /m);
    expect(r.out).toMatch(/^\[batch +\d+\] window means: efe \d/m);
    // Each optimizer group's gradient norm before clipping, and their total, in every batch record.
    for (const b of records.filter((x) => x.type === "batch")) for (const g of ["agent", "qwen", "refiner", "total"]) expect(Number.isFinite(b[`grad_norm_${g}`])).toBe(true);
    const val = records.find((x) => x.type === "val")!;
    expect(Object.keys(val)).toEqual(expect.arrayContaining(["exact", "pass2", "cell_acc", "accuracy_delta"]));
    const tags = Object.keys(readEventsWithTestReader(latestEventFile(run)!).scalars);
    expect(tags).toEqual(expect.arrayContaining(["val/exact", "val/pass2", "val/cell_acc", "train/efe"]));
    expect(tags.filter((t) => /val\/(examples|seconds|exact_count)$/.test(t))).toEqual([]); // counts and durations are not curves
    const html = readFileSync(join(run, "report.html"), "utf8");
    for (const label of ["val/exact", "val/pass2", "val/cell_acc", "efe"]) expect(html).toContain(`"${label}"`);
  }, 600_000);
});

describe("--run_name", () => {
  test("names the run's folder (and so TensorBoard's run); a name already taken is refused before any work", () => {
    const dir = fresh("named");
    train([...SMOKE, "--max_batches", "1", "--run_name", "lr1e-3_seed0", "--run_dir", dir]);
    expect(readdirSync(dir)).toEqual(["lr1e-3_seed0"]);
    expect(latestEventFile(join(dir, "lr1e-3_seed0"))).toContain(join(dir, "lr1e-3_seed0", "tb"));
    const again = runScript(TRAIN, [...SMOKE, "--max_batches", "1", "--run_name", "lr1e-3_seed0", "--run_dir", dir], LIMIT_MS);
    expect(again.code).toBe(2);
    expect(again.err.trim()).toBe(`train: --run_name lr1e-3_seed0: ${join(dir, "lr1e-3_seed0")} already exists; --resume ${join(dir, "lr1e-3_seed0")} continues it, or choose another name (see --help)`);
    expect(runScript(TRAIN, [...SMOKE, "--run_name", "../up", "--run_dir", dir], LIMIT_MS).err).toMatch(/--run_name "\.\.\/up" is not a plain folder name/);
  }, 600_000);
});

describe("flag errors", () => {
  test("an unknown flag suggests the closest one; --help shows the device-dependent defaults as such", () => {
    const r = runScript(TRAIN, ["--epoch", "3"], LIMIT_MS);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe("train: unknown flag '--epoch'; did you mean --epochs? (see --help)");
    const help = runScript(TRAIN, ["--help"], LIMIT_MS).out;
    expect(help).toMatch(/--batch_size .*\[4 on the CPU\] \(on CUDA: 16\)/);
    expect(help).toMatch(/--amp_dtype .*\[none on the CPU\] \(on CUDA: bf16\)/);
  }, 120_000);
});
