// Flags from a JSON or YAML file: a run's own config.json reads back whole; unknown keys, wrong types and
// unreadable files are one line naming the file and the key.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULTS, FLAGS } from "../../src/pipeline/config/train-config";
import { type ConfigKeySpec, readConfigFile } from "../../src/util/config-file";

const dir = mkdtempSync(join(tmpdir(), "config-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
/** A file of this text under a fresh name with this extension. */
function file(ext: string, text: string): string {
  const path = join(dir, `f${n++}${ext}`);
  writeFileSync(path, text);
  return path;
}
/** The error's message, or "no error". */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return "no error";
}

const known = FLAGS as unknown as Record<string, ConfigKeySpec>;
/** The flags that default to none (a run's config.json stores them as null). */
const nullable = Object.entries(DEFAULTS).filter(([, v]) => v === null).map(([k]) => k);

describe("readConfigFile", () => {
  test("a run's config.json, as the trainer writes it, reads back as every flag it sets", () => {
    const saved = { ...DEFAULTS, resume: null, epochs: 3, backup_dir: "/backups", preset: "smoke" };
    const path = file(".json", `${JSON.stringify(saved, null, 2)}\n`);
    // resume (null in every config.json) and the other flags at none (run_name) are left out: not set.
    const set = Object.fromEntries(Object.entries(saved).filter(([, v]) => v !== null));
    expect(Object.keys(saved).length - Object.keys(set).length).toBe(2);
    expect(readConfigFile(path, known, { nullable })).toEqual(set as Record<string, string | number | boolean>);
  });

  test("YAML (.yaml and .yml): numbers, booleans, choices; a choice that reads as a boolean is its text", () => {
    const text = "# a sweep's base\nagent_lr: 1e-4\nqwen_lr: 3.0e-5\nepochs: 3\nquiet: true\ndevice: cuda:0\nqwen_train: full\ntensorboard: false\ngroup_by_length: true\nbackup_dir: null\n";
    const want = { agent_lr: 1e-4, qwen_lr: 3e-5, epochs: 3, quiet: true, device: "cuda:0", qwen_train: "full", tensorboard: "false", group_by_length: "true" };
    expect(readConfigFile(file(".yaml", text), known, { nullable })).toEqual(want);
    expect(readConfigFile(file(".yml", text), known, { nullable })).toEqual(want);
    expect(readConfigFile(file(".YAML", "epochs: 2\n"), known)).toEqual({ epochs: 2 });
  });

  test("the command line wins over the file when merged over it", () => {
    const fromFile = readConfigFile(file(".yaml", "epochs: 3\nseed: 7\n"), known);
    const fromCommandLine: Record<string, string | number | boolean> = { epochs: 5 };
    expect({ ...fromFile, ...fromCommandLine }).toEqual({ epochs: 5, seed: 7 });
  });

  test("an unknown key names the file and the key, with the closest flag when one is close", () => {
    const a = file(".yaml", "epoch: 3\n");
    expect(errorOf(() => readConfigFile(a, known))).toBe(`${a}: unknown key "epoch"; did you mean "epochs"?`);
    const b = file(".json", '{"lora-rank": 8}');
    expect(errorOf(() => readConfigFile(b, known))).toBe(`${b}: unknown key "lora-rank"; did you mean "lora_rank"?`);
    const c = file(".yaml", "learning_rate: 1e-4\n");
    expect(errorOf(() => readConfigFile(c, known))).toBe(`${c}: unknown key "learning_rate"`);
    // Keys of Object.prototype are not flags either.
    const d = file(".json", '{"constructor": 1}');
    expect(errorOf(() => readConfigFile(d, known))).toStartWith(`${d}: unknown key "constructor"`);
  });

  test("ignored keys are dropped; null is 'not set' only for the nullable keys", () => {
    const path = file(".json", JSON.stringify({ epochs: 2, written_by: "trainer 1.0", backup_dir: null }));
    expect(readConfigFile(path, known, { ignore: ["written_by"], nullable })).toEqual({ epochs: 2 });
    const p2 = file(".json", JSON.stringify({ epochs: null }));
    expect(errorOf(() => readConfigFile(p2, known, { nullable }))).toBe(`${p2}: epochs must be an integer, got null`);
  });

  test("a value of the wrong type names the key, the file and the type expected", () => {
    const cases: [string, string][] = [
      ['{"epochs": "3"}', `epochs must be an integer, got string "3"`],
      ['{"epochs": 2.5}', "epochs must be an integer, got number 2.5"],
      ['{"agent_lr": "1e-4"}', `agent_lr must be a number, got string "1e-4"`],
      ['{"quiet": "yes"}', `quiet must be true or false, got string "yes"`],
      ['{"model": 7}', "model must be a string, got number 7"],
      ['{"qwen_train": "lora2"}', `qwen_train must be one of lora, full, frozen, got string "lora2"`],
      ['{"amp_dtype": ["bf16"]}', "amp_dtype must be one of fp16, bf16, none, got a list"],
      ['{"seed": {"value": 1}}', "seed must be an integer, got a mapping"],
      ['{"epochs": 0}', "epochs must be >= 1, got 0"],
      ['{"seed": 9007199254740993}', "seed must be an integer, got number 9007199254740992"],
    ];
    for (const [json, says] of cases) {
      const path = file(".json", json);
      expect(errorOf(() => readConfigFile(path, known))).toBe(`${path}: ${says}`);
    }
  });

  test("files that hold no mapping of flags are one line naming the file", () => {
    const txt = file(".txt", "epochs: 3");
    expect(errorOf(() => readConfigFile(txt, known))).toBe(`${txt}: a config file is .json, .yaml or .yml, not ".txt"`);
    const missing = join(dir, "missing.yaml");
    expect(errorOf(() => readConfigFile(missing, known))).toBe(`${missing}: no such file`);
    const folder = join(dir, "folder.json");
    mkdirSync(folder);
    expect(errorOf(() => readConfigFile(folder, known))).toBe(`${folder}: is a folder, not a file`);
    const badJson = file(".json", '{"epochs": 3,}');
    expect(errorOf(() => readConfigFile(badJson, known))).toStartWith(`${badJson} is not valid JSON: `);
    const badYaml = file(".yaml", "epochs: [3,\nseed: 1\n");
    expect(errorOf(() => readConfigFile(badYaml, known))).toStartWith(`${badYaml} is not valid YAML: `);
    const list = file(".yaml", "- epochs\n- seed\n");
    expect(errorOf(() => readConfigFile(list, known))).toBe(`${list}: must be a mapping of flag names to values, got a list (several YAML documents?)`);
    const scalar = file(".json", "3");
    expect(errorOf(() => readConfigFile(scalar, known))).toBe(`${scalar}: must be a mapping of flag names to values, got number`);
    for (const e of [badJson, badYaml, list]) expect(errorOf(() => readConfigFile(e, known))).not.toContain("\n");
    // An empty YAML file sets nothing, as an empty command line.
    expect(readConfigFile(file(".yaml", "# nothing yet\n"), known)).toEqual({});
  });
});
