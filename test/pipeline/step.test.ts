// One training example end to end (trainExample, docs/pipeline.md) with the tiny model on the CPU: finite loss,
// gradients where each loss should put them (and nowhere else), no tensor leak, logged quantities that
// agree with each other and with the EMA rules; evaluate() on a few examples; scripts/agent.ts and
// scripts/step.ts as processes.
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Example, type Grid, type Task, context, loadTask, target, testExamples } from "../../src/arc";
import { outputSizeFromDemos } from "../../src/arc/size-rules";
import { loraParameters } from "../../src/models/lora";
import { predictedSize } from "../../src/pipeline/system/agent";
import { evaluate } from "../../src/pipeline/eval/evaluate";
import { cellAccuracy, exactMatch, reward } from "../../src/pipeline/objective/reward";
import { trainExample } from "../../src/pipeline/system/training-step";
import { hardPrediction } from "../../src/pipeline/system/forward";
import { type System, buildSystem, qwenTrainable } from "../../src/pipeline/system/system";
import * as torch from "../../src/torch";
import { FIXTURE_ARC } from "../helpers/fixtures";
import { tinySystemConfig } from "../helpers/system";

const ROOT = join(import.meta.dir, "../..");

const config = tinySystemConfig;

const dims = (g: Grid): [number, number] => [g.length, g[0]!.length];
const norm = (ps: torch.Tensor[]) => torch.gradNorm(ps);
const zeroGrad = (sys: System) => {
  for (const m of [sys.agent, sys.refiner, sys.qwen]) m.zeroGrad();
};
const named = (sys: System, part: string) => sys.qwen.namedParameters().filter(([n]) => n.includes(part)).map(([, t]) => t);

let tasks: Map<string, Task>;
let sys: System;

beforeAll(async () => {
  tasks = new Map();
  // The fixture set's colourmap3x3: 3x3 colour mapping (same size); fractal3x3: 3x3 -> 9x9 (one output
  // size); tile2x2: the output is twice the input (no single output size); colourstrip: no size rule
  // explains its demonstrations (the size head decides).
  for (const id of ["colourmap3x3", "fractal3x3", "tile2x2", "colourstrip"]) {
    const t = loadTask(join(FIXTURE_ARC, "training", `${id}.json`)); // throws when missing
    tasks.set(id, t);
  }
  torch.manualSeed(0);
  sys = await buildSystem(config());
});

describe("trainExample", () => {
  test("one example: finite loss, gradients where each loss puts them, consistent logs, EMA rules, no leak", () => {
    const ex: Example = { task: tasks.get("colourmap3x3")!, index: 1 };
    const tgt = target(ex)!;
    const thetaBefore = sys.memory.theta;
    const sizeBefore = sys.memory.size;
    const baselineBefore = sys.refiner.baseline;
    const live = torch.liveTensors();
    const { logs, grads, lossItem, policyItem } = torch.scope(() => {
      const r = trainExample(sys, ex, { sizeWeight: 0.8 });
      expect(r.loss).not.toBeNull();
      const lossItem = r.loss!.item();
      const policyItem = r.refinerLoss.item();
      r.loss!.backward();
      // The main loss reaches the agent, W_up and Qwen's LoRA adapters, not the policy's MLP.
      const main = {
        agent: norm(sys.agent.parameters()),
        up: norm(sys.refiner.upParameters()),
        qwen: norm(qwenTrainable(sys)),
        loraA: norm(named(sys, "lora_A")),
        loraB: norm(named(sys, "lora_B")),
        policyNull: sys.refiner.policyParameters().every((t) => t.grad === null),
        baseNull: sys.qwen.namedParameters().filter(([n]) => !n.includes("lora_")).every(([, t]) => t.grad === null),
      };
      // The policy's loss reaches its own parameters only: the others' gradients do not move.
      r.refinerLoss.backward();
      const grads = {
        ...main,
        policy: norm(sys.refiner.policyParameters()),
        agentAfter: norm(sys.agent.parameters()),
        qwenAfter: norm(qwenTrainable(sys)),
        upAfter: norm(sys.refiner.upParameters()),
      };
      zeroGrad(sys);
      return { logs: r.logs, grads, lossItem, policyItem };
    });
    expect(torch.liveTensors()).toBe(live);

    // Losses finite; the tensor is the logged number.
    expect(logs.finite).toBe(true);
    for (const v of [logs.loss, logs.efe, logs.risk, logs.ambiguity, logs.complexity, logs.sizeCe, lossItem, policyItem]) expect(Number.isFinite(v)).toBe(true);
    expect(Math.abs(lossItem - logs.loss)).toBeLessThan(1e-5);
    const efe = sys.config.efe;
    expect(Math.abs(logs.loss - (efe.efeWeight * logs.efe - efe.rewardWeight * logs.softReward))).toBeLessThan(1e-4);
    expect(logs.sizeWeight).toBe(0.8);
    expect(logs.risk).toBeGreaterThan(0);
    expect(logs.ambiguity).toBeGreaterThan(0);
    expect(logs.complexity).toBeGreaterThanOrEqual(0);
    expect(logs.sizeCe).toBeGreaterThan(0);
    expect(logs.softReward).toBeGreaterThan(0);
    expect(logs.softReward).toBeLessThan(1);
    expect(logs.maskRatio).toBeGreaterThanOrEqual(0);
    expect(logs.maskRatio).toBeLessThanOrEqual(1);

    // Gradients: LoRA's B starts at zero, so A's gradient is exactly zero and B's is not.
    expect(grads.agent).toBeGreaterThan(0);
    expect(grads.up).toBeGreaterThan(0);
    expect(grads.qwen).toBeGreaterThan(0);
    expect(grads.loraB).toBeGreaterThan(0);
    expect(grads.loraA).toBe(0);
    expect(Math.abs(grads.qwen - Math.hypot(grads.loraA, grads.loraB))).toBeLessThan(1e-4 * grads.qwen);
    expect(grads.policyNull).toBe(true);
    expect(grads.baseNull).toBe(true);
    expect(grads.policy).toBeGreaterThan(0);
    expect(grads.agentAfter).toBe(grads.agent);
    expect(grads.qwenAfter).toBe(grads.qwen);
    expect(grads.upAfter).toBe(grads.up);

    // Logged quantities agree with each other.
    expect(logs.task).toBe("colourmap3x3");
    expect(logs.pair).toBe(1);
    const w = sys.config.reward_weights;
    for (const m of [logs.before, logs.after]) {
      for (const k of ["acc", "size", "colour", "exact"] as const) {
        expect(m[k]).toBeGreaterThanOrEqual(0);
        expect(m[k]).toBeLessThanOrEqual(1);
      }
      expect(Math.abs(m.R - (w.acc * m.acc + w.size * m.size + w.colour * m.colour + w.exact * m.exact))).toBeLessThan(1e-12);
    }
    expect(logs.dAcc).toBe(logs.after.acc - logs.before.acc);
    expect(logs.r).toBe(logs.after.R - logs.before.R);
    expect(logs.sizeError).toBeGreaterThanOrEqual(0);
    expect(Number.isInteger(logs.sizeError)).toBe(true);
    expect(logs.after.size === 1).toBe(logs.sizeError === 0);
    expect(logs.promptTokens).toBe(sys.prompter.build(ex).ids.length);
    expect(logs.memoryHits).toBe(0); // the memory is empty

    // The EMA rules: baseline b (advantage r - b, then b <- 0.95 b + 0.05 r), threshold theta.
    expect(logs.baseline).toBe(baselineBefore);
    expect(logs.advantage).toBe(logs.r - baselineBefore);
    expect(sys.refiner.baseline).toBeCloseTo(0.95 * baselineBefore + 0.05 * logs.r, 12);
    expect(logs.theta).toBeCloseTo(0.95 * thetaBefore + 0.05 * logs.after.R, 12);
    expect(sys.memory.theta).toBe(logs.theta);
    expect(logs.theta).not.toBe(thetaBefore);
    expect(logs.memoryWritten).toBe(logs.after.R >= thetaBefore && logs.r > 0);
    expect(sys.memory.size).toBe(sizeBefore + (logs.memoryWritten ? 1 : 0));

    // pred_before is reproducible: the same prompt and agent (no weights changed) give the same metrics.
    const again = torch.noGrad(() =>
      torch.scope(() => {
        const p = sys.prompter.embed(ex).p;
        const out = sys.agent.forward(context(ex).query, p);
        return reward(hardPrediction(out.logits, tgt.length, tgt[0]!.length), predictedSize(out), tgt, sys.config.reward_weights);
      }),
    );
    expect(again).toEqual(logs.before);
    expect(torch.liveTensors()).toBe(live);
  });

  test("a memory entry for this prompt is read (a hit), and the memory's preallocated state does not grow", () => {
    const ex: Example = { task: tasks.get("colourmap3x3")!, index: 2 };
    // Store an entry keyed by this example's own p (lora_B is still zero: p is the same in the step).
    torch.noGrad(() =>
      torch.scope(() => {
        const p = sys.prompter.embed(ex).p;
        expect(sys.memory.update(p, torch.full([32], 0.1), 0.99, 0.5).written).toBe(true);
      }),
    );
    const size = sys.memory.size;
    const live = torch.liveTensors();
    for (let i = 0; i < 2; i++) {
      const theta = sys.memory.theta;
      const logs = torch.scope(() => {
        const r = trainExample(sys, ex, { sizeWeight: 1 });
        r.loss!.backward();
        r.refinerLoss.backward();
        zeroGrad(sys);
        return r.logs;
      });
      expect(logs.memoryHits).toBeGreaterThanOrEqual(1);
      expect(logs.theta).toBeCloseTo(0.95 * theta + 0.05 * logs.after.R, 12);
      expect(logs.memoryWritten).toBe(logs.after.R >= theta && logs.r > 0);
      expect(torch.liveTensors()).toBe(live);
    }
    expect(sys.memory.size).toBeGreaterThanOrEqual(size);
  });

  test("full Qwen: its weights get the gradient; frozen: none, p comes from the cache (one kept tensor)", async () => {
    const ex: Example = { task: tasks.get("colourmap3x3")!, index: 3 };
    const full = await buildSystem(config({ qwen_train: "full", hint_tokens: 0 }));
    const live = torch.liveTensors();
    const g = torch.scope(() => {
      const r = trainExample(full, ex, { sizeWeight: 1 });
      r.loss!.backward();
      r.refinerLoss.backward();
      const out = { finite: r.logs.finite, qwen: norm(qwenTrainable(full)), n: qwenTrainable(full).length, all: full.qwen.parameters().length };
      zeroGrad(full);
      return out;
    });
    expect(g.finite).toBe(true);
    expect(g.n).toBe(g.all);
    expect(g.qwen).toBeGreaterThan(0);
    expect(torch.liveTensors()).toBe(live);

    const frozen = await buildSystem(config({ qwen_train: "frozen", hint_tokens: 2 }));
    expect(qwenTrainable(frozen)).toEqual([]);
    const live2 = torch.liveTensors();
    for (let i = 0; i < 2; i++) {
      const f = torch.scope(() => {
        const r = trainExample(frozen, ex, { sizeWeight: 1 });
        r.loss!.backward();
        r.refinerLoss.backward();
        const out = { finite: r.logs.finite, hint: r.logs.hint, agent: norm(frozen.agent.parameters()), qwenGrads: frozen.qwen.parameters().filter((t) => t.grad !== null).length };
        zeroGrad(frozen);
        return out;
      });
      expect(f.finite).toBe(true);
      expect(f.agent).toBeGreaterThan(0);
      expect(f.qwenGrads).toBe(0);
      expect(f.hint.length).toBeGreaterThan(0); // the cached entry keeps its hint
      expect(torch.liveTensors()).toBe(live2 + 1); // p's cached copy, the same after the second pass
    }
    frozen.prompter.clearCache();
    expect(torch.liveTensors()).toBe(live2);
    expect(loraParameters(frozen.qwen)).toEqual([]);
  });

  test("a pair with no known output is refused", () => {
    const task = tasks.get("colourmap3x3")!;
    const hidden: Task = { ...task, test: [{ input: task.test[0]!.input }] };
    expect(() => trainExample(sys, { task: hidden, index: 0, kind: "test" }, { sizeWeight: 1 })).toThrow(/no output to train on/);
  });
});

describe("evaluate", () => {
  test("two attempts per example at the task's size when certain, else the size head's; flags restored; no leak", () => {
    const examples = ["colourmap3x3", "fractal3x3", "tile2x2", "colourstrip"].map((id): Example => testExamples([tasks.get(id)!])[0]!);
    const certain = examples.map((ex) => outputSizeFromDemos(ex.task, context(ex).query).size);
    const tile = context(examples[2]!).query;
    expect(certain).toEqual([[3, 3], [9, 9], [2 * tile.length, 2 * tile[0]!.length], null]);
    // Mixed modes before: evaluate switches all to eval and restores each.
    sys.qwen.train();
    sys.agent.train();
    sys.refiner.eval();
    const seen: boolean[][] = [];
    const live = torch.liveTensors();
    const { summary, results } = evaluate(sys, examples, {
      onExample: () => seen.push([sys.qwen, sys.agent, sys.refiner].flatMap((m) => m.modules().map((x) => x.training))),
    });
    expect(torch.liveTensors()).toBe(live);
    expect(seen.length).toBe(4);
    expect(seen.flat().every((t) => !t)).toBe(true);
    expect(sys.qwen.modules().every((m) => m.training)).toBe(true);
    expect(sys.agent.modules().every((m) => m.training)).toBe(true);
    expect(sys.refiner.modules().every((m) => !m.training)).toBe(true);

    expect(results.length).toBe(4);
    results.forEach((r, i) => {
      const ex = examples[i]!;
      const tgt = target(ex)!;
      expect([r.task, r.kind, r.index]).toEqual([ex.task.id, "test", 0]);
      expect(r.target).toEqual(tgt);
      expect(r.input).toEqual(context(ex).query);
      expect(r.attempts.length).toBe(2);
      if (certain[i]) {
        expect(r.sizeSource).toBe("task");
        expect(r.size).toEqual(certain[i]!);
        for (const a of r.attempts) expect(dims(a)).toEqual(certain[i]!);
      } else {
        // The size head's prediction before refinement (evaluation mode, no gradient).
        expect(r.sizeSource).toBe("head");
        sys.qwen.eval();
        sys.agent.eval();
        const head = torch.noGrad(() => torch.scope(() => predictedSize(sys.agent.forward(context(ex).query, sys.prompter.embed(ex).p))));
        sys.qwen.train();
        sys.agent.train();
        expect(r.size).toEqual(head);
        expect(dims(r.attempts[0])).toEqual(head);
        const [h2, w2] = dims(r.attempts[1]);
        expect(h2 >= 1 && h2 <= 30 && w2 >= 1 && w2 <= 30).toBe(true);
      }
      for (const a of r.attempts) expect(a.flat().every((c) => Number.isInteger(c) && c >= 0 && c <= 9)).toBe(true);
      expect(r.firstCorrect).toBe(exactMatch(r.attempts[0], tgt));
      expect(r.correct).toBe(r.firstCorrect || exactMatch(r.attempts[1], tgt));
      if (certain[i]) expect(r.cellAccBefore).toBe(cellAccuracy(r.attempts[0], tgt));
      for (const v of [r.cellAccBefore, r.cellAccAfter]) expect(v >= 0 && v <= 1).toBe(true);
    });
    expect(summary.examples).toBe(4);
    expect(summary.tasks).toBe(4);
    expect(summary.exactFirstCount).toBe(results.filter((r) => r.firstCorrect).length);
    expect(summary.pass2Count).toBe(results.filter((r) => r.correct).length);
    expect(summary.cellAcc).toBeCloseTo(results.reduce((a, r) => a + r.cellAccAfter, 0) / 4, 12);
    const rightSize = results.filter((r) => r.size[0] === r.target.length && r.size[1] === r.target[0]!.length).length;
    expect([summary.sizeAccCount, summary.sizeAcc, summary.sizeFromRules]).toEqual([rightSize, rightSize / 4, 3]);
    expect(results.map((r) => r.sizeRule)).toEqual(["same", "constant", "scale 2/1 x 2/1", null]);
    expect(summary.accuracyDelta).toBeCloseTo(summary.cellAcc - summary.cellAccBefore, 12);

    // An example without a known output throws, and the flags are still restored.
    const task = tasks.get("colourmap3x3")!;
    const hidden: Task = { ...task, test: [{ input: task.test[0]!.input }] };
    expect(() => evaluate(sys, [examples[0]!, { task: hidden, index: 0, kind: "test" }])).toThrow(/no known output/);
    expect(sys.qwen.training && sys.agent.training && !sys.refiner.training).toBe(true);
    expect(torch.liveTensors()).toBe(live);
    sys.refiner.train();
  });
});

describe("scripts/agent.ts and scripts/step.ts", () => {
  /** Runs a script as a user would (its own process; stdout is a pipe, so no colours). */
  const run = async (script: string, args: string[]) => {
    const p = Bun.spawn([process.execPath, join(ROOT, "scripts", script), ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, out, err };
  };
  const small = ["--data", FIXTURE_ARC, "--hint_tokens", "2", "--agent_channels", "16", "--device", "cpu"];

  test("--help; bad arguments are one line and exit 2", async () => {
    const runs = await Promise.all([
      run("agent.ts", ["--help"]),
      run("step.ts", ["--help"]),
      run("agent.ts", ["--task", "colourmap3x3", "--agent_steps", "0"]),
      run("agent.ts", ["--task", "colourmap3x3", "--pair", "4", "--data", FIXTURE_ARC]),
      run("step.ts", ["--task", "colourmap3x3", "--size_weight", "x"]),
      run("step.ts", ["--nope"]),
      run("step.ts", ["--task", "colourmap3x3", "--test", "--pair", "1", "--data", FIXTURE_ARC]),
    ]);
    const [ha, hs, ...bad] = runs;
    expect(ha!.code).toBe(0);
    expect(ha!.out).toContain("--agent_steps");
    expect(hs!.code).toBe(0);
    expect(hs!.out).toContain("--size_weight");
    for (const r of bad) {
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err.trimEnd().split("\n").length).toBe(1);
      expect(r.err).toMatch(/^(agent|step): /);
    }
  }, 20000);

  test("a real task: agent.ts draws the input, the T step predictions and the size; step.ts prints the logs and gradient norms", async () => {
    const [a, s] = await Promise.all([
      run("agent.ts", ["--task", "fractal3x3", "--pair", "1", ...small]),
      run("step.ts", ["--task", join(FIXTURE_ARC, "training", "colourmap3x3.json"), "--pair", "0", ...small]),
    ]);
    expect(a.err).toBe("");
    expect(a.code).toBe(0);
    expect(a.out).toContain("input 3x3\n0 1 1\n0 0 0\n1 0 0\n");
    expect(a.out).toMatch(/step 1 +step 2 +step 3 +step 4 +step 5\n((([0-9] ){3} +){4}([0-9] ){2}[0-9]\n){3}\n/);
    expect(a.out).toMatch(/size head: \d+x\d+ \(target 9x9, (right|wrong)\); from the demonstrations: 9x9/);
    expect(a.out).toContain("step 5 resized to 9x9 (task)");
    expect(a.out).toMatch(/cell accuracy at the target size: [01]\.\d{4}/);

    expect(s.err).toBe("");
    expect(s.code).toBe(0);
    for (const k of ["loss", "efe", "risk", "ambiguity", "complexity", "sizeCe", "softReward", "maskRatio", "dAcc", "r", "advantage", "baseline", "sizeError", "memoryHits", "memoryWritten", "theta", "promptTokens", "hint", "finite"]) {
      expect(s.out).toMatch(new RegExp(`\\n  ${k} +\\S`));
    }
    expect(s.out).toMatch(/\n  loss +\d+\.\d{4}/);
    expect(s.out).toMatch(/\n  finite +true/);
    expect(s.out).toMatch(/\n  R +0\.\d{4} +0\.\d{4}/);
    for (const k of ["agent", "w_up", "qwen \\(lora\\)", "lora_B", "policy"]) expect(s.out).toMatch(new RegExp(`\\n  ${k} +[1-9]\\d*\\.\\d{4}|\\n  ${k} +0\\.\\d*[1-9]|\\n  ${k} +\\d\\.\\d{3}e-\\d`));
    expect(s.out).toMatch(/\n  lora_A +0\n/);
  }, 20000);
});
