// scripts/export.ts on a tiny smoke run (2 batches, LoRA): the adapter under PEFT's file names and key names,
// loaded back onto the exported base it gives the trained system's Qwen logits, and so does the merged
// folder; in Python, PeftModel.from_pretrained on the base and AutoModelForCausalLM on the merged folder
// give the same logits to 1e-4. The Python half is reported skipped where no Python with torch,
// transformers and peft is found ($ARC_PEFT_PYTHON, the project's venvs under ~/.cache/arc-efe, python3).
import { beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import * as torch from "../../src/torch";
import type { Tensor } from "../../src/torch";
import { Qwen2ForCausalLM } from "../../src/models/qwen2";
import { fromFolder } from "../../src/models/load";
import { loadLora } from "../../src/models/lora";
import { loadForEvaluation } from "../../src/pipeline/commands/eval-checkpoint";
import { systemConfig } from "../../src/pipeline/config/run-setup";
import { buildSystem } from "../../src/pipeline/system/system";
import { restoreSystem } from "../../src/pipeline/run/training-state";
import { CPU, ROOT, TRAIN, runScript, tempFolders, type Result } from "../helpers/scripts";

const EXPORT = join(ROOT, "scripts", "export.ts");
const fresh = tempFolders("arc-export-test-");
const IDS = [[9707, 11, 1879, 0, 220, 16, 17, 18, 198, 5097, 25, 220, 15, 16, 15, 198]];
const ok = (script: string, args: string[]): Result => {
  const r = runScript(script, args, 240_000);
  if (r.code !== 0) throw new Error(`${basename(script)} ${args.join(" ")} exited ${r.code}:\n${r.err.slice(-3000)}`);
  return r;
};

/** A Python that imports torch, transformers and peft, or null with the reason. */
function findPeftPython(): { python: string | null; why: string } {
  const venvs = join(homedir(), ".cache", "arc-efe");
  const candidates = [
    process.env.ARC_PEFT_PYTHON,
    ...(existsSync(venvs) ? readdirSync(venvs).filter((n) => n.startsWith("venv")).sort().map((n) => join(venvs, n, "bin", "python")) : []),
    "python3",
  ].filter((p): p is string => !!p);
  for (const p of candidates) {
    const r = spawnSync(p, ["-c", "import torch, transformers, peft"], { stdio: "ignore" });
    if (r.status === 0) return { python: p, why: "" };
  }
  return { python: null, why: `no Python with torch, transformers and peft among ${candidates.join(", ")} (set ARC_PEFT_PYTHON)` };
}
const PEFT = findPeftPython();
if (!PEFT.python) console.log(`export.test: the Python PEFT check is skipped: ${PEFT.why}`);

const PY = `
import json, sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base_dir, adapter_dir, merged_dir, ids = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
x = torch.tensor(ids)
base = AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32, attn_implementation="eager")
peft = PeftModel.from_pretrained(base, adapter_dir).eval()
with torch.no_grad():
    a = peft(input_ids=x).logits[0]
merged = AutoModelForCausalLM.from_pretrained(merged_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
with torch.no_grad():
    b = merged(input_ids=x).logits[0]
print(json.dumps({"peft": a.tolist(), "merged": b.tolist(), "keys": sorted(k for k in peft.state_dict() if "lora_" in k)}))
`;

let runDir = "";
let dirs: { adapter: string; base: string; merged: string };
let want: number[][];
beforeAll(async () => {
  const runs = fresh("runs");
  ok(TRAIN, ["--preset", "smoke", "--max_batches", "2", "--data", join(ROOT, "test", "fixtures", "arc"), "--run_dir", runs, ...CPU]);
  runDir = join(runs, readdirSync(runs).find((n) => n.startsWith("arc_"))!);
  const out = fresh("export");
  dirs = { adapter: join(out, "adapter"), base: join(out, "base"), merged: join(out, "merged") };
  ok(EXPORT, ["--run", runDir, "--peft", dirs.adapter, "--base", dirs.base, "--merged", dirs.merged, "--quiet"]);
  // The trained system's Qwen, rebuilt from the checkpoint as eval.ts does: the logits the export must keep.
  const { state, saved, weights } = loadForEvaluation({ checkpoint: "best", runDir, runsBase: runs, split: "evaluation", max: 0, out, device: "cpu" });
  const sys = await buildSystem(systemConfig({ ...saved, device: "cpu" }), { quiet: true });
  torch.scope(() => restoreSystem(sys, { state, tensors: weights }));
  torch.dispose(weights);
  sys.qwen.eval();
  want = torch.noGrad(() => torch.scope(() => sys.qwen.forward({ inputIds: torch.tensor(IDS, { dtype: "int64" }) }).logits!.squeeze(0).tolist() as number[][]));
}, 240_000);

function maxDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((r, i) => r.forEach((v, j) => { m = Math.max(m, Math.abs(v - b[i][j])); }));
  return m;
}
const logitsOf = (m: Qwen2ForCausalLM): number[][] =>
  torch.noGrad(() => torch.scope(() => (m.eval(), m.forward({ inputIds: torch.tensor(IDS, { dtype: "int64" }) }).logits!.squeeze(0).tolist() as number[][])));

describe("scripts/export.ts", () => {
  test("the adapter in PEFT's layout: its files, key names and shapes; loaded onto the base, and merged, it gives the trained logits", () => {
    expect(readdirSync(dirs.adapter).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
    const cfg = JSON.parse(readFileSync(join(dirs.adapter, "adapter_config.json"), "utf8"));
    expect(cfg).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM", base_model_name_or_path: dirs.base, target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] });
    const h = torch.safetensors.readHeader(join(dirs.adapter, "adapter_model.safetensors"));
    const r = cfg.r as number;
    const want_: Record<string, number[]> = {};
    for (let l = 0; l < 2; l++) {
      for (const [m, p, inF, outF] of [["self_attn", "q_proj", 64, 64], ["self_attn", "k_proj", 64, 32], ["self_attn", "v_proj", 64, 32], ["self_attn", "o_proj", 64, 64], ["mlp", "gate_proj", 64, 160], ["mlp", "up_proj", 64, 160], ["mlp", "down_proj", 160, 64]] as const) {
        want_[`base_model.model.model.layers.${l}.${m}.${p}.lora_A.weight`] = [r, inF];
        want_[`base_model.model.model.layers.${l}.${m}.${p}.lora_B.weight`] = [outF, r];
      }
    }
    expect(Object.fromEntries([...h.entries].map(([k, e]) => [k, e.shape]))).toEqual(want_);
    const peft = fromFolder(dirs.base);
    loadLora(peft, dirs.adapter);
    expect(maxDiff(logitsOf(peft), want)).toBeLessThan(1e-4);
    const merged = fromFolder(dirs.merged);
    expect(maxDiff(logitsOf(merged), want)).toBeLessThan(1e-4);
    // the adapters matter: the base alone differs
    const base = fromFolder(dirs.base);
    expect(maxDiff(logitsOf(base), want)).toBeGreaterThan(0);
    for (const m of [peft, merged, base]) m.dispose();
  });

  test.skipIf(!PEFT.python)("Python: PeftModel.from_pretrained on the base, and the merged folder, give the project's logits to 1e-4", () => {
    const script = join(fresh("py"), "peft_logits.py");
    writeFileSync(script, PY);
    const r = spawnSync(PEFT.python!, [script, dirs.base, dirs.adapter, dirs.merged, JSON.stringify(IDS)], { encoding: "utf8", maxBuffer: 1 << 30, timeout: 240_000 });
    if (r.status !== 0) throw new Error(`python exited ${r.status}: ${r.stderr.slice(-3000)}`);
    const got = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(got.keys.length).toBe(28);
    const dp = maxDiff(got.peft, want);
    const dm = maxDiff(got.merged, want);
    console.log(`PEFT logits vs the project's: max |diff| ${dp.toExponential(2)}; merged ${dm.toExponential(2)} (${PEFT.python})`);
    expect(dp).toBeLessThan(1e-4);
    expect(dm).toBeLessThan(1e-4);
  });
});
