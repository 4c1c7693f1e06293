// A run's training state in a checkpoint, in one place: what save() writes (model tensors by name, both
// optimizers, the episodic memory, the refiner, the GradScaler, the RNG streams and the position in
// training) and what a resume or an evaluation reads back. The names of the tensors and the keys of
// state.json are the checkpoint format (checkpoint.ts stores them; resume.ts checks them).
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import type { TrainConfig } from "../config/train-config";
import type { EvalSummary } from "../eval/evaluate";
import { trainingStateProblem } from "./resume";
import type { LoadedCheckpoint } from "./checkpoint";
import { loadModelTensors, modelTensors, withPrefix } from "../system/state";
import type { System } from "../system/system";

/** What a checkpoint's state is taken from and restored into: the run's built parts. */
export interface TrainingParts {
  config: TrainConfig;
  sys: System;
  opt: Optimizer;
  refinerOpt: Optimizer;
  scaler: torch.GradScaler;
  /** The config a checkpoint records (default `config`; a data-parallel rank runs on cuda:LOCAL_RANK but records --device as given). */
  savedConfig?: TrainConfig;
  /** Data-parallel runs: this process's rank and the number of ranks (default 0 of 1). */
  rank?: number;
  world?: number;
  /** The data's identity (data-identity.ts), recorded so a resume can tell the same data from changed data. */
  data?: unknown;
  /** The learning-rate schedule (state.json's lr_schedule), so a resume continues on the same curve. */
  lrSchedule?: { state(): unknown };
}

/** Every rank's generator states, in rank order (a data-parallel run's rank 0 saves them all). */
export interface RankGenerators {
  cpu: Tensor[];
  cuda: Tensor[] | null;
}

interface Optimizer {
  stateDict(): torch.OptimizerState;
  loadStateDict(sd: torch.OptimizerState): void;
}

/** Where training stands, and its running sums (the trainer's windows), saved for exact resume. */
export interface TrainingPosition<W = unknown> {
  step: number;
  epoch: number;
  batchInEpoch: number;
  window: W;
  epochWindow: W;
  lastValidation: EvalSummary | null;
  /** The non-finite guard's count of skipped optimizer steps and its first cause (absent: none yet). */
  nonFinite?: { steps: number; first: string | null };
}

/** Restores the whole system (weights, memory, refiner baseline) from a checkpoint, for evaluation. */
export function restoreSystem(sys: System, ck: Pick<LoadedCheckpoint, "state" | "tensors">): void {
  loadModelTensors(sys, ck.tensors.model);
  sys.memory.loadState(ck.tensors.memory ?? {}, ck.state.memory);
  sys.refiner.loadStateJson(ck.state.refiner);
}

/**
 * The tensor files and state.json of a checkpoint at `position` (call inside a torch.scope: the
 * optimizer and RNG tensors it gathers are the scope's). Pass both to saveCheckpoint.
 */
export function captureTrainingState<W>(
  p: TrainingParts,
  position: TrainingPosition<W>,
  ranks?: RankGenerators,
): { tensors: Record<string, Record<string, Tensor>>; state: Record<string, unknown> } {
  const { config: cfg, sys, scaler } = p;
  const optState = p.opt.stateDict();
  const refinerOptState = p.refinerOpt.stateDict();
  const optimizer: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(optState.tensors)) optimizer[`main.${k}`] = t;
  // The refiner's Adam is stored as policy.* and its meta as policyOptimizer: names of the checkpoint
  // format, kept so that checkpoints written before the refiner had its one name still load.
  for (const [k, t] of Object.entries(refinerOptState.tensors)) optimizer[`policy.${k}`] = t;
  const rng: Record<string, Tensor> = { cpu: torch.getRngState() };
  if (cfg.device.startsWith("cuda")) rng.cuda = torch.getRngState(cfg.device as torch.Device);
  // Rank r > 0's generators as cpu.rank<r> (and cuda.rank<r>): each rank resumes its own streams.
  ranks?.cpu.forEach((t, r) => {
    if (r > 0) rng[`cpu.rank${r}`] = t;
  });
  ranks?.cuda?.forEach((t, r) => {
    if (r > 0) rng[`cuda.rank${r}`] = t;
  });
  const { step, epoch, batchInEpoch, window, epochWindow, lastValidation, nonFinite } = position;
  return {
    tensors: { model: modelTensors(sys), optimizer, memory: sys.memory.stateTensors(), rng },
    state: {
      position: { step, epoch, batchInEpoch, window, epochWindow, lastValidation, ...(nonFinite?.steps ? { nonFinite } : {}) },
      optimizer: optState.meta,
      policyOptimizer: refinerOptState.meta,
      scaler: scaler.stateDict(),
      memory: sys.memory.stateJson(),
      refiner: sys.refiner.stateJson(),
      validation: lastValidation,
      config: p.savedConfig ?? cfg,
      dataParallel: { world: p.world ?? 1 },
      ...(p.data ? { data: p.data } : {}),
      ...(p.lrSchedule ? { lr_schedule: p.lrSchedule.state() } : {}),
    },
  };
}

/**
 * Restores every piece of training state from a loaded checkpoint into the run's parts and returns the
 * saved position. Throws (with the reason) for a checkpoint that is not a complete training state; each
 * call replaces every piece, so a failed one leaves nothing that a later one keeps.
 */
export function restoreTrainingState<W>(p: TrainingParts, loaded: Pick<LoadedCheckpoint, "state" | "tensors">): TrainingPosition<W> {
  const { config: cfg, sys } = p;
  const problem = trainingStateProblem(loaded.state);
  if (problem) throw new Error(problem);
  const st = loaded.state;
  if (!loaded.tensors.model || !loaded.tensors.optimizer || !loaded.tensors.rng?.cpu) throw new Error("model, optimizer or rng tensors are missing");
  loadModelTensors(sys, loaded.tensors.model);
  p.opt.loadStateDict({ tensors: withPrefix(loaded.tensors.optimizer, "main."), meta: st.optimizer });
  p.refinerOpt.loadStateDict({ tensors: withPrefix(loaded.tensors.optimizer, "policy."), meta: st.policyOptimizer });
  sys.memory.loadState(loaded.tensors.memory ?? {}, st.memory);
  sys.refiner.loadStateJson(st.refiner);
  p.scaler.loadStateDict(st.scaler);
  const saved = savedWorld(st);
  if (saved !== (p.world ?? 1)) throw new Error(`the checkpoint is of a run with ${saved} data-parallel process(es), this one has ${p.world ?? 1}`);
  const rank = p.rank ?? 0;
  const own = (name: string) => loaded.tensors.rng?.[rank === 0 ? name : `${name}.rank${rank}`];
  if (!own("cpu")) throw new Error(`the generator state of rank ${rank} is missing`);
  torch.setRngState(own("cpu")!);
  if (cfg.device.startsWith("cuda") && own("cuda")) torch.setRngState(own("cuda")!, cfg.device as torch.Device);
  const { step, epoch, batchInEpoch, window, epochWindow, lastValidation, nonFinite } = st.position;
  return { step, epoch, batchInEpoch, window, epochWindow, lastValidation, ...(nonFinite ? { nonFinite } : {}) };
}

/**
 * The number of data-parallel processes a checkpoint's run had (runs from before data parallelism are
 * migrated to 1, run/migrations.ts). A state too broken to hold it counts as 1 here, so that the trainer's
 * check before loading passes it on to restoreTrainingState, which names what is missing.
 */
export const savedWorld = (state: any): number => state?.dataParallel?.world ?? 1;
