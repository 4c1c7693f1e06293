// The trainable system: every part of the pipeline (docs/pipeline.md) built from one config, so training, evaluation and
// the stage scripts construct it the same way.
import type { QwenTokenizer } from "../../tokenizer";
import { loadQwen } from "../../models/load";
import type { Qwen2ForCausalLM } from "../../models/qwen2";
import { QWEN2_LORA_TARGETS, applyLora, loraParameters } from "../../models/lora";
import * as torch from "../../torch";
import type { Device, Tensor } from "../../torch";
import { GridAgent } from "./agent";
import { DEFAULT_EFE, type EfeConfig } from "../objective/efe";
import { EpisodicMemory } from "./episodic-memory";
import { PromptRefiner } from "./refiner";
import { HybridPrompter } from "./prompt";
import { DEFAULT_REWARD_WEIGHTS, type RewardWeights } from "../objective/reward";

export type QwenTrain = "lora" | "full" | "frozen";

export interface SystemConfig {
  model: string;
  device: Device;
  qwen_train: QwenTrain;
  lora_rank: number;
  lora_alpha: number;
  lora_dropout: number;
  /** Qwen's activation recomputation (Qwen2Model.gradientCheckpointing); absent: off. */
  grad_checkpointing?: "off" | "layer" | "mlp";
  max_prompt_tokens: number;
  hint_tokens: number;
  agent_channels: number;
  agent_steps: number;
  /** The agent's input prior (AgentConfig.inputPrior; 0 = none). */
  agent_input_prior?: number;
  action_dim: number;
  rl_lr: number;
  memory_capacity: number;
  reward_weights: RewardWeights;
  efe: EfeConfig;
  /** Seed of the tiny model's random weights and of every module's initialisation. */
  seed: number;
  /** Qwen's weights dtype (default: the checkpoint's; tiny: float32). */
  qwen_dtype?: torch.DType;
  /** --cuda_graphs: the hint's decode steps as CUDA graphs where supported (default auto). */
  cuda_graphs?: "auto" | "off";
}

export interface System {
  config: SystemConfig;
  qwen: Qwen2ForCausalLM;
  tokenizer: QwenTokenizer;
  prompter: HybridPrompter;
  agent: GridAgent;
  refiner: PromptRefiner;
  memory: EpisodicMemory;
}

/** Qwen's trainable parameters for the configured mode (LoRA adapters, all, or none). */
export function qwenTrainable(s: System): Tensor[] {
  if (s.config.qwen_train === "frozen") return [];
  if (s.config.qwen_train === "lora") return loraParameters(s.qwen);
  return s.qwen.parameters();
}

export interface BuildOptions {
  quiet?: boolean;
  /** Build around this Qwen instead of loading `cfg.model` (e.g. random Qwen2.5-1.5B shapes for benchmarks). */
  qwen?: { model: Qwen2ForCausalLM; tokenizer: QwenTokenizer };
}

/** Builds (or loads) every part; module initialisation is seeded so a resumed run rebuilds identically. */
export async function buildSystem(cfg: SystemConfig, opts: BuildOptions = {}): Promise<System> {
  const { model: qwen, tokenizer } = opts.qwen ?? (await loadQwen(cfg.model, { device: cfg.device, dtype: cfg.qwen_dtype, seed: cfg.seed, quiet: opts.quiet }));
  // Every random initialisation below draws from a generator seeded here, so a resumed run rebuilds
  // the same modules before loading; the caller's RNG stream is restored afterwards.
  const saved = torch.getRngState();
  torch.manualSeed(cfg.seed + 1);
  qwen.freeze();
  if (cfg.qwen_train === "lora") {
    applyLora(qwen, { rank: cfg.lora_rank, alpha: cfg.lora_alpha, dropout: cfg.lora_dropout, targets: QWEN2_LORA_TARGETS });
  } else if (cfg.qwen_train === "full") {
    qwen.unfreeze();
  }
  qwen.model.gradientCheckpointing = cfg.grad_checkpointing ?? "off";
  const P = qwen.hiddenSize;
  const agent = new GridAgent({ promptDim: P, channels: cfg.agent_channels, steps: cfg.agent_steps, groups: Math.min(8, cfg.agent_channels), inputPrior: cfg.agent_input_prior ?? 0 });
  const refiner = new PromptRefiner({ promptDim: P, stateDim: cfg.agent_channels, actionDim: cfg.action_dim, lr: cfg.rl_lr, device: cfg.device });
  torch.setRngState(saved);
  saved.dispose();
  agent.to(cfg.device);
  const memory = new EpisodicMemory({ keyDim: P, actionDim: cfg.action_dim, capacity: cfg.memory_capacity, device: cfg.device });
  const prompter = new HybridPrompter(qwen, tokenizer, { maxPromptTokens: cfg.max_prompt_tokens, hintTokens: cfg.hint_tokens, cache: cfg.qwen_train === "frozen", cudaGraphs: cfg.cuda_graphs ?? "auto" });
  return { config: cfg, qwen, tokenizer, prompter, agent, refiner, memory };
}

export const defaultEfe = (): EfeConfig => ({ ...DEFAULT_EFE });
export const defaultRewardWeights = (): RewardWeights => ({ ...DEFAULT_REWARD_WEIGHTS });
