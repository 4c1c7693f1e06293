// A batch's backward passes, shared by the trainer and bench/train.ts so the benchmark measures the loop
// users run. A batch runs as one trainBatch pass, or as several when --max_batch_tokens caps the padded
// prompt tokens of a pass (examples x longest prompt): gradients accumulate over the passes, and each
// pass reads the memory and the refiner's baseline as its own batch would.
import type { Example } from "../../arc/index";
import * as torch from "../../torch";
import { untimed } from "../../util/stage-timer";
import { type BatchStats, type ExampleLogs, type StateUpdates, type StepOptions, trainBatch } from "../system/training-step";
import type { System } from "../system/system";

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

