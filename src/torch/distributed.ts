// torch.distributed: collectives between processes over LibTorch's own c10d (a TCPStore rendezvous, and
// ProcessGroupGloo on CPU tensors or, in CUDA builds, ProcessGroupNCCL on the rank's GPU), shaped like PyTorch's:
//   torch.distributed.initProcessGroup();           // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from torchrun
//   torch.distributed.allReduce(grads, { op: "avg" });
//   torch.distributed.destroyProcessGroup();
// Every call blocks until the collective is done on this rank. Each one is bounded by the group's
// timeout (timeoutMs): a timeout or a peer that died throws a TorchError instead of hanging.
import { fromTypedArray } from "./creation";
import type { Device } from "./dtype";
import { scope } from "./memory";
import { N, TorchError } from "./native";
import { handleOf } from "./args";
import { type Tensor, wrapAll } from "./tensor";

export type Backend = "gloo" | "nccl";
export type ReduceOp = "sum" | "avg" | "max" | "min";

export interface InitOptions {
  /** "gloo" (CPU tensors; the default) or "nccl" (CUDA tensors on `device`; CUDA builds with NCCL). */
  backend?: Backend;
  /** nccl: this rank's GPU index (default: $LOCAL_RANK). */
  device?: number;
  /** Bound on the rendezvous and on every collective, in ms (default 30 minutes, like PyTorch). */
  timeoutMs?: number;
  /** This process's rank in [0, worldSize) (default: $RANK). */
  rank?: number;
  /** Number of processes (default: $WORLD_SIZE). */
  worldSize?: number;
  /** Host of rank 0's store (default: $MASTER_ADDR). */
  masterAddr?: string;
  /** Port of rank 0's store (default: $MASTER_PORT). */
  masterPort?: number;
}

/** PyTorch's default process-group timeout. */
export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;
/** The default bucket size of allReduce and broadcast (PyTorch DDP's 25 MiB). */
export const DEFAULT_BUCKET_BYTES = 25 * 2 ** 20;

const ENV_HINT = "(torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; or pass them to initProcessGroup)";

function intFromEnv(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = process.env[name];
  if (v === undefined || v.trim() === "") throw new TorchError(`initProcessGroup: ${name} is not set ${ENV_HINT}`);
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || n < min || n > max) throw new TorchError(`initProcessGroup: ${name}=${JSON.stringify(v)} is not an integer in [${min}, ${max}]`);
  return n;
}

function checkInt(what: string, n: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(n) || n < min || n > max) throw new TorchError(`initProcessGroup: ${what} ${n} is not an integer in [${min}, ${max}]`);
  return n;
}

// ARC_DIST_DEBUG=1 prints every collective with its caller to stderr: ranks that disagree on the order
// of collectives wait on each other until the timeout, and the two traces show where they parted.
const TRACE = !!process.env.ARC_DIST_DEBUG;
const callerOf = (stack: string | undefined): string =>
  (stack ?? "").split("\n").slice(3).map((l) => l.trim().replace(/^at /, "")).find((l) => !l.includes("/torch/")) ?? "?";

/** Runs one native call, naming the API function in its error instead of the native one. */
function call<T>(name: string, fn: () => T): T {
  if (TRACE) process.stderr.write(`[rank ${N.distIsInitialized() ? N.distRank() : "?"}] ${name} from ${callerOf(new Error().stack)}\n`);
  try {
    return fn();
  } catch (e) {
    if (e instanceof TorchError && /^dist\w+: /.test(e.message)) throw new TorchError(`${name}: ${e.message.replace(/^dist\w+: /, "")}`);
    throw e;
  }
}

/** Which backends this build of the addon has. */
export function availableBackends(): Backend[] {
  const [gloo, nccl] = N.distBackends() as number[];
  return [...(gloo ? ["gloo" as const] : []), ...(nccl ? ["nccl" as const] : [])];
}
/** Whether this build has torch.distributed at all (Gloo's headers were found at build time). */
export const isAvailable = (): boolean => availableBackends().length > 0;

/**
 * Joins the process group: rank 0 serves a TCPStore at masterAddr:masterPort and waits for all
 * worldSize ranks to connect, then every rank builds a Gloo group over it. Blocks until every rank has
 * joined or timeoutMs passed. Missing or invalid environment variables are errors naming the variable.
 */
export function initProcessGroup(opts: InitOptions = {}): void {
  const backend = opts.backend ?? "gloo";
  const worldSize = opts.worldSize !== undefined ? checkInt("worldSize", opts.worldSize, 1) : intFromEnv("WORLD_SIZE", 1);
  const rank = opts.rank !== undefined ? checkInt("rank", opts.rank, 0, worldSize - 1) : intFromEnv("RANK", 0, worldSize - 1);
  const masterAddr = opts.masterAddr ?? process.env.MASTER_ADDR;
  if (!masterAddr) throw new TorchError(`initProcessGroup: MASTER_ADDR is not set ${ENV_HINT}`);
  const masterPort = opts.masterPort !== undefined ? checkInt("masterPort", opts.masterPort, 1, 65535) : intFromEnv("MASTER_PORT", 1, 65535);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs >= 1)) throw new TorchError(`initProcessGroup: timeoutMs must be positive, not ${timeoutMs}`);
  // Under torchrun (2.x) its agent serves the store on MASTER_PORT and says so; every rank is then a client,
  // under the attempt's prefix, as PyTorch's own env:// rendezvous does.
  const agentStore = opts.masterPort === undefined && process.env.TORCHELASTIC_USE_AGENT_STORE === "True";
  const prefix = agentStore ? `/worker/attempt_${process.env.TORCHELASTIC_RESTART_COUNT ?? "0"}` : "";
  try {
    const device = backend === "nccl" ? (opts.device ?? localRank()) : -1;
  call("initProcessGroup", () => N.distInit(backend, rank, worldSize, masterAddr, masterPort, Math.round(timeoutMs), agentStore, prefix, device));
  groupDevice = backend === "nccl" ? (`cuda:${device}` as Device) : "cpu";
  } catch (e) {
    // A torchrun of another PyTorch than this LibTorch serves a store whose protocol it may not speak.
    if (agentStore && e instanceof TorchError)
      throw new TorchError(`${e.message} (under torchrun, whose agent serves the store: use the torchrun of the PyTorch this addon was built against, LibTorch ${N.version()}, or scripts/launch.ts)`);
    throw e;
  }
}

let groupDevice: Device = "cpu";
/** Where the group's collectives take their tensors: "cpu" (gloo) or this rank's "cuda:N" (nccl). */
export function device(): Device {
  requireGroup("device");
  return groupDevice;
}

/** Leaves the process group (its threads stop); initProcessGroup may be called again. */
export const destroyProcessGroup = (): void => call("destroyProcessGroup", () => N.distDestroy());
export const isInitialized = (): boolean => N.distIsInitialized();

function requireGroup(op: string): void {
  if (!N.distIsInitialized()) throw new TorchError(`${op}: the process group is not initialized (call torch.distributed.initProcessGroup() first)`);
}
/** This process's rank in the group. */
export function rank(): number {
  requireGroup("rank");
  return N.distRank();
}
/** The number of processes in the group. */
export function worldSize(): number {
  requireGroup("worldSize");
  return N.distWorldSize();
}
/** The rank among the processes on this machine: $LOCAL_RANK (torchrun sets it), 0 when unset. */
export function localRank(): number {
  const v = process.env.LOCAL_RANK;
  if (v === undefined || v.trim() === "") return 0;
  if (!/^\s*\d+\s*$/.test(v)) throw new TorchError(`localRank: LOCAL_RANK=${JSON.stringify(v)} is not a non-negative integer`);
  return Number(v);
}

export interface AllReduceOptions {
  /** "sum" (default), "avg" (sum / worldSize; integer tensors divide with floor), "max" or "min". */
  op?: ReduceOp;
  /** Tensors of one dtype travel flattened in buffers of at most this many bytes (default 25 MiB). */
  bucketBytes?: number;
}

const bucketArg = (b: number | undefined, op: string): number => {
  const v = b ?? DEFAULT_BUCKET_BYTES;
  if (!Number.isInteger(v) || v < 1) throw new TorchError(`${op}: bucketBytes must be a positive integer, not ${v}`);
  return v;
};

/**
 * Reduces the tensors across all ranks, in place. Tensors of one dtype are flattened into buckets
 * (one collective each); float16 and bfloat16 are reduced in float32 and cast back. Tensors on device() (the CPU for gloo, this rank's GPU for nccl).
 */
export function allReduce(tensors: Tensor[], opts: AllReduceOptions = {}): void {
  if (tensors.length === 0) return;
  const hs = tensors.map((t) => handleOf(t, "allReduce tensor"));
  call("allReduce", () => N.distAllReduce(hs, opts.op ?? "sum", bucketArg(opts.bucketBytes, "allReduce")));
}

/** Copies rank src's tensors into every rank's tensors of the same shapes and dtypes, in place. */
export function broadcast(tensors: Tensor[], src = 0, opts: { bucketBytes?: number } = {}): void {
  if (tensors.length === 0) return;
  const hs = tensors.map((t) => handleOf(t, "broadcast tensor"));
  call("broadcast", () => N.distBroadcast(hs, src, bucketArg(opts.bucketBytes, "broadcast")));
}

/** Waits until every rank got here. */
export const barrier = (): void => call("barrier", () => N.distBarrier());

/** Every rank's t, in rank order. All ranks must pass the same shape and dtype (an error otherwise). */
export function allGather(t: Tensor): Tensor[] {
  const ht = handleOf(t, "allGather tensor");
  return wrapAll(call("allGather", () => N.distAllGather(ht)));
}

/** Every rank's obj, in rank order: JSON over a uint8 tensor (so only what JSON keeps survives). */
export function allGatherObject(obj: unknown): unknown[] {
  const bytes = new TextEncoder().encode(JSON.stringify(obj) ?? "null");
  return scope(() => {
    const dev = { device: device() };
    const sizes = allGather(fromTypedArray(new BigInt64Array([BigInt(bytes.length)]), [1], dev)).map((t) => Number(t.item()));
    const max = Math.max(1, ...sizes);
    const padded = new Uint8Array(max);
    padded.set(bytes);
    const parts = allGather(fromTypedArray(padded, [max], dev)).map((p) => p.to({ device: "cpu" }));
    const dec = new TextDecoder();
    return parts.map((p, r) => JSON.parse(dec.decode((p.data() as Uint8Array).subarray(0, sizes[r]))));
  });
}
