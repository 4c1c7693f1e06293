// PromptRefiner (docs/pipeline.md, "Refiner"): a Gaussian policy that nudges the prompt vector p, trained
// by REINFORCE.
//
//   s = [LayerNorm(sg p), sg pooled z_T, R_before]            (P + d + 1)
//     (the trainer and evaluation pass the agent's confidence as R_before: the real one needs the target)
//   MLP(s) = Linear -> GELU -> Linear -> GELU -> Linear        -> mean mu [k], log-std [k] (bounded to [-5, 0.5])
//   a ~ N(mu + memory bias, sigma^2)  (evaluation: a = mu + bias);  delta = W_up a (a detached);  p' = p + delta
//   loss = -(r - b) log pi(a) - 0.01 H(pi),  b <- 0.95 b + 0.05 r  (EMA baseline, a JS number)
//
// Two sets of parameters with two owners:
//   policyParameters() (state norm + MLP): trained by the RL loss only, with this module's own Adam
//     (`optimizer`, --rl_lr). The trainer steps it; act()/loss() never do.
//   upParameters() (W_up): trained by the MAIN loss through p' (the action is detached, so the RL loss
//     never reaches it); the trainer puts it in the agent's AdamW group.
// Backpropagate the RL loss on its own (not through a GradScaler-scaled total), or unscale first: the
// refiner's Adam sees raw gradients.
//
// The policy math runs in the module's dtype (float32 by default) with autocast switched off, so
// log-probabilities stay precise under AMP; delta() follows the caller's autocast as part of the main graph.
// Every method accepts one example ([P], [d], a number) or a batch ([B, P], [B, d], B numbers).
import { Rng, seedOf } from "../../arc/rng";
import * as nn from "../../nn/index";
import * as torch from "../../torch";
import type { DType, Device, Tensor } from "../../torch";

/** ½ log 2π */
export const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

export interface PromptRefinerOptions {
  /** Width of p (Qwen's hidden size). */
  promptDim: number;
  /** Width of the pooled agent state (agent channels d). */
  stateDim: number;
  /** Action width k (32). */
  actionDim?: number;
  /** MLP width (256). */
  hidden?: number;
  /** Learning rate of the refiner's own Adam (--rl_lr, 1e-4). */
  lr?: number;
  /** Entropy bonus weight (0.01). */
  entropyCoef?: number;
  /** EMA decay of the reward baseline (0.95). */
  baselineDecay?: number;
  /** Bounds of the log-std (-5, 0.5). */
  logStdMin?: number;
  logStdMax?: number;
  /**
   * How the log-std is kept in bounds: "clamp" (the default; zero gradient outside the bounds) or "soft"
   * (min + (max - min) * sigmoid(x): same range, the gradient never dies at a bound).
   */
  logStdBound?: "clamp" | "soft";
  /** Initial log-std (0, sigma = 1): the bias of the log-std head. */
  logStdInit?: number;
  /** Std of W_up's initial N(0, std^2) entries (0.02). */
  upInitStd?: number;
  device?: Device;
  dtype?: DType;
}

export interface ActOptions {
  /** Evaluation: the action is the mean (+ bias), no sampling. */
  deterministic?: boolean;
  /** Added to the mean (episodic memory's read): [k] or [B, k]; null/undefined for none. */
  memoryBias?: Tensor | null;
  /** Standard normal noise of the action's shape (see actionNoise); default: drawn from torch's generator. */
  noise?: Tensor | null;
}

/** Where a batch's refiner noise comes from: the run's seed, the batch's step and each row's place in the batch. */
export interface NoiseKey {
  seed: number;
  step: number;
  /** Each example's row in the whole (global) batch; default 0..B-1. */
  rows?: number[];
}

/**
 * Standard normal noise [B, k], each row a function of (seed, step, row) alone: a row gets the same
 * numbers whether the batch runs in one process, is split across data-parallel ranks or into passes,
 * and whatever else drew from torch's generator before it (a host draw: k numbers per row).
 */
export function actionNoise(key: NoiseKey, batch: number, k: number, device: torch.Device): Tensor {
  const rows = key.rows ?? Array.from({ length: batch }, (_, i) => i);
  if (rows.length !== batch) throw new RangeError(`actionNoise: ${rows.length} rows for a batch of ${batch}`);
  const v = new Float32Array(batch * k);
  rows.forEach((row, i) => {
    const rng = new Rng(seedOf(key.seed, "policy-noise", key.step, row));
    for (let j = 0; j < k; j++) v[i * k + j] = rng.normal();
  });
  return torch.fromTypedArray(v, [batch, k], { device });
}

export interface RefinerAction {
  /** The action a: [k] (or [B, k]), detached. */
  action: Tensor;
  /** log pi(a): scalar (or [B]), with a graph to the MLP and state norm. */
  logProb: Tensor;
  /** H(pi): scalar (or [B]), with a graph to the log-std head. */
  entropy: Tensor;
  /** The mean the action was drawn around (memory bias included): [k] (or [B, k]). */
  mean: Tensor;
  /** The bounded log-std: [k] (or [B, k]). */
  logStd: Tensor;
}

export interface RefinerLoss {
  /** Scalar loss: -(r - b) log pi - c H (batch: the mean over the batch). */
  loss: Tensor;
  /** r - b (batch: the mean advantage). */
  advantage: number;
  /** Per example r - b. */
  advantages: number[];
  /** The baseline b the advantage was computed with (before this update; `refiner.baseline` is after). */
  baseline: number;
}

/** Everything about the refiner that is not a tensor: hyperparameters and the baseline (checkpoints). */
export interface PromptRefinerState {
  version: 1;
  promptDim: number;
  stateDim: number;
  actionDim: number;
  hidden: number;
  lr: number;
  entropyCoef: number;
  baselineDecay: number;
  logStdMin: number;
  logStdMax: number;
  logStdBound: "clamp" | "soft";
  baseline: number;
  /** Number of baseline updates (loss() calls, per example). */
  updates: number;
}

/** Sum over the last dimension of log N(a; mu, exp(logStd)^2). */
export function gaussianLogProb(action: Tensor, mean: Tensor, logStd: Tensor): Tensor {
  return torch.scope(() => {
    const z = action.sub(mean).mul(logStd.neg().exp());
    return z.square().mul(-0.5).sub(logStd).sub(HALF_LOG_2PI).sum(-1);
  });
}

/** Sum over the last dimension of the entropy of N(mu, exp(logStd)^2): ½ + ½ log 2π + log sigma. */
export function gaussianEntropy(logStd: Tensor): Tensor {
  return torch.scope(() => logStd.add(0.5 + HALF_LOG_2PI).sum(-1));
}

export class PromptRefiner extends nn.Module {
  readonly promptDim: number;
  readonly stateDim: number;
  readonly actionDim: number;
  readonly hidden: number;
  /** LayerNorm over P, applied to sg p. */
  readonly stateNorm: nn.LayerNorm;
  /** (P + d + 1) -> hidden -> GELU -> hidden -> GELU -> 2k (mean, raw log-std). */
  readonly mlp: nn.Sequential;
  /** W_up: Linear k -> P, no bias (trained by the main loss). */
  readonly up: nn.Linear;
  /** The refiner's own Adam over policyParameters(); stepped by the trainer. */
  readonly optimizer: torch.Adam;

  entropyCoef: number;
  baselineDecay: number;
  logStdMin: number;
  logStdMax: number;
  logStdBound: "clamp" | "soft";
  private _baseline = 0;
  private _updates = 0;

  constructor(opts: PromptRefinerOptions) {
    super();
    const P = opts.promptDim;
    const d = opts.stateDim;
    const k = opts.actionDim ?? 32;
    const hidden = opts.hidden ?? 256;
    for (const [name, v] of [["promptDim", P], ["stateDim", d], ["actionDim", k], ["hidden", hidden]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`PromptRefiner: ${name} must be a positive integer, got ${v}`);
    }
    this.promptDim = P;
    this.stateDim = d;
    this.actionDim = k;
    this.hidden = hidden;
    this.entropyCoef = opts.entropyCoef ?? 0.01;
    this.baselineDecay = opts.baselineDecay ?? 0.95;
    this.logStdMin = opts.logStdMin ?? -5;
    this.logStdMax = opts.logStdMax ?? 0.5;
    this.logStdBound = opts.logStdBound ?? "clamp";
    if (!(this.baselineDecay >= 0 && this.baselineDecay < 1)) throw new RangeError(`PromptRefiner: baselineDecay must be in [0, 1), got ${this.baselineDecay}`);
    if (!(this.logStdMin < this.logStdMax)) throw new RangeError(`PromptRefiner: logStdMin ${this.logStdMin} must be below logStdMax ${this.logStdMax}`);
    if (this.logStdBound !== "clamp" && this.logStdBound !== "soft") throw new RangeError(`PromptRefiner: logStdBound must be "clamp" or "soft", got "${this.logStdBound}"`);
    const lr = opts.lr ?? 1e-4;
    const f = { device: opts.device, dtype: opts.dtype };

    this.stateNorm = this.registerModule("state_norm", new nn.LayerNorm(P, 1e-5, f));
    this.mlp = this.registerModule(
      "mlp",
      new nn.Sequential(new nn.Linear(P + d + 1, hidden, f), new nn.GELU(), new nn.Linear(hidden, hidden, f), new nn.GELU(), new nn.Linear(hidden, 2 * k, f)),
    );
    this.up = this.registerModule("up", new nn.Linear(k, P, { ...f, bias: false }));

    // Head: small weights (the policy starts close to state-independent, as on-policy RL practice
    // recommends), mean bias 0, log-std bias at logStdInit (through the inverse of the soft bound).
    const head = this.head;
    const logStdInit = opts.logStdInit ?? 0;
    if (!(logStdInit >= this.logStdMin && logStdInit <= this.logStdMax)) throw new RangeError(`PromptRefiner: logStdInit ${logStdInit} is outside [${this.logStdMin}, ${this.logStdMax}]`);
    torch.noGrad(() =>
      torch.scope(() => {
        head.weight.mul_(0.01);
        head.bias!.narrow(0, 0, k).zero_();
        head.bias!.narrow(0, k, k).fill_(this.rawLogStdFor(logStdInit));
      }),
    );
    nn.init.normal_(this.up.weight, 0, opts.upInitStd ?? 0.02);
    this.optimizer = new torch.Adam(this.policyParameters(), { lr });
  }

  /** The MLP's last layer (mean and raw log-std). */
  get head(): nn.Linear {
    return this.mlp.at(-1) as nn.Linear;
  }

  /** The state norm and MLP: the refiner's own Adam trains these (RL loss only). */
  policyParameters(): Tensor[] {
    return [...this.stateNorm.parameters(), ...this.mlp.parameters()];
  }

  /** W_up: trained by the main loss (the agent's AdamW group). */
  upParameters(): Tensor[] {
    return [this.up.weight];
  }

  /** The EMA reward baseline b (after every loss() so far). */
  get baseline(): number {
    return this._baseline;
  }

  /** How many rewards the baseline has seen. */
  get updates(): number {
    return this._updates;
  }

  get device(): Device {
    return this.up.weight.device;
  }

  get dtype(): DType {
    return this.up.weight.dtype;
  }

  /** The raw head output that maps to a given log-std (identity for "clamp", logit for "soft"). */
  private rawLogStdFor(logStd: number): number {
    if (this.logStdBound === "clamp") return logStd;
    const u = Math.min(Math.max((logStd - this.logStdMin) / (this.logStdMax - this.logStdMin), 1e-6), 1 - 1e-6);
    return Math.log(u / (1 - u));
  }

  private boundLogStd(raw: Tensor): Tensor {
    if (this.logStdBound === "clamp") return raw.clamp(this.logStdMin, this.logStdMax);
    return raw.sigmoid().mul(this.logStdMax - this.logStdMin).add(this.logStdMin);
  }

  /** Runs fn with autocast off on the policy's device (a no-op when autocast is off). */
  private fullPrecision<T>(fn: () => T): T {
    const dev = this.device.startsWith("cuda") ? "cuda" : "cpu";
    return torch.isAutocastEnabled(dev) ? torch.autocast({ device: dev, enabled: false }, fn) : fn();
  }

  /** The state [..., P + d + 1] from detached inputs, in the policy's dtype and device. */
  state(p: Tensor, zPooled: Tensor, rBefore: number | number[] | Tensor): Tensor {
    const P = this.promptDim;
    const d = this.stateDim;
    if (p.ndim < 1 || p.ndim > 2 || p.shape[p.ndim - 1] !== P) throw new RangeError(`PromptRefiner: p must be [${P}] or [B, ${P}], got [${p.shape}]`);
    const batch = p.ndim === 2 ? p.shape[0] : null;
    const want = batch === null ? `[${d}]` : `[${batch}, ${d}]`;
    if (zPooled.shape.join(",") !== (batch === null ? [d] : [batch, d]).join(",")) throw new RangeError(`PromptRefiner: zPooled must be ${want}, got [${zPooled.shape}]`);
    return torch.scope(() => {
      const to = { dtype: this.dtype, device: this.device };
      const pn = this.stateNorm.forward(p.detach().to(to));
      const z = zPooled.detach().to(to);
      const lead = batch === null ? [1] : [batch, 1];
      let r: Tensor;
      if (typeof rBefore === "number") {
        if (!Number.isFinite(rBefore)) throw new RangeError(`PromptRefiner: rBefore must be finite, got ${rBefore}`);
        r = torch.full(lead, rBefore, to);
      } else if (Array.isArray(rBefore)) {
        if (rBefore.length !== (batch ?? 1)) throw new RangeError(`PromptRefiner: ${rBefore.length} rBefore values for a batch of ${batch ?? 1}`);
        r = torch.tensor(rBefore, to).view(lead);
      } else {
        if (rBefore.numel() !== (batch ?? 1)) throw new RangeError(`PromptRefiner: rBefore has ${rBefore.numel()} values for a batch of ${batch ?? 1}`);
        r = rBefore.detach().to(to).reshape(lead);
      }
      return torch.cat([pn, z, r], -1);
    });
  }

  /** The policy head on a state: mean [..., k] (no memory bias) and bounded log-std [..., k]. */
  forward(state: Tensor): { mean: Tensor; logStd: Tensor } {
    return this.fullPrecision(() =>
      torch.scope(() => {
        const out = this.mlp.forward(state);
        const k = this.actionDim;
        return { mean: out.narrow(-1, 0, k), logStd: this.boundLogStd(out.narrow(-1, k, k)) };
      }),
    );
  }

  /**
   * Chooses an action for (p, zPooled, rBefore). Sampling uses torch's generator of the policy's
   * device (torch.manualSeed / setRngState make it reproducible). Deterministic: a = mean + bias.
   */
  act(p: Tensor, zPooled: Tensor, rBefore: number | number[] | Tensor, opts: ActOptions = {}): RefinerAction {
    return this.fullPrecision(() =>
      torch.scope(() => {
        const s = this.state(p, zPooled, rBefore);
        const head = this.forward(s);
        let mean = head.mean;
        const bias = opts.memoryBias;
        if (bias) {
          const k = this.actionDim;
          if (bias.shape[bias.ndim - 1] !== k || bias.ndim > mean.ndim) throw new RangeError(`PromptRefiner: memoryBias must be [${k}] or [B, ${k}], got [${bias.shape}]`);
          mean = mean.add(bias.detach().to({ dtype: this.dtype, device: this.device }));
        }
        const logStd = head.logStd;
        const action = opts.deterministic
          ? mean.detach()
          : torch.noGrad(() => mean.add(logStd.exp().mul(opts.noise ? opts.noise.to({ dtype: this.dtype, device: this.device }).reshape(mean.shape) : this.noise(mean.shape))));
        return { action, logProb: gaussianLogProb(action, mean, logStd), entropy: gaussianEntropy(logStd), mean, logStd };
      }),
    );
  }

  /**
   * Standard normal noise of the action's shape, drawn one row at a time: a batch of B then takes the
   * same numbers from the generator as B examples one after another (one [B, k] draw would not, on
   * CUDA's counter-based generator nor on the CPU's when k is not a multiple of 16).
   */
  private noise(shape: number[]): Tensor {
    const f = { dtype: this.dtype, device: this.device };
    if (shape.length < 2) return torch.randn(shape, f);
    return torch.stack(Array.from({ length: shape[0] }, () => torch.randn(shape.slice(1), f)));
  }

  /** delta = W_up a with a detached: [P] (or [B, P]); the gradient reaches W_up only. */
  delta(action: Tensor): Tensor {
    const k = this.actionDim;
    if (action.shape[action.ndim - 1] !== k) throw new RangeError(`PromptRefiner: action must be [${k}] or [B, ${k}], got [${action.shape}]`);
    return torch.scope(() => this.up.forward(action.detach().to({ dtype: this.dtype, device: this.device })));
  }

  /** p' = p + W_up a, in p's dtype (the gradient reaches p and W_up). */
  refine(p: Tensor, action: Tensor): Tensor {
    return torch.scope(() => {
      const dlt = this.delta(action);
      return p.add(dlt.dtype === p.dtype ? dlt : dlt.to(p.dtype));
    });
  }

  /**
   * REINFORCE with the EMA baseline: loss = -(r - b) log pi - entropyCoef H (means over a batch), then
   * b <- decay b + (1 - decay) r for each reward in order. Rewards must be finite (a NaN would poison b).
   */
  loss(logProb: Tensor, entropy: Tensor, reward: number | number[], opts: { advanceBaseline?: boolean } = {}): RefinerLoss {
    const rs = typeof reward === "number" ? [reward] : reward;
    if (rs.length !== Math.max(1, logProb.numel())) throw new RangeError(`PromptRefiner.loss: ${rs.length} rewards for ${logProb.numel()} log-probabilities`);
    for (const r of rs) if (!Number.isFinite(r)) throw new RangeError(`PromptRefiner.loss: reward must be finite, got ${r}`);
    const b = this._baseline;
    const advantages = rs.map((r) => r - b);
    const loss = torch.scope(() => {
      const pg =
        logProb.ndim === 0
          ? logProb.mul(-advantages[0])
          : logProb.mul(torch.tensor(advantages, { dtype: logProb.dtype, device: logProb.device })).mean().neg();
      const h = entropy.ndim === 0 ? entropy : entropy.mean();
      return pg.sub(h.mul(this.entropyCoef));
    });
    if (opts.advanceBaseline !== false) this.advanceBaseline(rs);
    const advantage = advantages.reduce((a, x) => a + x, 0) / advantages.length;
    return { loss, advantage, advantages, baseline: b };
  }

  /** b <- decay b + (1 - decay) r for each reward in order (what loss() does unless told not to). */
  advanceBaseline(rewards: number[]): void {
    for (const r of rewards) {
      if (!Number.isFinite(r)) throw new RangeError(`PromptRefiner: reward must be finite, got ${r}`);
      this._baseline = this.baselineDecay * this._baseline + (1 - this.baselineDecay) * r;
      this._updates += 1;
    }
  }

  /** Learning rate of the refiner's Adam (every group). */
  get lr(): number {
    return this.optimizer.paramGroups[0].lr;
  }
  set lr(v: number) {
    for (const g of this.optimizer.paramGroups) g.lr = v;
  }

  stateJson(): PromptRefinerState {
    return {
      version: 1,
      promptDim: this.promptDim,
      stateDim: this.stateDim,
      actionDim: this.actionDim,
      hidden: this.hidden,
      lr: this.lr,
      entropyCoef: this.entropyCoef,
      baselineDecay: this.baselineDecay,
      logStdMin: this.logStdMin,
      logStdMax: this.logStdMax,
      logStdBound: this.logStdBound,
      baseline: this._baseline,
      updates: this._updates,
    };
  }

  /**
   * Restores the baseline and hyperparameters; the shapes must match this refiner's. `s` is a whole
   * stateJson(): a checkpoint's is brought to that shape when it loads (run/migrations.ts).
   */
  loadStateJson(s: PromptRefinerState): void {
    if (s?.version !== 1) throw new RangeError(`PromptRefiner: unsupported state version ${s?.version}`);
    for (const key of ["promptDim", "stateDim", "actionDim", "hidden"] as const) {
      if (s[key] !== this[key]) throw new RangeError(`PromptRefiner: checkpoint has ${key} ${s[key]}, this refiner has ${this[key]}`);
    }
    if (!Number.isFinite(s.baseline)) throw new RangeError(`PromptRefiner: checkpoint baseline is ${s.baseline}`);
    this.lr = s.lr;
    this.entropyCoef = s.entropyCoef;
    this.baselineDecay = s.baselineDecay;
    this.logStdMin = s.logStdMin;
    this.logStdMax = s.logStdMax;
    this.logStdBound = s.logStdBound;
    this._baseline = s.baseline;
    this._updates = s.updates;
  }

  /** Frees the parameters and the optimizer's state. */
  override dispose(): void {
    this.optimizer.dispose();
    super.dispose();
  }
}
