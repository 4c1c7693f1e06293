// One trainer per run: <run>/train.lock holds the pid, host and start time of the process that trains
// the run. It is created with O_EXCL (atomic: of two processes racing, one wins), removed when the
// process exits, and taken over (with a message) when the process that left it is gone.
//
//   const lock = acquireRunLock(run.dir, { onTakeover: (msg) => console.error(msg) });
//   ...
//   lock.release();          // also done on process exit
//
// Readers (scripts/eval.ts) never take the lock: checkpoints are written atomically, so reading while a
// trainer runs is safe.
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { pidAlive } from "../../util/process";

export const LOCK_FILE = "train.lock";

export interface LockRecord {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** The process's start time in clock ticks since boot (Linux /proc), to tell a reused pid apart. */
  startTicks: number | null;
  argv: string[];
}

/** A run that another live trainer holds. The message names the holder and what to do. */
export class RunLockedError extends Error {
  constructor(message: string, readonly holder: LockRecord | null) {
    super(message);
    this.name = "RunLockedError";
  }
}

export interface RunLock {
  path: string;
  record: LockRecord;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

/** Field 22 of /proc/<pid>/stat (start time in ticks), or null where there is no /proc. */
export function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** Whether the process a lock record names still runs (on this host; another host's lock counts as live). */
export function holderAlive(r: LockRecord): boolean {
  if (r.host !== hostname()) return true;
  if (!Number.isSafeInteger(r.pid) || r.pid <= 0 || !pidAlive(r.pid)) return false;
  // The pid runs, but it may be a new process that reused a dead trainer's pid.
  const now = processStartTicks(r.pid);
  return r.startTicks === null || now === null || now === r.startTicks;
}

function parseRecord(text: string): LockRecord | null {
  try {
    const r = JSON.parse(text);
    if (r && typeof r === "object" && Number.isSafeInteger(r.pid) && typeof r.host === "string") return r as LockRecord;
  } catch {}
  return null;
}

const describeHolder = (r: LockRecord) => `pid ${r.pid} on ${r.host}, since ${r.started}${r.argv?.length ? `: ${r.argv.join(" ")}` : ""}`;

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

export interface AcquireOptions {
  /** Told when a stale lock (its process is gone) is taken over. */
  onTakeover?: (message: string) => void;
  /** What the lock records as the command (default process.argv). */
  argv?: string[];
}

/**
 * Takes `<runDir>/train.lock` or throws RunLockedError naming the live holder. A lock whose process is
 * gone (killed, crashed, the machine rebooted) is taken over, saying so. A lock file that is not JSON is
 * treated as a half-written one of a racing process for a few seconds, then as stale.
 */
export function acquireRunLock(runDir: string, opts: AcquireOptions = {}): RunLock {
  const path = join(runDir, LOCK_FILE);
  const record: LockRecord = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    startTicks: processStartTicks(process.pid),
    argv: opts.argv ?? process.argv.slice(1),
  };
  const text = JSON.stringify(record, null, 2) + "\n";
  const deadline = Date.now() + 5000;
  for (;;) {
    let fd: number;
    try {
      fd = openSync(path, "wx");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`cannot create the run lock ${path}: ${(e as Error).message}`);
      const held = readText(path);
      if (held === null) continue; // released between our open and read: try again
      const holder = parseRecord(held);
      if (holder === null && Date.now() < deadline) {
        Bun.sleepSync(50); // another process is writing its lock right now
        continue;
      }
      if (holder && holder.pid === process.pid && holder.host === record.host)
        throw new RunLockedError(`${runDir} is already locked by this process`, holder);
      if (holder && holderAlive(holder))
        throw new RunLockedError(
          `${runDir} is in use by another trainer (${describeHolder(holder)}); wait for it to finish or stop it` +
            (holder.host === record.host ? ` (kill ${holder.pid})` : `, or delete ${path} if that process is gone`),
          holder,
        );
      if (!takeOver(path, held)) continue;
      opts.onTakeover?.(
        holder
          ? `taking over the stale run lock ${path} (pid ${holder.pid} on ${holder.host}, since ${holder.started}, is gone)`
          : `taking over the unreadable run lock ${path}`,
      );
      continue;
    }
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    break;
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off("exit", release);
    const now = readText(path);
    if (now !== null && parseRecord(now)?.pid === record.pid && parseRecord(now)?.started === record.started) {
      try {
        unlinkSync(path);
      } catch {}
    }
  };
  process.on("exit", release);
  return { path, record, release };
}

/**
 * Removes a stale lock file whose text we read, without removing a fresh lock another process may have
 * written in the meantime: the file is renamed to a name of our own (atomic), and if what we moved is not
 * what we judged stale, it is put back (link fails rather than overwrite a newer lock). Returns whether
 * the stale lock was removed.
 */
function takeOver(path: string, staleText: string): boolean {
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false; // someone else removed it first
    throw e;
  }
  const stale = readText(aside) === staleText;
  if (!stale) {
    try {
      linkSync(aside, path);
    } catch {}
  }
  try {
    unlinkSync(aside);
  } catch {}
  return stale;
}
