// A small full system for CPU tests: the tiny Qwen2, LoRA, a 16-channel agent.
import { DEFAULTS } from "../../src/pipeline/config/train-config";
import { systemConfig } from "../../src/pipeline/config/run-setup";
import type { SystemConfig } from "../../src/pipeline/system/system";

export const tinySystemConfig = (over: Partial<SystemConfig> = {}): SystemConfig => ({
  ...systemConfig({
    ...DEFAULTS, model: "tiny", device: "cpu", qwen_train: "lora", lora_rank: 8, lora_alpha: 16, lora_dropout: 0, max_prompt_tokens: 2048, hint_tokens: 4,
    agent_channels: 16, agent_steps: 5, rl_lr: 1e-3, memory_capacity: 64, seed: 0,
  }),
  ...over,
});
