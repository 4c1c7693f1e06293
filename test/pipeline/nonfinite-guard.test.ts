// The non-finite guard's count survives a resume: the checkpoint's position carries it, so a run that had
// two skipped steps before its checkpoint stops at the third after the resume, naming the first cause.
import { describe, expect, test } from "bun:test";
import { NonFiniteError } from "../../src/pipeline/system/nonfinite";
import type { ExampleLogs } from "../../src/pipeline/system/training-step";
import { NonFiniteGuard } from "../../src/pipeline/trainer/nonfinite-guard";

const bad = { finite: false, task: "t1", pair: 0, risk: Number.NaN } as unknown as ExampleLogs;

describe("the non-finite guard", () => {
  test("counts skipped steps, and a guard restored from a checkpoint's count goes on from it", () => {
    const said: string[] = [];
    const before = new NonFiniteGuard(3, (l) => said.push(l));
    before.example(bad);
    before.afterOptimizerStep(4, null, "ck4");
    before.afterOptimizerStep(5, "agent", "ck4");
    expect(before.state).toEqual({ steps: 2, first: "at step 4: the risk term of the loss of task t1#0" });
    expect(said[1]).toBe("step 5: non-finite numbers (the gradient of the agent parameter group); the update was skipped (2 non-finite step(s) of --max_nonfinite_steps 3)");

    const resumed = new NonFiniteGuard(3, () => {}, JSON.parse(JSON.stringify(before.state)));
    resumed.afterOptimizerStep(9, null, "ck8"); // a finite step counts nothing
    expect(resumed.state.steps).toBe(2);
    expect(() => resumed.afterOptimizerStep(10, "qwen", "ck8")).toThrow(NonFiniteError);
    expect(() => new NonFiniteGuard(3, () => {}, { steps: 2, first: "at step 4: x" }).afterOptimizerStep(10, "qwen", "ck8")).toThrow(
      /^stopped: 3 optimizer steps had non-finite losses or gradients \(--max_nonfinite_steps 3\); the first at step 4: x; the last finite checkpoint is ck8;/,
    );
  });
});
