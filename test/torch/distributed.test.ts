// torch.distributed over c10d's Gloo: 1, 2 and 3 worker processes (test/helpers/dist-worker.ts) on
// 127.0.0.1 run scripted collectives and print their results; a rank that dies or stalls makes the
// others throw a TorchError within the group's timeout. Every run is bounded: a worker still alive at
// the bound is killed and the test fails (a hang is a failure, not a slow pass).
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { join } from "node:path";
import * as torch from "../../src/torch";
import { freePort } from "../../src/util/ports";

const ROOT = join(import.meta.dir, "..", "..");
const WORKER = join(ROOT, "test", "helpers", "dist-worker.ts");
const BOUND_MS = 150_000; // generous: 3 Bun processes loading LibTorch on a loaded 2-core machine
const TEST_MS = BOUND_MS + 30_000;

const D = torch.distributed;

interface Worker {
  code: number | null;
  signal: string | null;
  out: string;
  err: string;
  result: any;
}

/** Runs `n` ranks of the worker; resolves when all exited, or kills them all at the bound. */
async function runRanks(n: number, scenario: string, env: Record<string, string> = {}): Promise<{ workers: Worker[]; killed: boolean }> {
  const port = await freePort();
  let killed = false;
  const children = Array.from({ length: n }, (_, rank) =>
    spawn(process.execPath, [WORKER, scenario], {
      cwd: ROOT,
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(n), LOCAL_RANK: String(rank), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), OMP_NUM_THREADS: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const timer = setTimeout(() => {
    killed = true;
    for (const c of children) c.kill("SIGKILL");
  }, BOUND_MS);
  const workers = await Promise.all(
    children.map(
      (c) =>
        new Promise<Worker>((resolve) => {
          let out = "";
          let err = "";
          c.stdout.on("data", (d) => (out += d));
          c.stderr.on("data", (d) => (err += d));
          c.on("close", (code, signal) => {
            const line = out.split("\n").find((l) => l.startsWith("RESULT "));
            resolve({ code, signal, out, err, result: line ? JSON.parse(line.slice(7)) : null });
          });
        }),
    ),
  );
  clearTimeout(timer);
  return { workers, killed };
}

const describeWorkers = (ws: Worker[]): string => ws.map((w, r) => `rank ${r}: exit ${w.code} ${w.signal ?? ""}\n${w.out}\n${w.err.slice(-2000)}`).join("\n---\n");

// What rank r holds in every collective: base * (r + 1) (see dist-worker.ts).
const BASES: { dtype: string; shape: number[]; v: any }[] = [
  { dtype: "float32", shape: [3], v: [1, 2, 3] },
  { dtype: "float64", shape: [2, 2], v: [[1, 2], [3, 4]] },
  { dtype: "int64", shape: [5], v: [1, 2, 3, 4, 5] },
  { dtype: "float32", shape: [40], v: Array.from({ length: 40 }, (_, i) => i) },
  { dtype: "bfloat16", shape: [4], v: [1, 2, 3, 4] },
  { dtype: "float32", shape: [1], v: [7] },
  { dtype: "float32", shape: [3, 2], v: [[1, 4], [2, 5], [3, 6]] },
];
const mapDeep = (v: any, f: (x: number) => number): any => (Array.isArray(v) ? v.map((x) => mapDeep(x, f)) : f(v));

function expected(op: string, n: number) {
  const tri = (n * (n + 1)) / 2; // sum over ranks of (r + 1)
  return BASES.map(({ dtype, shape, v }) => {
    const int = dtype === "int64";
    const f = {
      sum: (x: number) => x * tri,
      avg: (x: number) => (int ? Math.floor((x * tri) / n) : (x * tri) / n),
      max: (x: number) => x * n,
      min: (x: number) => x,
    }[op]!;
    return { dtype, shape, v: mapDeep(v, f) };
  });
}

describe("torch.distributed (Gloo, CPU)", () => {
  for (const n of [1, 2, 3]) {
    test(
      `${n} rank${n > 1 ? "s" : ""}: allReduce sum/avg/max/min in small buckets over mixed dtypes, broadcast, allGather, allGatherObject, barrier`,
      async () => {
        const { workers, killed } = await runRanks(n, "collectives");
        if (killed) throw new Error(`workers still running after ${BOUND_MS} ms, killed:\n${describeWorkers(workers)}`);
        for (const [r, w] of workers.entries()) {
          if (w.code !== 0 || !w.result) throw new Error(`rank ${r} failed:\n${describeWorkers(workers)}`);
          const res = w.result;
          expect(res).toMatchObject({ rank: r, worldSize: n, localRank: r, initialized: true, barrier: true, afterDestroy: false });
          for (const op of ["sum", "avg", "max", "min"]) expect({ op, v: res[op] }).toEqual({ op, v: expected(op, n) });
          expect(res.sumOneBucket).toEqual(expected("sum", n));
          const src = Math.min(1, n - 1);
          expect(res.broadcastSrc).toBe(src);
          expect(res.broadcast).toEqual([
            { dtype: "float32", shape: [2], v: [src, src] },
            { dtype: "int64", shape: [1], v: [src * 10] },
            { dtype: "bfloat16", shape: [1], v: [src + 0.5] },
          ]);
          expect(res.allGather).toEqual(Array.from({ length: n }, (_, k) => ({ dtype: "int64", shape: [1, 2], v: [[k, k * 10]] })));
          expect(res.allGatherObject).toEqual(Array.from({ length: n }, (_, k) => ({ rank: k, s: "x".repeat(k), nested: [k, { ok: true }] })));
          if (n === 1) expect(res.mismatch).toBeNull();
          else {
            expect(res.mismatch.name).toBe("TorchError");
            expect(res.mismatch.message).toContain("allGather: every rank must pass the same shape and dtype");
          }
        }
      },
      TEST_MS,
    );
  }

  for (const [scenario, what, pattern] of [
    ["die", "a rank that exits before a collective", /allReduce: failed on rank \d of 3 .*(closed|reset|peer|Connection)/i],
    ["stall", "a rank that never joins a collective", /allReduce: failed on rank \d of 3 .*timed out/i],
  ] as const) {
    test(
      `${what}: the other ranks throw a TorchError within the timeout and exit non-zero`,
      async () => {
        const { workers, killed } = await runRanks(3, scenario, { DIST_TIMEOUT_MS: "5000" });
        if (killed) throw new Error(`workers still running after ${BOUND_MS} ms (a hang), killed:\n${describeWorkers(workers)}`);
        const last = workers[2];
        expect({ code: last.code, result: last.result }).toEqual({ code: 0, result: { rank: 2, left: true } });
        for (const [r, w] of workers.slice(0, 2).entries()) {
          if (!w.result?.error) throw new Error(`rank ${r} did not report an error:\n${describeWorkers(workers)}`);
          expect(w.code).toBe(3); // exited through the worker's catch: no crash, no signal
          expect(w.signal).toBeNull();
          expect(w.result.error.name).toBe("TorchError");
          expect(w.result.error.message).toMatch(pattern);
        }
      },
      TEST_MS,
    );
  }

  test(
    "a missing MASTER_PORT is an error naming the variable",
    async () => {
      const { workers, killed } = await runRanks(1, "env", { MASTER_PORT: "" });
      expect(killed).toBe(false);
      expect(workers[0].code).toBe(0);
      expect(workers[0].result.error.name).toBe("TorchError");
      expect(workers[0].result.error.message).toContain("MASTER_PORT is not set");
    },
    TEST_MS,
  );
});

describe("torch.distributed in this process (no group)", () => {
  const withEnv = (env: Record<string, string | undefined>, fn: () => void) => {
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    try {
      fn();
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  const full = { RANK: "0", WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "29500" };

  test("this build has Gloo", () => {
    expect(D.availableBackends()).toContain("gloo");
    expect(D.isAvailable()).toBe(true);
  });

  test("environment errors name the variable", () => {
    for (const [k, v, msg] of [
      ["RANK", undefined, "RANK is not set"],
      ["WORLD_SIZE", undefined, "WORLD_SIZE is not set"],
      ["MASTER_ADDR", undefined, "MASTER_ADDR is not set"],
      ["MASTER_PORT", undefined, "MASTER_PORT is not set"],
      ["MASTER_PORT", "http", 'MASTER_PORT="http" is not an integer'],
      ["MASTER_PORT", "70000", 'MASTER_PORT="70000" is not an integer in [1, 65535]'],
      ["RANK", "2", 'RANK="2" is not an integer in [0, 1]'],
      ["WORLD_SIZE", "0", 'WORLD_SIZE="0" is not an integer'],
    ] as const) {
      withEnv({ ...full, [k]: v }, () => {
        expect(() => D.initProcessGroup()).toThrow(torch.TorchError);
        expect(() => D.initProcessGroup()).toThrow(msg);
      });
    }
    withEnv({ LOCAL_RANK: "x" }, () => expect(() => D.localRank()).toThrow("LOCAL_RANK"));
    withEnv({ LOCAL_RANK: undefined }, () => expect(D.localRank()).toBe(0));
    expect(D.isInitialized()).toBe(false);
  });

  test("NCCL is built into CUDA builds (and only there); asking for it where it cannot run is refused clearly, as is an unknown backend; calls before init say so", () => {
    const o = { rank: 0, worldSize: 1, masterAddr: "127.0.0.1", masterPort: 1 };
    const cudaBuild = torch.version().cuda;
    expect(D.availableBackends()).toEqual(cudaBuild ? ["gloo", "nccl"] : ["gloo"]);
    if (!cudaBuild) expect(() => D.initProcessGroup({ ...o, backend: "nccl" })).toThrow("initProcessGroup: backend \"nccl\": this build has no NCCL");
    else if (torch.cuda.deviceCount() === 0) expect(() => D.initProcessGroup({ ...o, backend: "nccl" })).toThrow(/backend "nccl": device 0 is not one of this machine's 0 GPU/);
    expect(() => D.initProcessGroup({ ...o, backend: "nccl", device: 99 })).toThrow(cudaBuild ? /device 99 is not one of this machine's/ : /this build has no NCCL/);
    expect(() => D.initProcessGroup({ ...o, backend: "mpi" as any })).toThrow('backend must be "gloo" or "nccl"');
    expect(() => D.rank()).toThrow("not initialized");
    expect(() => D.worldSize()).toThrow("not initialized");
    const t = torch.ones([2]);
    expect(() => D.allReduce([t])).toThrow(/^allReduce: the process group is not initialized/);
    expect(() => D.barrier()).toThrow("barrier: the process group is not initialized");
    expect(() => D.allGather(t)).toThrow("allGather: the process group is not initialized");
    expect(() => D.allReduce([t], { bucketBytes: 0 })).toThrow("bucketBytes must be a positive integer");
    t.dispose();
  });
});
