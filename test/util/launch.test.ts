// scripts/launch.ts: torchrun's environment per rank, one failed rank ending the job with its code and
// error, signals forwarded, bad flags refused before anything starts.
import { describe, expect, test } from "bun:test";
import path from "node:path";
import { parseLaunchArgs, rankEnv } from "../../src/util/launch";

const ROOT = path.join(import.meta.dir, "..", "..");
const LAUNCH = path.join(ROOT, "scripts", "launch.ts");
const CHILD = path.join(ROOT, "test", "helpers", "launch-child.ts");

async function run(args: string[], env: Record<string, string> = {}, signalAfter?: { text: string; count: number; signal: NodeJS.Signals }) {
  const proc = Bun.spawn([process.execPath, LAUNCH, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  let out = "";
  const reader = (async () => {
    const dec = new TextDecoder();
    let sent = false; // once: a second signal makes the launcher SIGKILL its ranks
    for await (const chunk of proc.stdout) {
      out += dec.decode(chunk);
      if (signalAfter && !sent && out.split(signalAfter.text).length - 1 === signalAfter.count) {
        sent = true;
        proc.kill(signalAfter.signal);
      }
    }
  })();
  const err = await new Response(proc.stderr).text();
  const code = await proc.exited;
  await reader;
  return { code, out, err, lines: out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)) };
}

describe("launch", () => {
  test("flags: torchrun's names and defaults; errors name the flag", () => {
    expect(parseLaunchArgs(["--", "x.ts", "--a", "1"])).toEqual({ nprocPerNode: 1, nnodes: 1, nodeRank: 0, masterAddr: "127.0.0.1", masterPort: 29500, command: ["x.ts", "--a", "1"] });
    expect(parseLaunchArgs(["--nproc_per_node", "4", "scripts/train.ts"])).toMatchObject({ nprocPerNode: 4, command: ["scripts/train.ts"] });
    expect(() => parseLaunchArgs(["--nproc_per_node", "0", "--", "x.ts"])).toThrow(/--nproc_per_node must be an integer in \[1,/);
    expect(() => parseLaunchArgs(["--nnodes", "2", "--node_rank", "2", "--", "x.ts"])).toThrow(/--node_rank must be an integer in \[0, 1\], got "2"/);
    expect(() => parseLaunchArgs(["--master_port", "70000", "--", "x.ts"])).toThrow(/--master_port/);
    expect(() => parseLaunchArgs(["--nproc_per_node", "2"])).toThrow(/no program to run/);
    expect(() => parseLaunchArgs(["--nprocs", "2", "--", "x.ts"])).toThrow(/nprocs/);
    const o = parseLaunchArgs(["--nnodes", "2", "--node_rank", "1", "--nproc_per_node", "3", "--master_addr", "10.0.0.1", "--master_port", "1234", "--", "x.ts"]);
    if (o === "help") throw new Error("help");
    expect(rankEnv(o, 2)).toEqual({ RANK: "5", LOCAL_RANK: "2", WORLD_SIZE: "6", LOCAL_WORLD_SIZE: "3", GROUP_RANK: "1", MASTER_ADDR: "10.0.0.1", MASTER_PORT: "1234" });
  });

  test("every rank starts with its environment and the program's arguments; all succeed: exit 0", async () => {
    const r = await run(["--nnodes", "2", "--node_rank", "1", "--nproc_per_node", "2", "--master_port", "29999", "--", CHILD, "--epochs", "2"]);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
    const envs = r.lines.map((l) => l.env).sort((a, b) => Number(a.RANK) - Number(b.RANK));
    expect(envs).toEqual([
      { RANK: "2", LOCAL_RANK: "0", WORLD_SIZE: "4", LOCAL_WORLD_SIZE: "2", GROUP_RANK: "1", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "29999" },
      { RANK: "3", LOCAL_RANK: "1", WORLD_SIZE: "4", LOCAL_WORLD_SIZE: "2", GROUP_RANK: "1", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "29999" },
    ]);
    expect(r.lines.map((l) => l.argv)).toEqual([["--epochs", "2"], ["--epochs", "2"]]);
  }, 60_000);

  test("a rank that fails ends the others; the launcher exits with its code and repeats its error", async () => {
    const r = await run(["--nproc_per_node", "3", "--", CHILD], { FAIL_RANK: "1", WAIT: "1" });
    expect(r.code).toBe(3);
    expect(r.err).toContain("launch: rank 1 exited with code 3; ending the other ranks");
    expect(r.err).toContain("launch: rank 1's last error output:\nboom: rank 1 failed on purpose");
    // The two waiting ranks were told to stop (SIGTERM, the trainer's checkpoint-and-exit signal).
    expect(r.out).toContain("rank 0 got SIGTERM");
    expect(r.out).toContain("rank 2 got SIGTERM");
  }, 60_000);

  test("SIGINT to the launcher reaches every rank; it exits 130", async () => {
    const r = await run(["--nproc_per_node", "2", "--", CHILD], { WAIT: "1" }, { text: "waiting", count: 2, signal: "SIGINT" });
    expect(r.code).toBe(130);
    expect(r.out).toContain("rank 0 got SIGINT");
    expect(r.out).toContain("rank 1 got SIGINT");
    expect(r.err).toBe("");
  }, 60_000);

  test("bad flags: exit 2 with the reason and the usage, nothing started", async () => {
    const r = await run(["--nproc_per_node", "two", "--", CHILD]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('launch: --nproc_per_node must be an integer in [1, 9007199254740991], got "two"');
    expect(r.err).toContain("usage: bun scripts/launch.ts");
    expect(r.out).toBe("");
  }, 60_000);

  test("a program that cannot start: exit 127 naming it", async () => {
    const r = await run(["--", "/nonexistent/program"]);
    expect(r.code).toBe(127);
    expect(r.err).toContain("launch: could not start rank 0 (/nonexistent/program)");
  }, 60_000);
});

describe("ranks outlive no launcher (issue 26)", () => {
  test("launch.ts killed with SIGKILL: its ranks notice, stop as on SIGTERM and are gone within seconds", async () => {
    const { lineWatcher } = await import("../helpers/lines");
    const child = path.join(ROOT, "test", "helpers", "watch-child.ts");
    const proc = Bun.spawn([process.execPath, path.join(ROOT, "scripts", "launch.ts"), "--nproc_per_node", "2", "--", child], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const out = lineWatcher(proc.stdout);
    const pids: number[] = [];
    for (let i = 0; i < 2; i++) pids.push(Number((await out.next("rank ", i))!.split(" pid ")[1]));
    proc.kill("SIGKILL");
    await proc.exited;
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const t0 = performance.now();
    while (pids.some(alive) && performance.now() - t0 < 10_000) await Bun.sleep(100);
    const left = pids.filter(alive);
    for (const pid of left) process.kill(pid, "SIGKILL");
    expect(left).toEqual([]);
  }, 60_000);
});
