// Optimizers (Adam, AdamW with parameter groups) and gradient clipping. The update runs natively, one
// call per group: LibTorch's fused kernel where the build has one, else _foreach_* on CUDA and a loop on
// the CPU (adamKernel says which); state is exportable as tensors + JSON, the same whichever kernel runs.
import { type Device, deviceCode } from "./dtype";
import { keep } from "./memory";
import { N, TorchError } from "./native";
import { zerosLike } from "./ops.generated";
import { arg, handles } from "./args";
import type { Tensor } from "./tensor";

/** How the Adam update runs: one fused kernel, a few _foreach_* ops, or a loop over parameters. */
export type AdamKernel = "fused" | "foreach" | "loop";

/** The kernel the optimizers use for parameters on `device` in this build. */
export function adamKernel(device: Device = "cpu"): AdamKernel {
  return N.adamKernel(deviceCode(device)) as AdamKernel;
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}
export interface ParamGroupSpec extends AdamOptions {
  params: Tensor[];
  /** A label for logs and checkpoints (e.g. "agent", "qwen"). */
  name?: string;
}
export interface ParamGroup {
  params: Tensor[];
  name: string;
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}
interface ParamState {
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}
/** Optimizer state as checkpoint material: tensors for safetensors, the rest for JSON. */
export interface OptimizerState {
  tensors: Record<string, Tensor>;
  meta: {
    kind: string;
    paramGroups: { name: string; lr: number; betas: [number, number]; eps: number; weightDecay: number; params: number[] }[];
    steps: Record<string, number>;
  };
}

export class Adam {
  readonly paramGroups: ParamGroup[];
  readonly state = new Map<Tensor, ParamState>();
  protected readonly decoupled: boolean = false;
  protected readonly kind: string = "Adam";
  /** "auto" takes adamKernel(device); a forced kernel is for comparing them (same numbers to rounding). */
  kernel: AdamKernel | "auto" = "auto";

  constructor(params: Tensor[] | ParamGroupSpec[], defaults: AdamOptions = {}, defaultWeightDecay = 0) {
    const specs: ParamGroupSpec[] = params.length > 0 && !("params" in (params[0] as object)) || params.length === 0
      ? [{ params: params as Tensor[] }]
      : (params as ParamGroupSpec[]);
    const seen = new Set<Tensor>();
    this.paramGroups = specs.map((g, i) => {
      for (const p of g.params) {
        if (seen.has(p)) throw new TorchError(`optimizer: a parameter appears in more than one group (group ${i})`);
        seen.add(p);
      }
      const group: ParamGroup = {
        params: [...g.params],
        name: g.name ?? `group${i}`,
        lr: g.lr ?? defaults.lr ?? 1e-3,
        betas: g.betas ?? defaults.betas ?? [0.9, 0.999],
        eps: g.eps ?? defaults.eps ?? 1e-8,
        weightDecay: g.weightDecay ?? defaults.weightDecay ?? defaultWeightDecay,
      };
      if (!(group.lr >= 0)) throw new TorchError(`optimizer: invalid learning rate ${group.lr} in group "${group.name}"`);
      if (!(group.betas[0] >= 0 && group.betas[0] < 1 && group.betas[1] >= 0 && group.betas[1] < 1))
        throw new TorchError(`optimizer: invalid betas [${group.betas}] in group "${group.name}"`);
      return group;
    });
  }

  /** Every parameter, in group order. */
  params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  step(): void {
    for (const g of this.paramGroups) {
      const ps: Tensor[] = [];
      const m: Tensor[] = [];
      const v: Tensor[] = [];
      const steps: number[] = [];
      for (const p of g.params) {
        if (N.gradDtype(arg(p, "gradDtype", 0)) < 0) continue;
        let st = this.state.get(p);
        if (!st) {
          st = { step: 0, expAvg: keep(zerosLike(p)), expAvgSq: keep(zerosLike(p)) };
          this.state.set(p, st);
        }
        st.step += 1;
        ps.push(p);
        m.push(st.expAvg);
        v.push(st.expAvgSq);
        steps.push(st.step);
      }
      if (ps.length === 0) continue;
      N.adamStep(handles(ps, "adamStep", 0), handles(m, "adamStep", 1), handles(v, "adamStep", 2), steps, g.lr, g.betas[0], g.betas[1], g.eps, g.weightDecay, this.decoupled, this.kernel);
    }
  }

  /** Drops every gradient (set_to_none, PyTorch's default). */
  zeroGrad(): void {
    N.zeroGrad(handles(this.params(), "zeroGrad", 0));
  }

  stateDict(): OptimizerState {
    const index = new Map(this.params().map((p, i) => [p, i]));
    const tensors: Record<string, Tensor> = {};
    const steps: Record<string, number> = {};
    for (const [p, st] of this.state) {
      const i = index.get(p);
      if (i === undefined) continue;
      tensors[`state.${i}.exp_avg`] = st.expAvg;
      tensors[`state.${i}.exp_avg_sq`] = st.expAvgSq;
      steps[String(i)] = st.step;
    }
    let k = 0;
    const paramGroups = this.paramGroups.map((g) => ({
      name: g.name, lr: g.lr, betas: g.betas, eps: g.eps, weightDecay: g.weightDecay,
      params: g.params.map(() => k++),
    }));
    return { tensors, meta: { kind: this.kind, paramGroups, steps } };
  }

  /** Restores hyperparameters and state; the tensors are copied (the caller may dispose its own). */
  loadStateDict(sd: OptimizerState): void {
    const { meta, tensors } = sd;
    if (meta.paramGroups.length !== this.paramGroups.length)
      throw new TorchError(`optimizer state has ${meta.paramGroups.length} parameter groups, this optimizer has ${this.paramGroups.length}`);
    meta.paramGroups.forEach((mg, gi) => {
      const g = this.paramGroups[gi];
      if (mg.params.length !== g.params.length)
        throw new TorchError(`optimizer state group "${mg.name}" has ${mg.params.length} parameters, group "${g.name}" has ${g.params.length}`);
      Object.assign(g, { lr: mg.lr, betas: mg.betas, eps: mg.eps, weightDecay: mg.weightDecay });
    });
    const params = this.params();
    for (const st of this.state.values()) {
      st.expAvg.dispose();
      st.expAvgSq.dispose();
    }
    this.state.clear();
    for (const [key, step] of Object.entries(meta.steps)) {
      const i = Number(key);
      const p = params[i];
      const m = tensors[`state.${i}.exp_avg`];
      const v = tensors[`state.${i}.exp_avg_sq`];
      if (!p || !m || !v) throw new TorchError(`optimizer state for parameter ${i} is missing or has no tensors`);
      const want = p.shape.join("x");
      if (m.shape.join("x") !== want || v.shape.join("x") !== want)
        throw new TorchError(`optimizer state for parameter ${i} has shape ${m.shape.join("x")}, the parameter has ${want}`);
      const copyOf = (t: Tensor) => keep(t.to({ dtype: p.dtype, device: p.device, copy: true }));
      this.state.set(p, { step, expAvg: copyOf(m), expAvgSq: copyOf(v) });
    }
  }

  /** Frees the state tensors. */
  dispose(): void {
    for (const st of this.state.values()) {
      st.expAvg.dispose();
      st.expAvgSq.dispose();
    }
    this.state.clear();
  }
}

/** Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's defaults (weight decay 0.01). */
export class AdamW extends Adam {
  protected override readonly decoupled = true;
  protected override readonly kind = "AdamW";
  constructor(params: Tensor[] | ParamGroupSpec[], defaults: AdamOptions = {}) {
    super(params, defaults, 0.01);
  }
}

/**
 * Scales all gradients together so their total p-norm is at most maxNorm; returns the total norm
 * before clipping (torch.nn.utils.clip_grad_norm_). Parameters without gradients are skipped. One native
 * call, one host read (the returned norm).
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): number {
  return N.clipGradNorm(handles(params, "clipGradNorm", 0), maxNorm, normType);
}

/** The total p-norm of the gradients without changing them. */
export function gradNorm(params: Tensor[], normType = 2): number {
  return N.clipGradNorm(handles(params, "clipGradNorm", 0), Number.POSITIVE_INFINITY, normType);
}
