// Deterministic memory for native tensors.
//
// - `t.dispose()` frees now.
// - `scope(fn)` frees every tensor created while fn runs, except the ones fn returns (found in arrays
//   and plain objects) and the ones marked with `keep()`. Returned tensors move to the enclosing scope.
// - Outside any scope, or once kept, a tensor is registered with a FinalizationRegistry: a safety net
//   that frees it after garbage collection, not a way to manage memory (GC does not see native bytes).
// - A scope can also own a resource that is not a tensor (`own`: a checkpoint's tape entry). It lives as
//   long as something made after it does: when the scope ends and a tensor created after the resource
//   is returned, the resource moves to the enclosing scope (outside every scope, its owner keeps it);
//   otherwise it is freed. Kept tensors do not count.
import { N, TorchError } from "./native";

/** The part of Tensor the memory machinery needs; Tensor extends it. */
export class Handle {
  /** Native handle; -1 once disposed. */
  _h: number;
  /** Survives scope exits (parameters, optimizer state, caches). */
  _kept = false;
  /** Registered with the finalizer. */
  _fin = false;
  constructor(h: number) {
    this._h = h;
  }

  /** Frees the native tensor now. Safe to call twice. */
  dispose(): void {
    if (this._h < 0) return;
    N.dispose(this._h);
    this._h = -1;
    if (this._fin) {
      finalizer.unregister(this);
      this._fin = false;
    }
  }

  get isDisposed(): boolean {
    return this._h < 0;
  }
}

const finalizer = new FinalizationRegistry<number>((h) => {
  // Generation-checked natively: a handle freed and reused meanwhile is left alone.
  N.dispose(h);
});

const scopes: Handle[][] = [];
/** The innermost scope's list (null outside any scope): the hot path of every op reads it. */
let current: Handle[] | null = null;

/** What a scope owns besides tensors (torch.checkpoint's tape entries). */
export interface ScopedResource {
  /** Already released by its owner (e.g. the entry ran): the scope forgets it. */
  readonly done: boolean;
  /** The scope ended and nothing made after the resource survived it. */
  free(): void;
}
interface Owned {
  res: ScopedResource;
  /** Length of the scope's tensor list when the resource was registered (or moved in). */
  pos: number;
}
/** Per scope (parallel to `scopes`): its resources, null while it has none. */
const owned: (Owned[] | null)[] = [];

/**
 * Puts `res` in the innermost scope's care (see the header). Outside any scope it is not tracked: its
 * owner frees it.
 */
export function own(res: ScopedResource): void {
  const i = scopes.length - 1;
  if (i < 0) return;
  (owned[i] ??= []).push({ res, pos: scopes[i].length });
}

function registerFinalizer(t: Handle): void {
  if (!t._fin && t._h >= 0) {
    finalizer.register(t, t._h, t);
    t._fin = true;
  }
}

/** Called for every tensor made from a native result. */
export function track(t: Handle): void {
  if (current !== null) current.push(t);
  else registerFinalizer(t);
}

/** Marks a tensor to outlive every enclosing scope (until disposed or garbage collected). */
export function keep<T extends Handle>(t: T): T {
  t._kept = true;
  registerFinalizer(t);
  return t;
}

/** Tensors found in `value`: itself, array elements, plain-object and Map values (recursively). */
function collect(value: unknown, into: Set<Handle>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== "object") return;
  if (value instanceof Handle) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, into, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collect(v, into, depth + 1);
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    for (const k in value) collect((value as Record<string, unknown>)[k], into, depth + 1);
  }
}

function popScope(): Owned[] | null {
  scopes.pop();
  current = scopes[scopes.length - 1] ?? null;
  return owned.pop() ?? null;
}

function release(list: Handle[], survivors: Set<Handle> | null, resources: Owned[] | null): void {
  const parent = scopes[scopes.length - 1];
  const base = parent?.length ?? 0;
  // Index of the last returned tensor: resources registered before it may be needed by it.
  let last = -1;
  const dead: number[] = [];
  for (let i = 0; i < list.length; i++) {
    const t = list[i];
    if (t._h < 0 || t._kept) continue;
    if (survivors?.has(t)) {
      last = i;
      if (parent) parent.push(t);
      else registerFinalizer(t);
    } else {
      dead.push(t._h);
      t._h = -1;
    }
  }
  if (dead.length === 1) N.dispose(dead[0]);
  else if (dead.length > 1) N.disposeMany(dead);
  if (resources) releaseResources(resources, survivors !== null ? last : -1, base);
}

function releaseResources(resources: Owned[], last: number, base: number): void {
  const up = scopes.length - 1;
  let err: unknown = null;
  for (const o of resources) {
    if (o.res.done) continue;
    if (o.pos <= last) {
      // Outlives this scope: the enclosing one takes it (before the survivors it just got), or nobody does.
      if (up >= 0) (owned[up] ??= []).push({ res: o.res, pos: base });
      continue;
    }
    try {
      o.res.free();
    } catch (e) {
      err ??= e;
    }
  }
  if (err !== null) throw err;
}

/**
 * Runs `fn` and frees every tensor it created except what it returns (and kept tensors).
 * Also frees everything when fn throws. `fn` must be synchronous.
 */
export function scope<T>(fn: () => T): T {
  const mine: Handle[] = [];
  scopes.push(mine);
  owned.push(null);
  current = mine;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    release(mine, null, popScope());
    throw e;
  }
  const resources = popScope();
  if (result instanceof Promise) {
    release(mine, null, resources);
    throw new TorchError("torch.scope() takes a synchronous function (it returned a Promise)");
  }
  const survivors = new Set<Handle>();
  collect(result, survivors);
  release(mine, survivors, resources);
  return result;
}

/** Frees every tensor found in `value` (arrays, plain objects, Maps). */
export function dispose(value: unknown): void {
  const found = new Set<Handle>();
  collect(value, found);
  for (const t of found) t.dispose();
}

/** Native tensors alive now (held by JS handles). */
export const liveTensors = (): number => N.liveTensors();
