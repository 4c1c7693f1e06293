// Checkpoints, as a callback of the loop: every --ckpt_every optimizer steps inside an epoch, at each
// epoch's end and when the run stops. Each is pruned to --keep_last, mirrored under --backup_dir and
// its size checked against the free disk; best/ follows the metric after a validation of it. No
// checkpoint (and so no best/) is ever written from non-finite weights: the run stops instead, the
// last finite checkpoint kept. Every data-parallel rank checks (their weights are equal), so all stop together.
import { join } from "node:path";
import * as torch from "../../torch";
import { releaseFreeMemory } from "../../util/malloc";
import type { BestMetric, TrainConfig } from "../config/train-config";
import type { EvalSummary } from "../eval/evaluate";
import { mirrorCheckpoint } from "../run/backup";
import { checkpointBytes, saveCheckpoint, stepDirName, verifyCheckpoint } from "../run/checkpoint";
import { checkpointsDir } from "../run/run-folder";
import { diskSpaceWarning } from "../run/preflight";
import { pruneCheckpoints, updateBest } from "../run/retention";
import { type RankGenerators, type TrainingParts, type TrainingPosition, captureTrainingState } from "../run/training-state";
import { NonFiniteError, describeTensors, nonFiniteTensors, tensorGroup } from "../system/nonfinite";
import { modelTensors } from "../system/state";
import type { Window } from "./window";

export type Position = TrainingPosition<Window>;

export interface CheckpointingOptions {
  runDir: string;
  cfg: TrainConfig;
  parts: TrainingParts;
  /** Rank 0 writes; the other ranks only take part in the collectives. */
  lead: boolean;
  /** Every rank's generators, for rank 0's checkpoint (a collective: every rank saves at the same steps). */
  rankGenerators: () => RankGenerators | undefined;
  err: (line: string) => void;
}

const firstLine = (e: unknown) => (e as Error).message.split("\n")[0];

export function metricValue(s: EvalSummary, m: BestMetric): number {
  return { val_exact: s.exactFirst, val_pass2: s.pass2, val_cell_acc: s.cellAcc, accuracy_delta: s.accuracyDelta }[m];
}

export class Checkpointing {
  /** The newest checkpoint written (or resumed from). */
  last: string | null;
  /** A backup that fails costs the backup, never the training; the log says when backups work again. */
  private backupFailing = false;
  /** The up-front disk check used an estimate; each real checkpoint gives the exact size. */
  private diskWarned = false;

  constructor(private readonly o: CheckpointingOptions, resumedFrom: string | null) {
    this.last = resumedFrom;
  }

  /** After an optimizer step: a checkpoint when --ckpt_every says so (0: none; the epoch's last step saves after validation instead). */
  onOptimizerStep(pos: Position, batchesPerEpoch: number): void {
    const every = this.o.cfg.ckpt_every;
    if (every > 0 && pos.batchInEpoch < batchesPerEpoch && pos.step % every === 0) this.save(pos);
  }

  /** Refuses non-finite weights, naming the first bad tensor and the last finite checkpoint. */
  checkFinite(step: number): void {
    const bad = nonFiniteTensors(modelTensors(this.o.parts.sys));
    if (bad.length)
      throw new NonFiniteError(
        `the ${tensorGroup(bad[0])} weights went non-finite by step ${step} (${describeTensors(bad)}); no checkpoint was written from them, ` +
          `the last finite one is ${this.last ?? "none (the run has no checkpoint)"}; lower the learning rates (--agent_lr, --qwen_lr, --rl_lr) or --clip`,
      );
  }

  save(pos: Position): string {
    const { runDir, cfg, lead } = this.o;
    this.checkFinite(pos.step);
    const dir = torch.scope(() => {
      const ranks = this.o.rankGenerators();
      if (!lead) return join(checkpointsDir(runDir), stepDirName(pos.step));
      return saveCheckpoint(runDir, { step: pos.step, epoch: pos.epoch, ...captureTrainingState(this.o.parts, pos, ranks) });
    });
    this.last = dir;
    if (!lead) return dir;
    pruneCheckpoints(runDir, cfg.keep_last, { protect: [dir] });
    if (cfg.backup_dir) this.backUp(dir, cfg.backup_dir);
    this.watchDisk(dir);
    // glibc keeps the pages of tensors that batches and this write freed, so RSS would sit at the high-water
    // mark of every batch so far; handing them back here bounds it to what is live plus the working set
    // of the batches since the last checkpoint (bench/soak.ts).
    releaseFreeMemory();
    return dir;
  }

  /** best/ follows the metric, after a validation of checkpoint `dir`. */
  updateBest(dir: string, validation: EvalSummary, step: number): void {
    const { runDir, cfg, lead, err } = this.o;
    if (!lead) return;
    const value = metricValue(validation, cfg.best_metric);
    try {
      if (updateBest(runDir, dir, cfg.best_metric, value, true)) err(`best ${cfg.best_metric} = ${value.toFixed(4)} at step ${step}: ${runDir}/checkpoints/best`);
    } catch (e) {
      // The previous best/ is intact (it is replaced only by a verified copy); training goes on.
      err(`warning: could not update ${runDir}/checkpoints/best (${firstLine(e)}); the previous best/ is kept`);
    }
  }

  private backUp(dir: string, backupDir: string): void {
    try {
      mirrorCheckpoint(dir, backupDir);
      if (this.backupFailing) this.o.err(`backup to ${backupDir} works again (${dir})`);
      this.backupFailing = false;
    } catch (e) {
      this.backupFailing = true;
      this.o.err(`warning: backup of ${dir} to ${backupDir} failed (${firstLine(e)}); training goes on, the next checkpoint is backed up again`);
    }
  }

  private watchDisk(dir: string): void {
    const v = verifyCheckpoint(dir, { hash: false });
    const w = v.ok ? diskSpaceWarning(this.o.runDir, checkpointBytes(v.manifest), 2, "a new checkpoint and a best/ copy") : null;
    if (w && !this.diskWarned) this.o.err(w);
    this.diskWarned = w !== null;
  }
}
