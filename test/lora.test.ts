// LoRA on Qwen2 (PEFT semantics): zero-initialised B changes nothing, only adapters train, PEFT names,
// save/load alone, merge = unmerged.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../src/torch.ts";
import type { Tensor } from "../src/torch.ts";
import { Qwen2ForCausalLM } from "../src/models/qwen2.ts";
import { fromFolder } from "../src/models/load.ts";
import { applyLora, loadLora, loadLoraStateDict, loraConfigOf, loraParameters, loraStateDict, mergeLora, saveLora } from "../src/models/lora.ts";
import { GOLDEN_MODEL } from "./helpers/fixtures.ts";

const IDS = [[175, 196, 537, 502, 579, 211, 919, 615, 348, 185, 398, 535, 584, 345, 366, 554]];

let tmp: string;
beforeAll(() => {
  if (!existsSync(join(GOLDEN_MODEL, "model.safetensors"))) throw new Error(`golden model not found at ${GOLDEN_MODEL}`);
  tmp = mkdtempSync(join(tmpdir(), "lora-test-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const load = () => fromFolder(GOLDEN_MODEL);
const logitsOf = (m: Qwen2ForCausalLM): Tensor =>
  torch.noGrad(() => torch.scope(() => m.forward({ inputIds: torch.tensor(IDS, { dtype: "int64" }) }).logits!));
const maxAbsDiff = (a: Tensor, b: Tensor): number => torch.scope(() => a.sub(b).abs().max().item());

/** A few AdamW steps on the LoRA parameters; returns the losses. */
function train(m: Qwen2ForCausalLM, steps: number, lr = 1e-2): number[] {
  const opt = new torch.AdamW(loraParameters(m), { lr, weightDecay: 0 });
  const ids = torch.tensor(IDS, { dtype: "int64" });
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    losses.push(
      torch.scope(() => {
        opt.zeroGrad();
        const { loss } = m.forward({ inputIds: ids, labels: ids });
        loss!.backward();
        opt.step();
        return loss!.item();
      }),
    );
  }
  ids.dispose();
  return losses;
}

describe("LoRA", () => {
  test("applyLora: PEFT init (B zero), output unchanged, only adapters trainable, PEFT names", () => {
    const m = load();
    const before = logitsOf(m);
    const names = applyLora(m, { rank: 4, alpha: 8, targets: ["q_proj", "v_proj", "down_proj"] });
    expect(names).toEqual([
      "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.down_proj",
      "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj", "model.layers.1.mlp.down_proj",
    ]);
    const after = logitsOf(m);
    expect(after.equal(before)).toBe(true);
    const sd = loraStateDict(m);
    expect(Object.keys(sd)).toContain("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    expect(Object.keys(sd)).toContain("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
    expect(Object.keys(sd).length).toBe(12);
    expect(sd["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].shape).toEqual([4, 64]);
    expect(sd["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"].shape).toEqual([32, 4]);
    expect(sd["base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"].shape).toEqual([4, 160]);
    // A: kaiming-uniform(a=sqrt(5)) -> bound 1/sqrt(fan_in); B zeros
    const a = sd["base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"];
    expect(torch.scope(() => a.abs().max().item())).toBeLessThanOrEqual(1 / Math.sqrt(160) + 1e-7);
    expect(torch.scope(() => a.abs().max().item())).toBeGreaterThan(0.5 / Math.sqrt(160));
    expect(torch.scope(() => sd["base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"].abs().max().item())).toBe(0);
    // trainable: exactly the adapters; model state dict lists them under the module's keys
    const trainable = m.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
    expect(trainable.length).toBe(12);
    expect(trainable.every((n) => /\.lora_[AB]\.weight$/.test(n))).toBe(true);
    expect(m.stateDict()["model.layers.0.self_attn.q_proj.lora_A.weight"]).toBe(sd["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]);
    expect(loraParameters(m).length).toBe(12);
    expect(loraConfigOf(m)).toMatchObject({ rank: 4, alpha: 8, dropout: 0, dtype: "float32" });
    expect(() => applyLora(m)).toThrow(/already has LoRA/);
    expect(() => applyLora(load(), { targets: ["nope"] })).toThrow(/no module matches/);
    torch.dispose([before, after]);
    m.dispose();
  });

  test("after a few steps only adapter weights moved; loss falls; no leak", () => {
    const m = load();
    applyLora(m, { rank: 8, alpha: 16 }); // every projection
    const base = Object.fromEntries(m.namedParameters().filter(([, p]) => !p.requiresGrad).map(([n, p]) => [n, torch.keep(p.clone())]));
    const lora0 = loraParameters(m).map((p) => torch.keep(p.clone()));
    const live = torch.liveTensors();
    const losses = train(m, 5);
    expect(torch.liveTensors()).toBe(live + loraParameters(m).length * 2); // AdamW's two moments per parameter
    expect(losses[4]).toBeLessThan(losses[0]);
    for (const [n, p] of m.namedParameters().filter(([, p]) => !p.requiresGrad)) {
      expect(p.equal(base[n])).toBe(true);
      expect(p.grad).toBeNull();
    }
    const moved = loraParameters(m).map((p, i) => maxAbsDiff(p, lora0[i]));
    expect(moved.every((d) => d > 0)).toBe(true);
    torch.dispose([base, lora0]);
    m.dispose();
  });

  test("merge gives the same logits as unmerged; adapters gone afterwards", () => {
    const m = load();
    applyLora(m, { rank: 4, alpha: 32, targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] });
    train(m, 3, 5e-2);
    const unmerged = logitsOf(m);
    const plain = load();
    const basePlain = logitsOf(plain);
    expect(maxAbsDiff(unmerged, basePlain)).toBeGreaterThan(1e-3); // the adapters matter
    mergeLora(m);
    const merged = logitsOf(m);
    expect(maxAbsDiff(merged, unmerged)).toBeLessThan(1e-4);
    expect(Object.keys(loraStateDict(m)).length).toBe(0);
    expect(Object.keys(m.stateDict()).sort()).toEqual(Object.keys(plain.stateDict()).sort());
    expect(loraConfigOf(m)).toBeNull();
    torch.dispose([unmerged, basePlain, merged]);
    m.dispose();
    plain.dispose();
  });

  test("saved and loaded alone (adapter_model.safetensors + adapter_config.json)", () => {
    const m = load();
    applyLora(m, { rank: 4, alpha: 8, dropout: 0.1, targets: ["q_proj", "up_proj"] });
    train(m, 2);
    const want = (m.eval(), logitsOf(m));
    const dir = join(tmp, "adapter");
    saveLora(m, dir, { baseModel: "golden/qwen2-tiny" });
    const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    expect(cfg).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM", r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ["q_proj", "up_proj"], base_model_name_or_path: "golden/qwen2-tiny" });
    const file = torch.safetensors.readHeader(join(dir, "adapter_model.safetensors"));
    expect([...file.entries.keys()].sort()).toEqual(Object.keys(loraStateDict(m)).sort());
    expect([...file.entries.keys()].every((k) => k.startsWith("base_model.model.model.layers."))).toBe(true);
    // into a fresh base model: adapters created from adapter_config.json
    const fresh = load();
    loadLora(fresh, dir);
    const got = (fresh.eval(), logitsOf(fresh));
    expect(got.equal(want)).toBe(true);
    expect(fresh.namedParameters().filter(([, p]) => p.requiresGrad).length).toBe(8);
    // strict: wrong rank -> size mismatch; keys with PEFT's ".default." and without the prefix load too
    const wrong = load();
    applyLora(wrong, { rank: 2, targets: ["q_proj", "up_proj"] });
    expect(() => loadLora(wrong, dir)).toThrow(/size mismatch/);
    const other = load();
    applyLora(other, { rank: 4, alpha: 8, targets: ["q_proj", "up_proj"] });
    torch.scope(() => {
      const sd = torch.safetensors.loadFile(join(dir, "adapter_model.safetensors"));
      const renamed = Object.fromEntries(Object.entries(sd).map(([k, t]) => [k.replace("base_model.model.", "").replace(/lora_([AB])\.weight$/, "lora_$1.default.weight"), t]));
      loadLoraStateDict(other, renamed);
      delete renamed[Object.keys(renamed)[0]];
      expect(() => loadLoraStateDict(other, renamed)).toThrow(/missing/);
    });
    const got2 = (other.eval(), logitsOf(other));
    expect(got2.equal(want)).toBe(true);
    torch.dispose([want, got, got2]);
    for (const x of [m, fresh, wrong, other]) x.dispose();
  });

  test("dropout only while training; bf16 base keeps float32 adapters", () => {
    const m = load();
    applyLora(m, { rank: 4, alpha: 8, dropout: 0.5, targets: ["q_proj"] });
    train(m, 1);
    m.eval();
    const e1 = logitsOf(m);
    const e2 = logitsOf(m);
    expect(e1.equal(e2)).toBe(true);
    m.train();
    const t1 = logitsOf(m);
    expect(t1.equal(e1)).toBe(false);
    torch.dispose([e1, e2, t1]);
    m.dispose();

    const b = fromFolder(GOLDEN_MODEL, { dtype: "bfloat16" });
    applyLora(b, { rank: 4, targets: ["v_proj"] });
    expect(loraParameters(b).every((p) => p.dtype === "float32")).toBe(true);
    const l = logitsOf(b);
    expect(l.dtype).toBe("bfloat16");
    l.dispose();
    const losses = train(b, 2);
    expect(losses.every(Number.isFinite)).toBe(true);
    b.dispose();
  });

  test("LoRA on the tiny model (the pipeline's default: every projection, rank 16, alpha 32)", () => {
    const m = Qwen2ForCausalLM.tiny({ seed: 1 });
    const n = applyLora(m, { rank: 16, alpha: 32 }).length;
    expect(n).toBe(14);
    const trainable = loraParameters(m).reduce((s, p) => s + p.numel(), 0);
    expect(m.numParameters(true)).toBe(trainable);
    const ids = torch.tensor([[1, 2, 3, 4, 5, 6]], { dtype: "int64" });
    const g = torch.scope(() => {
      const { hiddenStates } = m.forward({ inputIds: ids, computeLogits: false });
      hiddenStates.mean().backward();
      return torch.gradNorm(loraParameters(m));
    });
    expect(Number(g)).toBeGreaterThan(0);
    ids.dispose();
    m.dispose();
  });
});
