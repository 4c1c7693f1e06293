// The flags eval.ts and predict.ts share: voting over augmentations and test-time training, with their
// defaults and checks in one place (the two scripts make attempts the same way).
import { TTT_DEFAULTS } from "../../src/pipeline/eval/ttt-defaults";
import { parseDecimal, parseInteger } from "../../src/util/flags";

export const EVAL_MODE_OPTIONS = {
  votes: { type: "string" },
  vote_seed: { type: "string" },
  ttt_steps: { type: "string" },
  ttt_lr: { type: "string" },
  ttt_batch: { type: "string" },
  ttt_seed: { type: "string" },
  ttt_qwen: { type: "boolean", default: false },
} as const;

export interface EvalModes {
  votes: number;
  voteSeed: number;
  ttt: { steps: number; lr: number; batch: number; seed: number; qwen: boolean };
}

/** --votes, --vote_seed and the --ttt_* flags with their defaults, or the one-line error of the first bad one. */
export function parseEvalModes(values: Record<string, unknown>): EvalModes | { error: string } {
  const int = (k: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number | null => {
    const v = values[k] === undefined ? dflt : parseInteger(values[k] as string);
    return v === null || v < min || v > max ? null : v;
  };
  const bad = (k: string, what: string) => ({ error: `--${k} must be ${what}, got "${values[k]}"` });
  const votes = int("votes", 1, 1, 64);
  if (votes === null) return bad("votes", "an integer in 1..64");
  const voteSeed = int("vote_seed", 0, 0);
  if (voteSeed === null) return bad("vote_seed", "a non-negative integer");
  const steps = int("ttt_steps", 0, 0);
  if (steps === null) return bad("ttt_steps", "a non-negative integer");
  const batch = int("ttt_batch", TTT_DEFAULTS.batch, 1);
  if (batch === null) return bad("ttt_batch", "a positive integer");
  const seed = int("ttt_seed", 0, 0);
  if (seed === null) return bad("ttt_seed", "a non-negative integer");
  const lr = values.ttt_lr === undefined ? TTT_DEFAULTS.lr : parseDecimal(values.ttt_lr as string);
  if (lr === null || !(lr >= 0)) return bad("ttt_lr", "a non-negative number");
  return { votes, voteSeed, ttt: { steps, lr, batch, seed, qwen: values.ttt_qwen === true } };
}
