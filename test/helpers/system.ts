// A small full system for CPU tests: the tiny Qwen2, LoRA, a 16-channel agent.
import { DEFAULTS } from "../../src/pipeline/config/train-config";
import { systemConfig } from "../../src/pipeline/config/run-setup";
import type { System, SystemConfig } from "../../src/pipeline/system/system";
import * as torch from "../../src/torch";

export const tinySystemConfig = (over: Partial<SystemConfig> = {}): SystemConfig => ({
  ...systemConfig({
    ...DEFAULTS, model: "tiny", device: "cpu", qwen_train: "lora", lora_rank: 8, lora_alpha: 16, lora_dropout: 0, max_prompt_tokens: 2048, hint_tokens: 4,
    agent_channels: 16, agent_steps: 5, rl_lr: 1e-3, memory_capacity: 64, seed: 0,
  }),
  ...over,
});

/**
 * Makes every path of a fresh system carry signal: FiLM and LoRA B start at zero, which would hide p's
 * gradient and LoRA A's (tests comparing gradients would then compare zeros).
 */
export function withSignal(sys: System): System {
  torch.noGrad(() => {
    sys.agent.block.film.weight.normal_(0, 0.2);
    for (const [n, t] of sys.qwen.namedParameters()) if (n.includes("lora_B")) t.normal_(0, 0.05);
  });
  return sys;
}
