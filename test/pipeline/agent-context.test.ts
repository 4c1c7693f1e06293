// --agent_context wired through the system (issue 27): the flags reach SystemConfig and an old run's config
// reads as prompt; prompt mode is the system of before (no demo_encoder.*, the same initialisation); a
// batch through systemForward gives each example what it gets alone, values and the encoder's gradients
// (both, demos, attention pooling); checkpoints carry demo_encoder.* strictly; TTT adapts the encoder and
// puts it back; an augmented example's demonstrations turn with its test grid; and scripts/train.ts +
// scripts/eval.ts run end to end with both, demos and cells (checkpoint, --resume, evaluation); cells mode
// (the per-cell read of the demonstrations) keeps p and checkpoints demo_cells.* strictly; demos+cells has both
// reads and no Qwen (p is c).
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Example, Grid, Task } from "../../src/arc";
import { augmentGrid } from "../../src/arc/augment";
import { context } from "../../src/arc/examples";
import { Rng } from "../../src/arc/rng";
import { DEFAULTS, parseTrainArgs } from "../../src/pipeline/config/train-config";
import { systemConfig } from "../../src/pipeline/config/run-setup";
import { tttParameters, withTestTimeTraining } from "../../src/pipeline/eval/ttt";
import { savedRunConfig } from "../../src/pipeline/run/migrations";
import { latestVerifiedCheckpoint } from "../../src/pipeline/run/checkpoint";
import { augmentExample } from "../../src/pipeline/system/augmentation";
import { systemForward } from "../../src/pipeline/system/forward";
import { loadModelTensors, modelTensors } from "../../src/pipeline/system/state";
import { type System, type SystemConfig, buildSystem, demoModules, qwenTrainable, usesPrompt } from "../../src/pipeline/system/system";
import * as torch from "../../src/torch";
import type { Tensor } from "../../src/torch";
import { readHeader } from "../../src/torch/safetensors";
import { CPU, EVAL, ROOT, TRAIN, runScript, tempFolders } from "../helpers/scripts";
import { tinySystemConfig } from "../helpers/system";

const rng = new Rng(27);
const randomGrid = (h: number, w: number, colours = 10): Grid => Array.from({ length: h }, () => Array.from({ length: w }, () => rng.int(0, colours - 1)));
const map = (g: Grid, f: (c: number) => number): Grid => g.map((row) => row.map(f));
const transpose = (g: Grid): Grid => g[0]!.map((_, j) => g.map((row) => row[j]!));

function task(id: string, sizes: [number, number][], rule: (g: Grid) => Grid): Task {
  return { id, train: sizes.map(([h, w]) => { const input = randomGrid(h, w, 4); return { input, output: rule(input) }; }), test: [] };
}
// Tasks of different numbers (1 to 4 after leave-one-out) and sizes of demonstrations, some changing size.
const tasks = [
  task("one-cell", [[1, 1], [1, 1]], (g) => map(g, (c) => (c + 1) % 10)),
  task("transpose", [[12, 5], [6, 9], [7, 7], [3, 3], [2, 8]], transpose),
  task("recolour", [[4, 4], [9, 3], [5, 6]], (g) => map(g, (c) => (c === 0 ? 5 : c))),
];
const examples: Example[] = [...tasks.map((t) => ({ task: t, index: 0 })), { task: tasks[1]!, index: 3 }];

const relErr = (a: Tensor, b: Tensor) => torch.scope(() => a.sub(b).abs().amax().item() / Math.max(b.abs().amax().item(), 1e-6));
const keys = (sys: System) => Object.keys(modelTensors(sys)).sort();

/** A tiny system whose conditioning carries signal (FiLM starts at zero, which would hide p's and c's effect). */
async function system(over: Partial<SystemConfig>): Promise<System> {
  const sys = await buildSystem(tinySystemConfig({ demo_channels: 16, demo_layers: 2, ...over }));
  torch.noGrad(() => sys.agent.block.film.weight.normal_(0, 0.3));
  return sys;
}

describe("the flags", () => {
  test("default prompt, 64 channels, 3 layers, mean; parsed and carried into SystemConfig under the same names", () => {
    expect([DEFAULTS.agent_context, DEFAULTS.demo_channels, DEFAULTS.demo_layers, DEFAULTS.demo_pooling]).toEqual(["prompt", 64, 3, "mean"]);
    const { config } = parseTrainArgs(["--agent_context", "both", "--demo_channels", "32", "--demo_layers", "1", "--demo_pooling", "attention"]);
    expect(systemConfig(config)).toMatchObject({ agent_context: "both", demo_channels: 32, demo_layers: 1, demo_pooling: "attention" });
    expect(() => parseTrainArgs(["--agent_context", "pairs"])).toThrow(/prompt, demos, both, cells, demos\+cells/);
    expect(systemConfig(parseTrainArgs(["--agent_context", "demos+cells"]).config).agent_context).toBe("demos+cells");
  });

  test("an old run's config.json (no such keys) reads as prompt", () => {
    const old = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "run-v1", "config.json"), "utf8"));
    expect("agent_context" in old).toBe(false);
    const c = savedRunConfig(old);
    expect([c.agent_context, c.demo_channels, c.demo_layers, c.demo_pooling]).toEqual(["prompt", 64, 3, "mean"]);
    expect(systemConfig(c).agent_context).toBe("prompt");
  });
});

describe("the system by context", () => {
  let prompt: System;
  let both: System;
  let demos: System;
  beforeAll(async () => {
    prompt = await buildSystem(tinySystemConfig({ agent_context: "prompt" }));
    both = await buildSystem(tinySystemConfig({ agent_context: "both", demo_channels: 16 }));
    demos = await buildSystem(tinySystemConfig({ agent_context: "demos", demo_channels: 16 }));
  });

  test("prompt: no encoder, no demo_encoder.*, the tensors of a config without the keys, value for value", async () => {
    const absent = await buildSystem(tinySystemConfig());
    expect(absent.config.agent_context).toBe("prompt"); // the helper goes through systemConfig(DEFAULTS)
    const { agent_context, demo_channels, demo_layers, demo_pooling, ...bare } = tinySystemConfig();
    const before = await buildSystem(bare);
    expect(prompt.demoEncoder).toBeNull();
    expect(keys(prompt).some((k) => k.startsWith("demo_encoder."))).toBe(false);
    expect(keys(before)).toEqual(keys(prompt));
    const a = modelTensors(before);
    const b = modelTensors(prompt);
    for (const k of Object.keys(a)) expect({ k, same: torch.scope(() => a[k]!.equal(b[k]!)) }).toEqual({ k, same: true });
  });

  test("both: the encoder's tensors, and the agent widened only where c enters", () => {
    const kb = keys(both);
    expect(kb.filter((k) => k.startsWith("demo_encoder.")).length).toBeGreaterThan(0);
    expect(kb.filter((k) => !k.startsWith("demo_encoder."))).toEqual(keys(prompt));
    const a = modelTensors(prompt);
    const b = modelTensors(both);
    expect(Object.keys(a).filter((k) => a[k]!.shape.join() !== b[k]!.shape.join())).toEqual(["agent.block.film.weight", "agent.size_head.0.weight"]);
  });

  test("demos: p is c (agent, refiner and memory of its width), Qwen trains nothing", () => {
    expect(demos.agent.config.promptDim).toBe(16);
    expect(demos.agent.config.contextDim ?? 0).toBe(0);
    expect(demos.memory.keyDim).toBe(16);
    expect(qwenTrainable(demos)).toEqual([]);
    expect(qwenTrainable(both).length).toBeGreaterThan(0);
  });

  test("checkpoint tensors: demo_encoder.* round-trip; a prompt system refuses them, a both system needs them", () => {
    torch.scope(() => {
      const saved = Object.fromEntries(Object.entries(modelTensors(both)).map(([k, t]) => [k, t.clone().add(0.5)]));
      loadModelTensors(both, saved);
      const back = modelTensors(both);
      for (const k of Object.keys(saved)) expect(back[k]!.equal(saved[k]!)).toBe(true);
      const promptLike = Object.fromEntries(Object.entries(saved).filter(([k]) => !k.startsWith("demo_encoder.")));
      expect(() => loadModelTensors(both, promptLike)).toThrow(/missing/);
      const withEncoder = { ...modelTensors(prompt), ...Object.fromEntries(Object.entries(saved).filter(([k]) => k.startsWith("demo_encoder."))) };
      expect(() => loadModelTensors(prompt, withEncoder)).toThrow(/demo_encoder/);
    });
  });
});

describe("cells", () => {
  test("p from Qwen as in prompt; demo_encoder.* and demo_cells.* beside the agent of prompt mode; strict loads; TTT adapts the cell attention", async () => {
    const cells = await system({ agent_context: "cells" });
    const prompt = await buildSystem(tinySystemConfig({ agent_context: "prompt" }));
    expect(cells.agent.config.promptDim).toBe(prompt.agent.config.promptDim);
    expect(cells.agent.config.contextDim ?? 0).toBe(0);
    expect(qwenTrainable(cells).length).toBeGreaterThan(0);
    const kc = keys(cells);
    expect(kc.filter((k) => !k.startsWith("demo_encoder.") && !k.startsWith("demo_cells."))).toEqual(keys(prompt));
    expect(kc.filter((k) => k.startsWith("demo_cells.")).length).toBeGreaterThan(0);
    torch.scope(() => {
      const saved = Object.fromEntries(Object.entries(modelTensors(cells)).map(([k, t]) => [k, t.clone().add(0.5)]));
      loadModelTensors(cells, saved);
      const back = modelTensors(cells);
      for (const k of Object.keys(saved)) expect(back[k]!.equal(saved[k]!)).toBe(true);
      expect(() => loadModelTensors(cells, Object.fromEntries(Object.entries(saved).filter(([k]) => !k.startsWith("demo_cells."))))).toThrow(/missing/);
      const withCells = { ...modelTensors(prompt), ...Object.fromEntries(Object.entries(saved).filter(([k]) => k.startsWith("demo_cells."))) };
      expect(() => loadModelTensors(prompt, withCells)).toThrow(/demo_cells/);
    });
    const ids = new Set(tttParameters(cells, false));
    expect(cells.demoCells!.parameters().every((p) => ids.has(p))).toBe(true);
  }, 120_000);

  test("demos+cells: p is c as in demos (no Qwen to train), demo_cells.* beside demos' tensors; TTT adapts both reads", async () => {
    const both = await system({ agent_context: "demos+cells" });
    const demos = await system({ agent_context: "demos" });
    expect(usesPrompt(both.config)).toBe(false);
    expect(both.agent.config.promptDim).toBe(16);
    expect(both.memory.keyDim).toBe(16);
    expect(qwenTrainable(both)).toEqual([]);
    const kb = keys(both);
    expect(kb.filter((k) => !k.startsWith("demo_cells."))).toEqual(keys(demos));
    expect(kb.filter((k) => k.startsWith("demo_cells.")).length).toBeGreaterThan(0);
    const ids = new Set(tttParameters(both, true));
    expect([...both.demoEncoder!.parameters(), ...both.demoCells!.parameters()].every((p) => ids.has(p))).toBe(true);
    expect(both.qwen.parameters().some((p) => ids.has(p))).toBe(false);
  }, 120_000);
});

describe("systemForward with a context: a batch gives each example what it gets alone", () => {
  const cases: Partial<SystemConfig>[] = [
    { agent_context: "both" },
    { agent_context: "demos" },
    { agent_context: "both", demo_pooling: "attention" },
    { agent_context: "cells" },
    { agent_context: "demos+cells" },
  ];
  for (const over of cases) {
    test(`${over.agent_context}${over.demo_pooling ? `, ${over.demo_pooling} pooling` : ""}: logits, sizes (1e-5) and the encoder's gradients (5e-5)`, async () => {
      const sys = await system(over);
      // The demonstration side's parameters: the encoder (and in cells mode the cell attention).
      const enc = { namedParameters: () => [...sys.demoEncoder!.namedParameters(), ...(sys.demoCells?.namedParameters().map(([n, p]) => [`cells.${n}`, p] as [string, Tensor]) ?? [])], zeroGrad: () => demoModules(sys).forEach((m) => m.zeroGrad()) };
      const cellsMode = over.agent_context === "cells"; // the per-cell read without a pooled c
      const readsCells = over.agent_context!.endsWith("cells");
      torch.scope(() => {
        const B = examples.length;
        torch.manualSeed(27); // the loss's weights: the same every run, so a failure reproduces
        const w = examples.map((ex) => torch.randn(context(ex).query.length * context(ex).query[0]!.length * 10 * sys.agent.config.steps));
        const lossOf = (f: ReturnType<typeof systemForward>, rows: number[]) => torch.stack(rows.map((b, i) => f.after.logits[i]!.flatten().mul(w[b]!).sum())).sum();
        enc.zeroGrad();
        const batch = systemForward(sys, examples, { deterministic: true });
        if (cellsMode) expect(batch.context).toBeNull();
        else expect(batch.context!.shape).toEqual([B, 16]);
        lossOf(batch, examples.map((_, b) => b)).backward();
        const gBatch = enc.namedParameters().map(([n, p]) => [n, p.grad ? p.grad.clone() : torch.zeros([1])] as const);
        // Each example's gradients alone, summed, and the sum of their magnitudes: float32 sums over a batch's
        // cells round differently from sums over one example's, so the batch's gradient is compared to the
        // examples' sum relative to the size of what was summed (terms of opposite sign cancel in the sum).
        // Over 20 random draws of the weights per mode that difference reached 1.4e-5; padding that leaks
        // into the trunk's convolutions (its features off the cells set to 1) fails it in every mode.
        const sum = new Map<string, Tensor>();
        const size = new Map<string, Tensor>();
        examples.forEach((ex, b) => {
          enc.zeroGrad();
          const alone = systemForward(sys, [ex], { deterministic: true });
          for (const part of ["before", "after"] as const) {
            expect(relErr(batch[part].logits[b]!, alone[part].logits[0]!)).toBeLessThan(1e-5);
            expect(relErr(batch[part].heightLogits.select(0, b), alone[part].heightLogits.select(0, 0))).toBeLessThan(1e-5);
          }
          if (!cellsMode) expect(relErr(batch.context!.select(0, b), alone.context!.select(0, 0))).toBeLessThan(1e-5);
          lossOf(alone, [b]).backward();
          for (const [n, p] of enc.namedParameters()) {
            if (!p.grad) continue;
            sum.set(n, sum.has(n) ? sum.get(n)!.add(p.grad) : p.grad.clone());
            size.set(n, size.has(n) ? size.get(n)!.add(p.grad.abs()) : p.grad.abs());
          }
        });
        const bad = gBatch.filter(([n, g]) => {
          const ref = sum.get(n);
          if (!ref) return g.abs().amax().item() > 0; // unused in this mode (cells: the pooling head)
          // The keys' biases add q . b, the same to every key of a query: the softmax cancels them, so their gradients are rounding noise.
          if (n.endsWith("key.bias")) return torch.scope(() => g.abs().amax().item()) > 1e-6;
          return torch.scope(() => g.sub(ref).abs().amax().item() / Math.max(size.get(n)!.amax().item(), 1e-3)) >= 5e-5;
        });
        expect(bad.map(([n]) => n)).toEqual([]);
        // The encoder learns from the loss (the stem's gradient is not zero).
        expect(gBatch.find(([n]) => n === "stem.weight")![1].abs().amax().item()).toBeGreaterThan(0);
        if (readsCells) expect(gBatch.find(([n]) => n === "cells.value.weight")![1].abs().amax().item()).toBeGreaterThan(0);
        // Without Qwen the pooled c is p itself, so its head learns too.
        if (over.agent_context === "demos+cells") expect(gBatch.find(([n]) => n === "pair_mlp.0.weight")![1].abs().amax().item()).toBeGreaterThan(0);
        if (over.agent_context?.startsWith("demos")) {
          expect(batch.prompt.realTokens).toBe(0);
          expect(batch.prompt.shown).toEqual(examples.map((ex) => context(ex).demos.length));
        }
        enc.zeroGrad();
      });
    }, 120_000);
  }
});

describe("test-time training", () => {
  test("adapts the encoder with the agent and puts it back", async () => {
    const sys = await system({ agent_context: "both" });
    const enc = sys.demoEncoder!;
    const params = tttParameters(sys, false);
    const ids = new Set(params);
    expect(enc.parameters().every((p) => ids.has(p))).toBe(true);
    const before = torch.scope(() => enc.parameters().map((p) => torch.keep(p.detach().clone())));
    let moved = 0;
    withTestTimeTraining(sys, tasks[2]!, { steps: 2, lr: 1e-2 }, () => {
      moved = torch.scope(() => enc.parameters().reduce((n, p, i) => n + (p.equal(before[i]!) ? 0 : 1), 0));
    });
    expect(moved).toBeGreaterThan(0);
    torch.scope(() => enc.parameters().forEach((p, i) => expect(p.equal(before[i]!)).toBe(true)));
    for (const t of before) t.dispose();
  }, 120_000);
});

test("an augmented example's demonstrations are transformed with its test grid (and still leave its own pair out)", () => {
  const aug = { dihedral: 1, colours: [0, 2, 3, 4, 5, 6, 7, 8, 9, 1] };
  const ex = examples[3]!; // transpose's pair 3: four demonstrations after leave-one-out
  const plain = context(ex);
  const turned = context(augmentExample(ex, aug));
  expect(turned.query).toEqual(augmentGrid(plain.query, aug));
  expect(turned.demos).toEqual(plain.demos.map((p) => ({ input: augmentGrid(p.input, aug), output: augmentGrid(p.output, aug) })));
  expect(turned.demos.length).toBe(ex.task.train.length - 1);
  expect(turned.query).not.toEqual(plain.query);
});

describe("scripts/train.ts and scripts/eval.ts with a context (subprocesses)", () => {
  const fresh = tempFolders("arc-agent-context-");
  const LIMIT = 300_000;
  const ok = (script: string, args: string[]) => {
    const r = runScript(script, args, LIMIT);
    if (r.code !== 0) throw new Error(`${script} ${args.join(" ")} exited ${r.code}:\n${r.err.slice(-3000)}`);
    return r;
  };
  const tensorNames = (dir: string) => [...readHeader(join(dir, "model.safetensors")).entries.keys()];

  for (const mode of ["both", "demos", "cells", "demos+cells"] as const) {
    test(`--agent_context ${mode}: 4 batches, the checkpoint's demo_encoder.*, --resume to 6, eval --split val`, () => {
      const base = fresh(mode);
      ok(TRAIN, ["--preset", "smoke", "--max_batches", "4", "--ckpt_every", "2", ...CPU, "--agent_context", mode, "--run_dir", base]);
      const runs = readdirSync(base).filter((n) => n.startsWith("arc_"));
      expect(runs.length).toBe(1);
      const run = join(base, runs[0]!);
      const first = latestVerifiedCheckpoint(run)!;
      expect(first.step).toBe(4);
      const names = tensorNames(first.dir);
      expect(names.filter((n) => n.startsWith("demo_encoder.")).length).toBeGreaterThan(0);
      expect(names.some((n) => n.startsWith("demo_cells."))).toBe(mode.endsWith("cells"));
      expect(names.some((n) => n.startsWith("agent."))).toBe(true);
      const r = ok(TRAIN, ["--resume", run, "--max_batches", "6", ...CPU]);
      expect(r.err).toContain("(step 4,");
      const last = latestVerifiedCheckpoint(run)!;
      expect(last.step).toBe(6);
      expect(tensorNames(last.dir).sort()).toEqual([...names].sort());
      const e = ok(EVAL, ["--run", run, "--split", "val", "--max", "2", "--quiet"]);
      expect(e.out + e.err).toContain("Cell accuracy");
    }, 2 * LIMIT);
  }
});
