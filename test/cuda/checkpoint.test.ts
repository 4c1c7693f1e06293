// torch.checkpoint on CUDA: the CUDA generator of the inputs' device is restored for the recomputation
// (dropout draws the same masks), CUDA autocast is re-entered, and Qwen2's "layer"/"mlp" give the
// gradients of "off" with LoRA dropout. Runs where CUDA is present (the GPU machine); skipped elsewhere.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import { F, type Tensor } from "../../src/torch";
import * as nn from "../../src/nn";
import { applyLora, loraParameters } from "../../src/models/lora";
import { Qwen2ForCausalLM } from "../../src/models/qwen2";
import { expectClose } from "../helpers/numeric";

const cuda = torch.cuda.isAvailable();
if (!cuda) console.warn(`test/cuda/checkpoint: skipped (no CUDA: addon built ${torch.version().cuda ? "with" : "without"} CUDA)`);

const flat = (ts: Tensor[]) => torch.scope(() => ts.map((t) => Array.from(t.float().cpu().data() as Float32Array)));

describe.skipIf(!cuda)("torch.checkpoint on CUDA", () => {
  test("dropout on cuda:0 in a segment, under fp16 autocast and without: the gradients of the plain forward", () => {
    torch.manualSeed(1);
    const lin = new nn.Linear(32, 32).to({ device: "cuda" });
    const run = (ck: boolean, amp: boolean) => {
      lin.zeroGrad();
      return torch.scope(() => {
        torch.manualSeed(5);
        const x = torch.randn([8, 32], { device: "cuda" }).requiresGrad_(true);
        const fn = (z: Tensor) => z.add(F.dropout(lin.forward(z), 0.5, true).float());
        const fwd = () => (ck ? torch.checkpoint(fn, x) : fn(x));
        const y = amp ? torch.autocast({ device: "cuda" }, fwd) : fwd();
        y.mul(torch.linspace(1, -1, 32, { device: "cuda" })).sum().backward();
        expect(torch.pendingCheckpoints()).toBe(0);
        return flat([lin.weight.grad!, lin.bias!.grad!, x.grad!]);
      });
    };
    for (const amp of [false, true]) {
      const plain = run(false, amp);
      run(true, amp).forEach((g, i) => expectClose(g, plain[i], 1e-5, 1e-4, `amp ${amp} grad ${i}`));
    }
    lin.dispose();
  });

  test('Qwen2 tiny on cuda:0 with LoRA dropout 0.1, bf16 autocast: "layer" and "mlp" give the gradients of "off"', () => {
    const m = Qwen2ForCausalLM.tiny({ seed: 3, device: "cuda" });
    torch.manualSeed(5);
    applyLora(m, { rank: 4, alpha: 8, dropout: 0.1 });
    torch.noGrad(() => {
      for (const [name, p] of m.namedParameters()) if (name.endsWith("lora_B.weight")) p.copy_(torch.randn(p.shape, { device: "cuda" }).mul(0.1));
    });
    m.train();
    const grads = (mode: "off" | "layer" | "mlp") => {
      m.model.gradientCheckpointing = mode;
      m.zeroGrad();
      torch.scope(() => {
        const ids = torch.tensor([[100, 200, 300, 400, 500, 600], [700, 800, 900, 0, 0, 0]], { dtype: "int64", device: "cuda" });
        const mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], { dtype: "int64", device: "cuda" });
        torch.manualSeed(9);
        const h = torch.autocast({ device: "cuda", dtype: "bfloat16" }, () => m.forward({ inputIds: ids, attentionMask: mask, computeLogits: false }).hiddenStates);
        h.float().mul(mask.float().unsqueeze(-1)).mean().backward();
      });
      expect(torch.pendingCheckpoints()).toBe(0);
      return flat(loraParameters(m).map((p) => p.grad!));
    };
    const off = grads("off");
    for (const mode of ["layer", "mlp"] as const) grads(mode).forEach((g, i) => expectClose(g, off[i], 1e-5, 1e-3, `${mode} lora ${i}`));
    m.dispose();
  });
});
