// "did you mean --X?" for a mistyped flag: the edit distance, when a guess is close enough to offer, and
// the one-line errors of parseArgs and of the stage scripts' parseCommandLine.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { closestFlag, editDistance, flagSuggestion, parseArgsErrorLine } from "../../src/util/flags";

const TRAIN_FLAGS = ["epochs", "agent_lr", "qwen_lr", "rl_lr", "batch_size", "max_batches", "max_batch_tokens", "lora_rank", "lora_alpha", "seed", "device", "warmup_steps", "warmup_ratio", "lr_scheduler"];

describe("editDistance", () => {
  test("insertions, deletions, substitutions, and a swap of neighbours as one edit", () => {
    expect(editDistance("", "")).toBe(0);
    expect(editDistance("abc", "")).toBe(3);
    expect(editDistance("", "ab")).toBe(2);
    expect(editDistance("epochs", "epochs")).toBe(0);
    expect(editDistance("epoch", "epochs")).toBe(1);
    expect(editDistance("epochss", "epochs")).toBe(1);
    expect(editDistance("epocks", "epochs")).toBe(1);
    expect(editDistance("epcohs", "epochs")).toBe(1); // transposition
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("ca", "abc")).toBe(3); // optimal string alignment (true Damerau-Levenshtein says 2)
  });
});

describe("closestFlag", () => {
  test("a near miss finds its flag, with or without dashes", () => {
    expect(closestFlag("--epoch", TRAIN_FLAGS)).toBe("epochs");
    expect(closestFlag("epcohs", TRAIN_FLAGS)).toBe("epochs");
    expect(closestFlag("--batchsize", TRAIN_FLAGS)).toBe("batch_size");
    expect(closestFlag("--max_batch", TRAIN_FLAGS)).toBe("max_batches");
    expect(closestFlag("--warmup_step", TRAIN_FLAGS)).toBe("warmup_steps");
    expect(closestFlag("--lr_schedular", TRAIN_FLAGS)).toBe("lr_scheduler");
    expect(closestFlag("--seeds", TRAIN_FLAGS)).toBe("seed");
  });

  test("case and hyphens for underscores are not counted", () => {
    expect(closestFlag("--lora-rank", TRAIN_FLAGS)).toBe("lora_rank");
    expect(closestFlag("--Max-Batch-Tokens", TRAIN_FLAGS)).toBe("max_batch_tokens");
  });

  test("nothing is offered when no flag is close", () => {
    expect(closestFlag("--learning_rate", TRAIN_FLAGS)).toBeNull();
    expect(closestFlag("--warmup", TRAIN_FLAGS)).toBeNull();
    expect(closestFlag("--xyz", TRAIN_FLAGS)).toBeNull();
    expect(closestFlag("--q", TRAIN_FLAGS)).toBeNull();
    expect(closestFlag("--epochs", [])).toBeNull();
  });

  test("short names allow one edit, long ones up to three; ties go to the first known", () => {
    expect(closestFlag("--lr", ["rl", "lr_x"])).toBe("rl"); // a swap is one edit
    expect(closestFlag("--ab", ["abcd"])).toBeNull(); // 2 edits on a 2-letter name
    expect(closestFlag("--max_tokens_x", ["max_tokens_yyy"])).toBe("max_tokens_yyy"); // 3 edits on 12 letters
    expect(closestFlag("--max_tokens_x", ["max_tokens_yyyy"])).toBeNull(); // 4
    expect(closestFlag("--abcd", ["abce", "abcf"])).toBe("abce");
  });

  test("flagSuggestion is the sentence's tail, or nothing", () => {
    expect(flagSuggestion("--epoch", TRAIN_FLAGS)).toBe("; did you mean --epochs?");
    expect(flagSuggestion("--zzzzzz", TRAIN_FLAGS)).toBe("");
  });
});

describe("parseArgsErrorLine", () => {
  const options = Object.fromEntries(TRAIN_FLAGS.map((k) => [k, { type: "string" as const }]));
  const errorOf = (args: string[]): unknown => {
    try {
      parseArgs({ args, options, strict: true, allowPositionals: false });
    } catch (e) {
      return e;
    }
    throw new Error("parseArgs accepted it");
  };

  test("an unknown flag is one line, with the closest known flag when there is one", () => {
    expect(parseArgsErrorLine(errorOf(["--epoch", "3"]), TRAIN_FLAGS)).toBe("unknown flag '--epoch'; did you mean --epochs?");
    expect(parseArgsErrorLine(errorOf(["--warmup-ratio=0.1"]), TRAIN_FLAGS)).toBe("unknown flag '--warmup-ratio'; did you mean --warmup_ratio?");
    expect(parseArgsErrorLine(errorOf(["--nope", "1"]), TRAIN_FLAGS)).toBe("unknown flag '--nope'");
    expect(parseArgsErrorLine(errorOf(["-x"]), TRAIN_FLAGS)).toBe("unknown flag '-x'");
  });

  test("parseArgs's other errors keep their words, on one line", () => {
    expect(parseArgsErrorLine(errorOf(["--epochs"]), TRAIN_FLAGS)).toBe("Option '--epochs <value>' argument missing");
    expect(parseArgsErrorLine(new Error("first\nsecond"), TRAIN_FLAGS)).toBe("first");
  });
});

test("parseCommandLine (the stage scripts) suggests the closest flag, exit code 2", () => {
  const script = `import { parseCommandLine } from ${JSON.stringify(join(import.meta.dir, "..", "..", "src", "util", "cli.ts"))};
parseCommandLine("stage", "Usage: stage [--run DIR]", { run: { type: "string" }, run_dir: { type: "string" }, help: { type: "boolean" } }, process.argv.slice(2));`;
  const dir = mkdtempSync(join(tmpdir(), "flag-suggestions-"));
  const file = join(dir, "stage.ts");
  writeFileSync(file, script);
  const run = (...args: string[]) => spawnSync(process.execPath, [file, ...args], { encoding: "utf8" });
  const bad = run("--run-dir", "x");
  expect([bad.status, bad.stderr]).toEqual([2, "stage: unknown flag '--run-dir'; did you mean --run_dir?\nUsage: stage [--run DIR] (--help for more)\n"]);
  const far = run("--zzzzzzzz");
  expect([far.status, far.stderr]).toEqual([2, "stage: unknown flag '--zzzzzzzz'\nUsage: stage [--run DIR] (--help for more)\n"]);
  expect(run("--run", "x").status).toBe(0);
  rmSync(dir, { recursive: true });
});
