// The system's forward over a batch, in the pipeline's order, as training and evaluation both run it:
//   prompt (B hints in one generate, one encoding pass) -> p
//   with a demonstration encoder (--agent_context demos|both|cells): the batch's demonstrations in one padded
//   pass -> c [B, C]; `both` gives c to both agent passes beside p; `demos` skips the prompt: c is p;
//   `cells` (no c): each test-input cell's read of its task's demonstration cells [d, H, W], added to the
//   agent's per-cell features after the stem and at every refinement step of both passes;
//   `demos+cells`: both (c is p, no prompt, and the per-cell read), from one pass of the encoder's trunk
//   agent on p -> attempt 1 (before refinement; no graph unless --before_weight puts its EFE in the loss)
//   memory read + refiner's action on [LN(sg p), sg pooled z_T, the agent's confidence] -> p' = p + W_up a
//   agent on p' -> attempt 2 (after refinement; the graph the training loss uses)
// Training draws the refiner's action (keyed noise); evaluation takes its mean (`deterministic`).
import { type Example, context } from "../../arc/examples";
import type { Grid } from "../../arc/types";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { type StageTimer, untimed } from "../../util/stage-timer";
import { type AgentBatchOutput, confidences } from "./agent";
import type { MemoryBatchRead } from "./episodic-memory";
import { demoBatch } from "./demo-batch";
import type { PromptBatch } from "./prompt";
import type { RefinerAction } from "./refiner";
import { resizeHard } from "./resize";
import { type System, usesPrompt } from "./system";

/** Mixed precision for Qwen and the agent: CUDA float16/bfloat16 or CPU bfloat16; null: full precision. */
export type Autocast = { device: "cpu" | "cuda"; dtype: torch.DType } | null;

export const withAutocast = <T>(ac: Autocast | undefined, fn: () => T): T => (ac ? torch.autocast({ device: ac.device, dtype: ac.dtype }, fn) : fn());

/** Largest padded share of an agent pass by default: 1 on CUDA (launches are the cost), 0.25 on the CPU (arithmetic is). */
export const defaultPadShare = (sys: System): number => (sys.agent.stem.weight.device.startsWith("cuda") ? 1 : 0.25);

export interface ForwardOptions {
  autocast?: Autocast;
  /** Largest share of padded cells in one agent pass (0..1); default defaultPadShare. */
  agentPadShare?: number;
  /** Wall time of the stages, for benchmarks. */
  timer?: StageTimer;
  /** The refiner's noise [B, k] (training); absent: drawn from torch's generator. */
  noise?: Tensor | null;
  /** The policy's mean action (evaluation). */
  deterministic?: boolean;
  /** Keep the before-refinement pass's graph (its EFE is in the loss: SystemConfig.before_weight > 0). */
  trainBefore?: boolean;
}

export interface SystemForward {
  /** The test inputs the agent read. */
  queries: Grid[];
  /**
   * The prompt's batch; without a Qwen pass (`demos`, `demos+cells`) p is c, with no hint and no tokens (`shown` counts
   * the demonstrations the encoder read).
   */
  prompt: PromptBatch;
  /** The demonstrations' encoding c [B, C] (with gradient in training); null without an encoder or in `cells` mode. */
  context: Tensor | null;
  /** The agent's passes before and after refinement. */
  before: AgentBatchOutput;
  after: AgentBatchOutput;
  memory: MemoryBatchRead;
  action: RefinerAction;
}

/** The two-pass forward (see the top of this file). Call it under torch.noGrad for evaluation. */
export function systemForward(sys: System, examples: Example[], opts: ForwardOptions = {}): SystemForward {
  const ac = opts.autocast ?? null;
  const timer = opts.timer ?? untimed;
  const agentOpts = { maxPadShare: opts.agentPadShare ?? defaultPadShare(sys) };
  const queries = examples.map((ex) => context(ex).query);
  const enc = sys.demoEncoder;
  const cellAttention = sys.demoCells;
  // Without Qwen, c stands in for p.
  const demosOnly = !usesPrompt(sys.config);
  // One padded pass over every demonstration of the batch (leave-one-out: context() drops the example's own pair):
  // c in demos/both; in cells, the trunk's cell features read per test-input cell (no pooled c); in demos+cells
  // the same trunk features give both.
  const demos = enc ? timer.time("demos", () => withAutocast(ac, () => {
    const ctxs = examples.map(context);
    const batch = demoBatch(ctxs, { device: sys.config.device, withQueries: !!cellAttention || enc.config.pooling === "attention" });
    if (!cellAttention) return { c: enc.forward(batch), cells: null };
    const sizes = ctxs.map((x) => [x.query.length, x.query[0]!.length] as const);
    const h = enc.cellFeatures(batch);
    return { c: demosOnly ? enc.forward(batch, h) : null, cells: cellAttention.forward(h, batch, sizes) };
  })) : null;
  const c = demos?.c ?? null;
  const cells = demos?.cells ?? null;
  const prompt = demosOnly ? contextAsPrompt(c!, examples) : withAutocast(ac, () => sys.prompter.embedBatch(examples, { timer }));
  const p = prompt.p;
  // `both`: c beside p in both passes; `demos`: c is p itself; `cells`: the per-cell reads after the stem
  // and at every step. The before pass reads c and the cells detached unless it is trained (trainBefore).
  const withContext = !demosOnly && c;
  const keep = opts.trainBefore === true;
  const beforeOpts = withContext ? { ...agentOpts, context: keep ? c : c.detach() } : cells ? { ...agentOpts, cells: keep ? cells : cells.map((t) => t.detach()), cellsEveryStep: true } : agentOpts;
  const afterOpts = withContext ? { ...agentOpts, context: c } : cells ? { ...agentOpts, cells, cellsEveryStep: true } : agentOpts;
  const beforePass = () => withAutocast(ac, () => sys.agent.forwardBatch(queries, p, beforeOpts));
  const before = timer.time("agent", () => (keep ? beforePass() : torch.noGrad(beforePass)));
  // The confidence stands in for R_before in the refiner's input: evaluation cannot compute R_before.
  return timer.time("agent", () => {
    const memory = sys.memory.readBatch(p);
    const action = sys.refiner.act(p, before.pooled, confidences(before), { memoryBias: memory.bias, noise: opts.noise ?? undefined, deterministic: opts.deterministic });
    const after = withAutocast(ac, () => sys.agent.forwardBatch(queries, p.add(sys.refiner.delta(action.action)), afterOpts));
    return { queries, prompt, context: c, before, after, memory, action };
  });
}

/** The prompt batch without Qwen (`demos`, `demos+cells`): p is c; Qwen did not run, so no hint, no token. */
function contextAsPrompt(c: Tensor, examples: Example[]): PromptBatch {
  const B = examples.length;
  const none = <T>(v: T): T[] => Array.from({ length: B }, () => v);
  return {
    p: c,
    hints: none(""),
    hintIds: Array.from({ length: B }, () => []),
    tokens: none(0),
    shown: examples.map((ex) => context(ex).demos.length),
    dropped: none(0),
    cached: none(false),
    paddedTokens: 0,
    realTokens: 0,
  };
}

/** The hard prediction of the last refinement step [H, W] (int64), resized (nearest) to h x w. */
export function lastStepPrediction(logits: Tensor, h: number, w: number): Tensor {
  return resizeHard(logits.select(0, logits.shape[0] - 1).argmax(-1), h, w);
}

/** The same as a grid (one host transfer). */
export function hardPrediction(logits: Tensor, h: number, w: number): Grid {
  return torch.scope(() => lastStepPrediction(logits, h, w).tolist() as Grid);
}

/** Grids of the given shapes read in order from a flat host vector, starting at `offset`; returns where they end. */
export function gridsFromHost(flat: ArrayLike<number>, shapes: readonly (readonly [number, number])[], offset = 0): { grids: Grid[]; end: number } {
  let off = offset;
  const grids = shapes.map(([h, w]) => {
    const g = Array.from({ length: h }, (_, r) => Array.from({ length: w }, (_, c) => flat[off + r * w + c]));
    off += h * w;
    return g;
  });
  return { grids, end: off };
}
