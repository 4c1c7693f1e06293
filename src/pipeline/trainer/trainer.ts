// A training run from its flags to its first batch: the data-parallel group, one trainer per run (a lock),
// the resume point, checks that fail before any work is spent, the system and its optimizers, and the
// parts the loop runs with (loop.ts); a stop on SIGINT/SIGTERM checkpoints first.
import { totalmem } from "node:os";
import { ArcDataError, BadTaskFilesError, type Dataset, loadDataset, splitTasks } from "../../arc/index";
import * as torch from "../../torch";
import { autocastFor, runExamples, systemConfig, useThreads } from "../config/run-setup";
import { DEFAULTS, type TrainConfig, UsageError, checkCheckpointInterval } from "../config/train-config";
import { RunMonitor, runSinks } from "../observe/monitor";
import { checkpointBytes, listCheckpoints, loadCheckpoint, readCheckpointState } from "../run/checkpoint";
import { type DataIdentity, dataChange, dataIdentity, recordedDataPath, sameDataPath, savedDataIdentity } from "../run/data-identity";
import { type RunLock, acquireRunLock } from "../run/lock";
import { checkActivationMemory, checkSplit, diskSpaceWarning, estimateCheckpointBytes, modelFolderConfig } from "../run/preflight";
import { probeWritable } from "../run/probe";
import { type Candidate, ResumeCandidates, resumeDir, resumedConfig, savedConfig } from "../run/resume";
import { appendMetrics, checkpointsDir, createRun, trimMetrics } from "../run/run-folder";
import { type RankGenerators, type TrainingParts, restoreTrainingState, savedWorld } from "../run/training-state";
import { modelTensors } from "../system/state";
import { type System, buildSystem } from "../system/system";
import { Checkpointing, type Position } from "./checkpointing";
import { type DataParallel, allGatherAnywhere, broadcastParameters, dataParallelFromEnv, shareFrom } from "./ddp";
import { type TrainResult, trainingLoop } from "./loop";
import { buildOptimizers } from "./optimizers";
import { LrSchedule, lrScheduleWarning, totalOptimizerSteps } from "../config/lr-schedule";
import { listenForStop } from "./stop";
import { Validation } from "./validation";
import { type Window, emptyWindow } from "./window";

export type { TrainResult } from "./loop";
export { RESUMABLE_OVERRIDES } from "../run/resume";

export interface TrainIO {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Called with the trained system once the run has ended well (tests and benchmarks read its state). */
  onFinish?: (sys: System) => void;
}
const consoleIO: TrainIO = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };
/** Data-parallel ranks other than 0 print nothing but their errors (which the script prints as they end it). */
const silentIO: TrainIO = { out: () => {}, err: () => {} };

export async function train(config: TrainConfig, explicit: Partial<TrainConfig> = {}, consoleOut: TrainIO = consoleIO): Promise<TrainResult> {
  // WORLD_SIZE > 1: one rank of a data-parallel run (ddp.ts). Every rank joins the process group first,
  // so a rank that fails any later check ends the others' collectives instead of leaving them waiting.
  let dp: DataParallel | null;
  try {
    dp = dataParallelFromEnv(process.env, explicit.dist_backend !== undefined);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (dp && !torch.distributed.isInitialized()) {
    const backend = config.dist_backend ?? DEFAULTS.dist_backend;
    if (backend === "nccl" && !config.device.startsWith("cuda")) throw new UsageError(`--dist_backend nccl reduces CUDA tensors: it needs --device cuda (this run has --device ${config.device}; gloo works on both)`);
    torch.distributed.initProcessGroup({ backend, timeoutMs: (config.dist_timeout ?? DEFAULTS.dist_timeout) * 1000, ...(config.device.startsWith("cuda:") ? { device: Number(config.device.slice(5)) } : {}) });
  }
  const lead = !dp || dp.rank === 0;
  const io = lead ? consoleOut : { ...silentIO, onFinish: consoleOut.onFinish };
  // A resume locks its run before reading anything in it, so nothing is judged from a folder another
  // trainer is writing. A new run is locked the moment its folder exists. Only rank 0 writes, so only it locks.
  let lock: RunLock | null = null;
  const takeLock = (dir: string) => (lead ? acquireRunLock(dir, { onTakeover: (m) => io.err(m) }) : null);
  try {
    let cfg = config;
    let candidates: ResumeCandidates | null = null;
    let first: Candidate | null = null;
    let savedData: DataIdentity | null = null;
    if (config.resume) {
      const dir = resumeDir(config);
      // Another world size is refused before the lock is taken: every rank fails alike, and a rank 0 ended
      // by the launcher as the others fail leaves no lock behind. (Checked again on the checkpoint loaded.)
      const trainedWith = newestWorld(dir);
      if (trainedWith !== null && trainedWith !== (dp?.world ?? 1)) throw worldSizeError(dir, trainedWith, dp?.world ?? 1);
      lock = takeLock(dir);
      candidates = new ResumeCandidates(dir, io.err);
      if (candidates.empty) throw new UsageError(`--resume ${dir}: the run has no checkpoint yet (start a new run without --resume)`);
      first = candidates.next();
      if (!first) throw new UsageError(`--resume ${dir}: no intact checkpoint (${candidates.rejected.join("; ")})`);
      // The data is judged by what it holds, not by how its path is spelled: --data naming a moved copy is
      // no conflict here (its tasks are compared below), and without --data the recorded absolute path is used.
      savedData = savedDataIdentity(first.dir);
      const { data: givenData, ...rest } = explicit;
      cfg = resumedConfig(dir, savedConfig(dir, candidates.dirs, io.err, { restore: lead }), savedData ? rest : explicit, config);
      checkCheckpointInterval(cfg);
      if (savedData && givenData !== undefined) cfg = { ...cfg, data: givenData };
      else if (savedData) cfg = { ...cfg, data: recordedDataPath(savedData) ?? cfg.data };
    }

    // Everything that can fail without a model, before a run folder or a model exists.
    const ds = await loadRunData(cfg, io);
    const data = { identity: dataIdentity(cfg.data, ds), change: null as string | null };
    if (savedData) {
      data.change = dataChange(savedData, data.identity);
      const where = sameDataPath(cfg.data, savedData) ? `in ${savedData.path}` : `(it trained on ${savedData.path}, this is ${data.identity.path})`;
      if (data.change && explicit.allow_data_change !== true)
        throw new UsageError(`--resume ${candidates!.runDir}: the run's training tasks have changed since its checkpoint ${where}: ${data.change}; restore them, or pass --allow_data_change to go on with the tasks as they are now`);
      if (data.change) data.change = `${data.change} ${where}`;
    }
    checkSplit(ds.training, splitTasks(ds.training, cfg.val_fraction, cfg.seed), cfg);
    const qwenConfig = modelFolderConfig(cfg.model);
    // Bounds from the model: a prompt and its hint must fit the positions it was trained for.
    const context = qwenConfig?.maxPositionEmbeddings;
    if (context && cfg.max_prompt_tokens + cfg.hint_tokens > context)
      throw new UsageError(`--max_prompt_tokens ${cfg.max_prompt_tokens} + --hint_tokens ${cfg.hint_tokens} is more than the model's context (${context} positions, max_position_embeddings of --model ${cfg.model}); lower them`);
    const resumed = candidates ? candidates.runDir : null;
    // Only rank 0 writes (a probe included): the others leave the folders alone.
    if (lead) {
      if (resumed) {
        probeWritable(resumed, `--resume ${resumed}`);
        probeWritable(checkpointsDir(resumed), `--resume ${resumed}`);
      } else probeWritable(cfg.run_dir, `--run_dir ${cfg.run_dir}`);
      if (cfg.backup_dir) probeWritable(cfg.backup_dir, `--backup_dir ${cfg.backup_dir}`);
    }
    const perCheckpoint = first ? checkpointBytes(first.manifest) : estimateCheckpointBytes(cfg, qwenConfig);
    const kept = `--keep_last ${cfg.keep_last}, best/ and the one being written`;
    for (const [dir, more] of [[resumed ?? cfg.run_dir, cfg.keep_last + 2 - (resumed ? listCheckpoints(resumed).length : 0)], [cfg.backup_dir, 2]] as const) {
      const w = dir ? diskSpaceWarning(dir, perCheckpoint, more, dir === cfg.backup_dir ? "the backup of each checkpoint" : kept) : null;
      if (w) io.err(w);
    }

    // A new run's folder is made once the model has loaded too, so nothing that fails leaves an empty one.
    // In a data-parallel run rank 0 makes it and the others learn its name.
    const openRun = (): { dir: string } => {
      if (resumed) return { dir: resumed };
      if (!lead) return { dir: shareFrom("") };
      const run = createRun(cfg.run_dir, { ...cfg, resume: null }, cfg.run_name ? { name: cfg.run_name } : {});
      lock = takeLock(run.dir);
      if (dp) shareFrom(run.dir);
      return run;
    };
    return await trainRun(cfg, openRun, ds, candidates, first, io, dp, data);
  } finally {
    lock?.release();
  }
}

/** The world size of a run's newest checkpoint whose state.json parses (null: none does). */
function newestWorld(dir: string): number | null {
  for (const ck of listCheckpoints(dir).reverse()) {
    try {
      return savedWorld(readCheckpointState(ck.dir));
    } catch {
      // unreadable: the candidates' own checks will say why; try an older one
    }
  }
  return null;
}

/** A resume launched with another number of data-parallel processes than the run trained with. */
function worldSizeError(dir: string, trained: number, now: number): UsageError {
  return new UsageError(
    `--resume ${dir}: the run trained with ${trained} data-parallel process(es) and this launch has ${now} (WORLD_SIZE); ` +
      `resume it with ${trained === 1 ? "one process (no launcher)" : `--nproc_per_node ${trained} in all`}: the data order, the memory's writes and each rank's random streams follow the world size`,
  );
}

/** The run's data, with the bad-task policy applied; a data problem is a usage error (exit code 2). */
async function loadRunData(cfg: TrainConfig, io: TrainIO): Promise<Dataset> {
  try {
    return await loadDataset(cfg.data, {
      skipBadTasks: cfg.skip_bad_tasks,
      onSkip: (skipped) => io.err(`--skip_bad_tasks: skipping ${skipped.length} bad task file(s):\n  ${skipped.join("\n  ")}`),
    });
  } catch (e) {
    if (e instanceof ArcDataError) throw new UsageError(`--data ${cfg.data}: ${e.message}${e instanceof BadTaskFilesError ? " (--skip_bad_tasks trains without them, listing them)" : ""}`);
    throw e;
  }
}

/**
 * Loads the newest loadable checkpoint into the run's parts and returns its position and folder. One that
 * verifies but cannot be loaded (a state.json from a broken writer, a tensor header the reader rejects) is
 * skipped like a corrupt one; each load replaces every piece of state, so a failed attempt leaves nothing
 * behind that the next one keeps.
 */
function loadResumePoint(candidates: ResumeCandidates, first: Candidate, parts: TrainingParts, runDir: string): { pos: Position; dir: string; lrSchedule: unknown } {
  const world = parts.world ?? 1;
  for (let ck: Candidate | null = first; ck; ck = candidates.next()) {
    try {
      return torch.scope(() => {
        // The candidate was hashed when it was verified: no second pass over (possibly GBs of) weights.
        const loaded = loadCheckpoint(ck!.dir, { device: parts.config.device as torch.Device, verify: false });
        if (savedWorld(loaded.state) !== world) throw worldSizeError(runDir, savedWorld(loaded.state), world);
        return { pos: restoreTrainingState<Window>(parts, loaded), dir: ck!.dir, lrSchedule: loaded.state.lr_schedule };
      });
    } catch (e) {
      if (e instanceof UsageError) throw e;
      candidates.reject(ck.dir, `it verifies but cannot be loaded: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(`--resume ${runDir}: no checkpoint could be loaded (${candidates.rejected.join("; ")})`);
}

/** Optimizer steps a run had taken at `pos`: one every --grad_accum batches and one at each epoch's end. */
function optimizerStepsBefore(pos: Position, batchesPerEpoch: number, gradAccum: number): number {
  return totalOptimizerSteps({ epochs: pos.epoch, batchesPerEpoch, gradAccum }) + Math.floor(pos.batchInEpoch / gradAccum);
}

async function trainRun(
  cfg: TrainConfig,
  openRun: () => { dir: string },
  ds: Dataset,
  candidates: ResumeCandidates | null,
  first: Candidate | null,
  io: TrainIO,
  dp: DataParallel | null,
  data: { identity: DataIdentity; change: string | null },
): Promise<TrainResult> {
  useThreads(cfg.num_threads);
  torch.manualSeed(cfg.seed);
  const rank = dp?.rank ?? 0;
  const world = dp?.world ?? 1;
  const lead = rank === 0;
  // Each data-parallel rank takes its own GPU (--device cuda: cuda:LOCAL_RANK); the run records --device as given.
  const savedCfg = cfg;
  if (dp && cfg.device === "cuda") {
    const n = torch.cuda.deviceCount();
    if (dp.localRank >= n) throw new UsageError(`--device cuda: LOCAL_RANK ${dp.localRank} has no GPU of its own (this machine has ${n}); start at most ${n} processes per machine, or give --device cuda:N to share one`);
    cfg = { ...cfg, device: `cuda:${dp.localRank}` };
  }

  const { train: trainEx, val: valEx } = runExamples(ds, cfg);
  if (trainEx.length === 0) throw new UsageError(`--data ${cfg.data}: no training examples`);
  // A batch larger than the data would hold every example at once (and the memory for them all).
  if (!candidates && cfg.batch_size > trainEx.length)
    throw new UsageError(`--batch_size ${cfg.batch_size} is more than the ${trainEx.length} training examples of --data ${cfg.data}; give --batch_size ${trainEx.length} or fewer`);
  // Bounds from the machine: the largest batch's activations must fit its memory at all (before the model loads).
  const memory = cfg.device.startsWith("cuda") ? torch.cuda.memInfo(Number(cfg.device.split(":")[1] ?? 0)).total : totalmem();
  checkActivationMemory(cfg, modelFolderConfig(cfg.model), cfg.device, memory, lead ? io.err : () => {});
  const globalBatch = cfg.batch_size * world;
  const batchesPerEpoch = Math.ceil(trainEx.length / globalBatch);

  const sys = await buildSystem(systemConfig(cfg), { quiet: cfg.quiet || !lead });
  // --group_by_length: each training example's prompt tokens, once per run (the prompter keeps each build
  // for the steps). Under --augment these are the unaugmented prompts' lengths, good enough: a dihedral
  // transform or a colour permutation moves most lengths little (docs/pipeline.md, "Measurements behind the design").
  const promptLengths = cfg.group_by_length === "true" ? trainEx.map((ex) => sys.prompter.build(ex).ids.length) : null;
  // DDP's start: every rank from rank 0's weights (the same seed made them equal; this makes it certain).
  if (dp) broadcastParameters([...new Set(Object.values(modelTensors(sys)))]);
  const run = openRun();
  const optimizers = buildOptimizers(sys, { agentLr: cfg.agent_lr, qwenLr: cfg.qwen_lr, weightDecay: cfg.weight_decay, scaleLoss: cfg.device.startsWith("cuda") && cfg.amp_dtype === "fp16" });
  const parts: TrainingParts = { config: cfg, savedConfig: savedCfg, sys, opt: optimizers.opt, refinerOpt: optimizers.refinerOpt, scaler: optimizers.scaler, rank, world, data: data.identity };
  // The learning-rate schedule spans the whole planned run, as λ_size does (--max_batches only stops early).
  const totalSteps = totalOptimizerSteps({ epochs: cfg.epochs, batchesPerEpoch, gradAccum: cfg.grad_accum });
  const warn = lrScheduleWarning(cfg, totalSteps);
  if (warn && lead && !candidates) io.err(warn);

  const baseLrs = { agent: cfg.agent_lr, qwen: cfg.qwen_lr, refiner: cfg.rl_lr };
  let schedule = LrSchedule.fromFlags(cfg, totalSteps, baseLrs);
  let pos: Position = { step: 0, epoch: 0, batchInEpoch: 0, window: emptyWindow(), epochWindow: emptyWindow(), lastValidation: null };
  let resumeFrom: string | null = null;
  if (candidates && first) {
    let savedSchedule: unknown;
    ({ pos, dir: resumeFrom, lrSchedule: savedSchedule } = loadResumePoint(candidates, first, parts, run.dir));
    // A checkpoint from before schedules trained at constant rates: the same curve (the flags' defaults), at
    // the optimizer steps it had taken. A raised --epochs stretches the curve to the new total, at the same step.
    schedule = savedSchedule === undefined
      ? new LrSchedule(schedule.kind, schedule.shape, baseLrs, optimizerStepsBefore(pos, batchesPerEpoch, cfg.grad_accum))
      : LrSchedule.fromState(savedSchedule, `${resumeFrom}/state.json`).withTotalSteps(totalSteps);
    // A finished run resumed with nothing left to do says so and writes nothing (no validation, no metrics).
    const done = pos.epoch >= cfg.epochs ? `it finished its ${cfg.epochs} epoch(s)` : cfg.max_batches > 0 && pos.step >= cfg.max_batches ? `it is at step ${pos.step}, --max_batches ${cfg.max_batches}` : null;
    if (done) {
      io.err(`--resume ${run.dir}: nothing to do, ${done} (checkpoint ${resumeFrom}); raise --epochs or --max_batches to train further. Nothing was written`);
      return { runDir: run.dir, step: pos.step, lastCheckpoint: resumeFrom, stopped: pos.epoch >= cfg.epochs ? "done" : "max_batches", signal: null, lastValidation: pos.lastValidation };
    }
    const dropped = lead ? trimMetrics(run.dir, (r) => !(r.step > pos.step)) : 0;
    io.err(`resuming ${run.dir} from ${resumeFrom} (step ${pos.step}, epoch ${pos.epoch + 1}, batch ${pos.batchInEpoch})${dropped ? `; dropped ${dropped} metrics records past it` : ""}`);
  } else {
    io.err(`run ${run.dir}: ${trainEx.length} training examples (${batchesPerEpoch} batches/epoch${dp ? ` of ${globalBatch} over ${world} ranks` : ""}), ${valEx.length} validation, model ${cfg.model} on ${cfg.device}`);
  }

  // Every rank's generators, for rank 0's checkpoint (a collective: every rank calls save at the same steps).
  const rankGenerators = (): RankGenerators | undefined => {
    if (!dp) return undefined;
    const dev = cfg.device as torch.Device;
    return { cpu: allGatherAnywhere(torch.getRngState()), cuda: dev.startsWith("cuda") ? allGatherAnywhere(torch.getRngState(dev).to({ device: "cpu" })) : null };
  };
  parts.lrSchedule = schedule;
  const checkpoints = new Checkpointing({ runDir: run.dir, cfg, parts, lead, rankGenerators, err: io.err }, resumeFrom);
  const autocast = autocastFor(cfg);
  const validation = new Validation({ sys, examples: valEx, cfg, dp, autocast, err: io.err, stopSignal: () => stop.signal, lastCheckpoint: () => checkpoints.last });
  const again = (sig: string) => `${sig === "SIGINT" ? "Ctrl-C" : "the signal"} again quits at once; the last checkpoint stays intact`;
  const stop = listenForStop((sig) =>
    io.err(validation.running ? `\n${sig}: stopping validation at the next batch of examples, then saving a checkpoint (${again(sig)})` : `\n${sig}: finishing ${cfg.grad_accum > 1 ? `this optimizer step (--grad_accum ${cfg.grad_accum} batches)` : "this batch"}, then ${cfg.validate_on_stop ? "validating and " : ""}saving a checkpoint (${again(sig)})`),
  );
  // The console, metrics.jsonl, TensorBoard event files (cut back to the resume step) and report.html.
  const monitor = lead
    ? new RunMonitor(cfg.device, runSinks(run.dir, savedCfg, { step: pos.step, resumed: resumeFrom !== null, out: io.out, warn: io.err }), {
        step: pos.step, resumed: resumeFrom !== null, batchSize: globalBatch, optimizers: [{ opt: optimizers.opt }, { name: "rl", opt: optimizers.refinerOpt }], out: io.out, warn: io.err,
      })
    : null;
  // --allow_data_change: the change is said and recorded with the step it applies from.
  if (data.change) {
    io.err(`--allow_data_change: the training tasks changed since the checkpoint: ${data.change}; training goes on with them as they are now`);
    if (lead) appendMetrics(run.dir, { type: "data_change", step: pos.step, change: data.change, path: data.identity.path, tasks: data.identity.count, sha256: data.identity.sha256, time: new Date().toISOString() });
  }
  const result = await trainingLoop({ cfg, runDir: run.dir, sys, optimizers, schedule, autocast, trainExamples: trainEx, promptLengths, dp, pos, checkpoints, validation, monitor, stop, err: io.err });
  io.onFinish?.(sys);
  const { stopped, signal, step, lastCheckpoint } = result;
  io.err(`${stopped === "done" ? "finished" : stopped === "max_batches" ? `stopped after --max_batches ${cfg.max_batches}` : `stopped by ${signal}`}: ${step} batches; checkpoint ${lastCheckpoint}`);
  return result;
}
