// A run folder in checkpoint format 1 resumes and evaluates with today's code as the run itself would have
// gone on. The test writes a run with the flags of a version-1 run (test/fixtures/run-v1/config.json,
// written by the main before src/pipeline/ was split), rewrites a copy of its step-2 checkpoint and its
// config.json as a version-1 build wrote them (test/helpers/checkpoints.ts), and checks that resuming that
// copy to step 4 (at once, and 2 -> 3 -> 4) gives the run's own step-4 weights bit for bit, and that
// evaluating it makes the same attempts as the run's step 2.
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../../src/torch";
import { loadFile } from "../../src/torch/safetensors";
import { readManifest, stepDirName } from "../../src/pipeline/run/checkpoint";
import { asVersion1Checkpoint, asVersion1Config } from "../helpers/checkpoints";
import { FIXTURES } from "../helpers/fixtures";
import { CPU, EVAL, TRAIN, runScript, tempFolders } from "../helpers/scripts";

const fresh = tempFolders("old-ckpt-");
const LIMIT_MS = 360_000;

function ok(script: string, args: string[]): void {
  const r = runScript(script, args, LIMIT_MS);
  expect(`${r.err}\nexit ${r.code}`).toMatch(/exit 0$/);
}

/** The run the version-1 copies come from: steps 2 and 4 of a version-1 run's flags. */
let straight: string;
beforeAll(() => {
  const base = fresh("straight");
  ok(TRAIN, ["--config", join(FIXTURES, "run-v1", "config.json"), "--run_name", "run", "--run_dir", base, ...CPU]);
  straight = join(base, "run");
});

/** A copy of the run holding only its step-2 checkpoint, rewritten as a version-1 build wrote it. */
function version1Copy(): string {
  const dir = join(fresh("v1"), "run");
  cpSync(straight, dir, { recursive: true });
  for (const d of [stepDirName(4), "best"]) rmSync(join(dir, "checkpoints", d), { recursive: true, force: true });
  asVersion1Checkpoint(join(dir, "checkpoints", stepDirName(2)));
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(asVersion1Config(config), null, 2));
  expect(readManifest(join(dir, "checkpoints", stepDirName(2)))).toMatchObject({ ok: true, manifest: { version: 1 } });
  return dir;
}

/** Whether two files hold the same tensors, bit for bit. */
function sameTensors(a: string, b: string): boolean {
  return torch.scope(() => {
    const [ta, tb] = [loadFile(a), loadFile(b)];
    expect(Object.keys(ta).sort()).toEqual(Object.keys(tb).sort());
    return Object.keys(ta).every((k) => ta[k].equal(tb[k]));
  });
}

describe("a run folder in checkpoint format 1", () => {
  test("resumes: step 2 -> 4, and 2 -> 3 -> 4, reach the run's own step-4 weights bit for bit", () => {
    const want = join(straight, "checkpoints", stepDirName(4), "model.safetensors");
    const once = version1Copy();
    ok(TRAIN, ["--resume", once, "--max_batches", "4", ...CPU]);
    expect(sameTensors(join(once, "checkpoints", stepDirName(4), "model.safetensors"), want)).toBe(true);
    const twice = version1Copy();
    ok(TRAIN, ["--resume", twice, "--max_batches", "3", ...CPU]);
    ok(TRAIN, ["--resume", twice, "--max_batches", "4", ...CPU]);
    expect(sameTensors(join(twice, "checkpoints", stepDirName(4), "model.safetensors"), want)).toBe(true);
  });

  test("evaluates as the run's own checkpoint does: the same attempts and counts", () => {
    const evaluate = (run: string) => {
      const out = fresh("eval");
      ok(EVAL, ["--run", run, "--checkpoint", join(run, "checkpoints", stepDirName(2)), "--max", "4", "--split", "evaluation", "--out", out, ...CPU]);
      const e = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
      return { attempts: e.results.map((x: any) => ({ task: x.task, index: x.index, attempts: x.attempts })), summary: { ...e.summary, seconds: 0 } };
    };
    expect(evaluate(version1Copy())).toEqual(evaluate(straight));
  });
});
