// A torchrun for machines without Python: starts one process per local rank with torchrun's environment
// (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT), forwards
// SIGINT/SIGTERM to every rank, and when one rank fails ends the others and exits with that rank's code,
// repeating the end of its error output. No restarts (torchrun's --max_restarts 0, its default).
import { type ChildProcess, spawn } from "node:child_process";
import { writeSync } from "node:fs";
import { constants } from "node:os";
import { parseArgs } from "node:util";
import { parseInteger } from "./flags";

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  /** The program and its arguments: a .ts/.js/.mjs file runs under this runtime (bun), anything else as is. */
  command: string[];
}

export class LaunchUsageError extends Error {}

export const LAUNCH_HELP = `usage: bun scripts/launch.ts [--nproc_per_node N] [--nnodes N] [--node_rank R]
                            [--master_addr HOST] [--master_port PORT] -- PROGRAM [ARGS...]
  --nproc_per_node  processes on this machine, one per GPU (default 1)
  --nnodes          machines in the job (default 1)
  --node_rank       this machine's index, 0..nnodes-1 (default 0)
  --master_addr     rank 0's machine, where the rendezvous store listens (default 127.0.0.1)
  --master_port     its port (default 29500)
Ranks are node_rank * nproc_per_node + local rank; WORLD_SIZE is nnodes * nproc_per_node.`;

/** Parses the launcher's flags; everything after `--` (or from the first positional) is the program. */
export function parseLaunchArgs(argv: string[]): LaunchOptions | "help" {
  const cut = argv.indexOf("--");
  const own = cut >= 0 ? argv.slice(0, cut) : argv;
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: own,
      strict: true,
      allowPositionals: cut < 0,
      options: {
        nproc_per_node: { type: "string" },
        nnodes: { type: "string" },
        node_rank: { type: "string" },
        master_addr: { type: "string" },
        master_port: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }) as { values: Record<string, string | boolean | undefined>; positionals: string[] });
  } catch (e) {
    throw new LaunchUsageError((e as Error).message);
  }
  if (values.help) return "help";
  const int = (name: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = values[name];
    if (raw === undefined) return dflt;
    const v = parseInteger(String(raw));
    if (v === null || v < min || v > max) throw new LaunchUsageError(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    return v;
  };
  const nnodes = int("nnodes", 1, 1);
  const o: LaunchOptions = {
    nprocPerNode: int("nproc_per_node", 1, 1),
    nnodes,
    nodeRank: int("node_rank", 0, 0, nnodes - 1),
    masterAddr: String(values.master_addr ?? "127.0.0.1"),
    masterPort: int("master_port", 29500, 1, 65535),
    command: cut >= 0 ? argv.slice(cut + 1) : positionals,
  };
  if (o.masterAddr === "") throw new LaunchUsageError("--master_addr must not be empty");
  if (o.command.length === 0) throw new LaunchUsageError("no program to run: give it after `--` (e.g. -- scripts/train.ts --device cuda)");
  return o;
}

/** torchrun's variables for one local rank. */
export function rankEnv(o: LaunchOptions, localRank: number): Record<string, string> {
  return {
    RANK: String(o.nodeRank * o.nprocPerNode + localRank),
    LOCAL_RANK: String(localRank),
    WORLD_SIZE: String(o.nnodes * o.nprocPerNode),
    LOCAL_WORLD_SIZE: String(o.nprocPerNode),
    GROUP_RANK: String(o.nodeRank),
    MASTER_ADDR: o.masterAddr,
    MASTER_PORT: String(o.masterPort),
  };
}

const SCRIPT = /\.(ts|js|mjs|cjs|tsx)$/;
/** Milliseconds a rank gets to stop after SIGTERM before SIGKILL (the trainer checkpoints on SIGTERM). */
const GRACE_MS = 30_000;
/** How much of a failed rank's stderr the summary repeats. */
const TAIL_BYTES = 2000;

export interface LaunchIO {
  err(line: string): void;
  /** Every rank's stderr passes through here (the summary repeats the failed rank's last lines). */
  stderr(chunk: Buffer): void;
}

const defaultIO: LaunchIO = { err: (l) => console.error(l), stderr: (c) => process.stderr.write(c) };

/**
 * Runs the job on this node and resolves to the exit code: 0 when every rank succeeded; the first failed
 * rank's code otherwise (128 + signal for a rank killed by a signal); 130/143 after a forwarded SIGINT/SIGTERM.
 */
export function launch(o: LaunchOptions, io: LaunchIO = defaultIO): Promise<number> {
  const [prog, ...args] = o.command as [string, ...string[]];
  const argv = SCRIPT.test(prog) ? [process.execPath, prog, ...args] : [prog, ...args];
  const children: ChildProcess[] = [];
  const tails: string[] = [];
  let failed: { rank: number; code: number } | null = null;
  let stopSignal: NodeJS.Signals | null = null;
  let killTimer: ReturnType<typeof setTimeout> | null = null;
  const live = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  const endAll = (signal: NodeJS.Signals) => {
    for (const c of live()) c.kill(signal);
    killTimer ??= setTimeout(() => live().forEach((c) => c.kill("SIGKILL")), GRACE_MS);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopSignal) return void live().forEach((c) => c.kill("SIGKILL")); // a second signal: stop now
    stopSignal = signal;
    endAll(signal);
  };
  const onInt = () => onSignal("SIGINT");
  const onTerm = () => onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);

  return new Promise((resolve) => {
    let running = o.nprocPerNode;
    for (let local = 0; local < o.nprocPerNode; local++) {
      const env = rankEnv(o, local);
      tails.push("");
      // Each rank in its own process group: a terminal's Ctrl-C reaches the launcher only, which forwards it
      // once (the trainer takes a second SIGINT as "stop now, no checkpoint").
      // ARC_LAUNCHER_PID: ranks watch for this process to vanish (a SIGKILL forwards nothing) and stop.
      const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env, [LAUNCHER_PID_ENV]: String(process.pid) }, stdio: ["ignore", "inherit", "pipe"], detached: true });
      children.push(child);
      child.stderr!.on("data", (chunk: Buffer) => {
        io.stderr(chunk);
        tails[local] = (tails[local] + chunk.toString()).slice(-TAIL_BYTES);
      });
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (done) return; // a failed spawn reports "error" and may also report "close"
        done = true;
        const status = code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 1) : 1);
        if (status !== 0 && !failed && !stopSignal) {
          failed = { rank: Number(env.RANK), code: status };
          const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          io.err(`launch: rank ${env.RANK} ${how}; ending the other ranks`);
          const tail = tails[local]!.trim();
          if (tail) io.err(`launch: rank ${env.RANK}'s last error output:\n${tail}`);
          endAll("SIGTERM");
        }
        else if (stopSignal && status !== 0 && status !== 128 + SIGNAL_NUMBERS[stopSignal]!)
          io.err(`launch: rank ${env.RANK} ${signal ? `was killed by ${signal}` : `exited with code ${code}`} after ${stopSignal}`);
        if (--running === 0) {
          if (killTimer) clearTimeout(killTimer);
          process.off("SIGINT", onInt);
          process.off("SIGTERM", onTerm);
          resolve(failed ? failed.code : stopSignal ? 128 + SIGNAL_NUMBERS[stopSignal]! : 0);
        }
      };
      child.on("error", (e) => {
        io.err(`launch: could not start rank ${env.RANK} (${argv.join(" ")}): ${e.message}`);
        finish(127, null);
      });
      // "close", not "exit": it comes after the rank's stderr has been read to the end.
      child.on("close", (code, signal) => finish(code, signal));
    }
  });
}

/** Set in each rank's environment by launch(): the launcher's pid. */
export const LAUNCHER_PID_ENV = "ARC_LAUNCHER_PID";

/**
 * In a rank that launch() started: once the launcher is gone (killed with SIGKILL, it could forward
 * nothing; the rank is reparented), the rank stops as if the launcher had forwarded SIGTERM (the trainer
 * checkpoints and exits 143), and exits after the launcher's grace period if it has not by then. Checked
 * every `intervalMs` whenever the event loop runs (the trainer yields between batches; a rank waiting in a
 * collective for a rank that is gone fails at --dist_timeout). A process not started by launch() is left alone:
 * `nohup` or a shell's exit must not stop a run.
 */
export function watchLauncher(env: NodeJS.ProcessEnv = process.env, intervalMs = 1000): void {
  const pid = Number(env[LAUNCHER_PID_ENV]);
  if (!Number.isInteger(pid) || pid <= 1) return;
  // Gone: this process was reparented, or (a rank started through a wrapper, or one that started after
  // the launcher died) no process has the launcher's pid.
  const parent = process.ppid;
  const gone = () => {
    if (process.ppid !== parent) return true;
    try {
      process.kill(pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "ESRCH";
    }
  };
  const timer = setInterval(() => {
    if (!gone()) return;
    clearInterval(timer);
    setTimeout(() => process.exit(143), GRACE_MS).unref();
    // Its stderr was a pipe to the launcher: the note may have nowhere to go (EPIPE), the stop goes on.
    try {
      writeSync(2, `rank ${env.RANK ?? "?"}: the launcher (pid ${pid}) is gone; stopping as on SIGTERM\n`);
    } catch {}
    process.kill(process.pid, "SIGTERM");
  }, intervalMs);
  timer.unref();
}

/** The platform's signal numbers (a process ended by signal N exits 128 + N, as shells report it). */
const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = constants.signals;
