// Data-parallel training on the CPU over Gloo (127.0.0.1), as users start it: scripts/launch.ts running
// ranks of the trainer (test/helpers/train-rank.ts is scripts/train.ts plus one line of each rank's final
// state). Shows: 2 ranks x batch 2 train what 1 process x batch 4 trains, every rank ends in the same state,
// only rank 0 writes the run folder, a 2-rank stop + resume equals a straight run, a killed rank ends the
// others with an error (and the last checkpoint resumes), and a resume with another world size is refused.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { syntheticDataset } from "../../src/arc";
import * as torch from "../../src/torch";
import { DEFAULTS, type TrainConfig } from "../../src/pipeline/config/train-config";
import { runExamples } from "../../src/pipeline/config/run-setup";
import { type DataParallel, dataParallelFromEnv, rankRows } from "../../src/pipeline/trainer/ddp";
import { actionNoise } from "../../src/pipeline/system/refiner";
import { latestVerifiedCheckpoint, verifyCheckpoint } from "../../src/pipeline/run/checkpoint";
import { readMetrics } from "../../src/pipeline/run/run-folder";
import { lineWatcher } from "../helpers/lines";
import { freePort } from "../../src/util/ports";
import { CPU, ROOT, tempFolders } from "../helpers/scripts";

const fresh = tempFolders("arc-ddp-test-");
const LAUNCH = join(ROOT, "scripts", "launch.ts");
const RANK = join(ROOT, "test", "helpers", "train-rank.ts");
const BOUND_MS = 240_000; // two Bun processes loading LibTorch and the tiny model on a loaded 2-core machine
// The smoke system, one LibTorch thread per process, no LoRA dropout (a 2x2 batch draws other dropout
// masks than a 1x4 one; everything else in a batch is keyed by the example's row).
const COMMON = ["--preset", "smoke", ...CPU, "--num_threads", "1", "--lora_dropout", "0", "--log_every", "1"];
/** A collective that waits longer than this fails the rank (the default, 30 minutes, would outlast the test). */
const TIMEOUT = ["--dist_timeout", "60"];

interface RankState {
  rank: number;
  weights: string;
  memory: string;
  entries: number;
  theta: number;
  baseline: number;
}
interface Run {
  code: number | null;
  out: string;
  err: string;
  states: RankState[];
}

const parseStates = (out: string): RankState[] =>
  out
    .split("\n")
    .filter((l) => l.startsWith("STATE "))
    .map((l) => JSON.parse(l.slice(6)) as RankState)
    .sort((a, b) => a.rank - b.rank);

function finish(r: ReturnType<typeof spawnSync>, what: string): Run {
  const run = { code: r.status, out: String(r.stdout ?? ""), err: String(r.stderr ?? ""), states: parseStates(String(r.stdout ?? "")) };
  if (run.code !== 0) throw new Error(`${what} exited ${run.code} (${r.signal ?? "no signal"}):\n${run.err.slice(-3000)}`);
  return run;
}
/** One process (no process group). */
const single = (args: string[]): Run => finish(spawnSync(process.execPath, [RANK, ...COMMON, ...args], { cwd: ROOT, encoding: "utf8", timeout: BOUND_MS }), "the single process");
/** N ranks through the launcher. */
async function ranks(n: number, args: string[], opts: { expectFail?: boolean } = {}): Promise<Run> {
  const port = await freePort();
  const r = spawnSync(process.execPath, [LAUNCH, "--nproc_per_node", String(n), "--master_port", String(port), "--", RANK, ...(args.includes("--resume") ? [] : COMMON), ...TIMEOUT, ...args], { cwd: ROOT, encoding: "utf8", timeout: BOUND_MS });
  if (opts.expectFail) return { code: r.status, out: String(r.stdout ?? ""), err: String(r.stderr ?? ""), states: [] };
  return finish(r, `the ${n}-rank launch`);
}

const onlyRun = (base: string): string => {
  const names = readdirSync(base).filter((n) => n.startsWith("arc_"));
  expect(names.length).toBe(1);
  return join(base, names[0]);
};
const ckpt = (runDir: string, step: number) => join(runDir, "checkpoints", `step_${String(step).padStart(9, "0")}`);
const batches = (runDir: string) => readMetrics(runDir).filter((r) => r.type === "batch");

/** Every file under a folder, relative to it (times in names replaced by T). */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      // TensorBoard's file name carries the time it was made.
      else out.push(relative(dir, join(d, e.name)).replace(/tfevents\.\d+\./, "tfevents.T."));
    }
  };
  walk(dir);
  return out.sort();
}

/** Per tensor of two safetensors files: ||a - b|| / ||a|| (0 for two zero tensors). */
function relativeErrors(a: string, b: string): Map<string, number> {
  return torch.scope(() => {
    const ta = torch.safetensors.loadFile(a);
    const tb = torch.safetensors.loadFile(b);
    expect(Object.keys(tb).sort()).toEqual(Object.keys(ta).sort());
    return new Map(
      Object.keys(ta).map((k) => {
        const x = ta[k].double();
        const d = x.sub(tb[k].double()).norm().item();
        const n = x.norm().item();
        return [k, n === 0 ? d : d / n] as [string, number];
      }),
    );
  });
}

describe("data-parallel pieces", () => {
  test("the environment: none or WORLD_SIZE=1 is a single process; bad values are named", () => {
    expect(dataParallelFromEnv({})).toBeNull();
    expect(dataParallelFromEnv({ WORLD_SIZE: "1", RANK: "0" })).toBeNull();
    expect(dataParallelFromEnv({ WORLD_SIZE: "4", RANK: "3", LOCAL_RANK: "1" })).toEqual<DataParallel>({ world: 4, rank: 3, localRank: 1 });
    expect(() => dataParallelFromEnv({ WORLD_SIZE: "2" })).toThrow(/RANK=\(unset\)/);
    expect(() => dataParallelFromEnv({ WORLD_SIZE: "2", RANK: "2" })).toThrow(/RANK="2" is not an integer in \[0, 1\]/);
    expect(() => dataParallelFromEnv({ WORLD_SIZE: "two", RANK: "0" })).toThrow(/WORLD_SIZE="two"/);
  });

  test("a global batch's rows: interleaved over ranks, each row once, short batches leave ranks short", () => {
    expect([0, 1].map((r) => rankRows(4, r, 2))).toEqual([[0, 2], [1, 3]]);
    expect([0, 1, 2].map((r) => rankRows(7, r, 3))).toEqual([[0, 3, 6], [1, 4], [2, 5]]);
    expect([0, 1, 2].map((r) => rankRows(1, r, 3))).toEqual([[0], [], []]);
  });

  test("policy noise is a function of (seed, step, row): the same rows give the same numbers in any batch", () => {
    torch.scope(() => {
      const whole = actionNoise({ seed: 7, step: 3 }, 4, 5, "cpu");
      const odd = actionNoise({ seed: 7, step: 3, rows: [1, 3] }, 2, 5, "cpu");
      expect(odd.tolist()).toEqual([whole.select(0, 1).tolist(), whole.select(0, 3).tolist()]);
      // Another step or seed: other numbers; roughly standard normal.
      expect(actionNoise({ seed: 7, step: 4 }, 4, 5, "cpu").tolist()).not.toEqual(whole.tolist());
      const big = actionNoise({ seed: 1, step: 1 }, 200, 32, "cpu");
      expect(Math.abs(big.mean().item())).toBeLessThan(0.05);
      expect(Math.abs(big.std().item() - 1)).toBeLessThan(0.05);
    });
  });
});

describe("data-parallel training (2 ranks over Gloo on 127.0.0.1)", () => {
  test(
    "2 ranks x batch 2 == 1 process x batch 4 after 6 optimizer steps: weights, logged losses, memory and threshold; only rank 0 writes",
    async () => {
      const [oneDir, twoDir] = [fresh("one"), fresh("two")];
      // The plain shuffled order, in which the tolerances below were measured. Grouped by prompt length both
      // runs still train the same examples and log the same losses, but the first six batches are other
      // examples, after which two LoRA tensors sat at 1.4e-4 (Adam divides rounding-level gradients by their
      // own size), over the 1e-4 below.
      const order = ["--group_by_length", "false"];
      const one = single([...order, "--batch_size", "4", "--max_batches", "6", "--run_dir", oneDir]);
      const two = await ranks(2, [...order, "--batch_size", "2", "--max_batches", "6", "--run_dir", twoDir]);
      const [a, b] = [onlyRun(oneDir), onlyRun(twoDir)];

      // Both ranks end in the same state, bit for bit.
      expect(two.states.map((s) => s.rank)).toEqual([0, 1]);
      expect(two.states[1]).toEqual({ ...two.states[0], rank: 1 });
      // ... and the memory, threshold and baseline the single process reached.
      const [s1, s2] = [one.states[0], two.states[0]];
      expect(s2.entries).toBe(s1.entries);
      expect(s2.theta).toBeCloseTo(s1.theta, 9);
      expect(s2.baseline).toBeCloseTo(s1.baseline, 9);

      // The weights and memory tensors: float32 sums in another order, so equal to rounding. The memory to
      // 1e-5 relative; the weights to 1e-4, as with the short last batch below: LoRA's B starts at zero and
      // Adam divides each gradient element by its own size, and with the input prior (the agent's head starts
      // at a tenth of its scale) more of LoRA's gradient elements sit at rounding level (measured: 1.4e-5 for
      // one LoRA B). A lost or doubled row would be off by far more, in every tensor.
      for (const [file, tol] of [["model.safetensors", 1e-4], ["memory.safetensors", 1e-5]] as const) {
        const errs = relativeErrors(join(ckpt(a, 6), file), join(ckpt(b, 6), file));
        expect(errs.size).toBeGreaterThan(0);
        expect([...errs].filter(([, e]) => !(e <= tol))).toEqual([]);
      }
      // Logged per batch: the global batch's numbers, as the single process logged them.
      const [ma, mb] = [batches(a), batches(b)];
      expect(mb.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(mb.map((r) => r.step)).toEqual(ma.map((r) => r.step));
      for (const [i, r] of ma.entries()) {
        for (const k of ["loss", "efe", "acc", "mask", "d_size", "rl_reward", "qwen_grad", "theta", "memory"] as const) {
          expect({ step: r.step, k, rel: Math.abs(mb[i][k] - r[k]) / Math.max(1e-9, Math.abs(r[k])) < 1e-5 }).toEqual({ step: r.step, k, rel: true });
        }
      }
      // Validation, sharded over the ranks and gathered: the single process's figures.
      const vals = (dir: string) => readMetrics(dir).filter((r) => r.type === "val");
      const [va, vb] = [vals(a), vals(b)];
      expect(vb.length).toBe(1);
      expect(va.length).toBe(1);
      for (const k of ["examples", "exact_count", "pass2_count", "size_acc_count", "tasks"] as const) expect(vb[0][k]).toBe(va[0][k]);
      for (const k of ["cell_acc", "cell_acc_before"] as const) expect(vb[0][k]).toBeCloseTo(va[0][k], 6);
      // The batch lines on stdout (rank 0's alone) read the same.
      const lines = (out: string) => out.split("\n").filter((l) => l.startsWith("[batch"));
      expect(lines(two.out)).toEqual(lines(one.out));

      // Rank 0 alone wrote the run folder: the same files as the single process's, each written once.
      expect(files(b)).toEqual(files(a));
      const records = readFileSync(join(b, "metrics.jsonl"), "utf8").trim().split("\n");
      expect(new Set(records).size).toBe(records.length);
      expect(two.err).not.toMatch(/rank 1/);
    },
    2 * BOUND_MS,
  );

  test(
    "a 2-rank run stopped at batch 10 and resumed to 20 equals a straight 2-rank run to 20; another world size is refused",
    async () => {
      const [straightDir, stopDir] = [fresh("straight"), fresh("stopped")];
      const args = ["--batch_size", "2", "--ckpt_every", "5", "--keep_last", "5"];
      const straight = await ranks(2, [...args, "--max_batches", "20", "--run_dir", straightDir]);
      await ranks(2, [...args, "--max_batches", "10", "--run_dir", stopDir]);
      const run = onlyRun(stopDir);
      const resumed = await ranks(2, ["--resume", run, ...CPU, "--max_batches", "20"]);
      expect(resumed.err).toContain(`resuming ${run} from ${ckpt(run, 10)} (step 10,`);
      expect(resumed.states[0]).toEqual(straight.states[0]);
      expect(resumed.states[1]).toEqual({ ...straight.states[0], rank: 1 });
      const want = onlyRun(straightDir);
      for (const file of ["model.safetensors", "optimizer.safetensors", "memory.safetensors", "rng.safetensors"]) {
        expect(readFileSync(join(ckpt(run, 20), file)).equals(readFileSync(join(ckpt(want, 20), file)))).toBe(true);
      }
      expect(batches(run).map((r) => [r.step, r.loss])).toEqual(batches(want).map((r) => [r.step, r.loss]));

      // Resumed by one process, or by three: an error naming both sizes, before any work; nothing changes.
      const before = files(run);
      const alone = spawnSync(process.execPath, [RANK, "--resume", run, ...CPU, "--max_batches", "30"], { cwd: ROOT, encoding: "utf8", timeout: BOUND_MS });
      expect(alone.status).not.toBe(0);
      expect(alone.stderr).toMatch(/trained with 2 data-parallel process\(es\) and this launch has 1/);
      const three = await ranks(3, ["--resume", run, ...CPU, "--max_batches", "30"], { expectFail: true });
      expect(three.code).not.toBe(0);
      expect(three.err).toMatch(/trained with 2 data-parallel process\(es\) and this launch has 3 \(WORLD_SIZE\); resume it with --nproc_per_node 2/);
      expect(files(run)).toEqual(before);
    },
    5 * BOUND_MS,
  );

  test(
    "a SIGINT that reaches one rank during validation stops every rank's validation at its next batch of examples, unrecorded; rank 0 checkpoints",
    async () => {
      const base = fresh("val-stop");
      const port = await freePort();
      const TRAIN = join(ROOT, "scripts", "train.ts");
      // Test-time training in validation (20 steps a task) makes it last long enough to be stopped in.
      const args = [TRAIN, ...COMMON, ...TIMEOUT, "--batch_size", "2", "--max_batches", "2", "--val_fraction", "0.3", "--val_max", "400", "--val_ttt_steps", "20", "--run_dir", base];
      const env = (rank: number) => ({ ...process.env, WORLD_SIZE: "2", RANK: String(rank), LOCAL_RANK: String(rank), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) });
      const procs = [0, 1].map((r) => Bun.spawn([process.execPath, ...args], { cwd: ROOT, env: env(r), stdout: "pipe", stderr: "pipe" }));
      const out0 = lineWatcher(procs[0].stdout);
      const errs = procs.map((p) => new Response(p.stderr).text());
      try {
        if ((await out0.next("[batch    2]", 0)) === null) throw new Error(`rank 0 exited early: ${(await errs[0]).slice(-2000)}`);
        await Bun.sleep(500); // validating by now (108 examples with test-time training take far longer)
        procs[1].kill("SIGINT"); // only rank 1 is told
        const codes = await Promise.race([Promise.all(procs.map((p) => p.exited)), Bun.sleep(BOUND_MS).then(() => "hung" as const)]);
        expect(codes).toEqual([143, 130]); // rank 0 was not signalled itself: it reports the stop as SIGTERM's
      } finally {
        for (const p of procs) p.kill("SIGKILL");
      }
      // Rank 0 speaks for the run (the other ranks print only their errors).
      const m = /a stop on another rank: validation at step 2 stopped after (\d+) of (\d+) examples \(not recorded\)/.exec(await errs[0]);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeLessThan(Number(m![2])); // ended early, not after the whole shard
      const run = onlyRun(base);
      expect(readMetrics(run).filter((r) => r.type === "val")).toEqual([]);
      expect(latestVerifiedCheckpoint(run)?.step).toBe(2);
    },
    2 * BOUND_MS,
  );

  test(
    "a rank killed mid-run: the other exits with an error within the timeout; rank 0's last checkpoint is intact and --resume continues",
    async () => {
      const base = fresh("killed");
      const port = await freePort();
      const args = [RANK, ...COMMON, "--batch_size", "2", "--ckpt_every", "2", "--max_batches", "400", "--run_dir", base, "--dist_timeout", "30"];
      const env = (rank: number) => ({ ...process.env, WORLD_SIZE: "2", RANK: String(rank), LOCAL_RANK: String(rank), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port) });
      const procs = [0, 1].map((r) => Bun.spawn([process.execPath, ...args], { cwd: ROOT, env: env(r), stdout: "pipe", stderr: "pipe" }));
      const out0 = lineWatcher(procs[0].stdout);
      const err0 = new Response(procs[0].stderr).text();
      try {
        // Once rank 0 has logged a few batches (so a checkpoint or two exist), rank 1 dies.
        for (let i = 0; i < 5; i++) if ((await out0.next("[batch")) === null) throw new Error(`rank 0 exited early: ${(await err0).slice(-2000)}`);
        procs[1].kill("SIGKILL");
        const t0 = performance.now();
        const code = await Promise.race([procs[0].exited, Bun.sleep(90_000).then(() => "hung" as const)]);
        expect(code).not.toBe("hung");
        expect(code).not.toBe(0);
        expect(performance.now() - t0).toBeLessThan(90_000);
        expect(await err0).toMatch(/train-rank \(rank 0\): .*failed on rank 0 of 2/);
      } finally {
        for (const p of procs) p.kill("SIGKILL");
      }
      const run = onlyRun(base);
      const latest = latestVerifiedCheckpoint(run);
      expect(latest).not.toBeNull();
      expect(verifyCheckpoint(latest!.dir)).toMatchObject({ ok: true });
      const resumed = await ranks(2, ["--resume", run, ...CPU, "--max_batches", String(latest!.step + 2)]);
      expect(resumed.err).toContain(`resuming ${run} from ${latest!.dir} (step ${latest!.step},`);
      expect(resumed.states[1]).toEqual({ ...resumed.states[0], rank: 1 });
      expect(latestVerifiedCheckpoint(run)!.step).toBe(latest!.step + 2);
    },
    3 * BOUND_MS,
  );
});

// torchrun's agent serves the store itself (TORCHELASTIC_USE_AGENT_STORE): every rank is its client. Its
// protocol is its PyTorch's, so the test runs torchrun (`python -m torch.distributed.run`, which is what the
// torchrun script runs) from the venv of the LibTorch the addon was built against (scripts/setup.sh --torch
// pip-* records it in .libtorch); Debian's LibTorch has no Python beside it.
const torchrun = (() => {
  try {
    const torchDir = readFileSync(join(ROOT, ".libtorch"), "utf8").trim();
    const python = join(torchDir, "..", "..", "..", "..", "bin", "python");
    return existsSync(python) ? [python, "-m", "torch.distributed.run"] : null;
  } catch {
    return null;
  }
})();
if (!torchrun) console.error("ddp.test: no Python venv beside this build's LibTorch (.libtorch): the torchrun test reports itself skipped");

describe.skipIf(!torchrun)("torchrun --no-python (the torchrun of this build's PyTorch)", () => {
  test(
    "2 ranks under torchrun train as under scripts/launch.ts",
    async () => {
      const [viaTorchrun, viaLaunch] = [fresh("torchrun"), fresh("launch")];
      const args = ["--batch_size", "2", "--max_batches", "4"];
      const port = await freePort();
      const r = spawnSync(torchrun![0], [...torchrun!.slice(1), "--nproc_per_node", "2", "--master_port", String(port), "--no-python", process.execPath, RANK, ...COMMON, ...TIMEOUT, ...args, "--run_dir", viaTorchrun], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: BOUND_MS,
      });
      const a = finish(r, "torchrun");
      const b = await ranks(2, [...args, "--run_dir", viaLaunch]);
      expect(a.states.map((s) => s.rank)).toEqual([0, 1]);
      expect(a.states).toEqual(b.states);
      expect(batches(onlyRun(viaTorchrun)).map((x) => x.loss)).toEqual(batches(onlyRun(viaLaunch)).map((x) => x.loss));
    },
    3 * BOUND_MS,
  );
});

/** A split folder of synthetic tasks whose training examples (after the validation split) number 1 mod 4. */
function shortLastBatchData(): { dir: string; examples: number } {
  for (let i = 0; i < 400; i++) {
    const ds = syntheticDataset({ training: 3 + (i % 8), evaluation: 2, seed: Math.floor(i / 8) });
    const examples = runExamples(ds, { ...DEFAULTS, val_max: 8 } as TrainConfig).train.length;
    if (examples % 4 !== 1) continue;
    const dir = fresh("short-data");
    for (const [split, list] of [["training", ds.training], ["evaluation", ds.evaluation]] as const) {
      mkdirSync(join(dir, split));
      for (const t of list) writeFileSync(join(dir, split, `${t.id}.json`), JSON.stringify({ train: t.train, test: t.test }));
    }
    return { dir, examples };
  }
  throw new Error("no small synthetic dataset with 1 mod 4 training examples");
}

describe("a short last batch", () => {
  test(
    "an epoch whose last global batch has one example (rank 1 gets none) trains what one process trains",
    async () => {
      const data = shortLastBatchData();
      const [oneDir, twoDir] = [fresh("short-one"), fresh("short-two")];
      const common = ["--data", data.dir, "--epochs", "1", "--val_max", "8"];
      single([...common, "--batch_size", "4", "--run_dir", oneDir]);
      const two = await ranks(2, [...common, "--batch_size", "2", "--run_dir", twoDir]);
      expect(two.states[1]).toEqual({ ...two.states[0], rank: 1 });
      const [a, b] = [onlyRun(oneDir), onlyRun(twoDir)];
      const last = Math.ceil(data.examples / 4);
      const end = (dir: string) => readdirSync(join(dir, "checkpoints")).filter((n) => n.startsWith("step_")).sort().at(-1)!;
      expect(end(b)).toBe(end(a));
      expect(end(a)).toBe(`step_${String(last).padStart(9, "0")}`);
      // 1e-4, not 1e-5: LoRA's B starts at zero, and Adam's first steps divide each gradient element by its
      // own size, so elements whose gradient is at rounding level turn float32 sum-order differences into
      // visible ones (a lost or doubled row would be off by far more, in every tensor).
      for (const file of ["model.safetensors", "memory.safetensors"]) {
        const errs = relativeErrors(join(a, "checkpoints", end(a), file), join(b, "checkpoints", end(b), file));
        expect([...errs].filter(([, e]) => !(e <= 1e-4))).toEqual([]);
        const worst = [...errs].sort((x, y) => y[1] - x[1])[0];
        console.error(`short last batch, ${file}: worst relative difference ${worst[1].toExponential(2)} (${worst[0]})`);
      }
      const epochs = (dir: string) => readMetrics(dir).filter((r) => r.type === "epoch");
      expect(epochs(b).length).toBe(1);
      expect(Math.abs(epochs(b)[0].loss - epochs(a)[0].loss) / Math.abs(epochs(a)[0].loss)).toBeLessThan(1e-5);
    },
    2 * BOUND_MS,
  );
});

describe("a process group of one (--dist_backend given with WORLD_SIZE=1)", () => {
  test(
    "trains bit for bit what a process without a group trains",
    async () => {
      const [alone, group] = [fresh("alone"), fresh("group-of-one")];
      const args = ["--batch_size", "3", "--max_batches", "4"];
      single([...args, "--run_dir", alone]);
      const one = await ranks(1, [...args, "--dist_backend", "gloo", "--run_dir", group]);
      expect(one.err).toContain("over 1 ranks");
      const [a, b] = [onlyRun(alone), onlyRun(group)];
      for (const file of ["model.safetensors", "optimizer.safetensors", "memory.safetensors"]) {
        expect(readFileSync(join(ckpt(b, 4), file)).equals(readFileSync(join(ckpt(a, 4), file)))).toBe(true);
      }
      expect(batches(b).map((r) => r.loss)).toEqual(batches(a).map((r) => r.loss));
    },
    2 * BOUND_MS,
  );
});
