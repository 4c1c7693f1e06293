// The trainer's update: --max_batch_tokens cuts a batch into passes by padded prompt tokens, and the
// passes' gradients add up to what running each pass as its own batch gives.
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Example, loadTask } from "../../src/arc";
import { type System, buildSystem } from "../../src/pipeline/system/system";
import { trainBatch } from "../../src/pipeline/system/training-step";
import { snapshotSystem } from "../../src/pipeline/system/state";
import { backwardBatch, splitByTokens } from "../../src/pipeline/trainer/backward";
import { buildOptimizers } from "../../src/pipeline/trainer/optimizers";
import * as torch from "../../src/torch";
import { FIXTURE_ARC } from "../helpers/fixtures";
import { tinySystemConfig } from "../helpers/system";

describe("splitByTokens", () => {
  test("cuts in order where examples x longest would pass the cap; one example per pass at least", () => {
    const items = ["a", "b", "c", "d", "e"];
    expect(splitByTokens(items, [100, 120, 90, 300, 50], 0)).toEqual([items]);
    // [a b] is 2 x 120 = 240 <= 250; adding c makes 3 x 120 = 360.
    expect(splitByTokens(items, [100, 120, 90, 300, 50], 250)).toEqual([["a", "b"], ["c"], ["d"], ["e"]]);
    expect(splitByTokens(items, [100, 120, 90, 300, 50], 600)).toEqual([["a", "b", "c"], ["d", "e"]]);
    // An example longer than the cap still runs, alone.
    expect(splitByTokens(["x", "y"], [1000, 10], 100)).toEqual([["x"], ["y"]]);
    expect(splitByTokens([], [], 100)).toEqual([]);
  });
});

describe("backwardBatch", () => {
  let sys: System;
  let examples: Example[];
  beforeAll(async () => {
    torch.manualSeed(0);
    sys = await buildSystem(tinySystemConfig());
    const ids = ["colourmap3x3", "fractal3x3", "tile2x2"];
    examples = ids.map((id) => ({ task: loadTask(join(FIXTURE_ARC, "training", `${id}.json`)), index: 0 }));
  });

  test("under --max_batch_tokens: the passes of splitByTokens, gradients summed, logs in order", () => {
    const lengths = examples.map((ex) => sys.prompter.build(ex).ids.length + sys.config.hint_tokens);
    const cap = Math.max(...lengths) * 2; // at most two examples a pass
    const passes = splitByTokens(examples, lengths, cap);
    expect(passes.length).toBeGreaterThan(1);
    const params = [...sys.agent.parameters(), ...sys.refiner.parameters()];
    const grads = () => params.map((p) => torch.keep(p.grad ? p.grad.clone() : torch.zerosLike(p)));
    const zero = () => {
      for (const m of [sys.agent, sys.refiner, sys.qwen]) m.zeroGrad();
    };
    const saved = snapshotSystem(sys);
    const reset = () => {
      saved.restore();
      zero();
    };
    const { scaler } = buildOptimizers(sys, { agentLr: 1e-3, qwenLr: 1e-3, weightDecay: 0, scaleLoss: false });

    reset();
    const capped = backwardBatch(sys, examples, { sizeWeight: 1, scaler, perUpdate: 3, maxBatchTokens: cap });
    const gCapped = grads();

    reset();
    const byHand = passes.flatMap((pass) =>
      torch.scope(() => {
        const r = trainBatch(sys, pass, { sizeWeight: 1 });
        r.loss!.div(3).backward();
        r.refinerLoss.div(3).backward();
        return r.logs;
      }),
    );
    const gHand = grads();

    expect(capped.logs.map((l) => [l.task, l.loss])).toEqual(byHand.map((l) => [l.task, l.loss]));
    expect(capped.stats.examples).toBe(3);
    gCapped.forEach((g, i) => expect(g.sub(gHand[i]).abs().amax().item()).toBeLessThanOrEqual(1e-6 * Math.max(1, gHand[i].abs().amax().item())));
    expect(gCapped.some((g) => g.abs().sum().item() > 0)).toBe(true);
    reset();
  });
});
