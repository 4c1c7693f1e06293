// Checkpoint migrations (src/pipeline/run/migrations.ts): a version-1 state.json and config become today's
// shape, a checkpoint from a newer build is refused naming its version, and the steps form one chain.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULTS } from "../../src/pipeline/config/train-config";
import { CHECKPOINT_VERSION, readCheckpointState, readManifest, saveCheckpoint, verifyCheckpoint } from "../../src/pipeline/run/checkpoint";
import * as torch from "../../src/torch";
import { asVersion1Checkpoint } from "../helpers/checkpoints";
import { DEFAULTED_SINCE_V2, MIGRATIONS, OLDEST_VERSION, migrateConfig, migrateState, migrationsFrom, savedRunConfig } from "../../src/pipeline/run/migrations";

const tmp = mkdtempSync(join(tmpdir(), "migrations-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The flags of the first trainer that wrote checkpoints (before any flag was added). */
const FIRST_FLAGS = [
  "epochs", "agent_lr", "qwen_lr", "rl_lr", "weight_decay", "device", "resume", "max_batches", "model", "data", "seed", "run_dir",
  "batch_size", "grad_accum", "ckpt_every", "keep_last", "log_every", "best_metric", "qwen_train", "amp_dtype", "clip",
  "max_prompt_tokens", "hint_tokens", "lora_rank", "lora_alpha", "lora_dropout", "agent_channels", "agent_steps", "memory_capacity",
  "val_fraction", "val_max", "backup_dir", "num_threads", "preset", "quiet",
] as const;
const firstConfig = () => Object.fromEntries(FIRST_FLAGS.map((k) => [k, DEFAULTS[k]]));
/** Every flag but those whose absence means their default (savedRunConfig fills them from DEFAULTS). */
const stepFilled = () => Object.keys(DEFAULTS).filter((k) => !(DEFAULTED_SINCE_V2 as readonly string[]).includes(k)).sort();

/** A state.json as the first trainers wrote it: no data parallelism, memory and refiner without the later fields. */
const v1State = () => ({
  position: { step: 2, epoch: 0, batchInEpoch: 2, window: {}, epochWindow: {}, lastValidation: null },
  optimizer: { paramGroups: [] },
  policyOptimizer: { paramGroups: [] },
  scaler: {},
  memory: { version: 1, keyDim: 8, actionDim: 4, capacity: 16, size: 3, theta: 0.2, thetaInit: 0.2, thetaDecay: 0.95, topK: 4, minSimilarity: 0.5, updates: 5 },
  refiner: { version: 1, promptDim: 8, stateDim: 8, actionDim: 4, hidden: 16, lr: 1e-3, entropyCoef: 0.01, baselineDecay: 0.95, logStdMin: -5, logStdMax: 0.5, baseline: 0.1 },
  config: firstConfig(),
});

describe("checkpoint migrations", () => {
  test("a version-1 config gets every flag added since, as the run had it", () => {
    const c = migrateConfig(firstConfig());
    expect(Object.keys(c).sort()).toEqual(stepFilled());
    expect(c).toMatchObject({ agent_input_prior: 0, group_by_length: "false", grad_checkpointing: "off" });
    // What the run recorded is kept, and a second pass changes nothing.
    expect(migrateConfig({ ...firstConfig(), agent_input_prior: 2, group_by_length: "true" })).toMatchObject({ agent_input_prior: 2, group_by_length: "true" });
    expect(migrateConfig(c)).toEqual(c);
    expect(savedRunConfig(firstConfig())).toEqual({ ...DEFAULTS, ...c } as never);
    // Those flags read as their defaults: a run before --agent_context conditioned its agent on the prompt.
    expect(savedRunConfig(firstConfig())).toMatchObject({ agent_context: "prompt", demo_channels: 64, demo_layers: 3, demo_pooling: "mean" });
  });

  test("a version-1 state.json becomes the current shape", () => {
    const s = migrateState(v1State(), { version: 1, step: 2 }, CHECKPOINT_VERSION) as any;
    expect(s.dataParallel).toEqual({ world: 1 });
    expect(s.memory).toMatchObject({ stamps: [0, 1, 2], clock: 3, updates: 5, writes: 0, evictions: 0, rejected: 0, reads: 0, hitReads: 0 });
    expect(s.refiner).toMatchObject({ logStdBound: "clamp", updates: 0, baseline: 0.1 });
    expect(s.config).toMatchObject({ agent_input_prior: 0, group_by_length: "false" });
    expect(Object.keys(s.config).sort()).toEqual(stepFilled());
    // A state of the current version is left as it is; what is not an object is left for the readers to name.
    expect(migrateState(s, { version: CHECKPOINT_VERSION, step: 2 }, CHECKPOINT_VERSION)).toBe(s);
    expect(migrateState([1], { version: 1, step: 2 }, CHECKPOINT_VERSION)).toEqual([1]);
    // A recorded world size is kept.
    expect((migrateState({ ...v1State(), dataParallel: { world: 2 } }, { version: 1, step: 2 }, CHECKPOINT_VERSION) as any).dataParallel).toEqual({ world: 2 });
  });

  test("the steps are one chain, from the oldest version to this build's, with no gap", () => {
    expect(OLDEST_VERSION).toBe(1);
    MIGRATIONS.forEach((m, i) => {
      expect(m.to).toBe(m.from + 1);
      if (i > 0) expect(m.from).toBe(MIGRATIONS[i - 1].to);
      expect(m.describe.length).toBeGreaterThan(0);
    });
    expect(MIGRATIONS.at(-1)!.to).toBe(CHECKPOINT_VERSION);
    for (let v = OLDEST_VERSION; v <= CHECKPOINT_VERSION; v++) expect(migrationsFrom(v, CHECKPOINT_VERSION).length).toBe(CHECKPOINT_VERSION - v);
    expect(() => migrationsFrom(CHECKPOINT_VERSION + 1, CHECKPOINT_VERSION)).toThrow(`checkpoint version ${CHECKPOINT_VERSION + 1} is newer`);
    expect(() => migrationsFrom(0, CHECKPOINT_VERSION)).toThrow("no checkpoint migration from version 0 to 1");
  });

  test("a version-1 checkpoint verifies and reads migrated; one from the future is refused, naming its version", () => {
    // A checkpoint of today's build, rewritten as a version-1 build wrote it (no dataParallel, manifest version 1).
    const dir = torch.scope(() => saveCheckpoint(tmp, { step: 2, tensors: { model: { w: torch.full([3], 2) } }, state: { config: { ...DEFAULTS }, dataParallel: { world: 1 } } }));
    asVersion1Checkpoint(dir);
    expect(JSON.parse(readFileSync(join(dir, "state.json"), "utf8")).dataParallel).toBeUndefined();
    expect(readManifest(dir)).toMatchObject({ ok: true, manifest: { version: 1 } });
    expect(verifyCheckpoint(dir).ok).toBe(true);
    expect(readCheckpointState(dir).dataParallel).toEqual({ world: 1 });

    const path = join(dir, "manifest.json");
    const m = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...m, version: CHECKPOINT_VERSION + 1 }));
    const r = verifyCheckpoint(dir);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe(`manifest.json has version ${CHECKPOINT_VERSION + 1} (written by a newer build); this build reads versions 1 to ${CHECKPOINT_VERSION}`);
    writeFileSync(path, JSON.stringify({ ...m, version: "2" }));
    const s = verifyCheckpoint(dir);
    expect(!s.ok && s.reason).toMatch(/^manifest\.json has version "2"; this build reads versions 1 to /);
  });
});
