// Module: PyTorch's nn.Module for this binding. Parameters and submodules are registered under names
// that become the dotted state-dict keys ("layers.0.self_attn.q_proj.weight"), so a model's field
// names map 1:1 to checkpoint keys.
import { type DType, type Device, type Tensor, TorchError, keep, noGrad, scope } from "../torch";

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export class Module {
  training = true;
  private readonly _parameters = new Map<string, Tensor | null>();
  private readonly _buffers = new Map<string, { t: Tensor | null; persistent: boolean }>();
  private readonly _modules = new Map<string, Module>();

  /** Registers a trainable tensor (requiresGrad on, kept alive past scopes) and returns it. */
  registerParameter(name: string, t: Tensor | null, requiresGrad = true): Tensor {
    this.checkName(name);
    if (t) {
      keep(t);
      if (t.requiresGrad !== requiresGrad) t.requiresGrad = requiresGrad;
    }
    this._parameters.set(name, t);
    return t as Tensor;
  }

  /** Registers state that is not trained (e.g. running statistics, rotary tables). */
  registerBuffer(name: string, t: Tensor | null, persistent = true): Tensor {
    this.checkName(name);
    if (t) keep(t);
    this._buffers.set(name, { t, persistent });
    return t as Tensor;
  }

  registerModule<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    if (!(m instanceof Module)) throw new TorchError(`registerModule("${name}"): not a Module`);
    this._modules.set(name, m);
    return m;
  }

  private checkName(name: string): void {
    if (!name || name.includes(".")) throw new TorchError(`invalid name "${name}": must be non-empty and contain no "."`);
    if (this._parameters.has(name) || this._buffers.has(name) || this._modules.has(name))
      throw new TorchError(`"${name}" is already registered on ${this.constructor.name}`);
  }

  /** Replaces a registered parameter (e.g. to tie weights); the old one is not disposed. */
  setParameter(name: string, t: Tensor): void {
    if (!this._parameters.has(name)) throw new TorchError(`${this.constructor.name} has no parameter "${name}"`);
    this._parameters.set(name, keep(t));
  }

  *namedChildren(): Generator<[string, Module]> {
    yield* this._modules;
  }
  children(): Module[] {
    return [...this._modules.values()];
  }
  /** This module and every descendant, with dotted names ("" for this one). */
  *namedModules(prefix = ""): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, m] of this._modules) yield* m.namedModules(prefix ? `${prefix}.${n}` : n);
  }
  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }

  /** Parameters with dotted names; a tensor shared by two modules (tied weights) is listed once. */
  namedParameters(prefix = "", recurse = true): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    const mods = recurse ? [...this.namedModules(prefix)] : [[prefix, this] as [string, Module]];
    for (const [mp, m] of mods) {
      for (const [n, t] of m._parameters) {
        if (!t || seen.has(t)) continue;
        seen.add(t);
        out.push([mp ? `${mp}.${n}` : n, t]);
      }
    }
    return out;
  }
  parameters(recurse = true): Tensor[] {
    return this.namedParameters("", recurse).map(([, t]) => t);
  }
  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [mp, m] of this.namedModules(prefix)) {
      for (const [n, b] of m._buffers) if (b.t) out.push([mp ? `${mp}.${n}` : n, b.t]);
    }
    return out;
  }
  /** Number of parameter elements (trainable only when asked). */
  numParameters(trainableOnly = false): number {
    return this.parameters().filter((p) => !trainableOnly || p.requiresGrad).reduce((a, p) => a + p.numel(), 0);
  }

  /**
   * Parameters and persistent buffers by dotted name. The tensors are the module's own (not copies);
   * tied parameters appear under every name, as in PyTorch.
   */
  stateDict(prefix = ""): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [mp, m] of this.namedModules(prefix)) {
      const key = (n: string) => (mp ? `${mp}.${n}` : n);
      for (const [n, t] of m._parameters) if (t) out[key(n)] = t;
      for (const [n, b] of m._buffers) if (b.t && b.persistent) out[key(n)] = b.t;
    }
    return out;
  }

  /**
   * Copies values into this module's tensors (converting dtype/device as copy_ does). Shapes must
   * match; with strict (default) the key sets must match too, and the error lists what differs.
   */
  loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !(k in sd));
    const unexpectedKeys = Object.keys(sd).filter((k) => !(k in own));
    const mismatched: string[] = [];
    for (const [k, t] of Object.entries(own)) {
      const src = sd[k];
      if (src && src.shape.join(",") !== t.shape.join(",")) mismatched.push(`${k}: checkpoint [${src.shape}] vs model [${t.shape}]`);
    }
    const problems: string[] = [];
    if (mismatched.length) problems.push(`size mismatch for ${mismatched.length} key(s): ${listed(mismatched)}`);
    if (strict && missingKeys.length) problems.push(`missing key(s): ${listed(missingKeys)}`);
    if (strict && unexpectedKeys.length) problems.push(`unexpected key(s): ${listed(unexpectedKeys)}`);
    if (problems.length) throw new TorchError(`Error(s) in loading state dict for ${this.constructor.name}: ${problems.join("; ")}`);
    noGrad(() => {
      for (const [k, t] of Object.entries(own)) if (sd[k]) t.copy_(sd[k]);
    });
    return { missingKeys, unexpectedKeys };
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Sets requiresGrad on every parameter (freeze with false). */
  requiresGrad_(on = true): this {
    for (const p of this.parameters()) p.requiresGrad = on;
    return this;
  }

  /** Drops every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /**
   * Moves/casts parameters and buffers in place (the Tensor objects stay the same, as
   * `param.data = param.data.to(...)` in PyTorch). dtype applies to floating-point tensors only.
   */
  to(target: Device | DType | { device?: Device; dtype?: DType }): this {
    const spec = typeof target === "string" ? (target === "cpu" || target.startsWith("cuda") ? { device: target as Device } : { dtype: target as DType }) : target;
    const tensors = new Set<Tensor>([...this.parameters(), ...this.namedBuffers().map(([, t]) => t)]);
    noGrad(() => {
      for (const t of tensors) {
        const floating = t.dtype === "float32" || t.dtype === "float16" || t.dtype === "bfloat16" || t.dtype === "float64";
        const dtype = floating ? spec.dtype : undefined;
        if ((dtype === undefined || dtype === t.dtype) && (spec.device === undefined || sameDevice(spec.device, t.device))) continue;
        scope(() => {
          t.setData(t.to({ dtype, device: spec.device }));
        });
      }
    });
    return this;
  }

  /** Calls fn on this module and every descendant. */
  apply(fn: (m: Module) => void): this {
    for (const m of this.modules()) fn(m);
    return this;
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }
}

const sameDevice = (a: string, b: string) => (a === "cuda" ? "cuda:0" : a) === (b === "cuda" ? "cuda:0" : b);
const listed = (xs: string[]) => (xs.length > 12 ? `${xs.slice(0, 12).join(", ")}, ... (${xs.length} in all)` : xs.join(", "));
