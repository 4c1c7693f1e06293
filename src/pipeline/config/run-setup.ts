// One job: turning a TrainConfig into what a run builds. The trainer, scripts/eval.ts (report.ts), the
// stage scripts and the benchmarks all derive the system, the examples, the autocast scope and the CPU
// threads of a run from its config here, so they cannot drift apart.
import { availableParallelism } from "node:os";
import { type Dataset, type Example, splitTasks, testExamples, trainingExamples } from "../../arc/index";
import * as torch from "../../torch";
import type { TrainConfig } from "./train-config";
import type { Autocast } from "../system/forward";
import { type SystemConfig, defaultEfe, defaultRewardWeights } from "../system/system";

/**
 * The system a run trains (every SystemConfig is built here, from a TrainConfig). A setting keeps its
 * flag's name, so this is a pick, plus the settings that have no flag.
 */
export function systemConfig(c: TrainConfig): SystemConfig {
  const { model, qwen_train, lora_rank, lora_alpha, lora_dropout, max_prompt_tokens, hint_tokens, agent_channels, agent_steps, rl_lr, memory_capacity, seed } = c;
  return {
    model,
    device: c.device as torch.Device,
    qwen_train,
    lora_rank,
    lora_alpha,
    lora_dropout,
    grad_checkpointing: c.grad_checkpointing,
    max_prompt_tokens,
    hint_tokens,
    agent_channels,
    agent_steps,
    // A saved run's config has every flag: run/migrations.ts fills the ones older runs lacked.
    agent_input_prior: c.agent_input_prior,
    agent_context: c.agent_context,
    demo_channels: c.demo_channels,
    demo_layers: c.demo_layers,
    demo_pooling: c.demo_pooling,
    before_weight: c.before_weight,
    rl_lr,
    memory_capacity,
    seed,
    cuda_graphs: c.cuda_graphs,
    action_dim: 32,
    reward_weights: defaultRewardWeights(),
    efe: defaultEfe(),
  };
}

/** The examples of a run: training pairs of the training tasks, validation from held-out tasks. */
export function runExamples(ds: Dataset, c: TrainConfig): { train: Example[]; val: Example[] } {
  const { train, val } = splitTasks(ds.training, c.val_fraction, c.seed);
  return { train: trainingExamples(train), val: testExamples(val).slice(0, c.val_max) };
}

/** The autocast scope of a run: CUDA fp16/bf16, CPU bf16 only (a resumed CUDA run on a CPU drops fp16). */
export function autocastFor(c: TrainConfig): Autocast {
  const cuda = c.device.startsWith("cuda");
  if (c.amp_dtype === "none" || (!cuda && c.amp_dtype === "fp16")) return null;
  return { device: cuda ? "cuda" : "cpu", dtype: c.amp_dtype === "fp16" ? "float16" : "bfloat16" };
}

/** LibTorch's CPU threads: the number asked for, or every core (LibTorch's own default can be 1 in VMs). */
export function useThreads(n: number): void {
  torch.setNumThreads(n > 0 ? n : availableParallelism());
}
