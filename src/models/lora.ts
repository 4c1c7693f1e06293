// LoRA (Hu et al. 2021) as PEFT does it, for models built from AdaptableLinear (Qwen2's projections).
//
//   applyLora(model, { rank: 16, alpha: 32, dropout: 0.05, targets: ["q_proj", "v_proj"] })
//     y = W x + b + (alpha / rank) * B (A dropout(x)),  A [rank, in] kaiming-uniform(a=sqrt(5)), B [out, rank] zeros
//   loraParameters(model)      the adapter tensors (the only trainable ones after applyLora)
//   loraStateDict(model)       { "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": ..., ... }
//   saveLora(model, dir) / loadLora(model, dirOrFile)   adapter_model.safetensors + adapter_config.json (PEFT's files)
//   mergeLora(model)           W += scaling * B A, adapters removed (PEFT's merge_and_unload)
//
// Adapters are float32 by default whatever the base dtype (PEFT's autocast_adapter_dtype): the input
// is cast to the adapter dtype and the sum cast back to the base output dtype, as PEFT's forward does;
// under autocast the cast is skipped (the linear casts to the autocast dtype either way, exactly).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type DType, type Device, F, type Tensor, TorchError, autocast, empty, emptyLike, keep, noGrad, safetensors, scope } from "../torch.ts";
import { Linear, Module } from "../nn/index.ts";
import { isDir } from "../util/fs.ts";

/** PEFT's prefix of adapter keys in adapter_model.safetensors. */
export const PEFT_PREFIX = "base_model.model.";

/** One adapter: lora_A [rank, in] and lora_B [out, rank] (bias-free Linears, PEFT's names). */
export class LoraAdapter extends Module {
  readonly lora_A: Linear;
  readonly lora_B: Linear;
  readonly scaling: number;
  constructor(inFeatures: number, outFeatures: number, readonly rank: number, readonly alpha: number, readonly dropout: number, opts: { dtype?: DType; device?: Device } = {}) {
    super();
    if (!Number.isInteger(rank) || rank < 1) throw new TorchError(`LoRA rank must be a positive integer, got ${rank}`);
    if (!(dropout >= 0 && dropout < 1)) throw new TorchError(`LoRA dropout must be in [0, 1), got ${dropout}`);
    // nn.Linear's own init is kaiming_uniform_(a=sqrt(5)): PEFT's init of lora_A.
    this.lora_A = this.registerModule("lora_A", new Linear(inFeatures, rank, { bias: false, ...opts }));
    this.lora_B = this.registerModule("lora_B", new Linear(rank, outFeatures, { bias: false, ...opts }));
    noGrad(() => this.lora_B.weight.zero_());
    this.scaling = alpha / rank;
  }
  /** scaling * B A, the update merged into the base weight (in float32 or the adapter dtype). */
  delta(): Tensor {
    return this.lora_B.weight.matmul(this.lora_A.weight).mul(this.scaling);
  }
}

/**
 * nn.Linear whose parameters are allocated without initialisation (a checkpoint or an explicit init
 * fills them) and which may carry a LoRA adapter, listed as its children "lora_A" and "lora_B" so
 * state-dict keys read `...q_proj.lora_A.weight` as in PEFT (base keys keep their checkpoint names).
 */
export class AdaptableLinear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  adapter: LoraAdapter | null = null;
  /** W + scaling B A in W's dtype, kept between generate calls and refreshed at each (withMergedAdapters). */
  merged: Tensor | null = null;
  /** Set by withMergedAdapters: forward uses `merged`, one matmul instead of three. */
  useMerged = false;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; dtype?: DType; device?: Device } = {}) {
    super();
    const to = { dtype: opts.dtype, device: opts.device };
    this.weight = this.registerParameter("weight", empty([outFeatures, inFeatures], to));
    this.bias = opts.bias ? this.registerParameter("bias", empty([outFeatures], to)) : null;
  }
  forward(x: Tensor): Tensor {
    const a = this.adapter;
    if (!a) return F.linear(x, this.weight, this.bias);
    if (this.useMerged && this.merged) return F.linear(x, this.merged, this.bias);
    // PEFT's arithmetic in one native call: W x + b + scaling * B(A(dropout(x))) (dropout while training),
    // the adapter in its own dtype (the input is cast to it outside autocast; under autocast the linear
    // casts to the autocast dtype anyway, exactly), returned in the base output's dtype.
    return F.loraLinear(x, this.weight, this.bias, a.lora_A.weight, a.lora_B.weight, a.scaling, a.dropout, this.training);
  }
  override dispose(): void {
    this.merged?.dispose();
    this.merged = null;
    super.dispose();
  }
  override *namedChildren(): Generator<[string, Module]> {
    yield* super.namedChildren();
    if (this.adapter) {
      yield ["lora_A", this.adapter.lora_A];
      yield ["lora_B", this.adapter.lora_B];
    }
  }
  override *namedModules(prefix = ""): Generator<[string, Module]> {
    yield* super.namedModules(prefix);
    if (this.adapter) {
      const p = (n: string) => (prefix ? `${prefix}.${n}` : n);
      yield* this.adapter.lora_A.namedModules(p("lora_A"));
      yield* this.adapter.lora_B.namedModules(p("lora_B"));
    }
  }
}

export interface LoraConfig {
  /** r (default 16). */
  rank?: number;
  /** lora_alpha (default 2 * rank); scaling = alpha / rank. */
  alpha?: number;
  /** lora_dropout (default 0). */
  dropout?: number;
  /** Module names (last path component) to adapt; default every projection of Qwen2. */
  targets?: string[];
  /** Adapter dtype (default float32, PEFT's autocast_adapter_dtype). */
  dtype?: DType;
  /** Freeze every other parameter (default true, as PEFT). */
  freezeBase?: boolean;
}

export const QWEN2_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/** The AdaptableLinear modules of `model` with their dotted names. */
export function adaptableModules(model: Module): [string, AdaptableLinear][] {
  return [...model.namedModules()].filter((e): e is [string, AdaptableLinear] => e[1] instanceof AdaptableLinear);
}

/** The applied LoRA settings of a model (recorded by applyLora), or null. */
export function loraConfigOf(model: Module): Required<Omit<LoraConfig, "freezeBase">> | null {
  return (model as unknown as { _loraConfig?: Required<Omit<LoraConfig, "freezeBase">> })._loraConfig ?? null;
}

/**
 * Adds an adapter to every AdaptableLinear whose name ends with one of `targets`, and (by default)
 * freezes everything else. Returns the names adapted. Applying twice is an error.
 */
export function applyLora(model: Module, cfg: LoraConfig = {}): string[] {
  const rank = cfg.rank ?? 16;
  const alpha = cfg.alpha ?? 2 * rank;
  const dropout = cfg.dropout ?? 0;
  const targets = cfg.targets ?? QWEN2_LORA_TARGETS;
  const dtype = cfg.dtype ?? "float32";
  if (loraConfigOf(model)) throw new TorchError("applyLora: the model already has LoRA adapters (mergeLora or a fresh model first)");
  const chosen = adaptableModules(model).filter(([n]) => targets.includes(n.split(".").pop()!));
  if (chosen.length === 0) {
    const known = [...new Set(adaptableModules(model).map(([n]) => n.split(".").pop()!))];
    throw new TorchError(`applyLora: no module matches targets [${targets.join(", ")}] (adaptable: ${known.join(", ") || "none"})`);
  }
  if (cfg.freezeBase ?? true) for (const p of model.parameters()) p.requiresGrad = false;
  scope(() => {
    for (const [, m] of chosen) {
      m.adapter = new LoraAdapter(m.inFeatures, m.outFeatures, rank, alpha, dropout, { dtype, device: m.weight.device });
    }
  });
  (model as unknown as { _loraConfig: unknown })._loraConfig = { rank, alpha, dropout, targets: [...targets], dtype };
  return chosen.map(([n]) => n);
}

/** The adapter tensors (lora_A and lora_B weights), in module order. */
export function loraParameters(model: Module): Tensor[] {
  return adaptableModules(model).flatMap(([, m]) => (m.adapter ? [m.adapter.lora_A.weight, m.adapter.lora_B.weight] : []));
}

/** Adapter tensors by PEFT name (`base_model.model.<module>.lora_A.weight`); the model's own tensors. */
export function loraStateDict(model: Module): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [n, m] of adaptableModules(model)) {
    if (!m.adapter) continue;
    out[`${PEFT_PREFIX}${n}.lora_A.weight`] = m.adapter.lora_A.weight;
    out[`${PEFT_PREFIX}${n}.lora_B.weight`] = m.adapter.lora_B.weight;
  }
  return out;
}

/**
 * Copies adapter weights into the model's adapters. Keys may carry PEFT's prefix or not, and PEFT's
 * ".default" adapter name is accepted. Strict: the key sets and shapes must match exactly.
 */
export function loadLoraStateDict(model: Module, sd: Record<string, Tensor>): void {
  const own = loraStateDict(model);
  if (Object.keys(own).length === 0) throw new TorchError("loadLora: the model has no LoRA adapters (applyLora first)");
  const norm = (k: string) => {
    const s = k.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.");
    return s.startsWith(PEFT_PREFIX) ? s : PEFT_PREFIX + s;
  };
  const given = new Map(Object.entries(sd).map(([k, t]) => [norm(k), t]));
  const missing = Object.keys(own).filter((k) => !given.has(k));
  const unexpected = [...given.keys()].filter((k) => !(k in own));
  const mismatched = Object.entries(own)
    .filter(([k, t]) => given.has(k) && given.get(k)!.shape.join(",") !== t.shape.join(","))
    .map(([k, t]) => `${k}: file [${given.get(k)!.shape}] vs model [${t.shape}]`);
  const problems: string[] = [];
  const list = (xs: string[]) => (xs.length > 8 ? `${xs.slice(0, 8).join(", ")}, ... (${xs.length} in all)` : xs.join(", "));
  if (mismatched.length) problems.push(`size mismatch: ${list(mismatched)}`);
  if (missing.length) problems.push(`missing: ${list(missing)}`);
  if (unexpected.length) problems.push(`unexpected: ${list(unexpected)}`);
  if (problems.length) throw new TorchError(`loadLora: ${problems.join("; ")}`);
  noGrad(() => {
    for (const [k, t] of Object.entries(own)) t.copy_(given.get(k)!);
  });
}

/** Writes `dir/adapter_model.safetensors` and `dir/adapter_config.json` (PEFT's layout). */
export function saveLora(model: Module, dir: string, opts: { baseModel?: string } = {}): void {
  const cfg = loraConfigOf(model);
  if (!cfg) throw new TorchError("saveLora: the model has no LoRA adapters");
  mkdirSync(dir, { recursive: true });
  safetensors.saveFile(join(dir, "adapter_model.safetensors"), loraStateDict(model), { format: "pt" });
  const peft = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: opts.baseModel ?? null,
    r: cfg.rank,
    lora_alpha: cfg.alpha,
    lora_dropout: cfg.dropout,
    target_modules: cfg.targets,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: false,
    init_lora_weights: true,
    modules_to_save: null,
  };
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(peft, null, 2) + "\n");
}

/**
 * Loads adapters saved by saveLora (or PEFT): `path` is a folder with adapter_model.safetensors
 * (+ adapter_config.json) or the .safetensors file itself. When the model has no adapters yet they are
 * created from adapter_config.json first (freezing the base).
 */
export function loadLora(model: Module, path: string): void {
  const folder = isDir(path);
  const file = folder ? join(path, "adapter_model.safetensors") : path;
  if (!existsSync(file)) throw new TorchError(`loadLora: ${file} does not exist`);
  if (!loraConfigOf(model)) {
    const cfgPath = join(folder ? path : join(file, ".."), "adapter_config.json");
    if (!existsSync(cfgPath)) throw new TorchError(`loadLora: the model has no adapters and ${cfgPath} (to create them) does not exist`);
    const c = JSON.parse(readFileSync(cfgPath, "utf8"));
    if (c.peft_type && c.peft_type !== "LORA") throw new TorchError(`loadLora: ${cfgPath} is a ${c.peft_type} adapter, not LORA`);
    const targets = Array.isArray(c.target_modules) ? c.target_modules : typeof c.target_modules === "string" ? [c.target_modules] : undefined;
    applyLora(model, { rank: c.r, alpha: c.lora_alpha, dropout: c.lora_dropout ?? 0, targets });
  }
  scope(() => loadLoraStateDict(model, safetensors.loadFile(file)));
}

/** Merges every adapter into its base weight (W += scaling B A, in the base dtype) and removes the adapters. */
export function mergeLora(model: Module): void {
  noGrad(() => {
    for (const [, m] of adaptableModules(model)) {
      if (!m.adapter) continue;
      const a = m.adapter;
      scope(() => {
        m.weight.add_(a.delta().to(m.weight.dtype));
      });
      a.dispose();
      m.adapter = null;
    }
  });
  delete (model as unknown as { _loraConfig?: unknown })._loraConfig;
}

/**
 * Runs `fn` (no-grad inference: generation) with every adapter folded into a merged copy of its base
 * weight, W + scaling B A in W's dtype: one matmul per projection instead of three, and on CUDA a decode
 * graph with a third of the projections' kernels. The copies are kept on the modules (the size of the
 * adapted weights: 2.6 GB for Qwen2.5-1.5B in bf16) so a captured graph reads the same buffers at every
 * call, and are refreshed in place at each call, so they follow the optimizer. The numbers: in float32 the
 * same to rounding; in bf16 the merged weight is rounded once, where the unmerged path rounds W x and the
 * adapter's product separately, so logits differ at bf16's precision (and a near-tied greedy token can
 * flip), as PEFT's merge_and_unload does.
 */
export function withMergedAdapters<T>(model: Module, fn: () => T): T {
  const mods = adaptableModules(model).filter(([, m]) => m.adapter).map(([, m]) => m);
  if (mods.length === 0) return fn();
  const dev = mods[0].weight.device.startsWith("cuda") ? "cuda" : "cpu";
  // The delta in the adapters' own dtype: outside any autocast the caller is in.
  autocast({ device: dev, enabled: false }, () =>
    noGrad(() =>
      scope(() => {
        for (const m of mods) {
          if (!m.merged) m.merged = keep(emptyLike(m.weight));
          m.merged.copy_(m.weight);
          m.merged.add_(m.adapter!.delta().to(m.weight.dtype));
        }
      }),
    ),
  );
  for (const m of mods) m.useMerged = true;
  try {
    return fn();
  } finally {
    for (const m of mods) m.useMerged = false;
  }
}

/** Frees the merged copies withMergedAdapters keeps (e.g. before measuring memory). */
export function releaseMergedAdapters(model: Module): void {
  for (const [, m] of adaptableModules(model)) {
    m.merged?.dispose();
    m.merged = null;
  }
}
