// One training example end to end, in DESIGN §5's order:
//   prompt -> agent -> pred_before -> refine -> agent again -> pred_after -> resize -> reward
//   -> policy loss -> memory -> EFE + reward loss.
// Returns the losses (the trainer backpropagates and steps the optimizers) and every logged quantity.
import { type Example, context, target as targetOf } from "../arc/examples";
import type { Grid } from "../arc/types";
import * as torch from "../torch";
import type { Tensor } from "../torch";
import { confidence, predictedSize } from "./agent";
import { efeLoss } from "./efe";
import { gridTensor, resizeHard, resizeLogits, toGrid } from "./resize";
import { type RewardMetrics, reward } from "./reward";
import type { System } from "./system";

export interface StepOptions {
  /** λ_size for this step (the warm-up schedule). */
  sizeWeight: number;
  /** Run Qwen and the agent under autocast (CUDA float16/bfloat16, or CPU bfloat16). */
  autocast?: { device: "cpu" | "cuda"; dtype: torch.DType } | null;
}

export interface ExampleLogs {
  task: string;
  pair: number;
  /** 0.7 EFE + 0.3 (-R_soft). */
  loss: number;
  efe: number;
  risk: number;
  ambiguity: number;
  complexity: number;
  sizeCe: number;
  sizeWeight: number;
  softReward: number;
  maskRatio: number;
  before: RewardMetrics;
  after: RewardMetrics;
  /** acc_after - acc_before. */
  dAcc: number;
  /** R_after - R_before (the policy's reward). */
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

export interface ExampleResult {
  /** The main loss (agent, W_up, Qwen's trainable weights); null when non-finite. */
  loss: Tensor | null;
  /** The policy's REINFORCE loss (its own optimizer). */
  policyLoss: Tensor;
  logs: ExampleLogs;
}

const maybeAutocast = <T>(ac: StepOptions["autocast"], fn: () => T): T => (ac ? torch.autocast({ device: ac.device, dtype: ac.dtype }, fn) : fn());

/** The hard prediction of the last refinement step, resized (nearest) to h x w. */
export function hardPrediction(logits: Tensor, h: number, w: number): Grid {
  return torch.scope(() => toGrid(resizeHard(logits.select(0, logits.shape[0] - 1).argmax(-1), h, w)));
}

export function trainExample(sys: System, ex: Example, opts: StepOptions): ExampleResult {
  const ctx = context(ex);
  const tgt = targetOf(ex);
  if (!tgt) throw new RangeError(`${ex.task.id}: example ${ex.index} has no output to train on`);
  const h = tgt.length;
  const w = tgt[0].length;
  const ac = opts.autocast ?? null;

  // 1. Prompt vector p (gradient into Qwen's trainable weights).
  const prompt = maybeAutocast(ac, () => sys.prompter.embed(ex));
  const p = prompt.p;

  // 2. Agent before refinement: no loss flows through it, so no graph is kept.
  const before = torch.noGrad(() => maybeAutocast(ac, () => sys.agent.forward(ctx.query, p)));
  const predBefore = hardPrediction(before.logits, h, w);
  const rBefore = reward(predBefore, predictedSize(before), tgt, sys.config.rewardWeights);

  // 3. Refine: the policy acts on [LN(sg p), sg pooled z_T, the agent's confidence] (+ the memory's
  // bias). The confidence stands in for R_before, which evaluation cannot compute (see agent.ts).
  const mem = sys.memory.read(p);
  const act = sys.refiner.act(p, before.pooled, confidence(before), { memoryBias: mem.bias });
  const pRefined = p.add(sys.refiner.delta(act.action));

  // 4. Agent again with p' (the graph the main loss uses).
  const after = maybeAutocast(ac, () => sys.agent.forward(ctx.query, pRefined));
  const predAfter = hardPrediction(after.logits, h, w);
  const [ph, pw] = predictedSize(after);
  const rAfter = reward(predAfter, [ph, pw], tgt, sys.config.rewardWeights);

  // 5. Policy loss from the improvement; memory keeps what worked.
  const r = rAfter.R - rBefore.R;
  const pol = sys.refiner.loss(act.logProb, act.entropy, r);
  const upd = sys.memory.update(p, act.action, rAfter.R, r);

  // 6. EFE + reward loss on the after-refinement logits at the target size.
  const terms = efeLoss(
    {
      logits: resizeLogits(after.logits, h, w),
      target: gridTensor(tgt, sys.agent.stem.weight.device),
      heightLogits: after.heightLogits,
      widthLogits: after.widthLogits,
      sizeWeight: opts.sizeWeight,
    },
    sys.config.efe,
  );
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  return {
    loss: terms.finite ? terms.total : null,
    policyLoss: pol.loss,
    logs: {
      task: ex.task.id,
      pair: ex.index,
      loss: terms.loss,
      efe: terms.efe,
      risk: mean(terms.risk),
      ambiguity: mean(terms.ambiguity),
      complexity: mean(terms.complexity.slice(1)),
      sizeCe: terms.sizeCe,
      sizeWeight: terms.sizeWeight,
      softReward: terms.softReward,
      maskRatio: terms.maskRatio,
      before: rBefore,
      after: rAfter,
      dAcc: rAfter.acc - rBefore.acc,
      r,
      advantage: pol.advantage,
      baseline: pol.baseline,
      sizeError: Math.abs(ph - h) + Math.abs(pw - w),
      memoryHits: mem.hits,
      memoryWritten: upd.written,
      theta: upd.theta,
      promptTokens: prompt.tokens,
      hint: prompt.hint,
      finite: terms.finite,
    },
  };
}
