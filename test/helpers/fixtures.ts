// Where the tests' data lives: inside the repository, so a fresh clone's `npm test` needs nothing beside it.
// FIXTURE_ARC: a small generated ARC dataset (training/, evaluation/) written by test/fixtures/make-arc.ts.
// GOLDEN: a tiny random Qwen2 and transformers' outputs for it (test/fixtures/golden/README.md);
// $ARC_GOLDEN_DIR points the parity tests at another folder of the same layout.
import path from "node:path";

const FIXTURES = path.join(import.meta.dir, "..", "fixtures");

export const FIXTURE_ARC = path.join(FIXTURES, "arc");
export const GOLDEN = path.resolve(process.env.ARC_GOLDEN_DIR ?? path.join(FIXTURES, "golden"));
export const GOLDEN_MODEL = path.join(GOLDEN, "qwen2-tiny");
