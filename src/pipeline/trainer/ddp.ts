// Data-parallel training (PyTorch DDP's semantics) over torch.distributed, switched on by WORLD_SIZE > 1:
//   - a global batch of batch_size x world examples is the single-process batch of that size: the same
//     slice of the epoch's permutation, rank r taking its rows r, r + W, r + 2W, ... (DistributedSampler's
//     interleaving, without its padding: a short last batch leaves some ranks fewer rows, or none);
//   - each rank backpropagates its rows with the loss divided by its own batch_size x grad_accum, and the
//     gradients are averaged across ranks, so the update is the single process's sum over the global batch
//     divided by the global batch size;
//   - the state a batch changes besides the weights (memory writes and its EMA threshold, the refiner's
//     reward baseline, the read counters) is gathered from every rank and applied by each in global row
//     order, so every rank holds the same memory and baseline as the single process would.
// The refiner's noise is keyed by (seed, step, global row) (refiner.ts' actionNoise), so a row's action does
// not depend on which rank computed it. The collectives take tensors on the group's device (dist.device():
// the CPU for Gloo, the rank's GPU for NCCL); tensors elsewhere travel through copies.
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import type { StateUpdates } from "../system/training-step";

const dist = torch.distributed;

/** This process's place in a data-parallel run. */
export interface DataParallel {
  rank: number;
  world: number;
  localRank: number;
}

/**
 * The data-parallel place from torchrun's environment, or null for a single process: WORLD_SIZE unset, or
 * 1 unless `alone` (a group of one, for --dist_backend given explicitly: what a world-size-1 run costs).
 */
export function dataParallelFromEnv(env: NodeJS.ProcessEnv = process.env, alone = false): DataParallel | null {
  const w = env.WORLD_SIZE;
  if (w === undefined || w.trim() === "" || (w.trim() === "1" && !alone)) return null;
  const num = (name: string, min: number, max: number): number => {
    const v = env[name];
    const n = Number(v);
    if (v === undefined || !/^\s*\d+\s*$/.test(v) || n < min || n > max)
      throw new RangeError(`data-parallel training: ${name}=${v === undefined ? "(unset)" : JSON.stringify(v)} is not an integer in [${min}, ${max}] (torchrun or scripts/launch.ts set RANK, LOCAL_RANK, WORLD_SIZE)`);
    return n;
  };
  const world = num("WORLD_SIZE", 1, 1 << 20);
  const rank = num("RANK", 0, world - 1);
  const localRank = env.LOCAL_RANK === undefined ? 0 : num("LOCAL_RANK", 0, world - 1);
  return { rank, world, localRank };
}

/** The global rows of a batch of `size` that `rank` of `world` takes: rank, rank + world, ... */
export function rankRows(size: number, rank: number, world: number): number[] {
  const rows: number[] = [];
  for (let g = rank; g < size; g += world) rows.push(g);
  return rows;
}

/** Runs a collective on the group's device: tensors elsewhere go through copies, written back afterwards. */
function onCommDevice(tensors: Tensor[], fn: (onDevice: Tensor[]) => void): void {
  const dev = dist.device();
  torch.noGrad(() =>
    torch.scope(() => {
      const moved = tensors.map((t) => (t.device === dev ? t : t.to({ device: dev })));
      fn(moved);
      tensors.forEach((t, i) => {
        if (moved[i] !== t) t.copy_(moved[i]);
      });
    }),
  );
}

/** Every rank's copy of t (same shape on every rank), on t's device. */
export function allGatherAnywhere(t: Tensor): Tensor[] {
  const dev = dist.device();
  return torch.scope(() => dist.allGather(t.device === dev ? t : t.to({ device: dev })).map((x) => (x.device === t.device ? x : x.to({ device: t.device }))));
}

/** Rank src's values into every rank's parameters (DDP's initial broadcast). */
export function broadcastParameters(params: Tensor[], src = 0): void {
  onCommDevice(params, (host) => dist.broadcast(host, src));
}

/**
 * Averages the parameters' gradients across ranks, in buckets, in place. A parameter that got a gradient
 * on some rank but not this one (a rank with no rows this batch) contributes zeros; one that got none on
 * any rank keeps no gradient, so the optimizer skips it exactly as a single process would. Inf and NaN
 * survive the average, so every rank's GradScaler finds the same inf.
 */
export function averageGradients(params: Tensor[]): void {
  if (params.length === 0) return;
  torch.noGrad(() =>
    torch.scope(() => {
      const grads = params.map((p) => p.grad);
      const has = torch.fromTypedArray(Int32Array.from(grads, (g) => (g ? 1 : 0)), [params.length]);
      onCommDevice([has], (t) => dist.allReduce(t, { op: "max" }));
      const any = has.data() as Int32Array;
      const reduced: Tensor[] = [];
      params.forEach((p, i) => {
        if (!any[i]) return;
        let g = grads[i];
        if (!g) {
          p.grad = torch.zeros(p.shape, { dtype: p.dtype, device: p.device });
          g = p.grad!;
        }
        reduced.push(g);
      });
      onCommDevice(reduced, (host) => dist.allReduce(host, { op: "avg" }));
    }),
  );
}

/** Where global row g lives: rank g % world, local row floor(g / world). */
const globalOrder = (counts: number[]): [number, number][] => {
  const world = counts.length;
  const total = counts.reduce((a, b) => a + b, 0);
  return Array.from({ length: total }, (_, g) => [g % world, Math.floor(g / world)] as [number, number]);
};

/**
 * Every rank's state updates as one, in global row order. `counts[r]` is rank r's rows this batch (every
 * rank knows them from the batch layout); `u` is null on a rank with no rows.
 */
export function gatherStateUpdates(u: StateUpdates | null, counts: number[], dims: { prompt: number; action: number; device: torch.Device }): StateUpdates {
  const max = Math.max(...counts);
  // allGather needs one shape on every rank: pad to the largest rank's rows (float32: exact for p and a).
  const padded = (t: Tensor | undefined, width: number): Tensor => {
    const out = torch.zeros([max, width]);
    if (t && t.shape[0] > 0) out.narrow(0, 0, t.shape[0]).copy_(t.to({ dtype: "float32", device: "cpu" }));
    return out;
  };
  const ps = allGatherAnywhere(padded(u?.p, dims.prompt));
  const as = allGatherAnywhere(padded(u?.actions, dims.action));
  const host = dist.allGatherObject(u ? { rAfter: u.rAfter, r: u.r, hits: u.hits } : { rAfter: [], r: [], hits: [] }) as { rAfter: number[]; r: number[]; hits: number[] }[];
  const order = globalOrder(counts);
  const pick = (parts: Tensor[]) => torch.stack(order.map(([r, j]) => parts[r].select(0, j))).to({ device: dims.device });
  const dtype = u?.p.dtype ?? "float32";
  return {
    p: pick(ps).to({ dtype }),
    actions: pick(as),
    rAfter: order.map(([r, j]) => host[r].rAfter[j]),
    r: order.map(([r, j]) => host[r].r[j]),
    hits: order.map(([r, j]) => host[r].hits[j]),
  };
}

/**
 * Every rank's rows of a global batch (its logs, its validation results), in global row order: JSON, so
 * a NaN (a non-finite example's log) arrives as null.
 */
export function gatherRows<T>(rows: T[], counts: number[]): T[] {
  const all = dist.allGatherObject(rows) as T[][];
  return globalOrder(counts).map(([r, j]) => all[r][j]);
}

/** Each rank's row count when `size` rows are spread as rankRows spreads them. */
export const rowCounts = (size: number, world: number): number[] => Array.from({ length: world }, (_, r) => rankRows(size, r, world).length);

/** Whether any rank asks to stop (so all stop at the same step; one tiny collective). */
export function anyRank(flag: boolean): boolean {
  return torch.scope(() => {
    const t = torch.fromTypedArray(Int32Array.of(flag ? 1 : 0), [1]);
    onCommDevice([t], (x) => dist.allReduce(x, { op: "max" }));
    return (t.data() as Int32Array)[0] === 1;
  });
}

/** Rank src's JSON-able value on every rank. */
export function shareFrom<T>(value: T, src = 0): T {
  return dist.allGatherObject(value)[src] as T;
}
