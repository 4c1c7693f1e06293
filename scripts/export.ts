#!/usr/bin/env bun
// A checkpoint's Qwen for other tools: the LoRA adapters as PEFT loads them, or a transformers model folder
// with the adapters merged.
//   bun scripts/export.ts --checkpoint best --peft out/adapter          (PeftModel.from_pretrained(base, "out/adapter"))
//   bun scripts/export.ts --checkpoint best --merged out/model          (AutoModelForCausalLM.from_pretrained("out/model"))
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "../src/pipeline/config/train-config";
import { parseCommandLine } from "../src/util/cli";

const USAGE = `Usage: bun scripts/export.ts [--checkpoint best|latest|PATH] [--run DIR] [--run_dir runs] [--peft DIR] [--merged DIR] [--base DIR]

  --checkpoint  best (default), latest, or a checkpoint folder; --run its run (default: the newest under --run_dir)
  --peft DIR    adapter_config.json + adapter_model.safetensors (PEFT's layout and key names:
                base_model.model.model.layers.N.<self_attn|mlp>.<proj>.lora_A|lora_B.weight); runs trained with
                --qwen_train lora. base_model_name_or_path is the run's --model (a Hub id or the folder's absolute
                path), or --base when given
  --merged DIR  a transformers model folder (config.json, generation_config.json, model.safetensors, the
                tokenizer's files when the run's model is a local folder) with the adapters merged into the weights
                (W + alpha/r B A, PEFT's merge_and_unload), or the fully trained weights with --qwen_train full
  --base DIR    the base model as a transformers folder (without adapters): needed for --model tiny, whose
                random weights exist nowhere else

The agent and the refiner are the project's own modules (no transformers class): their weights stay in the
checkpoint's model.safetensors (agent.*, refiner.*; docs/weights.md lists the names and shapes).

Exit codes: 0 written, 1 a failure, 2 a bad flag or a checkpoint that has no adapters to export.`;

const cli = parseCommandLine("export", USAGE, {
  checkpoint: { type: "string", default: "best" },
  run: { type: "string" },
  run_dir: { type: "string", default: "runs" },
  peft: { type: "string" },
  merged: { type: "string" },
  base: { type: "string" },
  quiet: { type: "boolean", default: false },
  help: { type: "boolean", default: false },
}, process.argv.slice(2));
const v = cli.values;
for (const k of ["checkpoint", "run", "run_dir", "peft", "merged", "base"]) if (v[k] === "") cli.fail(`--${k} was given an empty value (an unset shell variable?)`);
if (!v.peft && !v.merged && !v.base) cli.fail("nothing to write: give --peft DIR, --merged DIR and/or --base DIR");

const { loadForEvaluation } = await import("../src/pipeline/commands/eval-checkpoint");
const { systemConfig, useThreads } = await import("../src/pipeline/config/run-setup");
const { buildSystem } = await import("../src/pipeline/system/system");
const { restoreSystem } = await import("../src/pipeline/run/training-state");
const { saveLora, mergeLora, loraConfigOf } = await import("../src/models/lora");
const { saveModelFolder } = await import("../src/models/export");
const torch = await import("../src/torch");
try {
  const { ck, state, saved, weights } = loadForEvaluation({ checkpoint: v.checkpoint as string, runDir: v.run as string | undefined, runsBase: v.run_dir as string, split: "evaluation", max: 0, out: (v.peft ?? v.merged ?? v.base) as string, device: "cpu" });
  const cfg = { ...saved, device: "cpu" };
  if (v.peft && cfg.qwen_train !== "lora") throw new UsageError(`--peft: ${ck.dir} trained Qwen with --qwen_train ${cfg.qwen_train}: it has no LoRA adapters (use --merged for its weights)`);
  useThreads(cfg.num_threads);
  const sys = await buildSystem(systemConfig(cfg), { quiet: v.quiet === true });
  try {
    torch.scope(() => restoreSystem(sys, { state, tensors: weights }));
  } finally {
    torch.dispose(weights);
  }
  const modelFolder = cfg.model !== "tiny" && existsSync(cfg.model) && statSync(cfg.model).isDirectory() ? resolve(cfg.model) : null;
  const say = (l: string) => { if (!v.quiet) console.log(l); };
  if (v.base) {
    saveModelFolder(sys.qwen, v.base as string, { tokenizerFrom: modelFolder });
    say(`wrote the base model (no adapters) to ${v.base}`);
  }
  if (v.peft) {
    const baseModel = v.base ? resolve(v.base as string) : cfg.model === "tiny" ? null : (modelFolder ?? cfg.model);
    if (baseModel === null) console.error("export: the run's model is tiny (random weights): give --base DIR to write the base model the adapter applies to");
    saveLora(sys.qwen, v.peft as string, { baseModel: baseModel ?? undefined });
    const c = loraConfigOf(sys.qwen)!;
    say(`wrote ${v.peft}/adapter_config.json and adapter_model.safetensors (r ${c.rank}, alpha ${c.alpha}, ${c.targets.join(", ")}; step ${ck.manifest.step}; base ${baseModel ?? "none recorded"})`);
  }
  if (v.merged) {
    if (loraConfigOf(sys.qwen)) mergeLora(sys.qwen);
    saveModelFolder(sys.qwen, v.merged as string, { tokenizerFrom: modelFolder });
    say(`wrote ${v.merged}: a transformers model folder with the adapters merged (step ${ck.manifest.step})${modelFolder ? "" : "; no tokenizer files (the run's model is not a local folder)"}`);
  }
  process.exit(0);
} catch (e) {
  console.error(`export: ${(e as Error).message.split("\n")[0]}`);
  if (process.env.ARC_DEBUG) console.error((e as Error).stack);
  process.exit(e instanceof UsageError ? 2 : 1);
}
