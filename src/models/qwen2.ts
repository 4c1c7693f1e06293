// Qwen2 / Qwen2.5 exactly as Hugging Face transformers' modeling_qwen2.py computes it: pre-norm decoder,
// RMSNorm in float32 cast back before the weight, RoPE (rotate_half) with inv_freq and cos/sin in float32
// cast to the activation dtype, q/k/v with bias and o_proj without, grouped-query attention (KV heads
// repeated), softmax in float32, SwiGLU MLP, tied embeddings. Field names are the checkpoint keys:
//   model.embed_tokens, model.layers.N.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj,
//   input_layernorm, post_attention_layernorm}, model.norm, lm_head (absent when tied).
//
//   const m = await fromPretrained("Qwen/Qwen2.5-1.5B-Instruct", { device: "cuda" });   // load.ts
//   const { logits, hiddenStates, loss } = torch.scope(() => m.forward({ inputIds, attentionMask, labels }));
//   const newIds = m.generate(inputIds, { maxNewTokens: 16 });
//
// Generation (the decoding loop, its logits processors) is generate.ts; model.generate delegates there.
// Loading (a Hub id or a folder, config files and weights) is load.ts.
//
// Padded batches: pass attentionMask (1 = token, 0 = padding). Position ids then default to
// cumsum(mask) - 1 (transformers' generate does this; its plain forward uses 0..T-1, which differs only
// for left padding), so a left-padded row gets exactly the logits it has alone.
import * as torch from "../torch.ts";
import { type DType, type Device, F, Tensor, TorchError, normalizeDevice } from "../torch.ts";
import { Module, ModuleList, RMSNorm } from "../nn/index.ts";
import { type GenerateOptions, generate } from "./generate.ts";
import { type CacheLike, KVCache } from "./kv-cache.ts";
import { AdaptableLinear } from "./lora.ts";

// ---- config ----------------------------------------------------------------------------------------

export interface Qwen2Config {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  attentionDropout: number;
  /** The checkpoint's dtype (`dtype`, or `torch_dtype` in older configs); float32 when absent. */
  dtype: DType;
  bosTokenId: number | null;
  /** config.json's eos_token_id as a list. */
  eosTokenIds: number[];
  initializerRange: number;
}

const DTYPE_NAMES: Record<string, DType> = {
  float32: "float32", float: "float32", fp32: "float32",
  bfloat16: "bfloat16", bf16: "bfloat16",
  float16: "float16", half: "float16", fp16: "float16",
};

function parseDtype(v: unknown, what: string): DType {
  if (v === undefined || v === null) return "float32";
  const s = String(v).replace(/^torch\./, "");
  const d = DTYPE_NAMES[s];
  if (!d) throw new TorchError(`${what}: unsupported dtype ${JSON.stringify(v)} (float32, bfloat16 or float16)`);
  return d;
}

const idList = (v: unknown): number[] => (typeof v === "number" ? [v] : Array.isArray(v) ? v.filter((x): x is number => typeof x === "number") : []);

/**
 * Reads a transformers Qwen2 config.json object: transformers 5 (`rope_parameters.rope_theta`, `dtype`)
 * or the older format Qwen published (`rope_theta`, `torch_dtype`, `rope_scaling`).
 */
export function parseQwen2Config(json: Record<string, any>, source = "config.json"): Qwen2Config {
  const bad = (why: string) => new TorchError(`${source}: ${why}`);
  if (json.model_type !== undefined && json.model_type !== "qwen2") throw bad(`model_type is "${json.model_type}", expected "qwen2"`);
  const int = (k: string, dflt?: number): number => {
    const v = json[k] ?? dflt;
    if (!Number.isInteger(v) || v <= 0) throw bad(`${k} must be a positive integer, got ${JSON.stringify(json[k])}`);
    return v;
  };
  const hiddenSize = int("hidden_size");
  const numAttentionHeads = int("num_attention_heads");
  const numKeyValueHeads = int("num_key_value_heads", numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) throw bad(`num_attention_heads ${numAttentionHeads} is not a multiple of num_key_value_heads ${numKeyValueHeads}`);
  const headDim = json.head_dim ?? hiddenSize / numAttentionHeads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw bad(`head dimension ${headDim} must be an even integer`);
  const rp = json.rope_parameters ?? json.rope_scaling ?? null;
  const ropeType = rp?.rope_type ?? rp?.type ?? "default";
  if (ropeType !== "default") throw bad(`rope type "${ropeType}" is not supported (only "default")`);
  const ropeTheta = Number(json.rope_parameters?.rope_theta ?? json.rope_theta ?? 10000);
  if (!(ropeTheta > 0)) throw bad(`rope_theta must be positive, got ${ropeTheta}`);
  if (json.use_sliding_window === true) throw bad("use_sliding_window: true is not supported");
  if (json.hidden_act !== undefined && json.hidden_act !== "silu") throw bad(`hidden_act "${json.hidden_act}" is not supported (silu)`);
  return {
    vocabSize: int("vocab_size"),
    hiddenSize,
    intermediateSize: int("intermediate_size"),
    numHiddenLayers: int("num_hidden_layers"),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    maxPositionEmbeddings: json.max_position_embeddings ?? 32768,
    ropeTheta,
    rmsNormEps: json.rms_norm_eps ?? 1e-6,
    tieWordEmbeddings: json.tie_word_embeddings ?? false,
    attentionDropout: json.attention_dropout ?? 0,
    dtype: parseDtype(json.dtype ?? json.torch_dtype, source),
    bosTokenId: typeof json.bos_token_id === "number" ? json.bos_token_id : null,
    eosTokenIds: idList(json.eos_token_id),
    initializerRange: json.initializer_range ?? 0.02,
  };
}

/** The config of `--model tiny`: Qwen2's real vocabulary, 2 layers of hidden 64 (CPU tests, smoke runs). */
export const TINY_CONFIG: Qwen2Config = {
  vocabSize: 151936, hiddenSize: 64, intermediateSize: 160, numHiddenLayers: 2, numAttentionHeads: 4,
  numKeyValueHeads: 2, headDim: 16, maxPositionEmbeddings: 32768, ropeTheta: 1e6, rmsNormEps: 1e-6,
  tieWordEmbeddings: true, attentionDropout: 0, dtype: "float32", bosTokenId: null,
  eosTokenIds: [151645, 151643], initializerRange: 0.02,
};

/** Qwen2.5-1.5B's shapes (the benchmark's model). */
export const QWEN25_1_5B_CONFIG: Qwen2Config = {
  vocabSize: 151936, hiddenSize: 1536, intermediateSize: 8960, numHiddenLayers: 28, numAttentionHeads: 12,
  numKeyValueHeads: 2, headDim: 128, maxPositionEmbeddings: 32768, ropeTheta: 1e6, rmsNormEps: 1e-6,
  tieWordEmbeddings: true, attentionDropout: 0, dtype: "bfloat16", bosTokenId: null,
  eosTokenIds: [151645, 151643], initializerRange: 0.02,
};

/** generation_config.json, as far as generate() uses it. */
export interface GenerationDefaults {
  eosTokenIds: number[];
  padTokenId: number | null;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
}

export function parseGenerationConfig(json: Record<string, any>): GenerationDefaults {
  const g: GenerationDefaults = { eosTokenIds: idList(json.eos_token_id), padTokenId: typeof json.pad_token_id === "number" ? json.pad_token_id : null };
  if (typeof json.do_sample === "boolean") g.doSample = json.do_sample;
  if (typeof json.temperature === "number") g.temperature = json.temperature;
  if (typeof json.top_k === "number") g.topK = json.top_k;
  if (typeof json.top_p === "number") g.topP = json.top_p;
  if (typeof json.repetition_penalty === "number") g.repetitionPenalty = json.repetition_penalty;
  return g;
}

// ---- layers ----------------------------------------------------------------------------------------

interface FactoryOptions {
  dtype?: DType;
  device?: Device;
}

/** Token embedding [vocab, hidden], allocated without initialisation. */
export class Qwen2Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: FactoryOptions = {}) {
    super();
    this.weight = this.registerParameter("weight", torch.empty([numEmbeddings, embeddingDim], opts));
  }
  forward(ids: Tensor): Tensor {
    return F.embedding(ids, this.weight);
  }
}

/** The output projection; when tied its weight is the embedding's tensor. */
export class Qwen2LmHead extends Module {
  readonly weight: Tensor;
  constructor(weight: Tensor) {
    super();
    this.weight = this.registerParameter("weight", weight);
  }
  forward(h: Tensor): Tensor {
    return F.linear(h, this.weight);
  }
}


/** How attention is masked: causal (no padding, no cache), or a boolean [B, 1, T, S] mask (true = attend). */
interface AttentionMask {
  causal: boolean;
  mask: Tensor | null;
}

export class Qwen2Attention extends Module {
  readonly q_proj: AdaptableLinear;
  readonly k_proj: AdaptableLinear;
  readonly v_proj: AdaptableLinear;
  readonly o_proj: AdaptableLinear;
  private readonly nHeads: number;
  private readonly nKv: number;
  private readonly headDim: number;
  private readonly dropoutP: number;
  constructor(cfg: Qwen2Config, readonly layerIdx: number, opts: FactoryOptions) {
    super();
    const d = cfg.headDim;
    this.nHeads = cfg.numAttentionHeads;
    this.nKv = cfg.numKeyValueHeads;
    this.headDim = d;
    this.dropoutP = cfg.attentionDropout;
    this.q_proj = this.registerModule("q_proj", new AdaptableLinear(cfg.hiddenSize, this.nHeads * d, { bias: true, ...opts }));
    this.k_proj = this.registerModule("k_proj", new AdaptableLinear(cfg.hiddenSize, this.nKv * d, { bias: true, ...opts }));
    this.v_proj = this.registerModule("v_proj", new AdaptableLinear(cfg.hiddenSize, this.nKv * d, { bias: true, ...opts }));
    this.o_proj = this.registerModule("o_proj", new AdaptableLinear(this.nHeads * d, cfg.hiddenSize, { bias: false, ...opts }));
  }
  forward(h: Tensor, cos: Tensor, sin: Tensor, am: AttentionMask, cache: CacheLike | null): Tensor {
    const [b, t] = h.shape;
    const d = this.headDim;
    // RoPE as transformers' rotate_half (x cos + rotate_half(x) sin), one native call per tensor.
    const q = F.rotaryEmbedding(this.q_proj.forward(h).view(b, t, this.nHeads, d).transpose(1, 2), cos, sin);
    let k = F.rotaryEmbedding(this.k_proj.forward(h).view(b, t, this.nKv, d).transpose(1, 2), cos, sin);
    let v = this.v_proj.forward(h).view(b, t, this.nKv, d).transpose(1, 2);
    if (cache) [k, v] = cache.update(this.layerIdx, k, v);
    // Grouped-query attention without repeating K/V per query head (transformers' repeat_kv order).
    const out = F.gqaAttention(q, k, v, {
      attnMask: am.mask,
      isCausal: am.causal,
      dropoutP: this.training ? this.dropoutP : 0,
      scale: 1 / Math.sqrt(d),
    });
    return this.o_proj.forward(out.transpose(1, 2).reshape(b, t, this.nHeads * d));
  }
}

export class Qwen2MLP extends Module {
  readonly gate_proj: AdaptableLinear;
  readonly up_proj: AdaptableLinear;
  readonly down_proj: AdaptableLinear;
  constructor(cfg: Qwen2Config, opts: FactoryOptions) {
    super();
    this.gate_proj = this.registerModule("gate_proj", new AdaptableLinear(cfg.hiddenSize, cfg.intermediateSize, opts));
    this.up_proj = this.registerModule("up_proj", new AdaptableLinear(cfg.hiddenSize, cfg.intermediateSize, opts));
    this.down_proj = this.registerModule("down_proj", new AdaptableLinear(cfg.intermediateSize, cfg.hiddenSize, opts));
  }
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(F.silu(this.gate_proj.forward(x)).mul(this.up_proj.forward(x)));
  }
}

export class Qwen2DecoderLayer extends Module {
  readonly self_attn: Qwen2Attention;
  readonly mlp: Qwen2MLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  /** Set by Qwen2Model.forward: run post_attention_layernorm + mlp (and its residual add) through torch.checkpoint. */
  checkpointMlp = false;
  constructor(cfg: Qwen2Config, layerIdx: number, opts: FactoryOptions) {
    super();
    this.self_attn = this.registerModule("self_attn", new Qwen2Attention(cfg, layerIdx, opts));
    this.mlp = this.registerModule("mlp", new Qwen2MLP(cfg, opts));
    this.input_layernorm = this.registerModule("input_layernorm", new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, opts));
    this.post_attention_layernorm = this.registerModule("post_attention_layernorm", new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, opts));
  }
  forward(h: Tensor, cos: Tensor, sin: Tensor, am: AttentionMask, cache: CacheLike | null): Tensor {
    const a = h.add(this.self_attn.forward(this.input_layernorm.forward(h), cos, sin, am, cache));
    // The residual add is inside the segment: a checkpoint's input must reach the loss only through it.
    if (this.checkpointMlp) return torch.checkpoint((x: Tensor) => x.add(this.mlp.forward(this.post_attention_layernorm.forward(x))), a);
    return a.add(this.mlp.forward(this.post_attention_layernorm.forward(a)));
  }
}

export interface Qwen2ModelOutput {
  /** Final hidden states, after model.norm: [B, T, hidden]. */
  hiddenStates: Tensor;
  /** With outputHiddenStates: the embeddings, every layer's output, and the normed final states (transformers' hidden_states tuple). */
  allHiddenStates?: Tensor[];
}

export interface Qwen2ModelInput {
  inputIds?: Tensor | null;
  /** Instead of inputIds: [B, T, hidden]. */
  inputsEmbeds?: Tensor | null;
  /** [B, past + T]: 1 for tokens, 0 for padding. */
  attentionMask?: Tensor | null;
  /**
   * Whether attentionMask has any 0, when the caller knows it on the host: saves reading the mask back
   * (a device sync) on every call. Must be true when it does; absent: read from the mask.
   */
  padded?: boolean;
  /** [B, T] (or [T]); default from attentionMask (cumsum - 1), else past..past+T-1. */
  positionIds?: Tensor | null;
  /**
   * Instead of attentionMask: the boolean mask attention uses as is, [B or 1, 1, T, S] (true = attend),
   * with positionIds. A static-cache decode step keeps it on the device and updates it in place.
   */
  attentionBias?: Tensor | null;
  pastKeyValues?: CacheLike | null;
  outputHiddenStates?: boolean;
}

export class Qwen2Model extends Module {
  readonly embed_tokens: Qwen2Embedding;
  readonly layers: ModuleList<Qwen2DecoderLayer>;
  readonly norm: RMSNorm;
  private invFreqCache: Tensor | null = null;
  /**
   * Gradient checkpointing (--grad_checkpointing) when a forward records gradients without a cache:
   * "layer" keeps only each decoder layer's input and recomputes the layer in backward, "mlp" only the
   * MLP sub-block (its 3x-wide activations), "off" keeps every activation.
   */
  gradientCheckpointing: "off" | "layer" | "mlp" = "off";
  constructor(readonly config: Qwen2Config, opts: FactoryOptions) {
    super();
    this.embed_tokens = this.registerModule("embed_tokens", new Qwen2Embedding(config.vocabSize, config.hiddenSize, opts));
    this.layers = this.registerModule("layers", new ModuleList(Array.from({ length: config.numHiddenLayers }, (_, i) => new Qwen2DecoderLayer(config, i, opts))));
    this.norm = this.registerModule("norm", new RMSNorm(config.hiddenSize, config.rmsNormEps, opts));
    this.invFreq(opts.device ?? "cpu");
  }

  override dispose(): void {
    super.dispose();
    this.invFreqCache?.dispose();
  }

  /**
   * RoPE's inverse frequencies 1 / theta^(arange(0, d, 2) / d), computed in float32 as transformers does
   * and kept float32 whatever the model dtype (not a buffer, so Module.to(dtype) leaves it alone).
   */
  invFreq(device: Device): Tensor {
    const c = this.invFreqCache;
    if (c && !c.isDisposed && normalizeDevice(c.device) === normalizeDevice(device)) return c;
    c?.dispose();
    const d = this.config.headDim;
    const inv = torch.scope(() => torch.full([d / 2], this.config.ropeTheta, { dtype: "float32", device }).pow(torch.arange(0, d, 2, { device }).float().div(d)).reciprocal());
    this.invFreqCache = torch.keep(inv);
    return inv;
  }

  forward(args: Qwen2ModelInput): Qwen2ModelOutput {
    const cache = args.pastKeyValues ?? null;
    let h: Tensor;
    if (args.inputsEmbeds) h = args.inputsEmbeds;
    else if (args.inputIds) {
      if (args.inputIds.ndim !== 2) throw new TorchError(`inputIds must be [batch, seq], got [${args.inputIds.shape}]`);
      h = this.embed_tokens.forward(args.inputIds);
    } else throw new TorchError("forward needs inputIds or inputsEmbeds");
    const [b, t] = h.shape;
    const past = cache?.length ?? 0;
    const s = past + t;
    const dev = h.device;
    const bias = args.attentionBias ?? null;
    if (bias && (!args.positionIds || args.attentionMask)) throw new TorchError("attentionBias needs positionIds, and no attentionMask");
    const mask = args.attentionMask ?? null;
    if (mask && (mask.ndim !== 2 || mask.shape[0] !== b || mask.shape[1] !== s))
      throw new TorchError(`attentionMask must be [${b}, ${s}] (batch, cached + new tokens), got [${mask.shape}]`);
    const padded = mask !== null && (args.padded ?? !mask.bool().all().item());

    // Position ids: cumsum(mask) - 1 where masked (1 at padding, as transformers' generate), else arange.
    let pos: Tensor;
    if (args.positionIds) pos = args.positionIds.ndim === 1 ? args.positionIds.unsqueeze(0).expand(b, t) : args.positionIds;
    else if (padded) pos = mask!.long().cumsum(1).sub(1).maskedFill(mask!.eq(0), 1).narrow(1, past, t);
    else pos = torch.arange(past, s, 1, { device: dev }).unsqueeze(0).expand(b, t);

    // RoPE tables in float32, then the activation dtype.
    const freqs = pos.float().unsqueeze(-1).mul(this.invFreq(dev));
    const emb = torch.cat([freqs, freqs], -1);
    const cos = emb.cos().to(h.dtype).unsqueeze(1); // [B, 1, T, d]: broadcast over heads
    const sin = emb.sin().to(h.dtype).unsqueeze(1);

    // Attention mask: plain causal when possible (fused kernels); else an explicit boolean mask where
    // query i (at cache position past+i) sees key j <= past+i that is not padding. A padding query also
    // sees itself, so no row is fully masked (no NaN anywhere; its output is never used).
    let am: AttentionMask;
    if (bias) am = { causal: false, mask: bias };
    else if (!padded && past === 0) am = { causal: t > 1, mask: null };
    else if (!padded && t === 1) am = { causal: false, mask: null };
    else {
      const kIdx = torch.arange(0, s, 1, { device: dev }).unsqueeze(0); // [1, S]
      const qIdx = torch.arange(past, s, 1, { device: dev }).unsqueeze(1); // [T, 1]
      let allowed = kIdx.le(qIdx).unsqueeze(0); // [1, T, S]
      if (padded) allowed = allowed.logicalAnd(mask!.bool().unsqueeze(1)).logicalOr(kIdx.eq(qIdx).unsqueeze(0)); // [B, T, S]
      am = { causal: false, mask: allowed.unsqueeze(1) };
    }

    const all: Tensor[] | undefined = args.outputHiddenStates ? [h] : undefined;
    const ckpt = cache === null && torch.isGradEnabled() ? this.gradientCheckpointing : "off";
    for (const layer of this.layers) {
      const prev = h;
      layer.checkpointMlp = ckpt === "mlp";
      h = torch.scope(() => (ckpt === "layer" ? torch.checkpoint((x: Tensor, c: Tensor, s: Tensor, m: AttentionMask) => layer.forward(x, c, s, m, null), prev, cos, sin, am) : layer.forward(prev, cos, sin, am, cache)));
      if (all) all.push(h);
      else if (prev !== args.inputsEmbeds) prev.dispose(); // early free; the autograd graph keeps what backward needs
    }
    const out = this.norm.forward(h);
    if (all) all.push(out);
    else h.dispose();
    return { hiddenStates: out, allHiddenStates: all };
  }
}

// ---- causal LM ---------------------------------------------------------------------------------------

export interface Qwen2ForwardInput extends Qwen2ModelInput {
  /** Keep the cache (a new one when pastKeyValues is absent) and return it as pastKeyValues. */
  useCache?: boolean;
  /** [B, T] int64; the loss is transformers' ForCausalLMLoss (shifted inside, -100 ignored). */
  labels?: Tensor | null;
  /** false: skip lm_head (hidden states only; logits null). Default true. */
  computeLogits?: boolean;
  /** Only the last N positions' logits (generation uses 1). Default all. */
  logitsToKeep?: number;
}

export interface Qwen2Output {
  logits: Tensor | null;
  /** Final hidden states (after model.norm), [B, T, hidden]. */
  hiddenStates: Tensor;
  allHiddenStates?: Tensor[];
  loss?: Tensor;
  pastKeyValues?: CacheLike;
}


/** The causal-LM loss of transformers (ForCausalLMLoss): float32 logits, labels shifted left, mean over non-ignored. */
export function causalLmLoss(logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  const v = logits.shape[logits.ndim - 1];
  const shifted = F.pad(labels.long(), [0, 1], ignoreIndex).narrow(-1, 1, labels.shape[labels.ndim - 1]);
  return F.crossEntropy(logits.float().reshape(-1, v), shifted.reshape(-1), { ignoreIndex });
}

export class Qwen2ForCausalLM extends Module {
  readonly model: Qwen2Model;
  readonly lm_head: Qwen2LmHead;
  generationConfig: GenerationDefaults;

  /** Parameters allocated uninitialised; use fromConfig/tiny, load.ts's fromPretrained/fromFolder, or fill them yourself. */
  constructor(readonly config: Qwen2Config, opts: FactoryOptions = {}) {
    super();
    const fo = { dtype: opts.dtype ?? config.dtype, device: opts.device };
    this.model = this.registerModule("model", new Qwen2Model(config, fo));
    const head = config.tieWordEmbeddings ? this.model.embed_tokens.weight : torch.empty([config.vocabSize, config.hiddenSize], fo);
    this.lm_head = this.registerModule("lm_head", new Qwen2LmHead(head));
    this.generationConfig = { eosTokenIds: [...config.eosTokenIds], padTokenId: null };
  }

  get hiddenSize(): number {
    return this.config.hiddenSize;
  }
  get device(): Device {
    return this.model.embed_tokens.weight.device;
  }
  get dtype(): DType {
    return this.model.embed_tokens.weight.dtype;
  }

  /** A model with transformers' random init (normal(0, initializer_range) weights, zero biases, unit norms). */
  static fromConfig(config: Qwen2Config, opts: FactoryOptions & { seed?: number } = {}): Qwen2ForCausalLM {
    const m = new Qwen2ForCausalLM(config, opts);
    m.initWeights(opts.seed);
    return m;
  }

  /**
   * `--model tiny`: a random Qwen2 (2 layers, hidden 64, 4 heads, 2 KV heads, vocabulary 151936, tied),
   * the same for a seed on every device (initialised on the CPU). The global RNG is left as it was.
   */
  static tiny(opts: { seed?: number; device?: Device; dtype?: DType } = {}): Qwen2ForCausalLM {
    const m = Qwen2ForCausalLM.fromConfig(TINY_CONFIG, { seed: opts.seed ?? 0 }); // float32 on the CPU: the same numbers everywhere
    if ((opts.device && opts.device !== "cpu") || (opts.dtype && opts.dtype !== "float32")) m.to({ device: opts.device, dtype: opts.dtype });
    return m;
  }

  /** Parameters by checkpoint key; a tied lm_head.weight is left out (as in the checkpoint). */
  override stateDict(prefix = ""): Record<string, Tensor> {
    const sd = super.stateDict(prefix);
    if (this.config.tieWordEmbeddings) delete sd[prefix ? `${prefix}.lm_head.weight` : "lm_head.weight"];
    return sd;
  }

  /** transformers' _init_weights: normal(0, initializer_range) for linear and embedding weights, zero biases, unit norms. */
  initWeights(seed?: number): this {
    const std = this.config.initializerRange;
    const saved = seed === undefined ? null : torch.getRngState();
    if (seed !== undefined) torch.manualSeed(seed);
    try {
      torch.noGrad(() => {
        for (const [name, p] of this.namedParameters()) {
          if (name.endsWith("norm.weight")) p.fill_(1);
          else if (name.endsWith(".bias")) p.zero_();
          else p.normal_(0, std);
        }
      });
    } finally {
      if (saved) {
        torch.setRngState(saved);
        saved.dispose();
      }
    }
    return this;
  }

  /** Frees every parameter and the RoPE table. */
  override dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  /** No parameter trains (requiresGrad false). */
  freeze(): this {
    return this.requiresGrad_(false);
  }
  /** Every parameter trains. */
  unfreeze(): this {
    return this.requiresGrad_(true);
  }

  forward(args: Qwen2ForwardInput): Qwen2Output {
    const useCache = args.useCache ?? args.pastKeyValues != null;
    const cache = args.pastKeyValues ?? (useCache ? new KVCache(this.config.numHiddenLayers) : null);
    const { hiddenStates, allHiddenStates } = this.model.forward({ ...args, pastKeyValues: cache });
    const out: Qwen2Output = { logits: null, hiddenStates };
    if (allHiddenStates) out.allHiddenStates = allHiddenStates;
    if (useCache && cache) out.pastKeyValues = cache;
    if (args.labels && (args.computeLogits === false || args.logitsToKeep)) throw new TorchError("labels need every position's logits (no computeLogits: false or logitsToKeep)");
    if (args.computeLogits !== false) {
      const t = hiddenStates.shape[1];
      const k = args.logitsToKeep && args.logitsToKeep < t ? args.logitsToKeep : t;
      out.logits = this.lm_head.forward(k === t ? hiddenStates : hiddenStates.narrow(1, t - k, k));
    }
    if (args.labels) out.loss = causalLmLoss(out.logits!, args.labels);
    return out;
  }

  /** Autoregressive decoding with a KV cache (generate.ts: greedy or sampled, batched, left-padded). */
  generate(inputIds: Tensor | number[][], opts: GenerateOptions = {}): number[][] {
    return generate(this, inputIds, opts);
  }
}
