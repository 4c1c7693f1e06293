#!/usr/bin/env bun
// Train the ARC system. `bun scripts/train.ts --help` lists every flag with its default.
//   bun scripts/train.ts --epochs 20 --agent_lr 1e-4 --qwen_lr 1e-4 --device cuda
//   bun scripts/train.ts --preset smoke --max_batches 10 --device cpu
//   bun scripts/train.ts --resume
// Exit codes: 0 done, 1 failed while training, 2 refused before any work (bad flag, data, folder, a run
// another trainer holds), 3 stopped because losses, gradients or weights went non-finite (the last finite
// checkpoint kept), 130/143 stopped by SIGINT/SIGTERM after a checkpoint.
import { UsageError, helpText, parseTrainArgs, validateConfig, withDeviceDefaults } from "../src/pipeline/config/train-config";
import { oneLineErrors } from "../src/util/cli";
oneLineErrors("train");

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseTrainArgs>;
  try {
    parsed = parseTrainArgs(argv);
    if (parsed.help) {
      console.log(helpText());
      return 0;
    }
    // LibTorch (over a second to load) is needed only to ask about CUDA: other usage errors are instant.
    let env = { cudaAvailable: false, cudaDevices: 0 };
    if (parsed.config.device === "auto" || parsed.config.device.startsWith("cuda")) {
      const torch = await import("../src/torch");
      env = { cudaAvailable: torch.cuda.isAvailable(), cudaDevices: torch.cuda.deviceCount() };
    }
    // Batch size, AMP dtype, checkpointing and token cap have their own defaults on CUDA (config/train-config.ts, CUDA_DEFAULTS).
    parsed.config = withDeviceDefaults(validateConfig(parsed.config, env), parsed.explicit);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`train: ${e.message} (see --help)`);
      return 2;
    }
    throw e;
  }
  // The trainer (and the model code it pulls in) loads only once the flags are known to be good.
  const { train } = await import("../src/pipeline/trainer/trainer");
  const { RunLockedError } = await import("../src/pipeline/run/lock");
  const { SIGNAL_EXIT } = await import("../src/pipeline/trainer/stop");
  const { NonFiniteError } = await import("../src/pipeline/system/nonfinite");
  // A rank of scripts/launch.ts stops (checkpointing) when the launcher is killed outright.
  (await import("../src/util/launch")).watchLauncher();
  try {
    const r = await train(parsed.config, parsed.explicit);
    return r.signal ? SIGNAL_EXIT[r.signal] : 0;
  } catch (e) {
    // A data-parallel rank names itself: the launcher repeats the failed rank's last lines.
    const rank = Number(process.env.WORLD_SIZE) > 1 && process.env.RANK !== undefined ? ` (rank ${process.env.RANK})` : "";
    console.error(`train${rank}: ${(e as Error).message}`);
    if (process.env.ARC_DEBUG) console.error((e as Error).stack);
    if (e instanceof NonFiniteError) return 3;
    return e instanceof UsageError || e instanceof RunLockedError ? 2 : 1;
  }
}

process.exit(await main(process.argv.slice(2)));
