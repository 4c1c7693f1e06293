// Editing a checkpoint folder in tests: a file replaced (or removed) and the manifest rewritten to match,
// so the folder still verifies and only loading it can tell what is wrong.
import { expect } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { verifyCheckpoint } from "../../src/pipeline/run/checkpoint";

/** Replaces `file` in checkpoint `dir` with `data` (null: removes it) and re-manifests the folder; it still verifies. */
export function replaceVerified(dir: string, file: string, data: Buffer | string | null): void {
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
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
