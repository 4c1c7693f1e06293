// The refiner stage on its own (docs/pipeline.md, "Refiner"): trains a PromptRefiner on a toy bandit and prints
// its progress. `bun scripts/refiner.ts --help`.
import { PromptRefiner } from "../src/pipeline/system/refiner.ts";
import * as torch from "../src/torch.ts";
import { oneLineErrors, parseCommandLine } from "../src/util/cli.ts";
oneLineErrors("refiner");

const USAGE = `Usage: bun scripts/refiner.ts [options]

Trains the PromptRefiner (Gaussian policy + REINFORCE with an EMA baseline) on a toy bandit: states are
random (p, pooled z, R_before), the reward is clip(a . u, -1, 1) for a fixed unit direction u. A working
policy moves its mean along u; the reward and the baseline climb toward 1. No model or data needed.

Options:
  --prompt_dim N       width of p (default 64)
  --state_dim N        width of the pooled agent state (default 128)
  --action_dim N       action width k (default 32)
  --hidden N           MLP width (default 256)
  --rl_lr X            the refiner's Adam learning rate (default 1e-3; the trainer's default is 1e-4)
  --entropy_coef X     entropy bonus (default 0.01)
  --log_std_bound M    clamp (default) or soft
  --steps N            updates (default 300)
  --log_every N        a line every N updates (default 50)
  --seed N             torch seed (default 0)
  --device D           cpu (default) or cuda
  --json               one JSON line per log step
  --help               this text

Exit codes: 0 ok, 2 bad arguments.`;

const OPTIONS = {
  prompt_dim: { type: "string", default: "64" },
  state_dim: { type: "string", default: "128" },
  action_dim: { type: "string", default: "32" },
  hidden: { type: "string", default: "256" },
  rl_lr: { type: "string", default: "1e-3" },
  entropy_coef: { type: "string", default: "0.01" },
  log_std_bound: { type: "string", default: "clamp" },
  steps: { type: "string", default: "300" },
  log_every: { type: "string", default: "50" },
  seed: { type: "string", default: "0" },
  device: { type: "string", default: "cpu" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function main(argv: string[]): void {
  const cli = parseCommandLine("refiner", USAGE, OPTIONS, argv);
  const { values, fail, int } = cli;
  const num = (name: string): number => cli.num(name, 0);
  const P = int("prompt_dim");
  const d = int("state_dim");
  const k = int("action_dim");
  const hidden = int("hidden");
  const lr = num("rl_lr");
  const entropyCoef = num("entropy_coef");
  const steps = int("steps");
  const logEvery = int("log_every");
  const seed = int("seed", 0);
  const bound = values.log_std_bound as string;
  if (bound !== "clamp" && bound !== "soft") fail(`--log_std_bound must be clamp or soft, got "${bound}"`);
  const device = values.device as string;
  if (device !== "cpu" && !device.startsWith("cuda")) fail(`--device must be cpu or cuda, got "${device}"`);
  if (device.startsWith("cuda") && !torch.cuda.isAvailable()) fail("--device cuda: CUDA is not available");

  torch.manualSeed(seed);
  const refiner = new PromptRefiner({ promptDim: P, stateDim: d, actionDim: k, hidden, lr, entropyCoef, logStdBound: bound as "clamp" | "soft", device: device as torch.Device });
  const u = torch.keep(torch.scope(() => torch.F.normalize(torch.randn([k], { device: device as torch.Device }), { dim: 0 })));
  const probe = torch.scope(() => ({ p: torch.keep(torch.randn([P], { device: device as torch.Device })), z: torch.keep(torch.randn([d], { device: device as torch.Device })) }));
  const nPolicy = refiner.policyParameters().reduce((a, t) => a + t.numel(), 0);
  if (!values.json) {
    process.stdout.write(`PromptRefiner: P=${P} d=${d} k=${k} hidden=${hidden}; ${nPolicy} policy parameters (Adam, lr ${lr}), ${P * k} in W_up; device ${device}\n`);
  }
  const probeStats = () =>
    torch.scope(() => {
      const out = refiner.act(probe.p, probe.z, 0, { deterministic: true });
      return { meanAlongU: out.mean.mul(u).sum().item(), logStd: out.logStd.mean().item() };
    });
  let window: number[] = [];
  const t0 = performance.now();
  for (let step = 1; step <= steps; step++) {
    torch.scope(() => {
      const dev = device as torch.Device;
      const out = refiner.act(torch.randn([P], { device: dev }), torch.randn([d], { device: dev }), torch.rand([1]).item());
      const reward = Math.max(-1, Math.min(1, out.action.mul(u).sum().item()));
      window.push(reward);
      refiner.optimizer.zeroGrad();
      refiner.loss(out.logProb, out.entropy, reward).loss.backward();
      refiner.optimizer.step();
    });
    if (step % logEvery === 0 || step === steps) {
      const s = probeStats();
      const meanReward = window.reduce((a, b) => a + b, 0) / window.length;
      const row = { step, reward: meanReward, baseline: refiner.baseline, meanAlongU: s.meanAlongU, logStd: s.logStd, msPerStep: (performance.now() - t0) / step };
      if (values.json) process.stdout.write(JSON.stringify(row) + "\n");
      else
        process.stdout.write(
          `[Step ${String(step).padStart(5)}] reward: ${meanReward.toFixed(3)} | baseline: ${refiner.baseline.toFixed(3)} | mean.u: ${s.meanAlongU.toFixed(3)} | log_std: ${s.logStd.toFixed(3)} | ${row.msPerStep.toFixed(2)} ms/step\n`,
        );
      window = [];
    }
  }
  torch.dispose([u, probe]);
  refiner.dispose();
}

main(process.argv.slice(2));
