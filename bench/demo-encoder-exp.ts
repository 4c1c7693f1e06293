// Does reading the demonstrations let the agent tell rules apart? GridAgent alone (`prompt`: p is a fixed
// zero vector, as a random Qwen's p carries no rule) against GridAgent + DemoEncoder (`demos`: c is the
// agent's p; `both`: c beside the zero p), trained from the same seed with the same budget on synthetic
// tasks, with a plain cross entropy and AdamW, and scored on held-out tasks by exact answers.
// No Qwen, no refiner, no EFE: only what the agent's conditioning changes.
//
//   bun bench/demo-encoder-exp.ts                                  flip_h / flip_v / rotate90, small square inputs, each context
//   bun bench/demo-encoder-exp.ts --families all --max_side 0      the generator's own tasks, all 18 families
//   bun bench/demo-encoder-exp.ts --contexts prompt,demos --steps 400 --out bench/results/x.json
//   bun bench/demo-encoder-exp.ts --families flip_h,flip_v --max_side 2 --stream --contexts prompt,oracle,demos
//
// Diagnostics: --stream (fresh tasks every step: nothing to memorise); the `oracle` context (p = one-hot of
// the task's family: what a perfect encoder could hand the agent); --aux_family W (a family-probe cross
// entropy on c, with labels: shows whether a separable c gets used); --contrastive W (label-free: c must
// pick its own pair's encoding, colours permuted, among the batch's); --film_init S (random FiLM weights);
// --encoder_lr_mult M (the encoder's lr, M x the agent's); --cell_attention, and the context `cells` (the
// per-cell route of system/demo-attention.ts: test-input cells attend over demonstration cells, p = 0, no c).
//
// Tasks: with --max_side S > 0, each family's rule (its `apply`, with its parameters) on inputs of our own
// drawing: square random patterns of side 2..S, the same for every family, so the test inputs of two
// families look alike and only the demonstrations tell which rule applies (square, so rotate90 keeps the
// size). With --max_side 0, the generator's tasks as they are (src/arc/synthetic.ts).
// Training: every train pair of the training tasks, with the others as demonstrations (examples.ts'
// leave-one-out context); held out: the test pair of tasks no step saw, with all train pairs shown.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Example, context, target, testExamples, trainingExamples } from "../src/arc/examples";
import { randomPattern } from "../src/arc/families/family";
import { gridsEqual } from "../src/arc/grid";
import { Rng, seedOf } from "../src/arc/rng";
import { outputSizeFromDemos } from "../src/arc/size-rules";
import { FAMILY_NAMES, generateTask, getFamily } from "../src/arc/synthetic";
import type { Grid, Pair, Task } from "../src/arc/types";
import * as nn from "../src/nn";
import { GridAgent } from "../src/pipeline/system/agent";
import { demoBatch } from "../src/pipeline/system/demo-batch";
import { DemoCellAttention } from "../src/pipeline/system/demo-attention";
import { type DemoPooling, DemoEncoder } from "../src/pipeline/system/demo-encoder";
import { resizeHard, resizeLogits, gridTensor, toGrid } from "../src/pipeline/system/resize";
import * as torch from "../src/torch";
import type { Tensor } from "../src/torch";

/** oracle: a diagnostic, p = one-hot of the task's family (what a perfect encoder could say). */
export type AgentContext = "prompt" | "demos" | "both" | "oracle" | "cells";

export interface ExperimentOptions {
  context: AgentContext;
  families: readonly string[];
  /** > 0: the families' rules on square inputs of side 2..maxSide; 0: the generator's own tasks. */
  maxSide: number;
  trainTasks: number;
  heldOutTasks: number;
  /** Optimizer steps. */
  steps: number;
  batch: number;
  lr: number;
  agentChannels: number;
  agentSteps: number;
  inputPrior: number;
  encoderChannels: number;
  encoderLayers: number;
  pooling: DemoPooling;
  /** Diagnostic only: weight of a family-probe cross entropy on c (uses the family labels). */
  auxFamily?: number;
  /**
   * Weight of a label-free contrastive loss (training only): c from a task's demonstrations must pick,
   * among the batch's examples, the encoding of its own (input, target) pair, whose colours 1..9 are
   * permuted at random (so a shared palette cannot answer). InfoNCE both ways, temperature 0.1.
   */
  contrastive?: number;
  /** Std of a random FiLM weight init (0: the agent's own zero init). */
  filmInit?: number;
  /**
   * The per-cell route (system/demo-attention.ts): each test-input cell attends over the demonstrations'
   * cells and the result is added to the agent's per-cell input. Context `cells` is this route alone
   * (p = 0, no c); with demos or both it runs beside c.
   */
  cellAttention?: boolean;
  /** With the per-cell route: its read also added to every refinement step's block input (not only after the stem). */
  cellsEveryStep?: boolean;
  /** The encoder's learning rate as a multiple of lr (default 1). */
  encoderLrMult?: number;
  seed: number;
  /**
   * Fresh tasks every step (an endless stream: `batch` new tasks per step, one example each), so no
   * training input can be memorised with its rule; trainTasks then only sizes the training-task score.
   */
  stream?: boolean;
}

export const DEFAULT_EXPERIMENT: ExperimentOptions = {
  context: "demos",
  families: ["flip_h", "flip_v", "rotate90"],
  maxSide: 4,
  trainTasks: 240,
  heldOutTasks: 60,
  steps: 300,
  batch: 16,
  lr: 2e-3,
  agentChannels: 32,
  agentSteps: 4,
  inputPrior: 2,
  encoderChannels: 32,
  encoderLayers: 3,
  pooling: "mean",
  seed: 0,
};

export interface ExperimentResult {
  context: AgentContext;
  /** Held-out test pairs answered exactly (attempt 1: the last step's argmax at the size rules' size, else the size head's). */
  heldOutExact: number;
  heldOut: number;
  /** The same on training tasks' test pairs (pairs no step trained on, of tasks it did). */
  trainTaskExact: number;
  trainTasks: number;
  /** Held-out pairs whose answer is the input itself (what copying scores). */
  copyExact: number;
  /** Mean loss over the first and the last tenth of the steps. */
  lossFirst: number;
  lossLast: number;
  parameters: number;
  seconds: number;
}

const PROMPT_DIM = 8;

/** A task of `family`'s rule on square patterns of side 2..maxSide (3 or 4 demonstrations, one test pair). */
function smallTask(family: string, seed: number, maxSide: number): Task {
  const fam = getFamily(family);
  const rng = new Rng(seedOf("demo-exp", family, seed));
  for (let attempt = 0; attempt < 100; attempt++) {
    const params = fam.params(rng);
    const colours = rng.sample([1, 2, 3, 4, 5, 6, 7, 8, 9], rng.int(2, 4));
    const want = rng.int(3, 4) + 1;
    const pairs: Pair[] = [];
    for (let t = 0; t < 200 && pairs.length < want; t++) {
      const s = rng.int(2, maxSide);
      const input = randomPattern(rng, s, s, 0.5, colours);
      const output = fam.apply(input, params);
      if (!gridsEqual(input, output) && !pairs.some((p) => gridsEqual(p.input, input))) pairs.push({ input, output });
    }
    if (pairs.length < want) continue;
    const test = pairs.pop()!;
    return { id: `${family}-small-${seed}`, train: pairs, test: [test] };
  }
  throw new Error(`no small ${family} task for seed ${seed}`);
}

/** n tasks cycling through the families, from a seed stream of their own (split: "train" or "held-out"). */
export function makeTasks(o: Pick<ExperimentOptions, "families" | "maxSide" | "seed">, split: string, n: number): Task[] {
  return Array.from({ length: n }, (_, i) => {
    const family = o.families[i % o.families.length]!;
    const seed = seedOf(o.seed, split, i);
    return o.maxSide > 0 ? smallTask(family, seed, o.maxSide) : generateTask(family, seed);
  });
}

export interface Model {
  agent: GridAgent;
  encoder: DemoEncoder | null;
  cellAttention: DemoCellAttention | null;
  context: AgentContext;
  families: readonly string[];
  cellsEveryStep?: boolean;
}

/** The family index of a task made by makeTasks / streamBatch (its id starts with the family's name). */
const familyOf = (families: readonly string[], id: string): number => families.findIndex((f) => id.startsWith(`${f}-`));

/** Step `step`'s fresh tasks: one example (a random train pair, the others as demonstrations) of each. */
export function streamBatch(o: ExperimentOptions, step: number): Example[] {
  const rng = new Rng(seedOf(o.seed, "stream-order", step));
  return Array.from({ length: o.batch }, (_, i) => {
    const family = o.families[rng.int(0, o.families.length - 1)]!;
    const seed = seedOf(o.seed, "stream", step, i);
    const task = o.maxSide > 0 ? smallTask(family, seed, o.maxSide) : generateTask(family, seed);
    return { task, index: rng.int(0, task.train.length - 1) };
  });
}

export function buildModel(o: ExperimentOptions): Model {
  torch.manualSeed(o.seed);
  const withCells = o.context === "cells" || (!!o.cellAttention && (o.context === "demos" || o.context === "both"));
  const withEncoder = o.context === "demos" || o.context === "both" || withCells;
  const encoder = withEncoder ? new DemoEncoder({ channels: o.encoderChannels, layers: o.encoderLayers, groups: Math.min(8, o.encoderChannels), pooling: o.pooling }) : null;
  const agent = new GridAgent({
    promptDim: o.context === "demos" ? o.encoderChannels : PROMPT_DIM,
    channels: o.agentChannels,
    steps: o.agentSteps,
    groups: Math.min(8, o.agentChannels),
    inputPrior: o.inputPrior,
    ...(o.context === "both" ? { contextDim: o.encoderChannels } : {}),
  });
  if (o.filmInit) torch.noGrad(() => agent.block.film.weight.normal_(0, o.filmInit!));
  const cellAttention = withCells ? new DemoCellAttention({ channels: o.encoderChannels, agentChannels: o.agentChannels }) : null;
  return { agent, encoder, cellAttention, context: o.context, families: o.families, cellsEveryStep: !!o.cellsEveryStep };
}

/** The agent's batched pass over examples, conditioned as the model's context says. */
export function forwardExamples(m: Model, examples: readonly Example[]) {
  const ctxs = examples.map(context);
  const queries = ctxs.map((c) => c.query);
  const zeroP = torch.zeros([examples.length, PROMPT_DIM]);
  if (m.context === "oracle") {
    const oneHot = new Float32Array(examples.length * PROMPT_DIM);
    examples.forEach((ex, i) => (oneHot[i * PROMPT_DIM + (familyOf(m.families, ex.task.id) % PROMPT_DIM)] = 1));
    return m.agent.forwardBatch(queries, torch.fromTypedArray(oneHot, [examples.length, PROMPT_DIM]));
  }
  if (!m.encoder) return m.agent.forwardBatch(queries, zeroP);
  const batch = demoBatch(ctxs, { withQueries: m.encoder.config.pooling === "attention" || !!m.cellAttention });
  const h = m.encoder.cellFeatures(batch);
  const cells = m.cellAttention ? m.cellAttention.forward(h, batch, queries.map((q) => [q.length, q[0]!.length] as const)) : undefined;
  const cellsEveryStep = m.cellsEveryStep;
  if (m.context === "cells") return m.agent.forwardBatch(queries, zeroP, { cells, cellsEveryStep });
  const c = m.encoder.forward(batch, h);
  return m.context === "demos" ? m.agent.forwardBatch(queries, c, { cells, cellsEveryStep }) : m.agent.forwardBatch(queries, zeroP, { context: c, cells, cellsEveryStep });
}

let probe: nn.Linear | null = null;
let contrastiveW = 0;
let contrastiveStep = 0;
/** Cross entropy of every step's logits (resized to the target) plus the size head's, averaged over examples. */
function loss(m: Model, examples: readonly Example[], aux = 0): Tensor {
  const out = forwardExamples(m, examples);
  let auxLoss: Tensor | null = null;
  if (contrastiveW > 0 && m.encoder) {
    const withQueries = m.encoder.config.pooling === "attention";
    const ctxs = examples.map(context);
    const c = m.encoder.forward(demoBatch(ctxs, { withQueries }));
    const rng = new Rng(seedOf("contrastive", contrastiveStep++));
    const own = examples.map((ex, i) => {
      const perm = [0, ...rng.shuffle([1, 2, 3, 4, 5, 6, 7, 8, 9])];
      const recolour = (g: Grid) => g.map((row) => row.map((v) => perm[v]!));
      return { demos: [{ input: recolour(ctxs[i]!.query), output: recolour(target(ex)!) }], query: recolour(ctxs[i]!.query) };
    });
    const z = m.encoder.forward(demoBatch(own, { withQueries }));
    const norm = (t: Tensor) => t.div(t.square().sum(1, true).sqrt().clamp(1e-6));
    const sims = norm(c).matmul(norm(z).t()).div(0.1);
    const labels = torch.arange(examples.length, undefined, 1).long();
    auxLoss = torch.F.crossEntropy(sims, labels).add(torch.F.crossEntropy(sims.t(), labels)).mul(contrastiveW / 2);
  }
  if (aux > 0 && m.encoder) {
    const c = m.encoder.forward(demoBatch(examples.map(context), { withQueries: m.encoder.config.pooling === "attention" }));
    auxLoss = torch.F.crossEntropy(probe!.forward(c), torch.tensor(examples.map((e) => familyOf(m.families, e.task.id)), { dtype: "int64" })).mul(aux);
  }
  let total = torch.zeros([]);
  examples.forEach((ex, i) => {
    const t = target(ex)!;
    const [h, w] = [t.length, t[0]!.length];
    const logits = resizeLogits(out.logits[i]!, h, w); // [T, h, w, 10]
    const T = logits.shape[0];
    const tgt = gridTensor(t).view(1, h * w).expand(T, h * w).reshape(T * h * w);
    const cells = torch.F.crossEntropy(logits.reshape(T * h * w, 10), tgt);
    const size = torch.F.crossEntropy(out.heightLogits.narrow(0, i, 1), torch.tensor([h - 1], { dtype: "int64" }))
      .add(torch.F.crossEntropy(out.widthLogits.narrow(0, i, 1), torch.tensor([w - 1], { dtype: "int64" })));
    total = total.add(cells).add(size.mul(0.1));
  });
  total = total.div(examples.length);
  return auxLoss ? total.add(auxLoss) : total;
}

/** Attempt 1 for each example: the last step's argmax, at the demonstrations' size when they decide it, else the size head's. */
export function predict(m: Model, examples: readonly Example[]): Grid[] {
  return torch.noGrad(() =>
    torch.scope(() => {
      const out = forwardExamples(m, examples);
      return examples.map((ex, i) => {
        const l = out.logits[i]!;
        const last = l.select(0, l.shape[0] - 1).argmax(-1); // [H, W]
        const q = context(ex).query;
        const fromDemos = outputSizeFromDemos(ex.task, q).size;
        const [h, w] = fromDemos ?? [out.heightLogits.select(0, i).argmax().item() + 1, out.widthLogits.select(0, i).argmax().item() + 1];
        return toGrid(resizeHard(last, h, w));
      });
    }),
  );
}

/** Test pairs answered exactly, in batches. */
export function exactCount(m: Model, examples: readonly Example[], batch = 32): number {
  let n = 0;
  for (let s = 0; s < examples.length; s += batch) {
    const part = examples.slice(s, s + batch);
    predict(m, part).forEach((g, i) => (n += gridsEqual(g, target(part[i]!)!) ? 1 : 0));
  }
  return n;
}

const parameterCount = (mods: (nn.Module | null)[]) => mods.reduce((n, mod) => n + (mod ? mod.parameters().reduce((k, p) => k + p.numel(), 0) : 0), 0);

/** Trains one model from the options' seed and scores it. */
export function runExperiment(o: ExperimentOptions, log: (s: string) => void = () => {}): ExperimentResult {
  const t0 = performance.now();
  const m = buildModel(o);
  const trainTasks = makeTasks(o, "train", o.trainTasks);
  const heldOut = testExamples(makeTasks(o, "held-out", o.heldOutTasks));
  const train = trainingExamples(trainTasks);
  contrastiveW = o.contrastive ?? 0;
  contrastiveStep = 0;
  probe = o.auxFamily ? new nn.Linear(o.encoderChannels, o.families.length) : null;
  const groups = [
    { name: "agent", params: [...m.agent.parameters(), ...(probe?.parameters() ?? [])] },
    ...(m.encoder ? [{ name: "encoder", params: [...m.encoder.parameters(), ...(m.cellAttention?.parameters() ?? [])], lr: o.lr * (o.encoderLrMult ?? 1) }] : []),
  ];
  const opt = new torch.AdamW(groups, { lr: o.lr, weightDecay: 0 });
  const rng = new Rng(seedOf(o.seed, "order"));
  let order: number[] = [];
  const losses: number[] = [];
  for (let step = 0; step < o.steps; step++) {
    let batch: Example[];
    if (o.stream) batch = streamBatch(o, step);
    else {
      if (order.length < o.batch) order = order.concat(rng.shuffle(train.map((_, i) => i)));
      batch = order.splice(0, o.batch).map((i) => train[i]!);
    }
    losses.push(
      torch.scope(() => {
        const l = loss(m, batch, o.auxFamily ?? 0);
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l.item();
      }),
    );
    if ((step + 1) % 50 === 0) log(`${o.context} step ${step + 1}: loss ${losses.slice(-50).reduce((a, b) => a + b, 0) / 50}`);
  }
  const tenth = Math.max(1, Math.floor(o.steps / 10));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  return {
    context: o.context,
    heldOutExact: exactCount(m, heldOut),
    heldOut: heldOut.length,
    trainTaskExact: exactCount(m, testExamples(trainTasks)),
    trainTasks: trainTasks.length,
    copyExact: heldOut.filter((ex) => gridsEqual(context(ex).query, target(ex)!)).length,
    lossFirst: mean(losses.slice(0, tenth)),
    lossLast: mean(losses.slice(-tenth)),
    parameters: parameterCount([m.agent, m.encoder, m.cellAttention]),
    seconds: (performance.now() - t0) / 1000,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      contexts: { type: "string", default: "prompt,demos,both" },
      families: { type: "string" },
      max_side: { type: "string" },
      steps: { type: "string" },
      batch: { type: "string" },
      train_tasks: { type: "string" },
      held_out: { type: "string" },
      lr: { type: "string" },
      pooling: { type: "string" },
      seed: { type: "string" },
      stream: { type: "boolean", default: false },
      film_init: { type: "string" },
      aux_family: { type: "string" },
      contrastive: { type: "string" },
      encoder_channels: { type: "string" },
      encoder_lr_mult: { type: "string" },
      cell_attention: { type: "boolean", default: false },
      cells_every_step: { type: "boolean", default: false },
      out: { type: "string" },
    },
  });
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const families = values.families === "all" ? FAMILY_NAMES : values.families?.split(",") ?? DEFAULT_EXPERIMENT.families;
  const base: ExperimentOptions = {
    ...DEFAULT_EXPERIMENT,
    families,
    maxSide: num(values.max_side, DEFAULT_EXPERIMENT.maxSide),
    steps: num(values.steps, DEFAULT_EXPERIMENT.steps),
    batch: num(values.batch, DEFAULT_EXPERIMENT.batch),
    trainTasks: num(values.train_tasks, DEFAULT_EXPERIMENT.trainTasks),
    heldOutTasks: num(values.held_out, DEFAULT_EXPERIMENT.heldOutTasks),
    lr: num(values.lr, DEFAULT_EXPERIMENT.lr),
    pooling: (values.pooling as DemoPooling | undefined) ?? DEFAULT_EXPERIMENT.pooling,
    seed: num(values.seed, DEFAULT_EXPERIMENT.seed),
    stream: values.stream,
    filmInit: num(values.film_init, 0),
    auxFamily: num(values.aux_family, 0),
    contrastive: num(values.contrastive, 0),
    encoderChannels: num(values.encoder_channels, DEFAULT_EXPERIMENT.encoderChannels),
    encoderLrMult: num(values.encoder_lr_mult, 1),
    cellAttention: values.cell_attention,
    cellsEveryStep: values.cells_every_step,
  };
  torch.setNumThreads?.(2);
  const results = (values.contexts!.split(",") as AgentContext[]).map((context) => {
    const r = runExperiment({ ...base, context }, (s) => console.error(s));
    console.error(JSON.stringify(r));
    return r;
  });
  const report = { options: base, results };
  console.log(JSON.stringify(report, null, 2));
  if (values.out) writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
}
