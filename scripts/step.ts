// One training example on its own (docs/pipeline.md; trainExample): prompt -> agent -> refine -> agent again ->
// reward -> refiner loss -> memory -> EFE loss, then the backward passes the trainer makes; prints every
// logged quantity and the gradient norms. `bun scripts/step.ts --help`.
import { COMMON_HELP, UsageError, buildStageSystem, exampleHeader, exampleLabel, parseStageArgs, resolveExample, runStage } from "./lib/stage.ts";
import { oneLineErrors } from "../src/util/cli.ts";

const USAGE = `Usage: bun scripts/step.ts --task ID [--pair N] [options]

One training example (docs/pipeline.md): builds the system, runs trainExample on the pair (its output is the
target; a --test pair needs a known output), backpropagates the main loss (0.7 EFE - 0.3 R_soft) and the
refiner's REINFORCE loss as the trainer does, and prints every logged quantity (ExampleLogs) as a table and
the gradient norms of each parameter group. No optimizer steps: the weights do not change.

  --size_weight X         lambda_size of this step (default 1, the warm-up's start)
  --repeat N              run the example N times in a row (default 1; no weights change): the memory
                          threshold and the refiner's baseline move by their EMA rules from one to the next

${COMMON_HELP}`;

type Row = [string, string, string?];

async function main(argv: string[]): Promise<void> {
  const parsed = parseStageArgs(argv, USAGE, { size_weight: { type: "string", default: "1" }, repeat: { type: "string", default: "1" } });
  if (!parsed) return;
  const { args, values } = parsed;
  const sizeWeight = Number(values.size_weight);
  if (!(String(values.size_weight).trim() !== "" && Number.isFinite(sizeWeight) && sizeWeight >= 0)) throw new UsageError(`--size_weight must be a non-negative number, got "${values.size_weight}"`);
  const reps = Number(values.repeat);
  if (!/^\d+$/.test(String(values.repeat)) || reps < 1 || reps > 1000) throw new UsageError(`--repeat must be an integer in 1..1000, got "${values.repeat}"`);
  const { ex, where } = await resolveExample(args);
  const { target } = await import("../src/arc/index.ts");
  if (!target(ex)) throw new UsageError(`task ${ex.task.id} test pair ${ex.index} has no known output to train on`);
  const torch = await import("../src/torch.ts");
  const { trainExample } = await import("../src/pipeline/system/training-step.ts");
  const { qwenTrainable } = await import("../src/pipeline/system/system.ts");
  const { loraParameters } = await import("../src/models/lora.ts");

  const sys = await buildStageSystem(args);
  const lora = args.qwen_train === "lora" ? loraParameters(sys.qwen) : [];
  const loraA = sys.qwen.namedParameters().filter(([n]) => n.includes("lora_A")).map(([, t]) => t);
  const loraB = sys.qwen.namedParameters().filter(([n]) => n.includes("lora_B")).map(([, t]) => t);
  const norm = (ps: import("../src/torch.ts").Tensor[]) => (ps.length ? torch.gradNorm(ps) : 0);
  const groups = {
    agent: sys.agent.parameters(),
    w_up: sys.refiner.upParameters(),
    qwen: qwenTrainable(sys),
    policy: sys.refiner.policyParameters(),
  };
  const zeroGrad = () => {
    for (const m of [sys.agent, sys.refiner, sys.qwen]) m.zeroGrad();
  };

  const runs: { logs: Record<string, unknown>; grads: Record<string, number>; thetaBefore: number; memoryBefore: number; memoryAfter: number; baselineAfter: number; ms: number }[] = [];
  for (let i = 0; i < reps; i++) {
    const thetaBefore = sys.memory.theta;
    const memoryBefore = sys.memory.size;
    const t0 = performance.now();
    const r = torch.scope(() => {
      const res = trainExample(sys, ex, { sizeWeight });
      if (res.loss) res.loss.backward();
      // The main loss alone: agent, W_up and Qwen; then the refiner's loss (its policy's own parameters only).
      const grads: Record<string, number> = {
        agent: norm(groups.agent),
        w_up: norm(groups.w_up),
        qwen: norm(groups.qwen),
        ...(lora.length ? { lora_A: norm(loraA), lora_B: norm(loraB) } : {}),
      };
      res.refinerLoss.backward();
      grads.policy = norm(groups.policy);
      grads.policy_loss = res.refinerLoss.item();
      zeroGrad();
      return { logs: res.logs as unknown as Record<string, unknown>, grads };
    });
    runs.push({ ...r, thetaBefore, memoryBefore, memoryAfter: sys.memory.size, baselineAfter: sys.refiner.baseline, ms: performance.now() - t0 });
  }

  if (args.json) {
    process.stdout.write(JSON.stringify({ ...exampleHeader(ex, where), size_weight: sizeWeight, runs }) + "\n");
    return;
  }
  const f = (v: unknown): string => {
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(3);
    if (typeof v === "string") return JSON.stringify(v);
    return String(v);
  };
  const table = (rows: Row[]): string[] => {
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    return rows.map(([k, v, note]) => `  ${k.padEnd(w0)}  ${v.padStart(w1)}${note ? `   ${note}` : ""}`);
  };
  const out: string[] = [`${exampleLabel(ex, where)}; model ${args.model} (qwen_train ${args.qwen_train}, ${sys.qwen.device}), agent d=${args.agent_channels} T=${args.agent_steps}`];
  runs.forEach((run, i) => {
    const l = run.logs as Record<string, any>;
    out.push("", `=== example ${i + 1}/${reps} (${run.ms.toFixed(0)} ms) ===`, "logged quantities (ExampleLogs):");
    const rows: Row[] = [];
    const notes: Record<string, string> = {
      loss: "0.7 EFE - 0.3 R_soft",
      efe: "sum_t (t / sum t') G_t + size_weight * size_ce",
      risk: "mean over steps of KL(C || q)",
      ambiguity: "mean over steps of H(q)",
      complexity: "mean over steps 2..T of KL(q_t || q_t-1)",
      softReward: "R_soft = mean q_T(y)",
      maskRatio: "share of cells wrong at step T",
      dAcc: "after.acc - before.acc",
      r: "after.R - before.R (the refiner's reward)",
      advantage: "r - baseline",
      baseline: "EMA baseline before this example",
      sizeError: "|dh| + |dw| of the size head after refinement",
      memoryHits: "entries read (cosine >= 0.5)",
      memoryWritten: `R_after >= theta (${f(run.thetaBefore)}) and r > 0`,
      theta: `0.95 * ${f(run.thetaBefore)} + 0.05 * R_after`,
      promptTokens: "prompt without the hint",
      finite: "false: the trainer skips the update",
    };
    for (const [k, v] of Object.entries(l)) {
      if (k === "before" || k === "after") continue;
      rows.push([k, f(v), notes[k]]);
    }
    out.push(...table(rows));
    out.push("reward metrics (hard predictions at the target size):");
    const b = l.before as Record<string, number>;
    const a = l.after as Record<string, number>;
    const keys = Object.keys(b);
    const mrows = [["", "before", "after", "delta"], ...keys.map((k) => [k, f(b[k]), f(a[k]), f(a[k]! - b[k]!)])];
    const mw = [0, 1, 2, 3].map((j) => Math.max(...mrows.map((r) => r[j]!.length)));
    out.push(...mrows.map((r) => "  " + r.map((c, j) => (j === 0 ? c.padEnd(mw[j]!) : c.padStart(mw[j]!))).join("  ")));
    out.push("gradient norms (L2 over each group; agent, W_up, Qwen from the main loss, policy from its own loss):");
    out.push(...table(Object.entries(run.grads).map(([k, v]) => [k === "qwen" ? `qwen (${args.qwen_train})` : k, f(v)] as Row)));
    out.push(`memory: ${run.memoryBefore} -> ${run.memoryAfter} entries; refiner baseline now ${f(run.baselineAfter)}`);
  });
  process.stdout.write(out.join("\n") + "\n");
}

if (import.meta.main) {
  oneLineErrors("step");
  await runStage("step", () => main(process.argv.slice(2)));
}
