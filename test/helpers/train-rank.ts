// scripts/train.ts for the data-parallel tests: the same flags and run, and at the end one stdout line
// `STATE {json}` with what this rank holds (weights and memory as sha256 digests, the memory threshold,
// the refiner's baseline), so a test can show every rank ends with the same state.
import { createHash } from "node:crypto";
import { parseTrainArgs, validateConfig } from "../../src/pipeline/config/train-config";
import { train } from "../../src/pipeline/trainer/trainer";
import { modelTensors } from "../../src/pipeline/system/state";
import type { Tensor } from "../../src/torch";

function digest(tensors: Record<string, Tensor>): string {
  const h = createHash("sha256");
  for (const k of Object.keys(tensors).sort()) {
    const d = tensors[k].contiguous().data();
    h.update(k);
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest("hex");
}

const parsed = parseTrainArgs(process.argv.slice(2));
const config = validateConfig(parsed.config, { cudaAvailable: false, cudaDevices: 0 });
try {
  await train(config, parsed.explicit, {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
    onFinish: (sys) => {
      const state = {
        rank: Number(process.env.RANK ?? 0),
        weights: digest(modelTensors(sys)),
        memory: digest(sys.memory.stateTensors()),
        entries: sys.memory.size,
        theta: sys.memory.theta,
        baseline: sys.refiner.baseline,
      };
      process.stdout.write(`STATE ${JSON.stringify(state)}\n`);
    },
  });
  process.exit(0);
} catch (e) {
  process.stderr.write(`train-rank (rank ${process.env.RANK ?? 0}): ${(e as Error).message}\n`);
  process.exit(1);
}
