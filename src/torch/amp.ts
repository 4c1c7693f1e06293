// GradScaler with torch.amp.GradScaler's semantics and defaults: multiply the loss by a scale so float16
// gradients do not underflow; before the optimizer step divide the gradients back (unscale_), skip the
// step when any gradient is inf/NaN, and adjust the scale (halve on overflow, double after
// `growthInterval` clean steps).
import { keep, scope } from "./memory";
import { N, TorchError } from "./native";
import { arg, handles } from "./args";
import { type Tensor, wrap } from "./tensor";
import { DTYPE_CODE, type Device, deviceCode } from "./dtype";

export interface GradScalerOptions {
  device?: Device;
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
  enabled?: boolean;
}

/** What step() needs from an optimizer. */
export interface Steppable {
  params(): Tensor[];
  step(): void;
}

type Stage = "ready" | "unscaled" | "stepped";
interface PerOptimizer {
  stage: Stage;
  foundInf: Tensor | null;
}

export interface GradScalerState {
  scale: number;
  growth_factor: number;
  backoff_factor: number;
  growth_interval: number;
  _growth_tracker: number;
}

export class GradScaler {
  readonly device: Device;
  readonly enabled: boolean;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  private initScale: number;
  private scaleT: Tensor | null = null;
  private tracker: Tensor | null = null;
  private perOpt = new Map<Steppable, PerOptimizer>();

  constructor(opts: GradScalerOptions = {}) {
    this.device = opts.device ?? "cuda";
    this.enabled = opts.enabled ?? true;
    this.initScale = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2.0;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    if (!(this.growthFactor > 1)) throw new TorchError("GradScaler: growthFactor must be > 1");
    if (!(this.backoffFactor < 1)) throw new TorchError("GradScaler: backoffFactor must be < 1");
    if (!Number.isInteger(this.growthInterval) || this.growthInterval <= 0) throw new TorchError("GradScaler: growthInterval must be a positive integer");
  }

  private lazyInit(): Tensor {
    if (!this.scaleT) {
      const dev = deviceCode(this.device);
      this.scaleT = keep(wrap(N.full([], this.initScale, 6, dev)));
      this.tracker = keep(wrap(N.full([], 0, 3, dev)));
    }
    return this.scaleT;
  }

  private opState(opt: Steppable): PerOptimizer {
    let s = this.perOpt.get(opt);
    if (!s) {
      s = { stage: "ready", foundInf: null };
      this.perOpt.set(opt, s);
    }
    return s;
  }

  /** outputs * scale (unchanged when disabled). */
  scale(outputs: Tensor): Tensor {
    if (!this.enabled) return outputs;
    const s = this.lazyInit();
    return outputs.mul(outputs.device === s.device ? s : s.to(outputs.device));
  }

  /** Divides the optimizer's gradients by the scale (once per step) and records inf/NaN. */
  unscale_(opt: Steppable): void {
    if (!this.enabled) return;
    const st = this.opState(opt);
    if (st.stage === "unscaled") throw new TorchError("unscale_() has already been called on this optimizer since the last update()");
    if (st.stage === "stepped") throw new TorchError("unscale_() is being called after step()");
    const s = this.lazyInit();
    const params = opt.params();
    if (params.some((p) => N.gradDtype(arg(p, "gradDtype", 0)) === DTYPE_CODE.float16)) throw new TorchError("Attempting to unscale FP16 gradients.");
    // 1/scale computed in float64, then float32, as PyTorch does.
    const invF = scope(() => s.double().reciprocal().float());
    const foundInf = keep(wrap(N.full([1], 0, DTYPE_CODE.float32, deviceCode(s.device))));
    N.ampUnscale(handles(params, "ampUnscale", 0), arg(foundInf, "ampUnscale", 1), arg(invF, "ampUnscale", 2));
    invF.dispose();
    st.foundInf?.dispose();
    st.foundInf = foundInf;
    st.stage = "unscaled";
  }

  /** Unscales if needed, then runs opt.step() unless a gradient was inf/NaN. Returns whether it stepped. */
  step(opt: Steppable): boolean {
    if (!this.enabled) {
      opt.step();
      return true;
    }
    const st = this.opState(opt);
    if (st.stage === "stepped") throw new TorchError("step() has already been called since the last update()");
    if (st.stage === "ready") this.unscale_(opt);
    const found = st.foundInf ? st.foundInf.item() : 0;
    const ok = found === 0;
    if (ok) opt.step();
    st.stage = "stepped";
    return ok;
  }

  /** Adjusts the scale from this iteration's inf checks (or sets it to newScale) and resets for the next. */
  update(newScale?: number): void {
    if (!this.enabled) return;
    const s = this.lazyInit();
    if (newScale !== undefined) {
      s.fill_(newScale);
    } else {
      const found = [...this.perOpt.values()].map((p) => p.foundInf).filter((t): t is Tensor => t !== null);
      if (found.length === 0) throw new TorchError("No inf checks were recorded prior to update().");
      let total = found[0].clone();
      for (const f of found.slice(1)) total.add_(f.to(total.device));
      N.ampUpdateScale(arg(s, "ampUpdateScale", 0), arg(this.tracker!, "ampUpdateScale", 1), arg(total, "ampUpdateScale", 2), this.growthFactor, this.backoffFactor, this.growthInterval);
      total.dispose();
    }
    for (const p of this.perOpt.values()) p.foundInf?.dispose();
    this.perOpt.clear();
  }

  /** The current scale (1 when disabled). */
  getScale(): number {
    if (!this.enabled) return 1;
    return this.scaleT ? this.scaleT.item() : this.initScale;
  }
  getGrowthTracker(): number {
    return this.tracker ? this.tracker.item() : 0;
  }
  isEnabled(): boolean {
    return this.enabled;
  }

  /** PyTorch's state_dict keys. */
  stateDict(): GradScalerState {
    return {
      scale: this.getScale(),
      growth_factor: this.growthFactor,
      backoff_factor: this.backoffFactor,
      growth_interval: this.growthInterval,
      _growth_tracker: this.getGrowthTracker(),
    };
  }

  loadStateDict(sd: GradScalerState): void {
    for (const k of ["scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"] as const) {
      if (typeof sd?.[k] !== "number") throw new TorchError(`GradScaler state is missing "${k}"`);
    }
    this.initScale = sd.scale;
    this.growthFactor = sd.growth_factor;
    this.backoffFactor = sd.backoff_factor;
    this.growthInterval = sd.growth_interval;
    if (this.enabled) {
      const s = this.lazyInit();
      s.fill_(sd.scale);
      this.tracker!.fill_(sd._growth_tracker);
    }
  }
}
