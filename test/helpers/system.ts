// A small full system for CPU tests: the tiny Qwen2, LoRA, a 16-channel agent.
import { type SystemConfig, defaultEfe, defaultRewardWeights } from "../../src/pipeline/system";

export const tinySystemConfig = (over: Partial<SystemConfig> = {}): SystemConfig => ({
  model: "tiny", device: "cpu", qwenTrain: "lora", loraRank: 8, loraAlpha: 16, loraDropout: 0, maxPromptTokens: 2048, hintTokens: 4,
  agentChannels: 16, agentSteps: 5, actionDim: 32, rlLr: 1e-3, memoryCapacity: 64, rewardWeights: defaultRewardWeights(), efe: defaultEfe(), seed: 0,
  ...over,
});
