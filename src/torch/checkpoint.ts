// torch.checkpoint (torch.utils.checkpoint.checkpoint): activation recomputation, as a deferred tape.
//
//   const y = torch.checkpoint((x) => block.forward(x), x); // y: a leaf; only x is kept for backward
//   loss(y).backward();                                     // recomputes block with gradient, continues into x
//
// LibTorch's autograd engine runs backward in C++ (on CUDA, on its device threads), which cannot call back
// into JS, so a checkpointed segment cannot be an autograd node. Instead:
// - Forward. `checkpoint(fn, ...inputs)` runs fn under noGrad (inside its own scope, so its
//   activations are freed at once) and returns fn's floating-point output tensors as fresh leaves that
//   require grad. It records a tape entry: fn, the inputs (detached, in the same arrays and plain objects),
//   the ones that required grad as they were (to continue into their graph), the output leaves, the
//   autocast state (CPU and CUDA) and the RNG states (CPU, and each CUDA device among the inputs), so
//   that dropout draws the same masks again (PyTorch's preserve_rng_state).
// - Backward. After Tensor.backward's native pass, the tape drains, newest entry first. An entry whose
//   output leaves got gradients puts its RNG states back (and the current ones back afterwards), enters
//   its autocast state, recomputes fn with gradient from the saved inputs (made leaves that require grad
//   where the original did), and backpropagates the leaves' gradients through the recomputed outputs:
//   parameters in fn accumulate their .grad as usual, and the saved inputs get theirs. One more backward
//   feeds those to the original inputs: into the graph that made them, down to an older entry's leaves,
//   whose entry runs next. A checkpoint nested in fn makes its entry during the recomputation; it runs
//   before the outer entry hands on its inputs' gradients.
//
// Rules and limits:
// - An input that requires grad must reach the loss only through the checkpoint. The loss's backward
//   frees the graph it goes through; if it also went through the graph that made the input (the input
//   is used outside fn too), feeding the input's gradient later would cross that graph a second time.
//   Put such uses in the segment (e.g. the residual add of a block).
// - Only Tensor.backward runs the tape. torch.grad (autograd.grad) does not: its gradients stop at the
//   leaves, as if the segment were a constant. createGraph (double backward) is not supported.
// - fn must compute the same thing again: tensors it reads from its closure (parameters are kept) must
//   still be alive and unchanged at backward; module training flags are read when it reruns; an input
//   changed in place in between is not noticed. Pass other tensors as inputs.
// - The leaves' .grad is cleared once their entry ran (PyTorch's outputs are not leaves and have none).
// - Memory. An entry belongs to the scope it was made in (torch.scope): it is freed once it ran, or
//   when that scope ends without returning anything made after it; returned, it moves to the enclosing
//   scope. Outside every scope it waits for a backward (or clearCheckpoints()). With retainGraph the
//   entries that ran stay, and run again at the next backward.
// - Under noGrad (or when grad mode is off) checkpoint just calls fn.
import { isFloating } from "./dtype";
import { type ScopedResource, keep, own, scope } from "./memory";
import { N, TorchError } from "./native";
import { enableGrad, noGrad } from "./ops";
import { Tensor, setAfterBackward } from "./tensor";

/** A tensor handle owned by a tape entry: outside every scope, freed by the entry. */
const owned = (handle: number): Tensor => keep(new Tensor(handle));

/** Copies `value` with each Tensor replaced by f(tensor) (in arrays and plain objects, as scopes see them). */
function mapTensors(value: unknown, f: (t: Tensor) => unknown, depth = 0): unknown {
  if (value instanceof Tensor) return f(value);
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => mapTensors(v, f, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const k in value) out[k] = mapTensors((value as Record<string, unknown>)[k], f, depth + 1);
  return out;
}

/** Floating-point tensors in `value`, in mapTensors' order. */
function floatingTensors(value: unknown): Tensor[] {
  const found: Tensor[] = [];
  mapTensors(value, (t) => {
    if (isFloating(t.dtype)) found.push(t);
    return t;
  });
  return found;
}

interface SavedInput {
  /** Detached from the original (same storage): what fn gets when it reruns. */
  saved: Tensor;
  /** The original, when it required grad: its gradient goes there. */
  original: Tensor | null;
}

interface AutocastState {
  device: "cpu" | "cuda";
  enabled: boolean;
  dtype: number;
}

const autocastDevices = (): ("cpu" | "cuda")[] => (N.builtWithCuda() ? ["cpu", "cuda"] : ["cpu"]);

/** Runs fn under the recorded autocast states (a device is touched only when it was on then or is now). */
function withAutocast<T>(states: AutocastState[], fn: () => T): T {
  const changed = states.filter((s) => s.enabled || N.autocastEnabled(s.device));
  if (changed.length === 0) return fn();
  const prev = changed.map((s) => ({ device: s.device, enabled: N.autocastEnabled(s.device) as boolean, dtype: N.autocastDtype(s.device) as number }));
  for (const s of changed) N.setAutocast(s.device, s.enabled, s.dtype);
  N.autocastIncrementNesting();
  try {
    return fn();
  } finally {
    if (N.autocastDecrementNesting() === 0) N.autocastClearCache();
    for (const p of prev) N.setAutocast(p.device, p.enabled, p.dtype);
  }
}

/** Backpropagates grads[i] from outs[i], all in one pass (sum of <out_i, grad_i> when several). */
function backwardAll(outs: Tensor[], grads: Tensor[], retainGraph: boolean): void {
  if (outs.length === 0) return;
  if (outs.length === 1) {
    N.backward(outs[0]._h, grads[0]._h, retainGraph, false);
    return;
  }
  const total = enableGrad(() => outs.map((o, i) => o.mul(grads[i]).sum().float()).reduce((a, b) => a.add(b)));
  N.backward(total._h, undefined, retainGraph, false);
}

let nextId = 0;
/** Entries not yet freed, oldest first. */
const pending: Entry[] = [];

class Entry implements ScopedResource {
  readonly id = nextId++;
  done = false;
  /** fn's arguments with every tensor replaced by its saved copy. */
  readonly args: unknown[];
  readonly inputs: SavedInput[] = [];
  /** Aliases of the output leaves (the caller may free its own handles). */
  leaves: Tensor[] = [];
  readonly autocast: AutocastState[];
  /** [device code, generator state] for the CPU and each CUDA device among the inputs. */
  readonly rng: [number, Tensor][] = [];

  constructor(
    readonly fn: (...args: any[]) => unknown,
    inputs: unknown[],
  ) {
    const devices = new Set<number>([-1]);
    this.args = mapTensors(inputs, (t) => {
      const saved = owned(N.detach(t._h));
      // to() to its own dtype and device is the tensor itself: a second handle on it.
      const original = t.requiresGrad ? owned(N.to(t._h)) : null;
      this.inputs.push({ saved, original });
      const dev: number = N.device(t._h);
      if (dev >= 0) devices.add(dev);
      return saved;
    }) as unknown[];
    for (const d of devices) this.rng.push([d, owned(N.getRngState(d))]);
    this.autocast = autocastDevices().map((device) => ({ device, enabled: N.autocastEnabled(device) as boolean, dtype: N.autocastDtype(device) as number }));
  }

  /** fn's result with each floating tensor replaced by a new leaf that requires grad. */
  outputsToLeaves(out: unknown): unknown {
    return mapTensors(out, (t) => {
      if (!isFloating(t.dtype)) return t;
      const leaf = t.detach();
      leaf.requiresGrad = true;
      this.leaves.push(owned(N.to(leaf._h)));
      return leaf;
    });
  }

  hasGradient(): boolean {
    return this.leaves.some((l) => (N.gradDtype(l._h) as number) >= 0);
  }

  /** Recomputes fn with gradient and backpropagates the leaves' gradients through it, then into the inputs. */
  run(retainGraph: boolean): void {
    scope(() => {
      const firstNested = nextId;
      const current = this.rng.map(([d]) => [d, N.getRngState(d)] as [number, number]);
      let outs: unknown;
      try {
        for (const [d, s] of this.rng) N.setRngState(d, s._h);
        for (const i of this.inputs) if (i.original) N.setRequiresGrad(i.saved._h, true);
        outs = enableGrad(() => withAutocast(this.autocast, () => this.fn(...this.args)));
      } finally {
        for (const [d, s] of current) {
          N.setRngState(d, s);
          N.dispose(s);
        }
      }
      const recomputed = floatingTensors(outs);
      if (recomputed.length !== this.leaves.length)
        throw new TorchError(`checkpoint: the recomputation returned ${recomputed.length} floating-point tensors, the forward ${this.leaves.length} (fn must compute the same thing again)`);
      const from: Tensor[] = [];
      const grads: Tensor[] = [];
      this.leaves.forEach((leaf, i) => {
        const g = leaf.grad;
        if (g && recomputed[i].requiresGrad) {
          from.push(recomputed[i]);
          grads.push(g);
        }
      });
      // Checkpoints nested in fn made entries just now; they run before the inputs' gradients are read,
      // and through the recomputed graph, which must outlive the first pass then.
      const nested = nextId > firstNested;
      backwardAll(from, grads, retainGraph || nested);
      if (nested) drain(firstNested, retainGraph);
      for (const leaf of this.leaves) N.setGrad(leaf._h);
      const into: Tensor[] = [];
      const inputGrads: Tensor[] = [];
      for (const i of this.inputs) {
        if (!i.original) continue;
        const g = i.saved.grad;
        N.setGrad(i.saved._h);
        N.setRequiresGrad(i.saved._h, false);
        if (g) {
          into.push(i.original);
          inputGrads.push(g);
        }
      }
      try {
        backwardAll(into, inputGrads, retainGraph);
      } catch (e) {
        const msg = (e as Error).message;
        if (!/second time|already been freed/.test(msg)) throw e;
        throw new TorchError(
          `checkpoint: an input's graph was already freed by an earlier backward. An input that requires grad must reach the loss only through the checkpoint; move its other uses into the segment (e.g. the residual add). ${msg.split("\n")[0]}`,
        );
      }
    });
  }

  free(): void {
    if (this.done) return;
    this.done = true;
    for (const i of this.inputs) {
      i.saved.dispose();
      i.original?.dispose();
    }
    for (const l of this.leaves) l.dispose();
    for (const [, s] of this.rng) s.dispose();
    this.leaves = [];
    const k = pending.indexOf(this);
    if (k >= 0) pending.splice(k, 1);
  }
}

/** Runs, newest first, every pending entry from id `minId` on whose leaves have gradients. */
function drain(minId: number, retainGraph: boolean): void {
  for (;;) {
    let e: Entry | undefined;
    for (let i = pending.length - 1; i >= 0 && pending[i].id >= minId; i--) {
      if (pending[i].hasGradient()) {
        e = pending[i];
        break;
      }
    }
    if (!e) return;
    try {
      e.run(retainGraph);
    } catch (err) {
      e.free();
      throw err;
    }
    if (!retainGraph) e.free();
  }
}

let draining = false;
setAfterBackward((retainGraph, createGraph) => {
  if (pending.length === 0 || draining) return;
  if (createGraph && pending.some((e) => e.hasGradient())) throw new TorchError("checkpoint: backward with createGraph (double backward) through a checkpoint is not supported");
  draining = true;
  try {
    drain(0, retainGraph);
  } finally {
    draining = false;
  }
});

/**
 * torch.utils.checkpoint.checkpoint: fn(...inputs) without keeping its activations; backward recomputes
 * them (one more forward of fn). Returns fn's result, its floating-point tensors as new leaves that
 * require grad. See the header of this file for how, and for the rules.
 */
export function checkpoint<A extends unknown[], R>(fn: (...args: A) => R, ...inputs: A): R {
  if (!N.isGradEnabled()) return fn(...inputs);
  const entry = new Entry(fn as (...args: any[]) => unknown, inputs);
  pending.push(entry);
  own(entry); // before the outputs join the scope: they are made after it
  try {
    const out = scope(() => noGrad(() => fn(...inputs)));
    return entry.outputsToLeaves(out) as R;
  } catch (e) {
    entry.free();
    throw e;
  }
}

/** Tape entries not yet run or freed (their tensors are alive). */
export const pendingCheckpoints = (): number => pending.length;

/** Frees every pending tape entry: their segments will get no gradient. */
export function clearCheckpoints(): void {
  for (const e of [...pending]) e.free();
}
