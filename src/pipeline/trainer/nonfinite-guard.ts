// The non-finite guard: an optimizer step whose examples' losses or whose gradients were non-finite is
// skipped (its non-finite examples never reach the loss; a non-finite gradient skips the update) and
// counted; --max_nonfinite_steps of them stop the run (exit code 3) with the first cause. The count is
// part of the checkpoint's position, so a resumed run does not start counting afresh.
import { NonFiniteError, nonFiniteTerm } from "../system/nonfinite";
import type { ExampleLogs } from "../system/training-step";

export class NonFiniteGuard {
  private steps: number;
  private first: string | null;
  private pending: string | null = null;

  constructor(private readonly limit: number, private readonly err: (line: string) => void, saved?: { steps: number; first: string | null }) {
    this.steps = saved?.steps ?? 0;
    this.first = saved?.first ?? null;
  }

  /** What a checkpoint keeps of it. */
  get state(): { steps: number; first: string | null } {
    return { steps: this.steps, first: this.first };
  }

  /** A trained example: the first non-finite one of the optimizer step is its cause. */
  example(l: ExampleLogs): void {
    if (!l.finite) this.pending ??= `the ${nonFiniteTerm(l)} term of the loss of task ${l.task}#${l.pair}`;
  }

  /** After an optimizer step (`gradientGroup`: the group whose gradient was non-finite, if any). Throws at the limit. */
  afterOptimizerStep(step: number, gradientGroup: string | null, lastCheckpoint: string | null): void {
    const cause = this.pending ?? (gradientGroup ? `the gradient of the ${gradientGroup} parameter group` : null);
    this.pending = null;
    if (!cause) return;
    this.steps++;
    this.first ??= `at step ${step}: ${cause}`;
    const limit = this.limit;
    this.err(`step ${step}: non-finite numbers (${cause}); ${gradientGroup ? "the update was skipped" : "those examples were left out of the update"} (${this.steps} non-finite step(s)${limit > 0 ? ` of --max_nonfinite_steps ${limit}` : ""})`);
    if (limit > 0 && this.steps >= limit)
      throw new NonFiniteError(
        `stopped: ${this.steps} optimizer steps had non-finite losses or gradients (--max_nonfinite_steps ${limit}); the first ${this.first}; ` +
          `the last finite checkpoint is ${lastCheckpoint ?? "none (the run has no checkpoint)"}; lower the learning rates (--agent_lr, --qwen_lr, --rl_lr) or --clip`,
      );
  }
}
