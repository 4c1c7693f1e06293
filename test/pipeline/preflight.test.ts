// The trainer's checks before any work: probe writes, the disk-space warning, a model folder's
// config.json, and a split that leaves tasks on both sides.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTasks, syntheticDataset } from "../../src/arc";
import { CUDA_DEFAULTS, DEFAULTS, PRESETS, type TrainConfig, UsageError } from "../../src/pipeline/config/train-config";
import { checkActivationMemory, checkSplit, diskSpaceWarning, estimateActivationBytes, estimateCheckpointBytes, freeBytes, modelFolderConfig } from "../../src/pipeline/run/preflight";
import { probeWritable } from "../../src/pipeline/run/probe";
import { QWEN25_1_5B_CONFIG, TINY_CONFIG } from "../../src/models/qwen2";

const root = mkdtempSync(join(tmpdir(), "preflight-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SMOKE: TrainConfig = { ...DEFAULTS, ...PRESETS.smoke, device: "cpu" };

const usage = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error("no UsageError");
};

describe("preflight", () => {
  test("probeWritable makes the folder, writes and removes a probe; a read-only place or a file in the way is a usage error", () => {
    const dir = join(root, "a", "b");
    probeWritable(dir, "--run_dir x");
    expect(readdirSync(dir)).toEqual([]);
    expect(usage(() => probeWritable("/proc/arc-efe-probe", "--run_dir /proc/arc-efe-probe"))).toMatch(/^--run_dir \/proc\/arc-efe-probe: cannot create \/proc\/arc-efe-probe \(ENOENT\)$/);
    // /sys is read-only in containers and to non-root users elsewhere: the probe write itself fails.
    if (existsSync("/sys/kernel")) expect(usage(() => probeWritable("/sys/kernel", "--backup_dir /sys/kernel"))).toMatch(/^--backup_dir \/sys\/kernel: \/sys\/kernel is not writable \((EACCES|EROFS|EPERM)\)$/);
    const file = join(root, "file");
    writeFileSync(file, "x");
    expect(usage(() => probeWritable(join(file, "runs"), "--run_dir r"))).toMatch(/^--run_dir r: .*file is a file, not a folder$/);
  });

  test("the disk-space warning compares free space with the checkpoints the run keeps", () => {
    const free = freeBytes(root)!;
    expect(free).toBeGreaterThan(0);
    expect(diskSpaceWarning(root, 1024, 7, "--keep_last 5")).toBeNull();
    const w = diskSpaceWarning(root, free, 7, "--keep_last 5, best/ and the one being written");
    expect(w).toMatch(/^warning: .* has [\d.]+ [KMG]iB free, less than the [\d.]+ [KMG]iB of 7 more checkpoint\(s\) of about [\d.]+ [KMG]iB \(--keep_last 5, best\/ and the one being written\); checkpoints may fail to write$/);
    expect(diskSpaceWarning(root, null, 7, "x")).toBeNull();
  });

  test("checkpoint size estimate: LoRA adapters and AdamW moments of the tiny model; full Qwen is far larger", () => {
    const lora = estimateCheckpointBytes(SMOKE, TINY_CONFIG)!;
    const full = estimateCheckpointBytes({ ...SMOKE, qwen_train: "full" }, TINY_CONFIG)!;
    // Tiny Qwen: 151936 x 64 embeddings alone are 9.7M parameters, 12 bytes each with Adam's moments.
    expect(full).toBeGreaterThan(151936 * 64 * 12);
    expect(lora).toBeLessThan(full / 10);
    expect(estimateCheckpointBytes(SMOKE, null)).toBeNull();
  });

  test("a model folder's config.json is parsed up front, naming the file", () => {
    expect(modelFolderConfig("tiny")).toBe(TINY_CONFIG);
    expect(modelFolderConfig("Qwen/Qwen2.5-1.5B-Instruct")).toBeNull(); // a Hub id: known only once downloaded
    const m = join(root, "model");
    mkdirSync(m);
    expect(usage(() => modelFolderConfig(m))).toBe(`--model ${m}: no config.json in ${m}`);
    writeFileSync(join(m, "config.json"), '{"hidden_size": 64');
    expect(usage(() => modelFolderConfig(m))).toMatch(new RegExp(`^--model ${m}: ${m}/config\\.json is not valid JSON \\(`));
    writeFileSync(join(m, "config.json"), JSON.stringify({ model_type: "llama", hidden_size: 64 }));
    expect(usage(() => modelFolderConfig(m))).toMatch(new RegExp(`^--model ${m}: ${m}/config\\.json: model_type is "llama", expected "qwen2"$`));
  });

  test("the activation memory check: the largest batch against the machine's memory, naming the flags to lower (finding 3)", () => {
    const GiB = 2 ** 30;
    const c: TrainConfig = { ...DEFAULTS, device: "cpu", batch_size: 16, max_prompt_tokens: 2048, hint_tokens: 16, amp_dtype: "bf16" };
    // Qwen2.5-1.5B under bf16: about 4.6 MiB a token (the H200 measurement the estimate is scaled from).
    const perToken = estimateActivationBytes({ ...c, batch_size: 1, max_prompt_tokens: 1, hint_tokens: 0 }, QWEN25_1_5B_CONFIG, true)!;
    expect(perToken / 2 ** 20).toBeGreaterThan(4);
    expect(perToken / 2 ** 20).toBeLessThan(5);
    const full = estimateActivationBytes(c, QWEN25_1_5B_CONFIG, true)!;
    expect(estimateActivationBytes({ ...c, grad_checkpointing: "mlp" }, QWEN25_1_5B_CONFIG, true)!).toBeLessThan(full / 2);
    expect(estimateActivationBytes({ ...c, grad_checkpointing: "layer" }, QWEN25_1_5B_CONFIG, true)!).toBeLessThan(full / 10);
    expect(estimateActivationBytes({ ...c, max_batch_tokens: 4096 }, QWEN25_1_5B_CONFIG, true)!).toBeLessThan(full / 7);
    expect(estimateActivationBytes(c, null, true)).toBeNull();
    // The CPU check: the tiny model at --batch_size 100000 exceeds a 24 GiB machine; the defaults do not.
    const huge = { ...c, amp_dtype: "none" as const, batch_size: 100000 };
    expect(() => checkActivationMemory(huge, TINY_CONFIG, "cpu", 24 * GiB)).toThrow(UsageError);
    expect(() => checkActivationMemory(huge, TINY_CONFIG, "cpu", 24 * GiB)).toThrow(/^--batch_size 100000 x \(--max_prompt_tokens 2048 \+ --hint_tokens 16\) prompt tokens need about .* GiB .*; lower --batch_size/);
    expect(() => checkActivationMemory({ ...DEFAULTS, device: "cpu" }, TINY_CONFIG, "cpu", 24 * GiB)).not.toThrow();
    // On CUDA against the card's memory (the estimate runs high there): a batch that cannot fit is refused,
    // one that may not is a warning. The CUDA defaults (about 46 GB estimated, 37.4 GiB measured on an H200).
    expect(() => checkActivationMemory(huge, TINY_CONFIG, "cuda", 24 * GiB)).toThrow(/more than cuda's .*; lower --batch_size .*--grad_checkpointing mlp or layer\)$/);
    const onCuda: TrainConfig = { ...DEFAULTS, ...CUDA_DEFAULTS, device: "cuda" };
    const warned: string[] = [];
    checkActivationMemory(onCuda, QWEN25_1_5B_CONFIG, "cuda", 80 * GiB, (l) => warned.push(l));
    expect(warned).toEqual([]);
    checkActivationMemory(onCuda, QWEN25_1_5B_CONFIG, "cuda", 40 * GiB, (l) => warned.push(l));
    expect(warned).toEqual([expect.stringMatching(/^warning: --batch_size 16 .*more than cuda's /)]);
    expect(() => checkActivationMemory(onCuda, QWEN25_1_5B_CONFIG, "cuda:0", 24 * GiB)).toThrow(/more than cuda:0's /);
    expect(() => checkActivationMemory(huge, TINY_CONFIG, "cuda", 0)).not.toThrow(); // no CUDA here: nothing to compare with
    expect(() => checkActivationMemory(huge, null, "cpu", 24 * GiB)).not.toThrow(); // shape unknown before download
    // Without a Qwen pass (c in place of p) there are no prompt activations: nothing to refuse; with one, there are.
    for (const ctx of ["demos", "demos+cells"] as const) expect(() => checkActivationMemory({ ...huge, agent_context: ctx }, TINY_CONFIG, "cpu", 24 * GiB)).not.toThrow();
    expect(() => checkActivationMemory({ ...huge, agent_context: "cells" }, TINY_CONFIG, "cpu", 24 * GiB)).toThrow(UsageError);
  });

  test("the split leaves a training task and, when validating, a validation task", () => {
    const tasks = syntheticDataset({ training: 10, evaluation: 1, seed: 1 }).training;
    const at = (f: number) => splitTasks(tasks, f, 0);
    expect(() => checkSplit(tasks, at(0.2), { ...SMOKE, val_fraction: 0.2 })).not.toThrow();
    expect(usage(() => checkSplit(tasks, at(0.9999), { ...SMOKE, val_fraction: 0.9999 }))).toMatch(/^--val_fraction 0\.9999 leaves no training task \(all 10 of --data synthetic go to validation\)$/);
    const one = tasks.slice(0, 1);
    expect(usage(() => checkSplit(one, splitTasks(one, 0.05, 0), SMOKE))).toMatch(/leaves no validation task among the 1 .*\(use --val_fraction 0 to train without validation\)/);
    expect(() => checkSplit(one, splitTasks(one, 0, 0), { ...SMOKE, val_fraction: 0 })).not.toThrow();
  });
});
