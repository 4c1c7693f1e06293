#!/usr/bin/env bun
// Data-parallel launch without Python: torchrun's environment for each local rank, signals forwarded,
// one failed rank ends the job with its exit code.
//   bun scripts/launch.ts --nproc_per_node 2 -- scripts/train.ts --device cuda
//   (machine 0) bun scripts/launch.ts --nnodes 2 --node_rank 0 --master_addr 10.0.0.1 --nproc_per_node 8 -- scripts/train.ts ...
//   (machine 1) bun scripts/launch.ts --nnodes 2 --node_rank 1 --master_addr 10.0.0.1 --nproc_per_node 8 -- scripts/train.ts ...
// Exit codes: 0 every rank succeeded; the failed rank's code; 130/143 after SIGINT/SIGTERM; 2 bad flags.
import { LAUNCH_HELP, LaunchUsageError, launch, parseLaunchArgs } from "../src/util/launch";
import { oneLineErrors } from "../src/util/cli";
oneLineErrors("launch");

let opts: ReturnType<typeof parseLaunchArgs>;
try {
  opts = parseLaunchArgs(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof LaunchUsageError)) throw e;
  console.error(`launch: ${e.message}\n${LAUNCH_HELP}`);
  process.exit(2);
}
if (opts === "help") {
  console.log(LAUNCH_HELP);
  process.exit(0);
}
process.exit(await launch(opts));
