// Where the tests' data lives: inside the repository, so a fresh clone's `npm test` needs nothing beside it.
// FIXTURE_ARC: a small generated ARC dataset (training/, evaluation/) written by test/fixtures/make-arc.ts.
// GOLDEN: transformers' outputs for a tiny random Qwen2 (test/fixtures/golden/README.md); GOLDEN_MODEL: that
// model's folder, made on first use in the temp folder (its weights are generated, never stored).
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ensureGoldenModel, goldenModelBytes, sha256 } from "../fixtures/golden/make-model.ts";

export const FIXTURES = path.join(import.meta.dir, "..", "fixtures");

export const FIXTURE_ARC = path.join(FIXTURES, "arc");
export const GOLDEN = path.join(FIXTURES, "golden");
export const GOLDEN_MODEL = madeGoldenModel();

function madeGoldenModel(): string {
  const want = JSON.parse(readFileSync(path.join(GOLDEN, "qwen2-tiny-golden.json"), "utf8")).model_sha256;
  const have = sha256(goldenModelBytes());
  // The outputs were computed on other weights: every parity test would fail for a reason not in the code under test.
  if (have !== want) throw new Error(`make-model.ts makes weights with sha256 ${have}, but qwen2-tiny-golden.json was made from ${want}: rerun make-golden.py (test/fixtures/golden/README.md)`);
  return ensureGoldenModel(path.join(tmpdir(), `arc-efe-golden-${have.slice(0, 16)}`, "qwen2-tiny"));
}
