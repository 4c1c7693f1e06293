// The trainable system: every part of the pipeline (docs/pipeline.md) built from one config, so training, evaluation and
// the stage scripts construct it the same way.
import type { QwenTokenizer } from "../../tokenizer";
import { loadQwen } from "../../models/load";
import type { Qwen2ForCausalLM } from "../../models/qwen2";
import { QWEN2_LORA_TARGETS, applyLora, loraParameters } from "../../models/lora";
import * as torch from "../../torch";
import type { Device, Tensor } from "../../torch";
import { GridAgent } from "./agent";
import { DemoCellAttention } from "./demo-attention";
import { DemoEncoder, type DemoPooling } from "./demo-encoder";
import { DEFAULT_EFE, type EfeConfig } from "../objective/efe";
import { EpisodicMemory } from "./episodic-memory";
import { PromptRefiner } from "./refiner";
import { HybridPrompter } from "./prompt";
import { DEFAULT_REWARD_WEIGHTS, type RewardWeights } from "../objective/reward";

export type QwenTrain = "lora" | "full" | "frozen";

/**
 * What conditions the agent (--agent_context): `prompt`, Qwen's prompt vector p (the agent of before, no
 * demonstration encoder); `both`, the demonstration encoder's c beside p (AgentConfig.contextDim); `demos`,
 * c in place of p: the agent, the refiner and the memory are built for vectors of demo_channels and read
 * c where they read p, and Qwen does not run in the forward (forward.ts); `cells`, p from Qwen as in
 * prompt mode, and the demonstrations read per cell: each test-input cell attends over its task's
 * demonstration cells (the encoder's trunk features, DemoCellAttention) and the read is added to the
 * agent's per-cell features after its stem and at every refinement step (no pooled c); `demos+cells`, both
 * reads of the demonstrations and no Qwen: c in place of p as in `demos`, and the per-cell read as in
 * `cells`: the mode for a Qwen whose weights carry nothing (random, `--model tiny`), where a step is then
 * the agent's passes and the demonstrations only.
 */
export type AgentContext = "prompt" | "demos" | "both" | "cells" | "demos+cells";

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
  /** What conditions the agent (AgentContext); absent: prompt. */
  agent_context?: AgentContext;
  /** The demonstration encoder's width, conv layers after its stem, and pooling (absent: 64, 3, mean). */
  demo_channels?: number;
  demo_layers?: number;
  demo_pooling?: DemoPooling;
  /**
   * Weight of the before-refinement pass's EFE loss beside the after pass's (--before_weight); absent or 0:
   * the design's objective, where the before pass (attempt 1) runs without a graph and no loss trains it.
   */
  before_weight?: number;
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
  /** The demonstration encoder (every agent_context but prompt; in cells only its trunk is read); null for prompt. */
  demoEncoder: DemoEncoder | null;
  /** The per-cell read of the demonstrations (agent_context cells, demos+cells); null otherwise. */
  demoCells: DemoCellAttention | null;
  refiner: PromptRefiner;
  memory: EpisodicMemory;
}

/** What conditions the agent: the config's agent_context, prompt when absent. */
export const agentContext = (cfg: Pick<SystemConfig, "agent_context">): AgentContext => cfg.agent_context ?? "prompt";

/**
 * What each context runs besides the agent: Qwen's prompt pass (without it c stands in for p) and the
 * per-cell read of the demonstrations. One row per context, so a new one states both.
 */
const CONTEXT_PARTS: Record<AgentContext, { qwen: boolean; cells: boolean }> = {
  prompt: { qwen: true, cells: false },
  demos: { qwen: false, cells: false },
  both: { qwen: true, cells: false },
  cells: { qwen: true, cells: true },
  "demos+cells": { qwen: false, cells: true },
};

/** Whether the forward runs Qwen: not in `demos` or `demos+cells` mode, where c stands in for p. */
export const usesPrompt = (cfg: Pick<SystemConfig, "agent_context">): boolean => CONTEXT_PARTS[agentContext(cfg)].qwen;

/** Whether the agent reads the demonstrations per cell (`cells`, `demos+cells`). */
export const readsCells = (cfg: Pick<SystemConfig, "agent_context">): boolean => CONTEXT_PARTS[agentContext(cfg)].cells;

/**
 * Qwen's trainable parameters for the configured mode (LoRA adapters, all, or none). None without a
 * Qwen pass (`demos`, `demos+cells`): nothing of it could learn (its tensors are still checkpointed).
 */
export function qwenTrainable(s: System): Tensor[] {
  if (s.config.qwen_train === "frozen" || !usesPrompt(s.config)) return [];
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
  const mode = agentContext(cfg);
  const C = cfg.demo_channels ?? 64;
  // p's width: Qwen's hidden size, or without Qwen c's, which the agent, the refiner and the memory read in its place.
  const P = usesPrompt(cfg) ? qwen.hiddenSize : C;
  const agent = new GridAgent({
    promptDim: P,
    channels: cfg.agent_channels,
    steps: cfg.agent_steps,
    groups: Math.min(8, cfg.agent_channels),
    inputPrior: cfg.agent_input_prior ?? 0,
    ...(mode === "both" ? { contextDim: C } : {}),
  });
  const refiner = new PromptRefiner({ promptDim: P, stateDim: cfg.agent_channels, actionDim: cfg.action_dim, lr: cfg.rl_lr, device: cfg.device });
  // After the agent and the refiner, so that `prompt` mode draws their initialisation as before.
  const demoEncoder = mode === "prompt" ? null : new DemoEncoder({ channels: C, layers: cfg.demo_layers ?? 3, groups: Math.min(8, C), pooling: cfg.demo_pooling ?? "mean" });
  const demoCells = readsCells(cfg) ? new DemoCellAttention({ channels: C, agentChannels: cfg.agent_channels }) : null;
  torch.setRngState(saved);
  saved.dispose();
  agent.to(cfg.device);
  demoEncoder?.to(cfg.device);
  demoCells?.to(cfg.device);
  const memory = new EpisodicMemory({ keyDim: P, actionDim: cfg.action_dim, capacity: cfg.memory_capacity, device: cfg.device });
  const prompter = new HybridPrompter(qwen, tokenizer, { maxPromptTokens: cfg.max_prompt_tokens, hintTokens: cfg.hint_tokens, cache: cfg.qwen_train === "frozen", cudaGraphs: cfg.cuda_graphs ?? "auto" });
  return { config: cfg, qwen, tokenizer, prompter, agent, demoEncoder, demoCells, refiner, memory };
}

/** The modules that condition the agent on the demonstrations (none in prompt mode): trained, adapted and toggled with it. */
export function demoModules(s: Pick<System, "demoEncoder" | "demoCells">): (DemoEncoder | DemoCellAttention)[] {
  return [...(s.demoEncoder ? [s.demoEncoder] : []), ...(s.demoCells ? [s.demoCells] : [])];
}

export const defaultEfe = (): EfeConfig => ({ ...DEFAULT_EFE });
export const defaultRewardWeights = (): RewardWeights => ({ ...DEFAULT_REWARD_WEIGHTS });
