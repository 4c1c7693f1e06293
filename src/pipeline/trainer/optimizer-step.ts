// One batch's backward passes and one optimizer update, shared by the trainer and bench/train.ts so the
// benchmark measures the loop users run.
//
// A batch runs as one trainBatch pass, or as several when --max_batch_tokens caps the padded prompt
// tokens of a pass (examples x longest prompt): gradients accumulate over the passes, and each pass
// reads the memory and the refiner's baseline as its own batch would. The optimizer update unscales
// (GradScaler), clips, steps AdamW and the refiner's Adam, and zeroes the gradients: a fixed number of
// host reads whatever the batch size (the gradient norms and the scaler's inf check).
import type { Example } from "../../arc/index";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { untimed } from "../../util/stage-timer";
import { type BatchStats, type ExampleLogs, type StateUpdates, type StepOptions, trainBatch } from "../system/training-step";
import { type System, qwenTrainable } from "../system/system";
import { type GradNorms, groupGradNorms } from "./grad-norms";

export interface Optimizers {
  /** AdamW over the agent + the demonstration encoder + W_up ("agent" group) and Qwen's trainable weights ("qwen" group). */
  opt: torch.AdamW;
  /** The refiner's own Adam (state norm + MLP). */
  refinerOpt: torch.Adam;
  scaler: torch.GradScaler;
  qwenParams: Tensor[];
  refinerParams: Tensor[];
}

export interface OptimizerSettings {
  agentLr: number;
  qwenLr: number;
  weightDecay: number;
  /** GradScaler on (CUDA float16 autocast). */
  scaleLoss: boolean;
}

export function buildOptimizers(sys: System, s: OptimizerSettings): Optimizers {
  const qwenParams = qwenTrainable(sys);
  const groups = [{ name: "agent", params: [...sys.agent.parameters(), ...(sys.demoEncoder?.parameters() ?? []), ...sys.refiner.upParameters()], lr: s.agentLr }];
  if (qwenParams.length) groups.push({ name: "qwen", params: qwenParams, lr: s.qwenLr });
  return {
    opt: new torch.AdamW(groups, { weightDecay: s.weightDecay }),
    refinerOpt: sys.refiner.optimizer,
    scaler: new torch.GradScaler({ device: sys.config.device, enabled: s.scaleLoss }),
    qwenParams,
    refinerParams: sys.refiner.policyParameters(),
  };
}

/** Examples in order, cut where a pass's padded prompt tokens would pass `cap` (0: no cap); a pass holds one example at least. */
export function splitByTokens<T>(items: T[], tokens: number[], cap: number): T[][] {
  if (cap <= 0) return items.length ? [items] : [];
  const out: T[][] = [];
  let cur: T[] = [];
  let longest = 0;
  items.forEach((item, i) => {
    const l = Math.max(longest, tokens[i]);
    if (cur.length > 0 && (cur.length + 1) * l > cap) {
      out.push(cur);
      cur = [];
      longest = 0;
    }
    cur.push(item);
    longest = Math.max(longest, tokens[i]);
  });
  if (cur.length) out.push(cur);
  return out;
}

export interface BackwardOptions extends StepOptions {
  scaler: torch.GradScaler;
  /** Examples per optimizer update (batch size x accumulation): each example's loss is divided by it. */
  perUpdate: number;
  /** --max_batch_tokens (0 = one pass). */
  maxBatchTokens?: number;
}

const addStats = (a: BatchStats, b: BatchStats): BatchStats => ({
  examples: a.examples + b.examples,
  realTokens: a.realTokens + b.realTokens,
  paddedTokens: a.paddedTokens + b.paddedTokens,
  cells: a.cells + b.cells,
  paddedCells: a.paddedCells + b.paddedCells,
  agentPasses: a.agentPasses + b.agentPasses,
});
export const emptyStats = (): BatchStats => ({ examples: 0, realTokens: 0, paddedTokens: 0, cells: 0, paddedCells: 0, agentPasses: 0 });

/**
 * Forward and backward of a batch (both losses; the main one through the scaler). Gradients accumulate.
 * With o.deferStateUpdates the passes' state updates come back, concatenated in example order, for the
 * caller to apply (they belong to the caller's scope).
 */
export function backwardBatch(sys: System, examples: Example[], o: BackwardOptions): { logs: ExampleLogs[]; stats: BatchStats; updates: StateUpdates | null } {
  const timer = o.timer ?? untimed;
  const cap = o.maxBatchTokens ?? 0;
  const passes = cap > 0 ? splitByTokens(examples, examples.map((ex) => sys.prompter.build(ex).ids.length + sys.config.hint_tokens), cap) : [examples];
  const rows = o.noise ? (o.noise.rows ?? examples.map((_, i) => i)) : [];
  const logs: ExampleLogs[] = [];
  const deferred: StateUpdates[] = [];
  let stats = emptyStats();
  let start = 0;
  for (const pass of passes) {
    // Each pass keeps its examples' noise rows, so splitting a batch does not change its noise.
    const noise = o.noise && { ...o.noise, rows: rows.slice(start, start + pass.length) };
    start += pass.length;
    const updates = torch.scope(() => {
      const r = trainBatch(sys, pass, { ...o, noise });
      timer.time("backward", () => {
        if (r.loss) o.scaler.scale(r.loss.div(o.perUpdate)).backward();
        r.refinerLoss.div(o.perUpdate).backward();
      });
      logs.push(...r.logs);
      stats = addStats(stats, r.stats);
      return o.deferStateUpdates ? r.updates : null;
    });
    if (updates) deferred.push(updates);
  }
  return { logs, stats, updates: deferred.length ? concatUpdates(deferred) : null };
}

/** Several batches' state updates as one, in order. */
export function concatUpdates(us: StateUpdates[]): StateUpdates {
  if (us.length === 1) return us[0];
  return {
    p: torch.cat(us.map((u) => u.p)),
    actions: torch.cat(us.map((u) => u.actions)),
    rAfter: us.flatMap((u) => u.rAfter),
    r: us.flatMap((u) => u.r),
    hits: us.flatMap((u) => u.hits),
  };
}

/**
 * Unscale, clip, step both optimizers, zero the gradients. Returns each group's gradient norm before
 * clipping (agent, qwen when it trains, refiner) and their total, Qwen's again as `qwenGradNorm` (0 when frozen). A non-finite gradient norm skips the whole update (both optimizers) and is named in
 * `nonFinite` ("qwen", "agent" or "refiner"): without the GradScaler (fp32, bf16) nothing else would stop
 * NaN reaching the weights. With the GradScaler the agent/Qwen groups are its business (it skips and backs
 * off its scale, as PyTorch's does); only the refiner, whose loss it does not scale, is checked here.
 */
export function optimizerStep(o: Optimizers, clip: number): { qwenGradNorm: number; gradNorms: GradNorms; stepped: boolean; nonFinite: string | null } {
  o.scaler.unscale_(o.opt);
  // One host read for every group's norm (the refiner's Adam is not the GradScaler's: its gradients are as they are).
  const groups: Record<string, Tensor[]> = Object.fromEntries(o.opt.paramGroups.map((g) => [g.name, g.params]));
  const gradNorms = groupGradNorms({ ...groups, refiner: o.refinerParams });
  const qwenGradNorm = o.qwenParams.length ? gradNorms.groups.qwen : 0;
  const norm = torch.clipGradNorm(o.opt.params(), clip);
  const refinerNorm = torch.clipGradNorm(o.refinerParams, clip);
  let nonFinite: string | null = null;
  if (!o.scaler.isEnabled() && !Number.isFinite(norm)) nonFinite = Number.isFinite(qwenGradNorm) ? "agent" : "qwen";
  else if (!Number.isFinite(refinerNorm)) nonFinite = "refiner";
  const stepped = nonFinite === null && o.scaler.step(o.opt);
  o.scaler.update();
  if (nonFinite === null) o.refinerOpt.step();
  o.opt.zeroGrad();
  o.refinerOpt.zeroGrad();
  return { qwenGradNorm, gradNorms, stepped, nonFinite };
}
