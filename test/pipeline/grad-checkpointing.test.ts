// --grad_checkpointing end to end: the flag reaches Qwen through SystemConfig, and a trainer batch
// (backwardBatch: prompt, agent, refiner, both losses through the scaler) gives the gradients of "off".
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Example, loadTask } from "../../src/arc";
import { DEFAULTS, parseTrainArgs } from "../../src/pipeline/config/train-config";
import { systemConfig } from "../../src/pipeline/config/run-setup";
import { type System, buildSystem, qwenTrainable } from "../../src/pipeline/system/system";
import { snapshotSystem } from "../../src/pipeline/system/state";
import { backwardBatch } from "../../src/pipeline/trainer/backward";
import { buildOptimizers } from "../../src/pipeline/trainer/optimizers";
import * as torch from "../../src/torch";
import { FIXTURE_ARC } from "../helpers/fixtures";
import { tinySystemConfig } from "../helpers/system";

describe("--grad_checkpointing", () => {
  let sys: System;
  let examples: Example[];
  beforeAll(async () => {
    torch.manualSeed(0);
    // LoRA dropout on: the recomputation must draw the same masks.
    sys = await buildSystem(tinySystemConfig({ grad_checkpointing: "layer", lora_dropout: 0.1 }));
    const ids = ["colourmap3x3", "fractal3x3", "tile2x2"];
    examples = ids.map((id) => ({ task: loadTask(join(FIXTURE_ARC, "training", `${id}.json`)), index: 0 }));
  });

  test("the flag: default off, parsed, carried into SystemConfig and onto the model", () => {
    expect(DEFAULTS.grad_checkpointing).toBe("off");
    expect(parseTrainArgs(["--grad_checkpointing", "mlp"]).config.grad_checkpointing).toBe("mlp");
    expect(() => parseTrainArgs(["--grad_checkpointing", "all"])).toThrow();
    expect(systemConfig({ ...DEFAULTS, grad_checkpointing: "layer" }).grad_checkpointing).toBe("layer");
    expect(sys.qwen.model.gradientCheckpointing).toBe("layer");
  });

  test('a trainer batch with "layer" and with "mlp" gives the gradients of "off"', () => {
    const params = [...qwenTrainable(sys), ...sys.agent.parameters(), ...sys.refiner.parameters()];
    const zero = () => {
      for (const m of [sys.agent, sys.refiner, sys.qwen]) m.zeroGrad();
    };
    const saved = snapshotSystem(sys);
    const { scaler } = buildOptimizers(sys, { agentLr: 1e-3, qwenLr: 1e-3, weightDecay: 0, scaleLoss: false });
    const run = (mode: "off" | "layer" | "mlp") => {
      saved.restore();
      zero();
      sys.qwen.model.gradientCheckpointing = mode;
      torch.manualSeed(3); // LoRA dropout and the refiner's noise
      const { logs } = backwardBatch(sys, examples, { sizeWeight: 1, scaler, perUpdate: 3 });
      expect(torch.pendingCheckpoints()).toBe(0);
      return { losses: logs.map((l) => l.loss), grads: torch.scope(() => params.map((p) => torch.keep(p.grad ? p.grad.clone() : torch.zerosLike(p)))) };
    };
    const off = run("off");
    expect(off.grads.slice(0, qwenTrainable(sys).length).some((g) => g.abs().sum().item() > 0)).toBe(true);
    const live = torch.liveTensors();
    for (const mode of ["layer", "mlp"] as const) {
      const got = run(mode);
      expect(got.losses).toEqual(off.losses);
      torch.scope(() =>
        got.grads.forEach((g, i) => {
          const scale = Math.max(1e-3, off.grads[i].abs().amax().item());
          expect(g.sub(off.grads[i]).abs().amax().item()).toBeLessThanOrEqual(1e-5 * scale);
        }),
      );
      torch.dispose(got.grads);
    }
    expect(torch.liveTensors()).toBe(live);
    torch.dispose(off.grads);
    saved.restore();
    zero();
    sys.qwen.model.gradientCheckpointing = "layer";
  });
});
