// Editing a checkpoint folder in tests: a file replaced (or removed) and the manifest rewritten to match,
// so the folder still verifies and only loading it can tell what is wrong.
import { expect } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULTS } from "../../src/pipeline/config/train-config";
import { verifyCheckpoint } from "../../src/pipeline/run/checkpoint";
import { DEFAULTED_SINCE_V2, MIGRATIONS } from "../../src/pipeline/run/migrations";

/**
 * Replaces `file` in checkpoint `dir` with `data` (null: removes it) and re-manifests the folder, with
 * `manifestFields` (e.g. an older version) set in the manifest too; it still verifies.
 */
export function replaceVerified(dir: string, file: string, data: Buffer | string | null, manifestFields: Record<string, unknown> = {}): void {
  const m = { ...JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")), ...manifestFields };
  if (data === null) {
    rmSync(join(dir, file));
    delete m.files[file];
  } else {
    const buf = Buffer.from(data);
    writeFileSync(join(dir, file), buf);
    m.files[file] = { bytes: buf.length, sha256: createHash("sha256").update(buf).digest("hex") };
  }
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(m, null, 2));
  expect(verifyCheckpoint(dir).ok).toBe(true);
}

/**
 * A run config as a version-1 build wrote it: without the flags added since that the migrations fill
 * (only where the run's value is the one the migration would fill, so the run is unchanged once migrated).
 */
export function asVersion1Config(config: Record<string, unknown>): Record<string, unknown> {
  // What loading fills in a version-1 config: the 1 -> 2 step's values, and the defaults of the flags since.
  const filled: Record<string, unknown> = { ...Object.fromEntries(DEFAULTED_SINCE_V2.map((k) => [k, DEFAULTS[k]])), ...MIGRATIONS[0].config({}) };
  return Object.fromEntries(Object.entries(config).filter(([k, v]) => !(k in filled && JSON.stringify(v) === JSON.stringify(filled[k]))));
}

/**
 * Rewrites checkpoint `dir` (written by today's build) as a version-1 build wrote it: its manifest's
 * version 1, and its state.json without what version 2 added (the data-parallel world, the learning-rate
 * schedule, the flags added since); it still verifies, and loading it must migrate it.
 */
export function asVersion1Checkpoint(dir: string): void {
  const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
  const { dataParallel: _world, lr_schedule: _schedule, ...rest } = state;
  replaceVerified(dir, "state.json", JSON.stringify({ ...rest, ...(rest.config ? { config: asVersion1Config(rest.config) } : {}) }), { version: 1 });
}
