// The training loop (docs/pipeline.md, "Training loop"): AdamW over the agent and Qwen, autocast + GradScaler on CUDA,
// gradient accumulation, the refiner's own optimizer (RL), the episodic memory, logs, validation,
// checkpoints that survive crashes, and exact resume. Around it: one trainer per run (a lock), checks
// that fail before any work is spent, and a stop on SIGINT/SIGTERM that checkpoints first.
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import { ArcDataError, BadTaskFilesError, type Dataset, type Example, epochOrder, loadDataset, splitTasks } from "../../arc/index";
import * as torch from "../../torch";
import { releaseFreeMemory } from "../../util/malloc";
import { progress } from "../../util/progress";
import { TTT_DEFAULTS } from "../eval/ttt";
import { type BestMetric, DEFAULTS, type TrainConfig, UsageError, checkCheckpointInterval } from "../config/train-config";
import { sizeWeight } from "../objective/efe";
import { type EvalSummary, type ExampleEval, evaluate, summarizeEval } from "../eval/evaluate";
import { type RunLock, acquireRunLock } from "../run/lock";
import { STATE, checkpointBytes, stepDirName, listCheckpoints, loadCheckpoint, saveCheckpoint, verifyCheckpoint } from "../run/checkpoint";
import { mirrorCheckpoint } from "../run/backup";
import { pruneCheckpoints, updateBest } from "../run/retention";
import { checkActivationMemory, checkSplit, diskSpaceWarning, estimateCheckpointBytes, modelFolderConfig, probeWritable } from "../run/preflight";
import { type Candidate, ResumeCandidates, resumeDir, resumedConfig, savedConfig } from "../run/resume";
import { type DataParallel, allGatherAnywhere, anyRank, averageGradients, broadcastParameters, dataParallelFromEnv, gatherRows, gatherStateUpdates, rankRows, rowCounts, shareFrom } from "./ddp";
import { RunMonitor } from "../observe/monitor";
import { appendMetrics, createRun, trimMetrics } from "../run/run-folder";
import { lengthGroupedOrder } from "./sampler";
import { trainingAugmentation } from "../system/augmentation";
import { type ExampleLogs, applyStateUpdates } from "../system/training-step";
import { autocastFor, runExamples, systemConfig, useThreads } from "../config/run-setup";
import { type BackwardOptions, backwardBatch, buildOptimizers, optimizerStep } from "./optimizer-step";
import { type StopSignal, listenForStop, yieldToSignals } from "./stop";
import { type DataIdentity, dataChange, dataIdentity, recordedDataPath, sameDataPath, savedDataIdentity } from "../run/data-identity";
import { NonFiniteError, describeTensors, nonFiniteTensors, nonFiniteTerm, tensorGroup } from "../system/nonfinite";
import { type System, buildSystem } from "../system/system";
import { type RankGenerators, type TrainingParts, captureTrainingState, restoreTrainingState, savedWorld } from "../run/training-state";
import { modelTensors } from "../system/state";

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

export interface TrainResult {
  runDir: string;
  step: number;
  lastCheckpoint: string | null;
  stopped: "done" | "max_batches" | "interrupted";
  /** The signal that stopped the run (stopped === "interrupted"). */
  signal: StopSignal | null;
  lastValidation: EvalSummary | null;
}

/** Sums over a window of batches, for the batch line and the epoch summary (saved for exact resume). */
interface Window {
  batches: number;
  examples: number;
  loss: number;
  efe: number;
  dAcc: number;
  /** Cell accuracy after refinement (absolute; d_acc is only the refinement's change). */
  acc: number;
  mask: number;
  dSize: number;
  rl: number;
  qwenGrad: number;
  optSteps: number;
  skipped: number;
  sizeWeight: number;
}
const emptyWindow = (): Window => ({ batches: 0, examples: 0, loss: 0, efe: 0, dAcc: 0, acc: 0, mask: 0, dSize: 0, rl: 0, qwenGrad: 0, optSteps: 0, skipped: 0, sizeWeight: 0 });
const avg = (sum: number, n: number) => (n > 0 ? sum / n : 0);

function addExample(w: Window, l: ExampleLogs): void {
  w.examples++;
  if (!l.finite) {
    w.skipped++;
    return;
  }
  w.loss += l.loss;
  w.efe += l.efe;
  w.dAcc += l.dAcc;
  w.acc += l.after.acc;
  w.mask += l.maskRatio;
  w.dSize += l.sizeError;
  w.rl += l.r;
}

function windowStats(w: Window) {
  const n = w.examples - w.skipped;
  return {
    loss: avg(w.loss, n),
    efe: avg(w.efe, n),
    d_acc: avg(w.dAcc, n),
    acc: avg(w.acc, n),
    mask: avg(w.mask, n),
    d_size: avg(w.dSize, n),
    rl_reward: avg(w.rl, n),
    qwen_grad: avg(w.qwenGrad, w.optSteps),
    size_weight: avg(w.sizeWeight, w.batches),
    skipped: w.skipped,
  };
}

/** A number as Python's "%.2e" prints it (2.34e-04), the form of Qwen_grad in the batch log line. */
export function sci(v: number): string {
  const [m, e] = v.toExponential(2).split("e");
  const exp = Number(e);
  return `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
}

export function batchLine(step: number, s: ReturnType<typeof windowStats>): string {
  const sign = (v: number) => (v >= 0 ? "+" : "") + v.toFixed(3);
  return (
    `[Batch ${String(step).padStart(4)}] EFE_Loss: ${s.efe.toFixed(3)} | d_acc: ${sign(s.d_acc)} | Qwen_grad: ${sci(s.qwen_grad)} | ` +
    `Mask: ${s.mask.toFixed(3)} | d_size: ${s.d_size.toFixed(2)} | RL: ${sign(s.rl_reward)}${s.skipped ? ` | skipped: ${s.skipped}` : ""}`
  );
}

function metricValue(s: EvalSummary, m: BestMetric): number {
  return { val_exact: s.exactFirst, val_pass2: s.pass2, val_cell_acc: s.cellAcc, accuracy_delta: s.accuracyDelta }[m];
}

// ---- the loop ------------------------------------------------------------------------------------

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
        probeWritable(join(resumed, "checkpoints"), `--resume ${resumed}`);
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
      const run = createRun(cfg.run_dir, { ...cfg, resume: null });
      lock = takeLock(run.dir);
      if (dp) shareFrom(run.dir);
      return run;
    };
    return await trainRun(cfg, openRun, ds, candidates, first, io, dp, data);
  } finally {
    lock?.release();
  }
}

/** Validation's examples in parts of `size` (under test-time training, a task's examples are not split). */
function validationParts(examples: Example[], size: number, byTask: boolean): Example[][] {
  const parts: Example[][] = [];
  for (let i = 0; i < examples.length; ) {
    let j = Math.min(examples.length, i + Math.max(1, size));
    while (byTask && j < examples.length && examples[j].task === examples[j - 1].task) j++;
    parts.push(examples.slice(i, j));
    i = j;
  }
  return parts;
}

/** The world size of a run's newest checkpoint whose state.json parses (null: none does). */
function newestWorld(dir: string): number | null {
  for (const ck of listCheckpoints(dir).reverse()) {
    try {
      return savedWorld(JSON.parse(readFileSync(join(ck.dir, STATE), "utf8")));
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
  checkActivationMemory(cfg, modelFolderConfig(cfg.model), cfg.device, totalmem());
  // The global batch: batch_size examples on each of the world's ranks.
  const globalBatch = cfg.batch_size * world;
  const batchesPerEpoch = Math.ceil(trainEx.length / globalBatch);
  // The λ_size schedule spans the whole planned run; --max_batches only stops early (so a run stopped
  // and resumed follows the same schedule as one that never stopped).
  const totalBatches = cfg.epochs * batchesPerEpoch;
  const barTotal = cfg.max_batches > 0 ? Math.min(cfg.max_batches, totalBatches) : totalBatches;

  const sys = await buildSystem(systemConfig(cfg), { quiet: cfg.quiet || !lead });
  // --group_by_length: each training example's prompt tokens, once per run (the prompter keeps each build
  // for the steps). Under --augment these are the unaugmented prompts' lengths, good enough: a dihedral
  // transform or a colour permutation moves most lengths little (ARC-AGI-2, batch 8: 0.036 of the
  // augmented prompts' positions are padding, against 0.030 unaugmented and 0.47 ungrouped).
  const promptLengths = cfg.group_by_length === "true" ? trainEx.map((ex) => sys.prompter.build(ex).ids.length) : null;
  // DDP's start: every rank from rank 0's weights (the same seed made them equal; this makes it certain).
  if (dp) broadcastParameters([...new Set(Object.values(modelTensors(sys)))]);
  const run = openRun();
  const optimizers = buildOptimizers(sys, { agentLr: cfg.agent_lr, qwenLr: cfg.qwen_lr, weightDecay: cfg.weight_decay, scaleLoss: cfg.device.startsWith("cuda") && cfg.amp_dtype === "fp16" });
  const { opt, refinerOpt, scaler } = optimizers;
  const autocast = autocastFor(cfg);
  const parts: TrainingParts = { config: cfg, savedConfig: savedCfg, sys, opt, refinerOpt, scaler, rank, world, data: data.identity };

  // Position in training, and the running sums (all restored on resume).
  let step = 0;
  let epoch = 0;
  let batchInEpoch = 0;
  let win = emptyWindow();
  let ep = emptyWindow();
  let lastValidation: EvalSummary | null = null;

  let resumeFrom: string | null = null;
  if (candidates) {
    // Newest verified checkpoint first; one that verifies but cannot be loaded (a state.json from a broken
    // writer, a tensor header the reader rejects) is skipped like a corrupt one. Each load replaces every
    // piece of state, so a failed attempt leaves nothing behind that the next one keeps.
    for (let ck: Candidate | null = first; ck && !resumeFrom; ck = resumeFrom ? null : candidates.next()) {
      try {
        torch.scope(() => {
          // The candidate was hashed when it was verified: no second pass over (possibly GBs of) weights.
          const loaded = loadCheckpoint(ck!.dir, { device: cfg.device as torch.Device, verify: false });
          if (savedWorld(loaded.state) !== world) throw worldSizeError(run.dir, savedWorld(loaded.state), world);
          ({ step, epoch, batchInEpoch, window: win, epochWindow: ep, lastValidation } = restoreTrainingState<Window>(parts, loaded));
        });
        resumeFrom = ck!.dir;
      } catch (e) {
        if (e instanceof UsageError) throw e;
        candidates.reject(ck!.dir, `it verifies but cannot be loaded: ${(e as Error).message.split("\n")[0]}`);
      }
    }
    if (!resumeFrom) throw new Error(`--resume ${run.dir}: no checkpoint could be loaded (${candidates.rejected.join("; ")})`);
    // A finished run resumed with nothing left to do says so and writes nothing (no validation, no metrics).
    const done = epoch >= cfg.epochs ? `it finished its ${cfg.epochs} epoch(s)` : cfg.max_batches > 0 && step >= cfg.max_batches ? `it is at step ${step}, --max_batches ${cfg.max_batches}` : null;
    if (done) {
      io.err(`--resume ${run.dir}: nothing to do, ${done} (checkpoint ${resumeFrom}); raise --epochs or --max_batches to train further. Nothing was written`);
      return { runDir: run.dir, step, lastCheckpoint: resumeFrom, stopped: epoch >= cfg.epochs ? "done" : "max_batches", signal: null, lastValidation };
    }
    const dropped = lead ? trimMetrics(run.dir, (r) => !(r.step > step)) : 0;
    io.err(`resuming ${run.dir} from ${resumeFrom} (step ${step}, epoch ${epoch + 1}, batch ${batchInEpoch})${dropped ? `; dropped ${dropped} metrics records past it` : ""}`);
  } else {
    io.err(`run ${run.dir}: ${trainEx.length} training examples (${batchesPerEpoch} batches/epoch${dp ? ` of ${globalBatch} over ${world} ranks` : ""}), ${valEx.length} validation, model ${cfg.model} on ${cfg.device}`);
  }

  // Every rank's generators, for rank 0's checkpoint (a collective: every rank calls save at the same steps).
  const rankGenerators = (): RankGenerators | undefined => {
    if (!dp) return undefined;
    const dev = cfg.device as torch.Device;
    return { cpu: allGatherAnywhere(torch.getRngState()), cuda: dev.startsWith("cuda") ? allGatherAnywhere(torch.getRngState(dev).to({ device: "cpu" })) : null };
  };
  // No checkpoint (and so no best/) is ever written from non-finite weights: the run stops instead, its
  // last finite checkpoint kept. Every rank checks (their weights are equal), so all stop together.
  const checkFinite = () => {
    const bad = nonFiniteTensors(modelTensors(sys));
    if (bad.length)
      throw new NonFiniteError(
        `the ${tensorGroup(bad[0])} weights went non-finite by step ${step} (${describeTensors(bad)}); no checkpoint was written from them, ` +
          `the last finite one is ${lastCheckpoint ?? "none (the run has no checkpoint)"}; lower the learning rates (--agent_lr, --qwen_lr, --rl_lr) or --clip`,
      );
  };
  const save = (): string => {
    checkFinite();
    const dir = torch.scope(() => {
      const ranks = rankGenerators();
      if (!lead) return join(run.dir, "checkpoints", stepDirName(step));
      return saveCheckpoint(run.dir, { step, epoch, ...captureTrainingState(parts, { step, epoch, batchInEpoch, window: win, epochWindow: ep, lastValidation }, ranks) });
    });
    if (!lead) return dir;
    pruneCheckpoints(run.dir, cfg.keep_last, { protect: [dir] });
    if (cfg.backup_dir) backUp(dir);
    watchDisk(dir);
    // glibc keeps the pages of tensors that batches and this write freed, so RSS would sit at the high-water
    // mark of every batch so far; handing them back here bounds it to what is live plus the working set
    // of the batches since the last checkpoint (bench/soak.ts).
    releaseFreeMemory();
    return dir;
  };

  // A backup that fails (a full or unmounted backup disk) costs the backup, never the training: the
  // next checkpoint is mirrored again, and the log says when backups work again.
  let backupFailing = false;
  const backUp = (dir: string) => {
    try {
      mirrorCheckpoint(dir, cfg.backup_dir!);
      if (backupFailing) io.err(`backup to ${cfg.backup_dir} works again (${dir})`);
      backupFailing = false;
    } catch (e) {
      backupFailing = true;
      io.err(`warning: backup of ${dir} to ${cfg.backup_dir} failed (${(e as Error).message.split("\n")[0]}); training goes on, the next checkpoint is backed up again`);
    }
  };

  // The up-front disk check used an estimate; the first real checkpoint gives the exact size.
  let diskWarned = false;
  const watchDisk = (dir: string) => {
    const v = verifyCheckpoint(dir, { hash: false });
    const w = v.ok ? diskSpaceWarning(run.dir, checkpointBytes(v.manifest), 2, "a new checkpoint and a best/ copy") : null;
    if (w && !diskWarned) io.err(w);
    diskWarned = w !== null;
  };

  // Outputs that went non-finite in validation stop the run before its checkpoint (exit code 3).
  const refuseNonFinite = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof NonFiniteError)) throw e;
      throw new NonFiniteError(`validation at step ${step}: ${e.message}; no checkpoint was written, the last one is ${lastCheckpoint ?? "none"}; lower the learning rates (--agent_lr, --qwen_lr, --rl_lr) or --clip`);
    }
  };
  let validating = false;
  const validate = async (): Promise<EvalSummary | null> => {
    if (valEx.length === 0) return null;
    const ttt = (cfg.val_ttt_steps ?? 0) > 0;
    // Data-parallel: rank r validates examples r, r + W, ...; rank 0 summarises them all in their order.
    const shard = dp ? rankRows(valEx.length, rank, world).map((i) => valEx[i]) : valEx;
    const opts = { autocast, batchSize: cfg.batch_size, ...(ttt ? { ttt: { steps: cfg.val_ttt_steps, lr: TTT_DEFAULTS.lr, batch: TTT_DEFAULTS.batch, seed: cfg.seed } } : {}) };
    let s: EvalSummary;
    let results: ExampleEval[] = [];
    if (dp) ({ summary: s, results } = refuseNonFinite(() => evaluate(sys, shard, opts)));
    else {
      // One batch of examples (a task's, under TTT) at a time, with the signal handlers given their turn
      // between them: a stop is acknowledged at once and ends validation at the next batch, unrecorded.
      const t0 = performance.now();
      // The validation --validate_on_stop asks for after a stop runs whole (a second signal quits at once).
      const asked = stop.signal !== null;
      validating = true;
      try {
        for (const part of validationParts(shard, cfg.batch_size, ttt)) {
          await yieldToSignals();
          if (stop.signal && !asked) {
            io.err(`${stop.signal}: validation at step ${step} stopped after ${results.length} of ${shard.length} examples (not recorded)`);
            return null;
          }
          results.push(...refuseNonFinite(() => evaluate(sys, part, opts)).results);
        }
      } finally {
        validating = false;
      }
      s = summarizeEval(results, (performance.now() - t0) / 1000, ttt);
    }
    if (dp) {
      const seconds = Math.max(...(torch.distributed.allGatherObject(s.seconds) as number[]));
      results = gatherRows(results, rowCounts(valEx.length, world));
      s = summarizeEval(results, seconds, ttt);
    }
    if (!lead) return s;
    io.out(`Val Accuracy: ${s.exactFirst.toFixed(4)} (${s.exactFirstCount}/${s.examples}) | pass@2: ${s.pass2.toFixed(4)} (${s.pass2Count}/${s.examples}) | cell acc: ${s.cellAcc.toFixed(4)} | accuracy delta: ${s.accuracyDelta >= 0 ? "+" : ""}${s.accuracyDelta.toFixed(4)} | ${s.seconds.toFixed(1)} s`);
    monitor?.log({ type: "val", step, epochs_done: epoch, ...s });
    monitor?.validated(step, results, s.seconds);
    return s;
  };

  /** Validate, checkpoint, and let best/ follow the metric. */
  let validatedStep = -1;
  const validateAndSave = async (): Promise<string> => {
    validatedStep = step;
    const fresh = await validate();
    lastValidation = fresh ?? lastValidation;
    const dir = save();
    // best/ follows only a validation of this checkpoint (one a stop cut short is none).
    if (fresh && lastValidation && lead) {
      const value = metricValue(lastValidation, cfg.best_metric);
      try {
        if (updateBest(run.dir, dir, cfg.best_metric, value, true)) io.err(`best ${cfg.best_metric} = ${value.toFixed(4)} at step ${step}: ${run.dir}/checkpoints/best`);
      } catch (e) {
        // The previous best/ is intact (it is replaced only by a verified copy); training goes on.
        io.err(`warning: could not update ${run.dir}/checkpoints/best (${(e as Error).message.split("\n")[0]}); the previous best/ is kept`);
      }
    }
    return dir;
  };

  const stop = listenForStop((sig) =>
    io.err(validating ? `\n${sig}: stopping validation at the next batch of examples, then saving a checkpoint (${sig === "SIGINT" ? "Ctrl-C" : "the signal"} again quits at once; the last checkpoint stays intact)` : `\n${sig}: finishing ${cfg.grad_accum > 1 ? `this optimizer step (--grad_accum ${cfg.grad_accum} batches)` : "this batch"}, then ${cfg.validate_on_stop ? "validating and " : ""}saving a checkpoint (${sig === "SIGINT" ? "Ctrl-C" : "the signal"} again quits at once; the last checkpoint stays intact)`),
  );
  // metrics.jsonl, TensorBoard event files (cut back to the resume step) and report.html.
  const monitor = lead ? new RunMonitor(run.dir, savedCfg, { step, resumed: resumeFrom !== null, batchSize: globalBatch, optimizers: [{ opt }, { name: "rl", opt: refinerOpt }], warn: io.err }) : null;
  // --allow_data_change: the change is said and recorded with the step it applies from.
  if (data.change) {
    io.err(`--allow_data_change: the training tasks changed since the checkpoint: ${data.change}; training goes on with them as they are now`);
    if (lead) appendMetrics(run.dir, { type: "data_change", step, change: data.change, path: data.identity.path, tasks: data.identity.count, sha256: data.identity.sha256, time: new Date().toISOString() });
  }
  const bar = progress(barTotal, { label: "train", quiet: cfg.quiet || !lead, rateAs: { per: globalBatch, name: "ex" } });
  bar.update(step);
  let lastCheckpoint: string | null = resumeFrom;
  let stopped: TrainResult["stopped"] = "done";
  const perUpdate = cfg.batch_size * cfg.grad_accum;
  // The non-finite guard: an optimizer step whose examples' losses or whose gradients were non-finite is
  // skipped (its non-finite examples never reach the loss; a non-finite gradient skips the update) and
  // counted; --max_nonfinite_steps of them stop the run (exit code 3).
  let nonFiniteSteps = 0;
  let firstNonFinite: string | null = null;
  let pendingNonFinite: string | null = null;

  try {
    while (epoch < cfg.epochs && stopped === "done") {
      // With data parallelism the groups are global batches: each slice below is one group.
      const order = promptLengths ? lengthGroupedOrder(promptLengths, { batch: globalBatch, seed: cfg.seed, epoch }) : epochOrder(trainEx.length, cfg.seed, epoch);
      while (batchInEpoch < batchesPerEpoch) {
        // A batch is synchronous work: give pending signal handlers their turn before each one.
        await yieldToSignals();
        // Stops happen only at optimizer-step boundaries, so a checkpoint never holds half-accumulated gradients.
        if (step % cfg.grad_accum === 0) {
          // Data-parallel ranks stop together: a signal that reached one rank stops all at this step.
          if (cfg.max_batches > 0 && step >= cfg.max_batches) stopped = "max_batches";
          else if (dp ? anyRank(stop.signal !== null) : stop.signal) stopped = "interrupted";
          if (stopped !== "done") break;
        }
        const lambda = sizeWeight(step, totalBatches);
        // The global batch is one slice of the epoch's order; this rank takes its rows of it (ddp.ts).
        const slice = order.slice(batchInEpoch * globalBatch, (batchInEpoch + 1) * globalBatch);
        const rows = rankRows(slice.length, rank, world);
        let batch = rows.map((g) => trainEx[slice[g]]);
        if (cfg.augment) batch = batch.map((ex, j) => trainingAugmentation(ex, cfg.seed, epoch, batchInEpoch, rows[j]));
        const o = { step: step + 1, sizeWeight: lambda, autocast, scaler, perUpdate, maxBatchTokens: cfg.max_batch_tokens ?? 0, noise: { seed: cfg.seed, step: step + 1, rows } };
        const logs = dp ? dataParallelBatch(sys, batch, o, dp, slice.length, io) : runBatch(sys, batch, o, io).logs;
        for (const l of logs) {
          if (!l.finite) pendingNonFinite ??= `the ${nonFiniteTerm(l)} term of the loss of task ${l.task}#${l.pair}`;
          addExample(win, l);
          addExample(ep, l);
          monitor?.example(l);
        }
        for (const w of [win, ep]) {
          w.batches++;
          w.sizeWeight += lambda;
        }
        step++;
        batchInEpoch++;

        // Optimizer steps at accumulation boundaries and at the end of an epoch.
        const boundary = step % cfg.grad_accum === 0 || batchInEpoch === batchesPerEpoch;
        if (boundary) {
          if (dp) averageGradients([...opt.params(), ...optimizers.refinerParams]);
          const upd = optimizerStep(optimizers, cfg.clip);
          const qn = Number.isFinite(upd.qwenGradNorm) ? upd.qwenGradNorm : 0;
          for (const w of [win, ep]) {
            w.qwenGrad += qn;
            w.optSteps++;
          }
          const cause = pendingNonFinite ?? (upd.nonFinite ? `the gradient of the ${upd.nonFinite} parameter group` : null);
          pendingNonFinite = null;
          if (cause) {
            nonFiniteSteps++;
            firstNonFinite ??= `at step ${step}: ${cause}`;
            const limit = cfg.max_nonfinite_steps;
            io.err(`step ${step}: non-finite numbers (${cause}); ${upd.nonFinite ? "the update was skipped" : "those examples were left out of the update"} (${nonFiniteSteps} non-finite step(s)${limit > 0 ? ` of --max_nonfinite_steps ${limit}` : ""})`);
            if (limit > 0 && nonFiniteSteps >= limit)
              throw new NonFiniteError(
                `stopped: ${nonFiniteSteps} optimizer steps had non-finite losses or gradients (--max_nonfinite_steps ${limit}); the first ${firstNonFinite}; ` +
                  `the last finite checkpoint is ${lastCheckpoint ?? "none (the run has no checkpoint)"}; lower the learning rates (--agent_lr, --qwen_lr, --rl_lr) or --clip`,
              );
          }
        }
        if (step % cfg.log_every === 0) {
          const s = windowStats(win);
          io.out(batchLine(step, s));
          monitor?.log({ type: "batch", step, epoch: epoch + 1, batch: batchInEpoch, ...s, theta: sys.memory.theta, memory: sys.memory.size, scale: scaler.getScale(), ...monitor.batchExtras(step), time: new Date().toISOString() });
          win = emptyWindow();
        }
        bar.update(step, `EFE ${windowStats(ep).efe.toFixed(3)} ${monitor?.barExtra() ?? ""}`);
        if (boundary && batchInEpoch < batchesPerEpoch && step % cfg.ckpt_every === 0) lastCheckpoint = save();
      }
      if (stopped !== "done") break;

      // End of epoch: the summary, validation, a checkpoint (positioned at the next epoch), best/.
      const s = windowStats(ep);
      io.out(`=== Epoch ${epoch + 1}/${cfg.epochs} ===`);
      io.out(`  EFE loss (avg)     ${s.efe.toFixed(4)}`);
      io.out(`  RL reward (avg)    ${s.rl_reward >= 0 ? "+" : ""}${s.rl_reward.toFixed(4)}   (baseline ${sys.refiner.baseline.toFixed(4)})`);
      io.out(`  Qwen grad norm     ${sci(s.qwen_grad)}`);
      io.out(`  Size weight        ${s.size_weight.toFixed(3)}`);
      const ms = sys.memory.stats;
      // The share of reads that found a neighbour (cosine >= 0.5): near 1 from the start would mean the
      // keys do not tell tasks apart.
      io.out(`  Memory threshold   ${ms.theta.toFixed(4)}   (${ms.size} entries, ${ms.writes} writes, read hit rate ${(ms.reads ? ms.hitReads / ms.reads : 0).toFixed(2)})`);
      io.out(`  Mask ratio         ${s.mask.toFixed(4)}`);
      io.out(`  d_acc / d_size     ${s.d_acc >= 0 ? "+" : ""}${s.d_acc.toFixed(4)} / ${s.d_size.toFixed(2)}${s.skipped ? `   (skipped ${s.skipped} non-finite)` : ""}`);
      monitor?.log({ type: "epoch", step, epoch: epoch + 1, ...s, theta: sys.memory.theta, memory: sys.memory.size });
      ep = emptyWindow();
      epoch++;
      batchInEpoch = 0;
      lastCheckpoint = await validateAndSave();
      // A stop asked during the epoch's validation: the checkpoint is written, the run ends here.
      if (dp ? anyRank(stop.signal !== null) : stop.signal) stopped = "interrupted";
    }
    // A run stopped early ends checkpointed; validated too after --max_batches, and after a signal
    // only with --validate_on_stop (validation can take minutes, and a stop asked for is wanted soon).
    if (stopped !== "done" && validatedStep !== step) {
      if (stopped === "max_batches" || cfg.validate_on_stop) lastCheckpoint = await validateAndSave();
      else lastCheckpoint = save();
      // A stop during that validation is a stop, not a finished run (exit 130/143).
      if (stop.signal && !dp) stopped = "interrupted";
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
  io.onFinish?.(sys);
  io.err(`${stopped === "done" ? "finished" : stopped === "max_batches" ? `stopped after --max_batches ${cfg.max_batches}` : `stopped by ${signal}`}: ${step} batches; checkpoint ${lastCheckpoint}`);
  return { runDir: run.dir, step, lastCheckpoint, stopped, signal, lastValidation };
}

/**
 * One data-parallel batch on this rank: forward and backward of its rows (none on a rank a short last
 * batch leaves empty), then every rank's state updates and logs gathered and applied in global row order.
 * Returns the global batch's logs.
 */
function dataParallelBatch(sys: System, batch: Example[], o: BackwardOptions & { step: number }, dp: DataParallel, size: number, io: TrainIO): ExampleLogs[] {
  return torch.scope(() => {
    const local = batch.length > 0 ? runBatch(sys, batch, { ...o, deferStateUpdates: true }, io) : { logs: [], updates: null };
    const counts = rowCounts(size, dp.world);
    const updates = gatherStateUpdates(local.updates, counts, { prompt: sys.memory.keyDim, action: sys.refiner.actionDim, device: sys.config.device });
    const applied = applyStateUpdates(sys, updates);
    return gatherRows(local.logs, counts).map((l, i) => ({ ...l, memoryWritten: applied[i].written, theta: applied[i].theta }));
  });
}

/** One batch: forward and backward of both losses (as several passes under --max_batch_tokens), logs. */
function runBatch(sys: System, batch: Example[], o: BackwardOptions & { step: number }, io: TrainIO): ReturnType<typeof backwardBatch> {
  try {
    return backwardBatch(sys, batch, o);
  } catch (e) {
    if (e instanceof torch.TorchError && /out of memory/i.test(e.message)) {
      const tokens = batch.map((ex) => sys.prompter.build(ex).ids.length + sys.config.hint_tokens);
      const grids = batch.map((ex) => {
        const q = ex.task.train[ex.index]?.input ?? ex.task.test[ex.index]?.input;
        return `${q?.length}x${q?.[0]?.length}`;
      });
      io.err(
        `CUDA out of memory at batch ${o.step} (${batch.length} examples: tasks ${batch.map((ex) => `${ex.task.id}#${ex.index}`).join(", ")}; ` +
          `sequences of up to ${Math.max(...tokens)} tokens, grids ${grids.join(", ")}). ` +
          "Shrink memory with --max_batch_tokens (e.g. 4096), --grad_checkpointing layer, --max_prompt_tokens (e.g. 1024), --qwen_train lora, or a smaller --batch_size in a new run; the last checkpoint is intact.",
      );
    }
    throw e;
  }
}
