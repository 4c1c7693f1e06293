// The trainable system: every part of DESIGN §5 built from one config, so training, evaluation and
// the stage scripts construct it the same way.
import type { QwenTokenizer } from "../tokenizer";
import { loadQwen } from "../models/load";
import type { Qwen2ForCausalLM } from "../models/qwen2";
import { QWEN2_LORA_TARGETS, applyLora, loraParameters } from "../models/lora";
import * as torch from "../torch";
import type { Device, Tensor } from "../torch";
import { GridAgent } from "./agent";
import { DEFAULT_EFE, type EfeConfig } from "./efe";
import { EpisodicMemory } from "./memory";
import { PromptRefiner } from "./refiner";
import { HybridPrompter } from "./prompt";
import { DEFAULT_REWARD_WEIGHTS, type RewardWeights } from "./reward";

export type QwenTrain = "lora" | "full" | "frozen";

export interface SystemConfig {
  model: string;
  device: Device;
  qwenTrain: QwenTrain;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  maxPromptTokens: number;
  hintTokens: number;
  agentChannels: number;
  agentSteps: number;
  /** The agent's input prior (AgentConfig.inputPrior; 0 = none). */
  agentInputPrior?: number;
  actionDim: number;
  rlLr: number;
  memoryCapacity: number;
  rewardWeights: RewardWeights;
  efe: EfeConfig;
  /** Seed of the tiny model's random weights and of every module's initialisation. */
  seed: number;
  /** Qwen's weights dtype (default: the checkpoint's; tiny: float32). */
  qwenDtype?: torch.DType;
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
  if (s.config.qwenTrain === "frozen") return [];
  if (s.config.qwenTrain === "lora") return loraParameters(s.qwen);
  return s.qwen.parameters();
}

export interface BuildOptions {
  quiet?: boolean;
  /** Build around this Qwen instead of loading `cfg.model` (e.g. random Qwen2.5-1.5B shapes for benchmarks). */
  qwen?: { model: Qwen2ForCausalLM; tokenizer: QwenTokenizer };
}

/** Builds (or loads) every part; module initialisation is seeded so a resumed run rebuilds identically. */
export async function buildSystem(cfg: SystemConfig, opts: BuildOptions = {}): Promise<System> {
  const { model: qwen, tokenizer } = opts.qwen ?? (await loadQwen(cfg.model, { device: cfg.device, dtype: cfg.qwenDtype, seed: cfg.seed, quiet: opts.quiet }));
  // Every random initialisation below draws from a generator seeded here, so a resumed run rebuilds
  // the same modules before loading; the caller's RNG stream is restored afterwards.
  const saved = torch.getRngState();
  torch.manualSeed(cfg.seed + 1);
  qwen.freeze();
  if (cfg.qwenTrain === "lora") {
    applyLora(qwen, { rank: cfg.loraRank, alpha: cfg.loraAlpha, dropout: cfg.loraDropout, targets: QWEN2_LORA_TARGETS });
  } else if (cfg.qwenTrain === "full") {
    qwen.unfreeze();
  }
  const P = qwen.hiddenSize;
  const agent = new GridAgent({ promptDim: P, channels: cfg.agentChannels, steps: cfg.agentSteps, groups: Math.min(8, cfg.agentChannels), inputPrior: cfg.agentInputPrior ?? 0 });
  const refiner = new PromptRefiner({ promptDim: P, stateDim: cfg.agentChannels, actionDim: cfg.actionDim, lr: cfg.rlLr, device: cfg.device });
  torch.setRngState(saved);
  saved.dispose();
  agent.to(cfg.device);
  const memory = new EpisodicMemory({ keyDim: P, actionDim: cfg.actionDim, capacity: cfg.memoryCapacity, device: cfg.device });
  const prompter = new HybridPrompter(qwen, tokenizer, { maxPromptTokens: cfg.maxPromptTokens, hintTokens: cfg.hintTokens, cache: cfg.qwenTrain === "frozen" });
  return { config: cfg, qwen, tokenizer, prompter, agent, refiner, memory };
}

export const defaultEfe = (): EfeConfig => ({ ...DEFAULT_EFE });
export const defaultRewardWeights = (): RewardWeights => ({ ...DEFAULT_REWARD_WEIGHTS });
