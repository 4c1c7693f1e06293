// The training loop (docs/pipeline.md, "Training loop"), read in one sitting: epochs of batches in the
// sampler's order, an optimizer step every --grad_accum batches (and at an epoch's end), a record every
// --log_every batches, checkpoints by the Checkpointing callback, validation at each epoch's end, and
// stops (--max_batches, SIGINT/SIGTERM) only at optimizer-step boundaries, so a checkpoint never holds
// half-accumulated gradients. Everything before the first batch is trainer.ts's.
import { type Example, epochOrder } from "../../arc/index";
import * as torch from "../../torch";
import { progress } from "../../util/progress";
import type { TrainConfig } from "../config/train-config";
import type { EvalSummary } from "../eval/evaluate";
import { sizeWeight } from "../objective/efe";
import { valRecord } from "../observe/metric-names";
import type { RunMonitor } from "../observe/monitor";
import { trainingAugmentation } from "../system/augmentation";
import type { Autocast } from "../system/forward";
import type { System } from "../system/system";
import { dataParallelBatch, runBatch } from "./batch";
import type { Checkpointing, Position } from "./checkpointing";
import { type DataParallel, anyRank, averageGradients, rankRows } from "./ddp";
import { NonFiniteGuard } from "./nonfinite-guard";
import { type Optimizers, optimizerStep } from "./optimizers";
import type { LrSchedule } from "../config/lr-schedule";
import { lengthGroupedOrder } from "./sampler";
import { type StopRequest, type StopSignal, yieldToSignals } from "./stop";
import type { Validation } from "./validation";
import { addBatch, addExample, addOptimizerStep, emptyWindow, windowStats } from "./window";

export interface TrainResult {
  runDir: string;
  step: number;
  lastCheckpoint: string | null;
  stopped: "done" | "max_batches" | "interrupted";
  /** The signal that stopped the run (stopped === "interrupted"). */
  signal: StopSignal | null;
  lastValidation: EvalSummary | null;
}

/** What the loop runs with, made by trainer.ts. */
export interface Loop {
  cfg: TrainConfig;
  runDir: string;
  sys: System;
  optimizers: Optimizers;
  /** Each group's learning rate per optimizer step (restored on resume). */
  schedule: LrSchedule;
  autocast: Autocast;
  trainExamples: Example[];
  /** Each training example's prompt length (--group_by_length), or null for the plain permutation. */
  promptLengths: number[] | null;
  dp: DataParallel | null;
  /** Where training stands (restored on resume) and its running sums. */
  pos: Position;
  checkpoints: Checkpointing;
  validation: Validation;
  /** Rank 0's monitor (null on the other ranks). */
  monitor: RunMonitor | null;
  stop: StopRequest;
  err: (line: string) => void;
}

/** Sets each optimizer group's learning rate (the refiner's Adam is the "refiner" group). */
function setLearningRates(o: Optimizers, lrs: Record<string, number>): void {
  for (const g of o.opt.paramGroups) g.lr = lrs[g.name] ?? g.lr;
  for (const g of o.refinerOpt.paramGroups) g.lr = lrs.refiner ?? g.lr;
}

export async function trainingLoop(l: Loop): Promise<TrainResult> {
  const { cfg, sys, optimizers, dp, pos, checkpoints, monitor, stop } = l;
  const rank = dp?.rank ?? 0;
  const world = dp?.world ?? 1;
  const lead = rank === 0;
  // The global batch: batch_size examples on each of the world's ranks.
  const globalBatch = cfg.batch_size * world;
  const batchesPerEpoch = Math.ceil(l.trainExamples.length / globalBatch);
  // The λ_size schedule spans the whole planned run; --max_batches only stops early (so a run stopped
  // and resumed follows the same schedule as one that never stopped).
  const totalBatches = cfg.epochs * batchesPerEpoch;
  const barTotal = cfg.max_batches > 0 ? Math.min(cfg.max_batches, totalBatches) : totalBatches;
  const bar = progress(barTotal, { label: "train", quiet: cfg.quiet || !lead, rateAs: { per: globalBatch, name: "ex" } });
  bar.update(pos.step);
  const guard = new NonFiniteGuard(cfg.max_nonfinite_steps, l.err, pos.nonFinite);
  const perUpdate = cfg.batch_size * cfg.grad_accum;
  const stopAsked = () => (dp ? anyRank(stop.signal !== null) : stop.signal !== null);
  let stopped: TrainResult["stopped"] = "done";

  /** Validate, checkpoint, and let best/ follow the metric (only a validation of this checkpoint counts). */
  let validatedStep = -1;
  const validateAndSave = async (): Promise<void> => {
    validatedStep = pos.step;
    const fresh = await l.validation.run(pos.step);
    if (fresh && lead) {
      monitor?.log(valRecord(pos.step, pos.epoch, fresh.summary));
      monitor?.validated(pos.step, fresh.results, fresh.summary.seconds);
    }
    pos.lastValidation = fresh?.summary ?? pos.lastValidation;
    const dir = checkpoints.save(pos);
    if (fresh) checkpoints.updateBest(dir, fresh.summary, pos.step);
  };

  try {
    while (pos.epoch < cfg.epochs && stopped === "done") {
      // With data parallelism the groups are global batches: each slice below is one group.
      const order = l.promptLengths ? lengthGroupedOrder(l.promptLengths, { batch: globalBatch, seed: cfg.seed, epoch: pos.epoch }) : epochOrder(l.trainExamples.length, cfg.seed, pos.epoch);
      while (pos.batchInEpoch < batchesPerEpoch) {
        // A batch is synchronous work: give pending signal handlers their turn before each one.
        await yieldToSignals();
        if (pos.step % cfg.grad_accum === 0) {
          // Data-parallel ranks stop together: a signal that reached one rank stops all at this step.
          if (cfg.max_batches > 0 && pos.step >= cfg.max_batches) stopped = "max_batches";
          else if (stopAsked()) stopped = "interrupted";
          if (stopped !== "done") break;
        }
        const lambda = sizeWeight(pos.step, totalBatches);
        // The global batch is one slice of the epoch's order; this rank takes its rows of it (ddp.ts).
        const slice = order.slice(pos.batchInEpoch * globalBatch, (pos.batchInEpoch + 1) * globalBatch);
        const rows = rankRows(slice.length, rank, world);
        let batch = rows.map((g) => l.trainExamples[slice[g]]);
        if (cfg.augment) batch = batch.map((ex, j) => trainingAugmentation(ex, cfg.seed, pos.epoch, pos.batchInEpoch, rows[j]));
        const o = { step: pos.step + 1, sizeWeight: lambda, autocast: l.autocast, scaler: optimizers.scaler, perUpdate, maxBatchTokens: cfg.max_batch_tokens ?? 0, noise: { seed: cfg.seed, step: pos.step + 1, rows } };
        const logs = dp ? dataParallelBatch(sys, batch, o, dp, slice.length, l.err) : runBatch(sys, batch, o, l.err).logs;
        for (const ex of logs) {
          guard.example(ex);
          addExample(pos.window, ex);
          addExample(pos.epochWindow, ex);
          monitor?.example(ex);
        }
        addBatch(pos.window, lambda);
        addBatch(pos.epochWindow, lambda);
        pos.step++;
        pos.batchInEpoch++;

        // Optimizer steps at accumulation boundaries and at the end of an epoch.
        const boundary = pos.step % cfg.grad_accum === 0 || pos.batchInEpoch === batchesPerEpoch;
        if (boundary) {
          if (dp) averageGradients([...optimizers.opt.params(), ...optimizers.refinerParams]);
          setLearningRates(optimizers, l.schedule.lrs());
          const update = optimizerStep(optimizers, cfg.clip);
          l.schedule.advance();
          const qwenNorm = Number.isFinite(update.qwenGradNorm) ? update.qwenGradNorm : 0;
          addOptimizerStep(pos.window, qwenNorm);
          addOptimizerStep(pos.epochWindow, qwenNorm);
          monitor?.optimizerStep(update.gradNorms);
          guard.afterOptimizerStep(pos.step, update.nonFinite, checkpoints.last);
          pos.nonFinite = guard.state;
        }
        if (pos.step % cfg.log_every === 0) {
          const s = windowStats(pos.window);
          monitor?.log({ type: "batch", step: pos.step, epoch: pos.epoch + 1, batch: pos.batchInEpoch, ...s, theta: sys.memory.theta, memory: sys.memory.size, scale: optimizers.scaler.getScale(), ...monitor.batchExtras(pos.step), time: new Date().toISOString() });
          pos.window = emptyWindow();
        }
        bar.update(pos.step, `epoch ${pos.epoch + 1}/${cfg.epochs} efe (epoch mean) ${windowStats(pos.epochWindow).efe.toFixed(3)} ${monitor?.barExtra() ?? ""}`);
        // --eval_every: validation inside the epoch (its end validates anyway), with the checkpoint best/ needs.
        const inEpoch = pos.batchInEpoch < batchesPerEpoch;
        if (boundary && inEpoch && cfg.eval_every > 0 && pos.step % cfg.eval_every === 0) await validateAndSave();
        else if (boundary) checkpoints.onOptimizerStep(pos, batchesPerEpoch);
      }
      if (stopped !== "done") break;

      // End of epoch: the summary, validation, a checkpoint (positioned at the next epoch), best/.
      const ms = sys.memory.stats;
      monitor?.log({
        type: "epoch", step: pos.step, epoch: pos.epoch + 1, epochs: cfg.epochs, ...windowStats(pos.epochWindow), theta: sys.memory.theta, memory: sys.memory.size,
        baseline: sys.refiner.baseline, memory_writes: ms.writes, memory_hit_rate: ms.reads ? ms.hitReads / ms.reads : 0,
      });
      pos.epochWindow = emptyWindow();
      pos.epoch++;
      pos.batchInEpoch = 0;
      await validateAndSave();
      // A stop asked during the epoch's validation: the checkpoint is written, the run ends here.
      if (stopAsked()) stopped = "interrupted";
    }
    // A run stopped early ends checkpointed; validated too after --max_batches, and after a signal
    // only with --validate_on_stop (validation can take minutes, and a stop asked for is wanted soon).
    if (stopped !== "done" && validatedStep !== pos.step) {
      if (stopped === "max_batches" || cfg.validate_on_stop) await validateAndSave();
      else checkpoints.save(pos);
      // A stop during that validation is a stop, not a finished run (exit 130/143); every rank asks.
      if (stopAsked()) stopped = "interrupted";
    }
    // No rank ends before rank 0's last checkpoint is written.
    if (dp) torch.distributed.barrier();
  } finally {
    bar.stop();
    monitor?.close();
    stop.dispose();
  }
  // A data-parallel stop asked on another rank: this rank was not signalled itself.
  const signal = stopped === "interrupted" ? (stop.signal ?? "SIGTERM") : null;
  return { runDir: l.runDir, step: pos.step, lastCheckpoint: checkpoints.last, stopped, signal, lastValidation: pos.lastValidation };
}
