// One training batch end to end, B examples per pass: the system's forward (forward.ts: prompt -> agent ->
// memory + refiner -> agent on p') -> resize -> EFE + reward loss -> one host transfer of every logged
// number -> rewards, the refiner's loss, memory writes in example order.
// B = 1 is a batch of one. Returns the summed losses (the trainer scales, backpropagates and steps the
// optimizers) and every logged quantity per example.
//
// What a batch shares: every example reads the weights, the refiner's reward baseline and the episodic
// memory as they stand at the batch's start (as minibatch SGD reads the weights); the memory's writes
// and its EMA threshold are then applied in example order, and the baseline follows each reward in
// order. So a batch gives each example what a batch of one from the same state gives it.
import { type Example, target as targetOf } from "../../arc/examples";
import type { Grid } from "../../arc/types";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { type StageTimer, untimed } from "../../util/stage-timer";
import { type EfeDevice, efeLossDevice, efeTermsFrom } from "../objective/efe";
import { type RewardMetrics, reward } from "../objective/reward";
import { type TermValues, termValues } from "../objective/terms";
import { type AgentBatchOutput, predictedSizes } from "./agent";
import { type Autocast, gridsFromHost, lastStepPrediction, systemForward } from "./forward";
import { type NoiseKey, actionNoise } from "./refiner";
import { gridTensor, resizeLogits } from "./resize";
import type { System } from "./system";

export interface StepOptions {
  /** λ_size for this step (the warm-up schedule). */
  sizeWeight: number;
  /** Run Qwen and the agent under autocast (CUDA float16/bfloat16, or CPU bfloat16). */
  autocast?: Autocast;
  /**
   * Largest share of padded cells in one agent pass (0..1). Default: 1 on CUDA (one pass: launches are
   * the cost), 0.25 on the CPU (arithmetic is the cost, so very different grid sizes get their own pass).
   */
  agentPadShare?: number;
  /** Wall time of the stages, for benchmarks (the callback synchronises the device if it wants exact times). */
  timer?: StageTimer;
  /** The refiner's noise keyed by (seed, step, row) (the trainer's); default: drawn from torch's generator. */
  noise?: NoiseKey;
  /**
   * Leave the batch's state updates (memory reads counted, baseline, memory writes) to the caller, who
   * applies them with applyStateUpdates (data-parallel ranks apply every rank's, in global order). The
   * logs' memoryWritten/theta are then filled by the caller too.
   */
  deferStateUpdates?: boolean;
}

/** What a batch changes in the system besides the weights, applied in example order by applyStateUpdates. */
export interface StateUpdates {
  /** [B, P] the prompt vectors and [B, k] the actions, detached. */
  p: Tensor;
  actions: Tensor;
  /** R_after and r = R_after - R_before per example; the memory's read hits per example. */
  rAfter: number[];
  r: number[];
  hits: number[];
}

/**
 * Applies a batch's state updates in example order: the read counters, the refiner's EMA baseline (each
 * reward in order) and the memory's writes with its threshold. Returns each example's write and threshold.
 */
export function applyStateUpdates(sys: System, u: StateUpdates): { written: boolean; theta: number }[] {
  sys.memory.countReads(u.hits);
  sys.refiner.advanceBaseline(u.r);
  return u.r.map((r, i) => {
    const m = sys.memory.update(u.p.select(0, i), u.actions.select(0, i), u.rAfter[i], r);
    return { written: m.written, theta: m.theta };
  });
}

/** What a trained example logs: every term of its loss (objective/terms.ts), its rewards and the system's state. */
export interface ExampleLogs extends TermValues {
  task: string;
  pair: number;
  sizeWeight: number;
  before: RewardMetrics;
  after: RewardMetrics;
  /** acc_after - acc_before. */
  dAcc: number;
  /** R_after - R_before (the refiner's reward). */
  r: number;
  advantage: number;
  baseline: number;
  /** |predicted height - h| + |predicted width - w| of the size head (after refinement). */
  sizeError: number;
  memoryHits: number;
  memoryWritten: boolean;
  theta: number;
  promptTokens: number;
  hint: string;
  /** false: NaN/inf somewhere; the trainer skips this example's update. */
  finite: boolean;
}

/** What a batch computed besides the losses: the padding its passes carried. */
export interface BatchStats {
  examples: number;
  /** Prompt + hint tokens encoded, and positions computed in the padded encoding pass. */
  realTokens: number;
  paddedTokens: number;
  /** Grid cells of both agent passes, and cells computed (padding included), and the passes. */
  cells: number;
  paddedCells: number;
  agentPasses: number;
}

export interface BatchResult {
  /** Sum of the finite examples' main losses (agent, W_up, Qwen's trainable weights); null when none is finite. */
  loss: Tensor | null;
  /** Sum of the examples' REINFORCE losses (the refiner's own optimizer). */
  refinerLoss: Tensor;
  logs: ExampleLogs[];
  stats: BatchStats;
  /** The batch's state updates: already applied unless opts.deferStateUpdates. */
  updates: StateUpdates;
}

export interface ExampleResult {
  loss: Tensor | null;
  refinerLoss: Tensor;
  logs: ExampleLogs;
}

/** Everything a batch brings to the host, concatenated as float64 (exact for colours, sizes and float32 values). */
function gatherToHost(parts: Tensor[]): Float64Array {
  return torch.scope(() => torch.cat(parts.map((t) => t.flatten().to({ dtype: "float64" }))).data() as Float64Array);
}

export function trainBatch(sys: System, examples: Example[], opts: StepOptions): BatchResult {
  const B = examples.length;
  if (B === 0) throw new RangeError("trainBatch: an empty batch");
  const targets = examples.map((ex) => {
    const t = targetOf(ex);
    if (!t) throw new RangeError(`${ex.task.id}: example ${ex.index} has no output to train on`);
    return t;
  });
  const timer = opts.timer ?? untimed;
  const dev = sys.agent.stem.weight.device;

  // The refiner's keyed noise is made on the host and copied first: a copy from pageable host memory waits
  // for the device's queue, which is near empty here (the last step's host reads drained it) and would be
  // full of this batch's prompt and agent work later.
  const noise = opts.noise ? actionNoise(opts.noise, B, sys.refiner.actionDim, sys.refiner.device) : null;
  const beforeWeight = sys.config.before_weight ?? 0;
  const { prompt, before, after, memory: mem, action: act } = systemForward(sys, examples, { autocast: opts.autocast, agentPadShare: opts.agentPadShare, timer, noise, trainBefore: beforeWeight > 0 });
  const p = prompt.p;

  // EFE + reward loss per example on the after-refinement logits at its target size (and, with
  // before_weight > 0, the same loss on the before pass, weighted), and the hard predictions of both
  // passes at the target size: all on the device, then one transfer.
  const { terms, beforeTotals, host } = timer.time("loss", () => {
    const lossOf = (out: AgentBatchOutput): EfeDevice[] =>
      targets.map((tgt, i) =>
        efeLossDevice(
          {
            logits: resizeLogits(out.logits[i], tgt.length, tgt[0].length),
            target: gridTensor(tgt, dev),
            heightLogits: out.heightLogits.select(0, i),
            widthLogits: out.widthLogits.select(0, i),
            sizeWeight: opts.sizeWeight,
          },
          sys.config.efe,
        ),
      );
    const terms = lossOf(after);
    const beforeTotals = beforeWeight > 0 ? lossOf(before).map((t) => t.total.mul(beforeWeight)) : null;
    const hard = (out: AgentBatchOutput) => out.logits.map((l, i) => lastStepPrediction(l, targets[i].length, targets[i][0].length));
    const host = gatherToHost([...hard(before), ...hard(after), predictedSizes(before), predictedSizes(after), mem.hits, ...terms.map((t) => t.logged), ...(beforeTotals ?? []).map((t) => t.detach())]);
    return { terms, beforeTotals, host };
  });

  // Host side: rewards, the refiner's loss from the improvement, memory writes in example order.
  const shapes = targets.map((t) => [t.length, t[0].length] as const);
  const { grids: predBefore, end: afterAt } = gridsFromHost(host, shapes);
  const { grids: predAfter, end } = gridsFromHost(host, shapes, afterAt);
  let off = end;
  const sizes = (): [number, number][] => Array.from({ length: B }, (_, i) => [host[off + 2 * i], host[off + 2 * i + 1]] as [number, number]);
  const sizeBefore = sizes();
  off += 2 * B;
  const sizeAfter = sizes();
  off += 2 * B;
  const hits = Array.from(host.subarray(off, off + B));
  off += B;
  const afterTerms = terms.map((t) => {
    const n = t.logged.numel();
    const v = Array.from(host.subarray(off, off + n));
    off += n;
    return efeTermsFrom(t.total, v, t.steps, t.sizeWeight);
  });
  // With the before pass trained, an example's loss (the tensor and its logged value) is the after pass's
  // plus before_weight times the before pass's; every other logged term stays the after pass's.
  const efe = beforeTotals
    ? afterTerms.map((t, i) => {
        const b = host[off + i];
        return { ...t, total: t.total.add(beforeTotals[i]), loss: t.loss + b, finite: t.finite && Number.isFinite(b) };
      })
    : afterTerms;
  if (beforeTotals) off += B;

  const rw = sys.config.reward_weights;
  const rBefore = targets.map((t, i) => reward(predBefore[i], sizeBefore[i], t, rw));
  const rAfter = targets.map((t, i) => reward(predAfter[i], sizeAfter[i], t, rw));
  const r = rAfter.map((a, i) => a.R - rBefore[i].R);
  // refiner.loss averages over the batch; the sum is what B batches of one would backpropagate.
  const rl = sys.refiner.loss(act.logProb, act.entropy, r, { advanceBaseline: false });
  const refinerLoss = rl.loss.mul(B);
  const updates: StateUpdates = { p: p.detach(), actions: act.action, rAfter: rAfter.map((x) => x.R), r, hits };
  const applied = opts.deferStateUpdates ? null : applyStateUpdates(sys, updates);

  const finite = efe.filter((t) => t.finite).map((t) => t.total);
  const loss = finite.length === 0 ? null : finite.length === 1 ? finite[0] : torch.stack(finite).sum();
  const logs: ExampleLogs[] = examples.map((ex, i) => {
    const t = efe[i];
    const [h, w] = [targets[i].length, targets[i][0].length];
    return {
      task: ex.task.id,
      pair: ex.index,
      ...termValues(t),
      sizeWeight: t.sizeWeight,
      before: rBefore[i],
      after: rAfter[i],
      dAcc: rAfter[i].acc - rBefore[i].acc,
      r: r[i],
      advantage: rl.advantages[i],
      baseline: rl.baseline,
      sizeError: Math.abs(sizeAfter[i][0] - h) + Math.abs(sizeAfter[i][1] - w),
      memoryHits: hits[i],
      memoryWritten: applied?.[i]?.written ?? false,
      theta: applied?.[i]?.theta ?? sys.memory.theta,
      promptTokens: prompt.tokens[i],
      hint: prompt.hints[i],
      finite: t.finite,
    };
  });
  return {
    loss,
    refinerLoss,
    logs,
    updates,
    stats: {
      examples: B,
      realTokens: prompt.realTokens,
      paddedTokens: prompt.paddedTokens,
      cells: before.cells + after.cells,
      paddedCells: before.paddedCells + after.paddedCells,
      agentPasses: before.passes + after.passes,
    },
  };
}

/** One example: a batch of one. */
export function trainExample(sys: System, ex: Example, opts: StepOptions): ExampleResult {
  const r = trainBatch(sys, [ex], opts);
  return { loss: r.loss, refinerLoss: r.refinerLoss, logs: r.logs[0] };
}
