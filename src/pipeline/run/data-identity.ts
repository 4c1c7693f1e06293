// The data's identity in a run (issue 26): where the tasks were read from (resolved to an absolute, real
// path; a built-in name as it is) and a fingerprint of the training tasks (each task's id and a hash of its
// content). Checkpoints record it in state.json; a resume loads the data from the recorded path, accepts
// the same data given by any path that resolves to it, and refuses a changed task set with what changed.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Dataset, isBuiltInData } from "../../arc/index";
import { STATE } from "./checkpoint";

export interface DataIdentity {
  /** Absolute real path of a folder or file; a built-in name (synthetic[:N], arc-agi-1, arc-agi-2) as it is. */
  path: string;
  /** Training tasks. */
  count: number;
  /** sha256 over the tasks' ids and hashes, in id order. */
  sha256: string;
  /** Each training task's content hash (16 hex digits), by id. */
  tasks: Record<string, string>;
}

/** `--data` as the absolute real path it names (a built-in name unchanged). */
export function resolveDataPath(spec: string): string {
  if (isBuiltInData(spec)) return spec;
  try {
    return realpathSync(spec);
  } catch {
    return resolve(spec);
  }
}

/** The identity of the data a run trains on. */
export function dataIdentity(spec: string, ds: Dataset): DataIdentity {
  const tasks: Record<string, string> = {};
  for (const t of [...ds.training].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)))
    tasks[t.id] = createHash("sha256").update(JSON.stringify({ train: t.train, test: t.test })).digest("hex").slice(0, 16);
  const sha256 = createHash("sha256").update(JSON.stringify(tasks)).digest("hex");
  return { path: resolveDataPath(spec), count: ds.training.length, sha256, tasks };
}

/** The identity a checkpoint recorded (null for checkpoints written before it was recorded, or unreadable). */
export function savedDataIdentity(checkpointDir: string): DataIdentity | null {
  try {
    const d = JSON.parse(readFileSync(join(checkpointDir, STATE), "utf8"))?.data;
    return d && typeof d.path === "string" && typeof d.sha256 === "string" && d.tasks && typeof d.tasks === "object" ? (d as DataIdentity) : null;
  } catch {
    return null;
  }
}

/** Whether `spec` names the recorded data (by any path that resolves to it). */
export const sameDataPath = (spec: string, saved: DataIdentity): boolean => resolveDataPath(spec) === saved.path;

/** Where the recorded data is now: its path when it still exists (a built-in name always). */
export const recordedDataPath = (saved: DataIdentity): string | null => (isBuiltInData(saved.path) || existsSync(saved.path) ? saved.path : null);

/** What changed between two identities, in words ("12 of 18 tasks removed (a, b, …)"), or null when nothing did. */
export function dataChange(saved: DataIdentity, now: DataIdentity): string | null {
  if (saved.sha256 === now.sha256) return null;
  const list = (ids: string[]) => `${ids.slice(0, 5).join(", ")}${ids.length > 5 ? `, … ${ids.length - 5} more` : ""}`;
  const removed = Object.keys(saved.tasks).filter((id) => !(id in now.tasks));
  const added = Object.keys(now.tasks).filter((id) => !(id in saved.tasks));
  const edited = Object.keys(now.tasks).filter((id) => id in saved.tasks && saved.tasks[id] !== now.tasks[id]);
  const parts: string[] = [];
  if (removed.length) parts.push(`${removed.length} of ${saved.count} tasks removed (${list(removed)})`);
  if (added.length) parts.push(`${added.length} added (${list(added)})`);
  if (edited.length) parts.push(`${edited.length} changed (${list(edited)})`);
  return parts.join(", ") || "the task set's fingerprint differs";
}
