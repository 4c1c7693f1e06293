// Containers and small function-modules: ModuleList, Sequential, Dropout, activations.
import { F, type Tensor } from "../torch";
import { Module } from "./module";

/** Submodules named "0", "1", ... (checkpoint keys like "layers.3.mlp.up_proj.weight"). */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  private readonly items: M[] = [];
  constructor(modules: M[] = []) {
    super();
    for (const m of modules) this.push(m);
  }
  push(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  at(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (!m) throw new RangeError(`ModuleList index ${i} out of range (length ${this.items.length})`);
    return m;
  }
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

interface Forward {
  forward(x: Tensor): Tensor;
}

/** Runs its modules in order. */
export class Sequential extends ModuleList<Module & Forward> {
  constructor(...modules: (Module & Forward)[]) {
    super(modules);
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this) y = m.forward(y);
    return y;
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (p < 0 || p > 1) throw new RangeError(`dropout probability must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return this.training && this.p > 0 ? F.dropout(x, this.p, true) : x;
  }
}

export class GELU extends Module {
  constructor(readonly approximate: "none" | "tanh" = "none") {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.gelu(x, this.approximate);
  }
}
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return F.silu(x);
  }
}
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}
