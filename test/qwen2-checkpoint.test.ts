// Qwen2's gradient checkpointing (Qwen2Model.gradientCheckpointing, --grad_checkpointing): with LoRA on
// the tiny model, "layer" and "mlp" give the LoRA gradients of "off" (float32), LoRA dropout included.
import { describe, expect, test } from "bun:test";
import * as torch from "../src/torch";
import { applyLora, loraParameters } from "../src/models/lora";
import { Qwen2ForCausalLM } from "../src/models/qwen2";
import { expectClose } from "./helpers/numeric";

type Mode = "off" | "layer" | "mlp";

function loraModel(dropout: number): Qwen2ForCausalLM {
  const m = Qwen2ForCausalLM.tiny({ seed: 3 });
  torch.manualSeed(5);
  applyLora(m, { rank: 4, alpha: 8, dropout });
  // PEFT's init leaves B at zero (and A's gradient with it): random B makes every gradient count.
  torch.noGrad(() => {
    for (const [name, p] of m.namedParameters()) if (name.endsWith("lora_B.weight")) p.copy_(torch.randn(p.shape).mul(0.1));
  });
  m.train();
  return m;
}

/** LoRA gradients of a weighted mean of the final hidden states over a right-padded batch. */
function loraGrads(m: Qwen2ForCausalLM, mode: Mode, seed: number): number[][] {
  m.model.gradientCheckpointing = mode;
  m.zeroGrad();
  const grads = torch.scope(() => {
    const lens = [7, 4];
    const ids = torch.tensor(lens.map((n, r) => Array.from({ length: 7 }, (_, k) => (k < n ? 100 + 37 * k + 11 * r : 0))), { dtype: "int64" });
    const mask = torch.tensor(lens.map((n) => Array.from({ length: 7 }, (_, k) => (k < n ? 1 : 0))), { dtype: "int64" });
    torch.manualSeed(seed);
    const h = m.forward({ inputIds: ids, attentionMask: mask, computeLogits: false }).hiddenStates; // [2, 7, 64]
    expect(torch.pendingCheckpoints()).toBe(mode === "off" ? 0 : m.config.numHiddenLayers);
    const w = mask.float().unsqueeze(-1).mul(torch.linspace(1, -1, 64));
    h.mul(w).sum().div(mask.sum()).backward();
    expect(torch.pendingCheckpoints()).toBe(0);
    return loraParameters(m).map((p) => Array.from(p.grad!.data() as Float32Array));
  });
  m.model.gradientCheckpointing = "off";
  return grads;
}

describe("Qwen2 gradient checkpointing", () => {
  for (const dropout of [0, 0.1]) {
    test(`LoRA (dropout ${dropout}): "layer" and "mlp" give the gradients of "off"`, () => {
      const m = loraModel(dropout);
      const off = loraGrads(m, "off", 9);
      expect(off.length).toBe(loraParameters(m).length);
      expect(off.every((g) => g.some((v) => v !== 0))).toBe(true);
      const live = torch.liveTensors();
      for (const mode of ["layer", "mlp"] as const) {
        const got = loraGrads(m, mode, 9);
        got.forEach((g, i) => expectClose(g, off[i], 1e-5, 1e-4, `${mode} lora ${i}`));
      }
      m.zeroGrad();
      expect(torch.liveTensors()).toBe(live); // nothing left behind by the tape
      if (dropout > 0) {
        // Another dropout draw changes the gradients: the masks matter, and were drawn again alike.
        const other = loraGrads(m, "off", 10);
        expect(other.some((g, i) => g.some((v, k) => Math.abs(v - off[i][k]) > 1e-4))).toBe(true);
      }
      m.dispose();
    });
  }

  test("no checkpointing without grad mode or with a KV cache: generation is unchanged", () => {
    const m = loraModel(0);
    m.model.gradientCheckpointing = "layer";
    m.eval();
    torch.scope(() => {
      const ids = torch.tensor([[100, 200, 300]], { dtype: "int64" });
      torch.noGrad(() => m.forward({ inputIds: ids, computeLogits: false }));
      expect(torch.pendingCheckpoints()).toBe(0);
      m.forward({ inputIds: ids, computeLogits: false, useCache: true });
      expect(torch.pendingCheckpoints()).toBe(0);
    });
    const greedy = (mode: Mode) => {
      m.model.gradientCheckpointing = mode;
      return m.generate([[100, 200, 300]], { maxNewTokens: 4 });
    };
    expect(greedy("layer")).toEqual(greedy("off"));
    m.dispose();
  });
});
