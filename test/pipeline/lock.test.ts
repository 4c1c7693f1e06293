// The run lock in one process and across processes: taken atomically, refused while its holder lives
// (naming it), released on exit, taken over (with a message) when the holder is gone or its pid reused.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { LOCK_FILE, RunLockedError, acquireRunLock, holderAlive, processStartTicks } from "../../src/pipeline/run/lock";

const root = mkdtempSync(join(tmpdir(), "lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(root, `run-${n++}`);
  mkdirSync(d);
  return d;
};
/** The pid of a process that has exited (and was reaped). */
function deadPid(): number {
  const p = Bun.spawnSync(["true"]);
  return p.pid;
}

describe("run lock", () => {
  test("taken with pid and host, refused a second time, released", () => {
    const dir = fresh();
    const lock = acquireRunLock(dir, { argv: ["train.ts", "--resume", dir] });
    const rec = JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"));
    expect(rec).toMatchObject({ pid: process.pid, host: hostname(), argv: ["train.ts", "--resume", dir] });
    expect(rec.startTicks).toBe(processStartTicks(process.pid));
    expect(() => acquireRunLock(dir)).toThrow(RunLockedError);
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    lock.release(); // idempotent
    acquireRunLock(dir).release();
  });

  test("a lock of a live process elsewhere is refused, naming pid, host and command", async () => {
    const dir = fresh();
    const child = Bun.spawn(["sleep", "60"]);
    try {
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: child.pid, host: hostname(), started: "2026-12-01T10:00:00.000Z", startTicks: processStartTicks(child.pid), argv: ["train.ts", "--resume", "R"] }));
      expect(() => acquireRunLock(dir)).toThrow(new RegExp(`is in use by another trainer \\(pid ${child.pid} on ${hostname()}, since 2026-12-01T10:00:00.000Z: train.ts --resume R\\); wait for it to finish or stop it \\(kill ${child.pid}\\)`));
      // Another host: its processes cannot be checked from here, so the lock holds, and the message says how to clear it.
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: "elsewhere", started: "x", startTicks: null, argv: [] }));
      expect(() => acquireRunLock(dir)).toThrow(/pid 1 on elsewhere.*or delete .*train\.lock if that process is gone/);
    } finally {
      child.kill();
      await child.exited;
    }
  });

  test("a stale lock (its process gone, or its pid reused by another process) is taken over with a message", () => {
    const dir = fresh();
    const dead = deadPid();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: dead, host: hostname(), started: "2026-12-01T10:00:00.000Z", startTicks: 1, argv: [] }));
    const told: string[] = [];
    const lock = acquireRunLock(dir, { onTakeover: (m) => told.push(m) });
    expect(told).toEqual([`taking over the stale run lock ${join(dir, LOCK_FILE)} (pid ${dead} on ${hostname()}, since 2026-12-01T10:00:00.000Z, is gone)`]);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    lock.release();
    // pid 1 runs, but it started long before this record says: a reused pid, not the trainer.
    const reused = { pid: 1, host: hostname(), started: "x", startTicks: (processStartTicks(1) ?? 0) + 12345, argv: [] };
    expect(holderAlive(reused)).toBe(processStartTicks(1) === null);
    if (processStartTicks(1) !== null) {
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify(reused));
      acquireRunLock(dir, { onTakeover: (m) => told.push(m) }).release();
      expect(told.at(-1)).toMatch(/stale run lock .*pid 1 /);
    }
    // A file that is not a lock record (garbage, an empty file) is waited on briefly, then taken over.
    writeFileSync(join(dir, LOCK_FILE), "");
    acquireRunLock(dir, { onTakeover: (m) => told.push(m) }).release();
    expect(told.at(-1)).toMatch(/taking over the unreadable run lock/);
  });

  test("of 6 processes racing for one lock, exactly one wins; the others name it", async () => {
    const dir = fresh();
    const script = join(root, "race.ts");
    writeFileSync(
      script,
      `import { acquireRunLock } from ${JSON.stringify(join(import.meta.dir, "../../src/pipeline/run/lock.ts"))};
       try { acquireRunLock(process.argv[2]); console.log("won"); await Bun.sleep(3000); } catch (e) { console.log("lost: " + e.message); }`,
    );
    const procs = Array.from({ length: 6 }, () => Bun.spawn([process.execPath, script, dir], { stdout: "pipe" }));
    const outs = await Promise.all(procs.map((p) => new Response(p.stdout).text()));
    const won = outs.filter((o) => o.startsWith("won"));
    expect(won.length).toBe(1);
    const winner = procs[outs.findIndex((o) => o.startsWith("won"))].pid;
    for (const o of outs.filter((x) => !x.startsWith("won"))) expect(o).toContain(`in use by another trainer (pid ${winner} `);
    // The winner's exit released it.
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  }, 60_000);
});
