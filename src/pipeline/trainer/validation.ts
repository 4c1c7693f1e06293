// Validation during training: the held-out examples through evaluate() (the figures eval.ts reproduces),
// sharded over data-parallel ranks (rank r takes examples r, r + W, ...; rank 0 summarises them all in
// their order). It runs a batch of examples (a task's, under test-time training) at a time and gives
// signal handlers their turn between them: a stop is acknowledged at once and ends validation at the next
// batch, unrecorded. Data-parallel ranks agree on it at each batch (a stop that reached any rank ends all).
import type { Example } from "../../arc/index";
import * as torch from "../../torch";
import type { TrainConfig } from "../config/train-config";
import { type EvalSummary, type ExampleEval, evaluate, summarizeEval } from "../eval/evaluate";
import { TTT_DEFAULTS } from "../eval/ttt-defaults";
import type { Autocast } from "../system/forward";
import { NonFiniteError } from "../system/nonfinite";
import type { System } from "../system/system";
import { type DataParallel, anyRank, gatherRows, rankRows, rowCounts } from "./ddp";
import { type StopSignal, yieldToSignals } from "./stop";

export interface ValidationOptions {
  sys: System;
  examples: Example[];
  cfg: TrainConfig;
  dp: DataParallel | null;
  autocast: Autocast;
  err: (line: string) => void;
  /** The stop asked for so far (null: none). */
  stopSignal: () => StopSignal | null;
  /** The newest checkpoint, named when validation's outputs go non-finite. */
  lastCheckpoint: () => string | null;
}

/** Validation's examples in parts of `size` (under test-time training, a task's examples are not split). */
export function validationParts(examples: Example[], size: number, byTask: boolean): Example[][] {
  const parts: Example[][] = [];
  for (let i = 0; i < examples.length; ) {
    let j = Math.min(examples.length, i + Math.max(1, size));
    while (byTask && j < examples.length && examples[j].task === examples[j - 1].task) j++;
    parts.push(examples.slice(i, j));
    i = j;
  }
  return parts;
}

export class Validation {
  /** True while a validation runs (the stop message says what a stop does then). */
  running = false;

  constructor(private readonly o: ValidationOptions) {}

  /** Validates at `step`: the summary and the examples on rank 0 (other ranks: the summary only), or null when there is nothing to validate or a stop cut it short. */
  async run(step: number): Promise<{ summary: EvalSummary; results: ExampleEval[] } | null> {
    const { sys, examples, cfg, dp } = this.o;
    if (examples.length === 0) return null;
    const ttt = (cfg.val_ttt_steps ?? 0) > 0;
    const rank = dp?.rank ?? 0;
    const world = dp?.world ?? 1;
    const shard = dp ? rankRows(examples.length, rank, world).map((i) => examples[i]) : examples;
    const opts = { autocast: this.o.autocast, batchSize: cfg.batch_size, ...(ttt ? { ttt: { steps: cfg.val_ttt_steps, lr: TTT_DEFAULTS.lr, batch: TTT_DEFAULTS.batch, seed: cfg.seed } } : {}) };
    let results: ExampleEval[] = [];
    const t0 = performance.now();
    // The validation --validate_on_stop asks for after a stop runs whole (a second signal quits at once).
    const asked = this.o.stopSignal() !== null;
    const parts = validationParts(shard, cfg.batch_size, ttt);
    // Every rank takes part in as many stop checks (collectives) as the rank with the most parts.
    const rounds = dp ? Math.max(...(torch.distributed.allGatherObject(parts.length) as number[])) : parts.length;
    this.running = true;
    try {
      for (let k = 0; k < rounds; k++) {
        await yieldToSignals();
        const signal = this.o.stopSignal();
        const stopHere = !asked && (dp ? anyRank(signal !== null) : signal !== null);
        if (stopHere) {
          this.o.err(`${signal ?? "a stop on another rank"}: validation at step ${step} stopped after ${results.length} of ${shard.length} examples (not recorded)`);
          return null;
        }
        if (parts[k]) results.push(...this.refuseNonFinite(step, () => evaluate(sys, parts[k], opts)).results);
      }
    } finally {
      this.running = false;
    }
    let s = summarizeEval(results, (performance.now() - t0) / 1000, ttt);
    if (dp) {
      const seconds = Math.max(...(torch.distributed.allGatherObject(s.seconds) as number[]));
      results = gatherRows(results, rowCounts(examples.length, world));
      s = summarizeEval(results, seconds, ttt);
    }
    return { summary: s, results };
  }

  /** Outputs that went non-finite in validation stop the run before its checkpoint (exit code 3). */
  private refuseNonFinite<T>(step: number, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof NonFiniteError)) throw e;
      throw new NonFiniteError(`validation at step ${step}: ${e.message}; no checkpoint was written, the last one is ${this.o.lastCheckpoint() ?? "none"}; lower the learning rates (--agent_lr, --qwen_lr, --rl_lr) or --clip`);
    }
  }
}
