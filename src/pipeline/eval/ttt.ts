// Test-time training (eval.ts --ttt_steps N): before predicting a task's test outputs, a copy of the
// trained agent (and W_up; the LoRA adapters too with --ttt_qwen) is fine-tuned on the task's own
// demonstrations, leave-one-out (each demonstration's output predicted with the others in the prompt),
// each under a random dihedral + colour augmentation, with the training loss (EFE + reward). Afterwards
// every weight, the episodic memory, the refiner's baseline and the generator are put back bit for bit,
// so a checkpoint evaluates the same before and after, and a task's adaptation never reaches another.
import { augmentExample } from "../system/augmentation";
import { type Augmentation, randomAugmentation } from "../../arc/augment";
import { type Example, trainingExamples } from "../../arc/examples";
import { Rng, hash32 } from "../../arc/rng";
import { outputSizeFromDemos } from "../../arc/size-rules";
import type { Task } from "../../arc/types";
import { loraParameters } from "../../models/lora";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { trainBatch } from "../system/training-step";
import type { Autocast } from "../system/forward";
import { type System, demoModules, qwenTrainable, usesPrompt } from "../system/system";
import { snapshotSystem } from "../system/state";
import { NonFiniteError, nonFiniteTensors } from "../system/nonfinite";
import { TTT_DEFAULTS } from "./ttt-defaults";


export interface TttOptions {
  /** Optimizer steps per task (0: off). */
  steps: number;
  /** AdamW learning rate (default TTT_DEFAULTS.lr). */
  lr?: number;
  /** Demonstrations per step (default TTT_DEFAULTS.batch; fewer when the task has fewer). */
  batch?: number;
  /** Seed of the augmentations, the examples drawn and the refiner's noise (default 0). */
  seed?: number;
  /** Also adapt Qwen's LoRA adapters (when Qwen trains by LoRA). */
  qwen?: boolean;
  autocast?: Autocast;
}

export interface TttReport {
  steps: number;
  /** Mean training loss over the first and the last step's examples. */
  lossFirst: number;
  lossLast: number;
  seconds: number;
}

/** The parameters test-time training adapts: the agent, the demonstration encoder and cell attention (when there are), W_up, and LoRA with `qwen`. */
export function tttParameters(sys: System, qwen: boolean): Tensor[] {
  const ps = [...sys.agent.parameters(), ...demoModules(sys).flatMap((m) => m.parameters()), ...sys.refiner.upParameters()];
  if (qwen && sys.config.qwen_train === "lora" && usesPrompt(sys.config)) ps.push(...loraParameters(sys.qwen));
  return ps;
}

/**
 * Adapts to `task`'s demonstrations, runs `fn` with the adapted weights, and puts everything back
 * (also when fn throws). A task with fewer than two demonstrations has no leave-one-out example with a
 * prompt demonstration, so it trains on what it has (one demonstration predicts itself unseen).
 */
export function withTestTimeTraining<T>(sys: System, task: Task, o: TttOptions, fn: (report: TttReport) => T): T {
  const t0 = performance.now();
  const params = tttParameters(sys, o.qwen === true);
  // Qwen's trainable weights that do not adapt stop taking gradients meanwhile (no backward through Qwen).
  const adapted = new Set(params);
  const held = qwenTrainable(sys).filter((p) => !adapted.has(p));
  for (const p of held) p.requiresGrad_(false);
  const saved = snapshotSystem(sys, params);
  const opt = new torch.AdamW([{ params, lr: o.lr ?? TTT_DEFAULTS.lr }], { weightDecay: 0 });
  try {
    const rng = new Rng(hash32(`ttt#${o.seed ?? 0}#${task.id}`));
    torch.manualSeed(hash32(`ttt-torch#${o.seed ?? 0}#${task.id}`));
    const demos = trainingExamples([task]);
    const per = Math.max(1, Math.min(o.batch ?? TTT_DEFAULTS.batch, demos.length));
    // When the demonstrations' size rules give every test output's size, the size head's answer is not
    // used, and its cross-entropy (about 2 ln 30 ≈ 6.8 untrained, several times the cells' terms) would
    // steer the shared trunk's few adaptation steps towards it: adapting with it lowered the test outputs'
    // cell accuracy, without it they rose (docs/pipeline.md, "Measurements behind the design").
    const sizeWeight = task.test.every((t) => outputSizeFromDemos(task, t.input).size !== null) ? 0 : 1;
    const losses: number[] = [];
    for (let s = 0; s < o.steps; s++) {
      const picked: Example[] = rng.sample(demos, per).map((ex) => {
        const aug: Augmentation = randomAugmentation(rng);
        return augmentExample(ex, aug);
      });
      const { mean, finite } = torch.scope(() => {
        const r = trainBatch(sys, picked, { sizeWeight, autocast: o.autocast ?? null });
        if (r.loss) r.loss.div(picked.length).backward();
        return { mean: r.logs.reduce((a, l) => a + (l.finite ? l.loss : 0), 0) / picked.length, finite: r.logs.every((l) => l.finite) };
      });
      losses.push(mean);
      const norm = torch.clipGradNorm(params, 1.0);
      // Divergence is an error, never a silently "adapted" model (the weights are put back in finally).
      if (!finite || !Number.isFinite(norm))
        throw new NonFiniteError(`test-time training of task ${task.id} diverged at step ${s + 1} of ${o.steps} (${finite ? "its gradient" : "its loss"} is non-finite, --ttt_lr ${o.lr ?? TTT_DEFAULTS.lr}); lower --ttt_lr`);
      opt.step();
      opt.zeroGrad();
      // The refiner's gradients (trainBatch's REINFORCE loss is not backpropagated here) stay zero.
    }
    const bad = o.steps > 0 ? nonFiniteTensors(Object.fromEntries(params.map((p, i) => [String(i), p]))) : [];
    if (bad.length) throw new NonFiniteError(`test-time training of task ${task.id} made ${bad.length} adapted weight tensor(s) non-finite in ${o.steps} steps (--ttt_lr ${o.lr ?? TTT_DEFAULTS.lr}); lower --ttt_lr`);
    const report: TttReport = { steps: o.steps, lossFirst: losses[0] ?? 0, lossLast: losses.at(-1) ?? 0, seconds: (performance.now() - t0) / 1000 };
    return fn(report);
  } finally {
    saved.restore();
    saved.dispose();
    for (const m of [sys.agent, sys.refiner, sys.qwen, ...demoModules(sys)]) m.zeroGrad();
    opt.dispose();
    for (const p of held) p.requiresGrad_(true);
  }
}
