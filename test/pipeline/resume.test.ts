// What --resume continues from, in one process: the order checkpoints are tried in and what is said
// about each one skipped (best/ offered last), the config when config.json is gone, the flags a resume
// refuses, and the state a checkpoint must hold to be loaded.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch";
import { DEFAULTS, type TrainConfig, UsageError } from "../../src/pipeline/config/train-config";
import { saveCheckpoint } from "../../src/pipeline/run/checkpoint";
import { updateBest } from "../../src/pipeline/run/retention";
import { ResumeCandidates, resumeDir, resumedConfig, savedConfig, trainingStateProblem } from "../../src/pipeline/run/resume";
import { createRun } from "../../src/pipeline/run/run-folder";

const root = mkdtempSync(join(tmpdir(), "resume-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(root, `base-${n++}`);
  mkdirSync(d);
  return d;
};
const CONFIG: TrainConfig = { ...DEFAULTS, model: "tiny", data: "synthetic", batch_size: 2, seed: 0, device: "cpu" };
const save = (runDir: string, step: number, state: unknown = { config: { ...CONFIG, seed: step } }) =>
  torch.scope(() => saveCheckpoint(runDir, { step, tensors: { model: { w: torch.full([3], step) } }, state }));

describe("resume candidates", () => {
  test("newest step first, best/ among them by its step (after the step folder it copies); each skip names the reason and the next candidate", () => {
    const run = createRun(fresh(), CONFIG);
    const d1 = save(run.dir, 1);
    const d2 = save(run.dir, 2);
    const d3 = save(run.dir, 3);
    updateBest(run.dir, d2, "val_exact", 0.5);
    truncateSync(join(d3, "model.safetensors"), 4);
    truncateSync(join(d2, "state.json"), 2);
    truncateSync(join(d1, "state.json"), 2);
    const said: string[] = [];
    const c = new ResumeCandidates(run.dir, (l) => said.push(l));
    const first = c.next();
    expect(first?.name).toBe("best");
    expect(first?.manifest.step).toBe(2);
    expect(said).toEqual([
      `checkpoint ${d3} is unusable (model.safetensors has 4 bytes, the manifest says ${readManifestBytes(run.dir)} (truncated)); trying step_000000002`,
      expect.stringMatching(new RegExp(`^checkpoint ${d2} is unusable \\(state\\.json has 2 bytes.*\\); trying best/ \\(the best checkpoint, an independent copy\\)$`)),
    ]);
    // best/ verified but (say) failed to load: the older step folder is next, then the end of the list.
    c.reject(first!.dir, "it verifies but cannot be loaded: boom");
    expect(said.at(-1)).toBe(`checkpoint ${first!.dir} is unusable (it verifies but cannot be loaded: boom); trying step_000000001`);
    expect(c.next()).toBeNull();
    expect(said.at(-1)).toMatch(new RegExp(`^checkpoint ${d1} is unusable \\(state\\.json has 2 bytes.*\\); no other checkpoint is left$`));
    expect(c.rejected.map((r) => r.split(":")[0])).toEqual(["step_000000003", "step_000000002", "best", "step_000000001"]);
  });

  test("a best/ newer than every intact step folder comes before them (finding 7: best/ a copy of a damaged step_15)", () => {
    const run = createRun(fresh(), CONFIG);
    save(run.dir, 10);
    const d15 = save(run.dir, 15);
    updateBest(run.dir, d15, "val_exact", 0.5);
    truncateSync(join(d15, "model.safetensors"), 4);
    const said: string[] = [];
    const c = new ResumeCandidates(run.dir, (l) => said.push(l));
    const first = c.next();
    expect([first?.name, first?.manifest.step]).toEqual(["best", 15]);
    expect(said).toEqual([expect.stringMatching(/; trying best\/ \(the best checkpoint, an independent copy\)$/)]);
  });

  test("an intact newest checkpoint is the only one verified", () => {
    const run = createRun(fresh(), CONFIG);
    const d1 = save(run.dir, 1);
    save(run.dir, 2);
    truncateSync(join(d1, "model.safetensors"), 4); // never looked at
    const said: string[] = [];
    expect(new ResumeCandidates(run.dir, (l) => said.push(l)).next()?.name).toBe("step_000000002");
    expect(said).toEqual([]);
  });
});

/** Bytes model.safetensors had when written (every save() above writes the same shape). */
function readManifestBytes(runDir: string): number {
  const m = JSON.parse(readFileSync(join(runDir, "checkpoints", "best", "manifest.json"), "utf8"));
  return m.files["model.safetensors"].bytes;
}

describe("resume config", () => {
  test("config.json gone: the newest checkpoint's config is used and config.json restored from it", () => {
    const run = createRun(fresh(), CONFIG);
    save(run.dir, 4, { config: { ...CONFIG, seed: 7 } });
    unlinkSync(run.configPath);
    const said: string[] = [];
    const c = new ResumeCandidates(run.dir, (l) => said.push(l));
    const cfg = savedConfig(run.dir, c.dirs, (l) => said.push(l));
    expect(cfg.seed).toBe(7);
    expect(said).toEqual([expect.stringMatching(/config\.json is missing; restored it from .*step_000000004\/state\.json$/)]);
    expect(JSON.parse(readFileSync(run.configPath, "utf8")).seed).toBe(7);
    // Garbled config.json: the same.
    writeFileSync(run.configPath, "{\"seed\": ");
    expect(savedConfig(run.dir, c.dirs, (l) => said.push(l)).seed).toBe(7);
    expect(said.at(-1)).toMatch(/config\.json is not valid JSON \(.*\); restored it/);
    // A newer checkpoint without a config (or a damaged one) is passed over for an older one that has it.
    save(run.dir, 5, {});
    const d6 = save(run.dir, 6, { config: { ...CONFIG, seed: 99 } });
    truncateSync(join(d6, "state.json"), 3);
    unlinkSync(run.configPath);
    expect(savedConfig(run.dir, new ResumeCandidates(run.dir, () => {}).dirs, (l) => said.push(l)).seed).toBe(7);
    expect(said.at(-1)).toMatch(/restored it from .*step_000000004\/state\.json$/);
    // Neither: a usage error naming both.
    unlinkSync(run.configPath);
    expect(() => savedConfig(run.dir, [], () => {})).toThrow(/config\.json is missing and no intact checkpoint carries a config/);
  });

  test("flags a resume cannot change are an error naming each; resumable ones and unchanged values pass", () => {
    const saved = { ...CONFIG, batch_size: 2, agent_lr: 1e-3, seed: 0 };
    const validated = { ...saved, device: "cpu", resume: "R" };
    let err: Error | null = null;
    try {
      resumedConfig("R", saved, { batch_size: 8, agent_lr: 0.5, seed: 42, max_batches: 40 }, validated);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect(err!.message).toMatch(/^--resume R: these flags cannot change on resume: --batch_size 8 \(the run has 2\), --agent_lr 0\.5 \(the run has 0\.001\), --seed 42 \(the run has 0\); drop them/);
    expect(err!.message).toContain("resumable: --epochs, --max_batches");
    const ok = resumedConfig("R", saved, { seed: 0, max_batches: 40, log_every: 1, resume: "R" }, validated);
    expect(ok).toMatchObject({ seed: 0, max_batches: 40, log_every: 1, batch_size: 2, resume: "R", device: "cpu" });
  });

  test("--resume names: latest with no run, a missing folder, a folder that is no run", () => {
    const base = fresh();
    expect(() => resumeDir({ ...CONFIG, resume: "latest", run_dir: base })).toThrow(/--resume: no run with a checkpoint under .*\/ \(start one without --resume\)/);
    expect(() => resumeDir({ ...CONFIG, resume: join(base, "nope") })).toThrow(/--resume .*nope: no such run folder/);
    expect(() => resumeDir({ ...CONFIG, resume: base })).toThrow(/not a run folder/);
    expect(existsSync(base)).toBe(true);
  });
});

describe("training state", () => {
  test("what a checkpoint must hold to resume, named when missing", () => {
    const good = {
      position: { step: 4, epoch: 0, batchInEpoch: 4, window: {}, epochWindow: {} },
      optimizer: { paramGroups: [] }, policyOptimizer: { paramGroups: [] }, scaler: {}, memory: {}, refiner: {},
    };
    expect(trainingStateProblem(good)).toBeNull();
    expect(trainingStateProblem({})).toBe('state.json has no "position"');
    expect(trainingStateProblem([])).toBe("state.json is not a JSON object");
    expect(trainingStateProblem({ ...good, position: { ...good.position, step: -1 } })).toBe("state.json position.step is -1, not a step count");
    expect(trainingStateProblem({ ...good, optimizer: {} })).toBe("state.json has no optimizer.paramGroups");
    expect(trainingStateProblem({ ...good, refiner: undefined })).toBe('state.json has no "refiner"');
  });
});
