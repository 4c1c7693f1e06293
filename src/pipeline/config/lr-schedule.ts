// Learning-rate schedules as transformers has them (--lr_scheduler constant|linear|cosine, with
// --warmup_steps or --warmup_ratio), so a run configured the way a researcher configures a Hugging Face
// Trainer gets the same learning rate at every step. lrFactor is the multiplier of each group's base
// learning rate; LrSchedule holds the base rates and the optimizer-step counter, and goes into a
// checkpoint (state/fromState) so a resumed run continues on the same curve.
//
// Step convention (transformers' Trainer): `step` is the number of optimizer steps already taken, so the
// first update runs at lrFactor(0), which is 0 when there is a warmup.

export const LR_SCHEDULER_KINDS = ["constant", "linear", "cosine"] as const;
export type LrSchedulerKind = (typeof LR_SCHEDULER_KINDS)[number];

export interface ScheduleShape {
  /** Optimizer steps of linear warmup from 0 to the base rate. */
  warmupSteps: number;
  /** Optimizer steps of the whole planned run (where linear and cosine reach 0). */
  totalSteps: number;
}

/**
 * The multiplier of the base learning rate before optimizer step `step` (0-based). The arithmetic is
 * transformers' lambdas term for term (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup,
 * get_cosine_schedule_with_warmup with num_cycles 0.5), beyond totalSteps included: linear stays at 0 there
 * and cosine, as in transformers, rises again (the trainer never steps past its total).
 */
export function lrFactor(kind: LrSchedulerKind, step: number, { warmupSteps, totalSteps }: ScheduleShape): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  switch (kind) {
    case "constant":
      return 1;
    case "linear":
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case "cosine": {
      const numCycles = 0.5;
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    }
  }
}

/** --warmup_ratio as steps: ceil(total x ratio), as transformers' TrainingArguments.get_warmup_steps does. */
export function warmupStepsOf(flags: LrScheduleFlags, totalSteps: number): number {
  return flags.warmup_steps > 0 ? flags.warmup_steps : Math.ceil(totalSteps * flags.warmup_ratio);
}

/** The schedule's flags, under their snake_case names (TrainConfig's keys). */
export interface LrScheduleFlags {
  lr_scheduler: LrSchedulerKind;
  warmup_steps: number;
  warmup_ratio: number;
}

/** Defaults that leave a run as it trained before schedules existed: a constant rate, no warmup. */
export const LR_SCHEDULE_DEFAULTS: LrScheduleFlags = { lr_scheduler: "constant", warmup_steps: 0, warmup_ratio: 0 };

/** Entries for train-config.ts's FLAGS table (same shape as its FlagSpec). */
export const LR_SCHEDULE_FLAGS = {
  lr_scheduler: { type: "string", kind: "string", choices: LR_SCHEDULER_KINDS, help: "learning-rate schedule of every group (agent, qwen, refiner), as transformers': constant, linear decay to 0, or cosine decay to 0, each after the warmup" },
  warmup_steps: { type: "string", kind: "int", min: 0, help: "optimizer steps of linear warmup from 0 to each group's rate (0 = none; not with --warmup_ratio)" },
  warmup_ratio: { type: "string", kind: "float", help: "warmup as a share of the run's optimizer steps, in [0, 1): ceil(total x ratio) steps (not with --warmup_steps)" },
} as const;

/**
 * What is wrong with the schedule's flags, as one line naming the flag, or null. (A string, not a throw,
 * so train-config.ts raises it as its UsageError.)
 */
export function lrScheduleProblem(f: { lr_scheduler: string; warmup_steps: number; warmup_ratio: number }): string | null {
  if (!(LR_SCHEDULER_KINDS as readonly string[]).includes(f.lr_scheduler)) return `--lr_scheduler must be one of ${LR_SCHEDULER_KINDS.join(", ")}, got "${f.lr_scheduler}"`;
  if (!(Number.isSafeInteger(f.warmup_steps) && f.warmup_steps >= 0)) return `--warmup_steps must be an integer >= 0, got ${f.warmup_steps}`;
  if (!(f.warmup_ratio >= 0 && f.warmup_ratio < 1)) return `--warmup_ratio must be in [0, 1), got ${f.warmup_ratio}`;
  // Two ways to say one thing: rather than pick a winner silently, ask for one.
  if (f.warmup_steps > 0 && f.warmup_ratio > 0) return `--warmup_steps ${f.warmup_steps} and --warmup_ratio ${f.warmup_ratio} both set the warmup; give one of them`;
  return null;
}

/**
 * A warning (not an error) once the run's length is known: a warmup as long as the run never reaches the
 * base rate, and linear/cosine then have nothing left to decay over.
 */
export function lrScheduleWarning(f: LrScheduleFlags, totalSteps: number): string | null {
  const warmup = warmupStepsOf(f, totalSteps);
  if (warmup < totalSteps || warmup === 0) return null;
  const from = f.warmup_steps > 0 ? `--warmup_steps ${f.warmup_steps}` : `--warmup_ratio ${f.warmup_ratio} (${warmup} steps)`;
  return `${from} is not shorter than the run's ${totalSteps} optimizer steps: the learning rate never reaches its base value`;
}

/**
 * Optimizer steps in a planned run, as the trainer's loop takes them: one at every --grad_accum-th batch
 * (counted over the whole run) and one at each epoch's end.
 */
export function totalOptimizerSteps(o: { epochs: number; batchesPerEpoch: number; gradAccum: number }): number {
  let steps = 0;
  for (let e = 0; e < o.epochs; e++) {
    const before = e * o.batchesPerEpoch;
    const after = before + o.batchesPerEpoch;
    steps += Math.floor(after / o.gradAccum) - Math.floor(before / o.gradAccum) + (after % o.gradAccum === 0 ? 0 : 1);
  }
  return steps;
}

/** A schedule as a checkpoint's state.json stores it (key `lr_schedule`). */
export interface LrScheduleState {
  kind: LrSchedulerKind;
  warmup_steps: number;
  total_steps: number;
  /** Each optimizer group's base learning rate, by group name ("agent", "qwen", "refiner"). */
  base_lrs: Record<string, number>;
  /** Optimizer steps taken. */
  step: number;
}

/** The schedule of a run: one curve, each group's rate its base rate times the curve. */
export class LrSchedule {
  constructor(
    readonly kind: LrSchedulerKind,
    readonly shape: ScheduleShape,
    readonly baseLrs: Readonly<Record<string, number>>,
    /** Optimizer steps taken (the trainer's optimizer-step count). */
    public step = 0,
  ) {}

  /** A new run's schedule from its flags, the run's optimizer steps and each group's base rate (--agent_lr, ...). */
  static fromFlags(f: LrScheduleFlags, totalSteps: number, baseLrs: Record<string, number>): LrSchedule {
    return new LrSchedule(f.lr_scheduler, { warmupSteps: warmupStepsOf(f, totalSteps), totalSteps }, { ...baseLrs });
  }

  /** The multiplier for the next optimizer step. */
  factor(): number {
    return lrFactor(this.kind, this.step, this.shape);
  }

  /** Each group's learning rate for the next optimizer step. */
  lrs(): Record<string, number> {
    const f = this.factor();
    return Object.fromEntries(Object.entries(this.baseLrs).map(([name, lr]) => [name, lr * f]));
  }

  /** Call after each optimizer step. */
  advance(): void {
    this.step++;
  }

  /**
   * The same schedule over another run length, at the same step: a resume that raised --epochs
   * (transformers, too, rebuilds its schedule with the new total and keeps the step).
   */
  withTotalSteps(totalSteps: number): LrSchedule {
    return new LrSchedule(this.kind, { ...this.shape, totalSteps }, this.baseLrs, this.step);
  }

  state(): LrScheduleState {
    return { kind: this.kind, warmup_steps: this.shape.warmupSteps, total_steps: this.shape.totalSteps, base_lrs: { ...this.baseLrs }, step: this.step };
  }

  /** A schedule from state(); a malformed state is an error naming the field and `where` (the file). */
  static fromState(s: unknown, where = "the checkpoint"): LrSchedule {
    const bad = (field: string, want: string) => new Error(`${where}: lr_schedule${field ? `.${field}` : ""} must be ${want}`);
    if (s === null || typeof s !== "object" || Array.isArray(s)) throw bad("", "an object");
    const o = s as Record<string, unknown>;
    if (!(LR_SCHEDULER_KINDS as readonly unknown[]).includes(o.kind)) throw bad("kind", `one of ${LR_SCHEDULER_KINDS.join(", ")}`);
    for (const k of ["warmup_steps", "total_steps", "step"] as const) if (!(Number.isSafeInteger(o[k]) && (o[k] as number) >= 0)) throw bad(k, "an integer >= 0");
    const base = o.base_lrs;
    if (base === null || typeof base !== "object" || Array.isArray(base)) throw bad("base_lrs", "an object of numbers");
    for (const [name, lr] of Object.entries(base)) if (!(typeof lr === "number" && lr >= 0)) throw bad(`base_lrs.${name}`, "a number >= 0");
    return new LrSchedule(o.kind as LrSchedulerKind, { warmupSteps: o.warmup_steps as number, totalSteps: o.total_steps as number }, { ...(base as Record<string, number>) }, o.step as number);
  }
}
