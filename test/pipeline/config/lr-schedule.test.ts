// The learning-rate schedules against transformers' own lambdas (test/fixtures/lr-schedules.json, made by
// make-lr-schedules.py beside it), the flags' checks, and resume from state().
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  LR_SCHEDULE_DEFAULTS,
  LR_SCHEDULER_KINDS,
  LrSchedule,
  type LrSchedulerKind,
  lrFactor,
  lrScheduleProblem,
  lrScheduleWarning,
  totalOptimizerSteps,
  warmupStepsOf,
} from "../../../src/pipeline/config/lr-schedule";

interface Golden {
  transformers: string;
  cases: { kind: LrSchedulerKind; warmup_steps: number; total_steps: number; step: number; factor: number }[];
  ratios: { warmup_ratio: number; total_steps: number; warmup_steps: number }[];
}
const golden = JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "fixtures", "lr-schedules.json"), "utf8")) as Golden;

describe("lrFactor equals transformers' schedules", () => {
  for (const kind of LR_SCHEDULER_KINDS) {
    test(`${kind}: every golden (warmup, total, step) to 1e-12`, () => {
      const cases = golden.cases.filter((c) => c.kind === kind);
      for (const c of cases) {
        const got = lrFactor(kind, c.step, { warmupSteps: c.warmup_steps, totalSteps: c.total_steps });
        const off = Math.abs(got - c.factor);
        if (!(off <= 1e-12)) throw new Error(`${kind} warmup ${c.warmup_steps} total ${c.total_steps} step ${c.step}: ${got}, transformers ${c.factor}`);
      }
      // The fixture covers every branch: warmup, after it and within the run, and past the run.
      expect(cases.some((c) => c.step > 0 && c.step < c.warmup_steps)).toBe(true);
      expect(cases.some((c) => c.step === c.warmup_steps && c.step > 0)).toBe(true);
      expect(cases.some((c) => c.step > c.warmup_steps && c.step < c.total_steps && c.factor > 0 && c.factor < 1) || kind === "constant").toBe(true);
      expect(cases.some((c) => c.step > c.total_steps)).toBe(true);
      expect(cases.some((c) => c.warmup_steps >= c.total_steps)).toBe(true);
    });
  }

  test("the fixture tells the kinds apart (a formula swapped for another fails)", () => {
    const key = (c: Golden["cases"][number]) => `${c.warmup_steps}/${c.total_steps}/${c.step}`;
    const byKind = (k: LrSchedulerKind) => new Map(golden.cases.filter((c) => c.kind === k).map((c) => [key(c), c.factor]));
    const [constant, linear, cosine] = LR_SCHEDULER_KINDS.map(byKind);
    const differ = (a: Map<string, number>, b: Map<string, number>) => [...a].filter(([k, v]) => Math.abs(v - (b.get(k) ?? v)) > 1e-6).length;
    expect(differ(constant, linear)).toBeGreaterThan(10);
    expect(differ(linear, cosine)).toBeGreaterThan(10);
    expect(golden.cases.length).toBeGreaterThan(200);
  });

  test("--warmup_ratio gives transformers' ceil(total x ratio) steps", () => {
    for (const r of golden.ratios) expect(warmupStepsOf({ lr_scheduler: "linear", warmup_steps: 0, warmup_ratio: r.warmup_ratio }, r.total_steps)).toBe(r.warmup_steps);
    expect(warmupStepsOf({ lr_scheduler: "linear", warmup_steps: 12, warmup_ratio: 0 }, 100)).toBe(12);
  });
});

describe("the flags' checks", () => {
  const ok = { ...LR_SCHEDULE_DEFAULTS };
  test("good values pass; each bad one is one line naming its flag", () => {
    expect(lrScheduleProblem(ok)).toBeNull();
    expect(lrScheduleProblem({ lr_scheduler: "cosine", warmup_steps: 100, warmup_ratio: 0 })).toBeNull();
    expect(lrScheduleProblem({ lr_scheduler: "linear", warmup_steps: 0, warmup_ratio: 0.1 })).toBeNull();
    expect(lrScheduleProblem({ ...ok, lr_scheduler: "cosine_with_restarts" })).toBe(`--lr_scheduler must be one of constant, linear, cosine, got "cosine_with_restarts"`);
    expect(lrScheduleProblem({ ...ok, warmup_steps: -1 })).toBe("--warmup_steps must be an integer >= 0, got -1");
    expect(lrScheduleProblem({ ...ok, warmup_steps: 2.5 })).toBe("--warmup_steps must be an integer >= 0, got 2.5");
    expect(lrScheduleProblem({ ...ok, warmup_ratio: 1 })).toBe("--warmup_ratio must be in [0, 1), got 1");
    expect(lrScheduleProblem({ ...ok, warmup_ratio: -0.1 })).toBe("--warmup_ratio must be in [0, 1), got -0.1");
    expect(lrScheduleProblem({ ...ok, warmup_ratio: Number.NaN })).toBe("--warmup_ratio must be in [0, 1), got NaN");
    expect(lrScheduleProblem({ ...ok, warmup_steps: 10, warmup_ratio: 0.1 })).toBe("--warmup_steps 10 and --warmup_ratio 0.1 both set the warmup; give one of them");
  });

  test("a warmup as long as the run warns; a shorter one does not", () => {
    expect(lrScheduleWarning({ ...ok, warmup_steps: 99 }, 100)).toBeNull();
    expect(lrScheduleWarning(ok, 100)).toBeNull();
    expect(lrScheduleWarning({ ...ok, warmup_steps: 100 }, 100)).toBe("--warmup_steps 100 is not shorter than the run's 100 optimizer steps: the learning rate never reaches its base value");
    expect(lrScheduleWarning({ ...ok, warmup_ratio: 0.5 }, 1)).toBe("--warmup_ratio 0.5 (1 steps) is not shorter than the run's 1 optimizer steps: the learning rate never reaches its base value");
  });
});

test("totalOptimizerSteps counts the trainer loop's boundaries (every grad_accum-th batch, and each epoch's end)", () => {
  for (const epochs of [1, 2, 3, 7])
    for (const batchesPerEpoch of [1, 2, 5, 9, 16])
      for (const gradAccum of [1, 2, 3, 4, 10]) {
        let step = 0;
        let boundaries = 0;
        for (let e = 0; e < epochs; e++)
          for (let b = 1; b <= batchesPerEpoch; b++) {
            step++;
            if (step % gradAccum === 0 || b === batchesPerEpoch) boundaries++;
          }
        expect(totalOptimizerSteps({ epochs, batchesPerEpoch, gradAccum })).toBe(boundaries);
      }
});

describe("LrSchedule", () => {
  const baseLrs = { agent: 1e-3, qwen: 2e-4, refiner: 5e-4 };

  test("each group's rate is its base rate times the curve; the first step of a warmup is 0", () => {
    const s = LrSchedule.fromFlags({ lr_scheduler: "cosine", warmup_steps: 0, warmup_ratio: 0.1 }, 100, baseLrs);
    expect(s.shape).toEqual({ warmupSteps: 10, totalSteps: 100 });
    expect(s.lrs()).toEqual({ agent: 0, qwen: 0, refiner: 0 });
    for (let i = 0; i < 5; i++) s.advance();
    expect(s.step).toBe(5);
    expect(s.lrs()).toEqual({ agent: 1e-3 * 0.5, qwen: 2e-4 * 0.5, refiner: 5e-4 * 0.5 });
    expect(LrSchedule.fromFlags(LR_SCHEDULE_DEFAULTS, 100, baseLrs).lrs()).toEqual(baseLrs);
  });

  test("restored from state() at a mid-warmup step (through JSON), it continues with identical rates", () => {
    const straight = LrSchedule.fromFlags({ lr_scheduler: "linear", warmup_steps: 8, warmup_ratio: 0 }, 40, baseLrs);
    const first = LrSchedule.fromFlags({ lr_scheduler: "linear", warmup_steps: 8, warmup_ratio: 0 }, 40, baseLrs);
    for (let i = 0; i < 3; i++) {
      straight.advance();
      first.advance();
    }
    const saved = JSON.parse(JSON.stringify(first.state()));
    expect(saved).toEqual({ kind: "linear", warmup_steps: 8, total_steps: 40, base_lrs: baseLrs, step: 3 });
    const resumed = LrSchedule.fromState(saved);
    for (let i = 3; i < 45; i++) {
      expect(resumed.lrs()).toEqual(straight.lrs());
      resumed.advance();
      straight.advance();
    }
  });

  test("withTotalSteps keeps the step and the rest (a resume that raised --epochs)", () => {
    const s = LrSchedule.fromFlags({ lr_scheduler: "cosine", warmup_steps: 4, warmup_ratio: 0 }, 20, baseLrs);
    s.step = 12;
    const longer = s.withTotalSteps(40);
    expect(longer.state()).toEqual({ ...s.state(), total_steps: 40 });
    expect(longer.factor()).toBe(lrFactor("cosine", 12, { warmupSteps: 4, totalSteps: 40 }));
  });

  test("a malformed state is one error naming the field and where it came from", () => {
    const good = LrSchedule.fromFlags(LR_SCHEDULE_DEFAULTS, 10, baseLrs).state();
    const err = (s: unknown) => {
      try {
        LrSchedule.fromState(s, "ckpt/state.json");
      } catch (e) {
        return (e as Error).message;
      }
      return "no error";
    };
    expect(err(null)).toBe("ckpt/state.json: lr_schedule must be an object");
    expect(err({ ...good, kind: "step" })).toBe("ckpt/state.json: lr_schedule.kind must be one of constant, linear, cosine");
    expect(err({ ...good, step: -1 })).toBe("ckpt/state.json: lr_schedule.step must be an integer >= 0");
    expect(err({ ...good, total_steps: "10" })).toBe("ckpt/state.json: lr_schedule.total_steps must be an integer >= 0");
    expect(err({ ...good, base_lrs: [1] })).toBe("ckpt/state.json: lr_schedule.base_lrs must be an object of numbers");
    expect(err({ ...good, base_lrs: { agent: "1e-3" } })).toBe("ckpt/state.json: lr_schedule.base_lrs.agent must be a number >= 0");
  });
});
