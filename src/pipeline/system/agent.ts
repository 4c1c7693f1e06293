// GridAgent (docs/pipeline.md, "Agent"): predicts an output grid from an input grid and the prompt vector p over T
// refinement steps with shared weights, plus the output size.
//
//   x = one-hot(input) [10, H, W];  z_0 = conv3x3(x);  e = row_emb[i] + col_emb[j]
//   z_t = z_{t-1} + Block(z_{t-1} + e),  Block(u) = conv3x3(GELU(FiLM_p(GroupNorm(conv3x3(u))))) + ctx(mean(u))
//   logits_t = conv1x1(z_t) -> [T, H, W, 10];  size head(mean(z_T), p) -> heights 1..30, widths 1..30
//
// With a context width C (AgentConfig.contextDim), a second conditioning vector c [C] per example (the
// demonstrations' encoding, pipeline/demo-encoder.ts) is concatenated to the normalised p wherever p
// enters: FiLM reads [p, c] and the size head [mean(z_T), p, c]. Without it the agent is the one above,
// parameter for parameter, so checkpoints saved before the context load and run as they did.
//
// forwardBatch runs grids of different sizes as padded passes [B, 10, Hmax, Wmax] (grids top-left) that
// give each grid what it gets alone: activations are zeroed on padding before every 3x3 conv (the zero
// padding of the grid's own border), GroupNorm statistics and the mean-pools count only a grid's cells.
import * as nn from "../../nn/index";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { planPasses } from "../../util/passes";

export { type PaddedPass, planPasses } from "../../util/passes";

export const MAX_SIDE = 30;
export const COLOURS = 10;

export interface AgentConfig {
  /** Width of the prompt vector p (Qwen's hidden size). */
  promptDim: number;
  /** Channels d (the trainer's default 128, --agent_channels). */
  channels: number;
  /** Refinement steps T (the trainer's default 5, --agent_steps). */
  steps: number;
  /** GroupNorm groups (must divide channels). */
  groups: number;
  /**
   * Weight of the input prior: every step's logits are head(z_t) + inputPrior * one-hot(input), with the
   * head initialised small, so an untrained agent predicts the input itself (ARC's outputs share most
   * cells with their inputs) and training learns the change. The trainer's default is 2
   * (`--agent_input_prior`): the smallest weight whose training did not fall below copying the input,
   * where no prior fell far below it (docs/pipeline.md, "Measurements behind the design"). Absent or 0:
   * no prior (a run from before the flag is migrated to 0, run/migrations.ts).
   */
  inputPrior?: number;
  /**
   * Width C of the extra conditioning vector c that FiLM and the size head read beside p (the
   * demonstrations' encoding, `--agent_context both`). Absent or 0 (every agent before it): no c, and
   * the same parameters as before.
   */
  contextDim?: number;
}

export const defaultAgentConfig = (promptDim: number): AgentConfig => ({ promptDim, channels: 128, steps: 5, groups: 8 });

export interface AgentOutput {
  /** [T, H, W, 10] logits of every refinement step, at the input's size. */
  logits: Tensor;
  /** [30] logits over output heights 1..30. */
  heightLogits: Tensor;
  /** [30] logits over output widths 1..30. */
  widthLogits: Tensor;
  /** [d] mean-pooled final state z_T (the RL state uses it detached). */
  pooled: Tensor;
}

/**
 * Where a padded pass's grids are: set only when the grids in a pass differ in size, because then the
 * padding must act as the zero padding of each grid's own border and must not enter any statistic.
 */
export interface CellMask {
  /** [B, 1, Hmax, Wmax] 1 on each grid's cells, 0 on padding, in float32. */
  mask: Tensor;
  /** [B, 1] each grid's cell count, float32. */
  cellCounts: Tensor;
}

/** `x` with the padding zeroed; the multiplication runs in x's dtype so autocast's dtype survives it. */
export function zeroPadding(x: Tensor, cm: CellMask): Tensor {
  return x.mul(cm.mask.dtype === x.dtype ? cm.mask : cm.mask.to(x.dtype));
}

/** Mean over each grid's own cells: [B, C, H, W] -> [B, C] in x's dtype (x must be zero on padding). */
export function cellMean(x: Tensor, cm: CellMask | null): Tensor {
  if (!cm) return x.mean([2, 3]);
  return x.sum([2, 3], false, "float32").div(cm.cellCounts).to(x.dtype);
}

/**
 * GroupNorm whose statistics see only each grid's own cells: mean and biased variance per (grid, group)
 * over its cells, in float32 (as native group_norm accumulates), then the affine; returns x's dtype.
 */
export function maskedGroupNorm(x: Tensor, norm: nn.GroupNorm, cm: CellMask): Tensor {
  const [B, C, H, W] = x.shape;
  const G = norm.numGroups;
  const xf = x.float().view(B, G, C / G, H * W);
  const mask = cm.mask.view(B, 1, 1, H * W);
  const count = cm.cellCounts.mul(C / G).view(B, 1, 1, 1);
  const mean = xf.mul(mask).sum([2, 3], true).div(count);
  const centred = xf.sub(mean).mul(mask);
  const variance = centred.square().sum([2, 3], true).div(count);
  let y = centred.mul(variance.add(norm.eps).rsqrt()).view(B, C, H, W);
  if (norm.weight) y = y.mul(norm.weight.view(1, C, 1, 1));
  if (norm.bias) y = y.add(norm.bias.view(1, C, 1, 1));
  return y.to(x.dtype);
}

/** The shared refinement block, FiLM-conditioned on the prompt. */
class RefineBlock extends nn.Module {
  readonly conv1: nn.Conv2d;
  readonly norm: nn.GroupNorm;
  readonly film: nn.Linear;
  readonly conv2: nn.Conv2d;
  readonly ctx: nn.Linear;
  constructor(readonly c: AgentConfig) {
    super();
    this.conv1 = this.registerModule("conv1", new nn.Conv2d(c.channels, c.channels, 3, { padding: 1 }));
    this.norm = this.registerModule("norm", new nn.GroupNorm(c.groups, c.channels));
    this.film = this.registerModule("film", new nn.Linear(c.promptDim + (c.contextDim ?? 0), 2 * c.channels));
    this.conv2 = this.registerModule("conv2", new nn.Conv2d(c.channels, c.channels, 3, { padding: 1 }));
    this.ctx = this.registerModule("ctx", new nn.Linear(c.channels, c.channels));
    // FiLM starts as the identity (gamma = beta = 0), so p modulates only what training makes it.
    nn.init.zeros_(this.film.weight);
    nn.init.zeros_(this.film.bias!);
  }
  /**
   * u [B, d, H, W] (zero on padding when masked); gammaBeta [B, 2d] from the (normalised) prompts and the contexts.
   * Masked, the result is non-zero on padding: the caller zeroes it there.
   */
  forward(u: Tensor, gammaBeta: Tensor, cm: CellMask | null = null): Tensor {
    const d = this.c.channels;
    const B = u.shape[0];
    const gamma = gammaBeta.narrow(1, 0, d).view(B, d, 1, 1);
    const beta = gammaBeta.narrow(1, d, d).view(B, d, 1, 1);
    const c1 = this.conv1.forward(u);
    const h = (cm ? maskedGroupNorm(c1, this.norm, cm) : this.norm.forward(c1)).mul(gamma.add(1)).add(beta);
    const act = torch.F.gelu(h);
    // conv2 must read zeros past each grid's border, as conv1 does.
    const local = this.conv2.forward(cm ? zeroPadding(act, cm) : act);
    const global = this.ctx.forward(cellMean(u, cm)).view(B, d, 1, 1);
    return local.add(global);
  }
}

export interface AgentBatchOutput {
  /** Per example, in input order: [T, H_i, W_i, 10] logits at that example's own input size. */
  logits: Tensor[];
  /** [B, 30] logits over heights 1..30. */
  heightLogits: Tensor;
  /** [B, 30] logits over widths 1..30. */
  widthLogits: Tensor;
  /** [B, d] mean over each example's own cells of z_T. */
  pooled: Tensor;
  /** Real cells of all examples (each counted once, not per step). */
  cells: number;
  /** Cells computed, padding included: sum over passes of examples * Hmax * Wmax. */
  paddedCells: number;
  /** Padded tensors the batch was run as. */
  passes: number;
}

export class GridAgent extends nn.Module {
  readonly stem: nn.Conv2d;
  readonly rowEmb: nn.Embedding;
  readonly colEmb: nn.Embedding;
  readonly promptNorm: nn.LayerNorm;
  readonly block: RefineBlock;
  readonly head: nn.Conv2d;
  readonly sizeHead: nn.Sequential;

  constructor(readonly config: AgentConfig) {
    super();
    const { channels: d, promptDim: P } = config;
    const C = config.contextDim ?? 0;
    if (d % config.groups !== 0) throw new RangeError(`agent channels ${d} must be divisible by groups ${config.groups}`);
    this.stem = this.registerModule("stem", new nn.Conv2d(COLOURS, d, 3, { padding: 1 }));
    this.rowEmb = this.registerModule("row_emb", new nn.Embedding(MAX_SIDE, d));
    this.colEmb = this.registerModule("col_emb", new nn.Embedding(MAX_SIDE, d));
    // Qwen's hidden states have a few very large coordinates; normalising p keeps FiLM well scaled.
    this.promptNorm = this.registerModule("prompt_norm", new nn.LayerNorm(P));
    this.block = this.registerModule("block", new RefineBlock(config));
    this.head = this.registerModule("head", new nn.Conv2d(d, COLOURS, 1));
    // With the prior, the head starts small (a tenth of its default scale), so the prior decides every
    // cell at first while gradients still reach every layer (a zero head would stop them at the first step).
    if ((config.inputPrior ?? 0) !== 0) torch.noGrad(() => torch.scope(() => {
      this.head.weight.mul_(0.1);
      this.head.bias!.mul_(0.1);
    }));
    this.sizeHead = this.registerModule("size_head", new nn.Sequential(new nn.Linear(d + P + C, d), new nn.GELU(), new nn.Linear(d, 2 * MAX_SIDE)));
    for (const emb of [this.rowEmb, this.colEmb]) nn.init.normal_(emb.weight, 0, 0.02);
  }

  /** One-hot [1, 10, H, W] of a grid, on the agent's device. */
  encode(grid: number[][]): Tensor {
    return this.encodePadded([grid], grid.length, grid[0]?.length ?? 0);
  }

  /** One-hot [B, 10, H, W] of grids placed top-left; padding cells are all-zero (no colour). */
  private encodePadded(grids: number[][][], H: number, W: number): Tensor {
    const idx = new Int32Array(grids.length * H * W).fill(COLOURS); // COLOURS: the padding class, dropped below
    grids.forEach((g, b) => g.forEach((row, i) => idx.set(row, (b * H + i) * W)));
    const onDevice = torch.fromTypedArray(idx, [grids.length, H, W], { device: this.stem.weight.device }).long();
    return torch.F.oneHot(onDevice, COLOURS + 1).narrow(3, 0, COLOURS).permute(0, 3, 1, 2).to(this.stem.weight.dtype);
  }

  /** grid: the input grid (H, W <= 30); p: [P] prompt vector; context: [C] when the agent has one. A batch of one through forwardBatch. */
  forward(grid: number[][], p: Tensor, context?: Tensor): AgentOutput {
    const out = this.forwardBatch([grid], p.unsqueeze(0), context ? { context: context.unsqueeze(0) } : {});
    return { logits: out.logits[0]!, heightLogits: out.heightLogits.select(0, 0), widthLogits: out.widthLogits.select(0, 0), pooled: out.pooled.select(0, 0) };
  }

  /**
   * grids: B input grids (sides 1..30, any sizes); p: [B, P] their prompt vectors. Each example gets what
   * it would get alone (up to float rounding); `maxPadShare` (0..1, default 1 = one pass) caps the share
   * of padding cells in a pass, trading passes for wasted compute. `context` [B, C] is required exactly
   * when the agent was built with a contextDim.
   */
  forwardBatch(grids: number[][][], p: Tensor, opts: { maxPadShare?: number; context?: Tensor; cells?: readonly Tensor[]; cellsEveryStep?: boolean } = {}): AgentBatchOutput {
    const B = grids.length;
    const P = this.config.promptDim;
    if (B < 1) throw new RangeError("agent batch is empty");
    if (p.dim() !== 2 || p.shape[0] !== B || p.shape[1] !== P) throw new RangeError(`agent prompts are [${p.shape}]; expected [${B}, ${P}]`);
    const C = this.config.contextDim ?? 0;
    const ctx = opts.context;
    if (C > 0 && (!ctx || ctx.dim() !== 2 || ctx.shape[0] !== B || ctx.shape[1] !== C)) throw new RangeError(`agent contexts are ${ctx ? `[${ctx.shape}]` : "missing"}; expected [${B}, ${C}]`);
    if (C === 0 && ctx) throw new RangeError("agent was built without a context (contextDim 0) but was given one");
    const cells = opts.cells;
    if (cells && cells.length !== B) throw new RangeError(`agent cell inputs are ${cells.length}; expected ${B}`);
    const maxPadShare = opts.maxPadShare ?? 1;
    if (!(maxPadShare >= 0 && maxPadShare <= 1)) throw new RangeError(`maxPadShare ${maxPadShare} must be in 0..1`);
    const sizes = grids.map((g, gi): [number, number] => {
      const H = g.length;
      const W = g[0]?.length ?? 0;
      if (H < 1 || W < 1 || H > MAX_SIDE || W > MAX_SIDE) throw new RangeError(`agent input is ${H}x${W}; sides must be 1..${MAX_SIDE}`);
      for (const row of g) {
        if (row.length !== W) throw new RangeError(`agent input rows differ in length (${row.length} vs ${W})`);
        for (const v of row) if (!(Number.isInteger(v) && v >= 0 && v < COLOURS)) throw new RangeError(`agent input colour ${v} is not 0..${COLOURS - 1}`);
      }
      const ci = cells?.[gi];
      if (ci && (ci.dim() !== 3 || ci.shape[0] !== this.config.channels || ci.shape[1] !== H || ci.shape[2] !== W)) throw new RangeError(`agent cell input is [${ci.shape}]; expected [${this.config.channels}, ${H}, ${W}]`);
      return [H, W];
    });
    const dev = this.stem.weight.device;
    const pn = this.promptNorm.forward(p.to(this.stem.weight.dtype));
    // What conditions the agent: p normalised, then c as the encoder made it (it normalises its own output).
    const cond = ctx ? torch.cat([pn, ctx.to(pn.dtype)], 1) : pn;
    const gammaBeta = this.block.film.forward(cond); // [B, 2d]
    const passes = planPasses(sizes, maxPadShare);
    const logits: Tensor[] = new Array(B);
    const pooledByPass: Tensor[] = [];
    let paddedCells = 0;
    for (const pass of passes) {
      const { members, height: H, width: W } = pass;
      paddedCells += members.length * H * W;
      const whole = members.length === B && members.every((m, i) => m === i);
      const rowsOf = (t: Tensor) => (whole ? t : t.indexSelect(0, torch.tensor(members, { dtype: "int64", device: dev })));
      const x = this.encodePadded(members.map((m) => grids[m]!), H, W);
      // Same-size grids need no mask: the plain ops (native group_norm, mean) give the same numbers faster.
      const uniform = members.every((m) => sizes[m]![0] === H && sizes[m]![1] === W);
      let cm: CellMask | null = null;
      if (!uniform) {
        const mask = x.sum(1, true, "float32");
        cm = { mask, cellCounts: mask.sum([2, 3]) };
      }
      const rows = this.rowEmb.forward(torch.arange(H, undefined, 1, { device: dev })); // [H, d]
      const cols = this.colEmb.forward(torch.arange(W, undefined, 1, { device: dev })); // [W, d]
      const e = rows.unsqueeze(1).add(cols.unsqueeze(0)).permute(2, 0, 1).unsqueeze(0); // [1, d, H, W]
      // z is kept zero on padding, so z + e needs only e masked for conv1 to see each grid's zero border.
      const posEmb = cm ? zeroPadding(e, cm) : e;
      const passGammaBeta = rowsOf(gammaBeta);
      let z = this.stem.forward(x);
      // Per-cell inputs (the demonstrations' cell attention): each example's [d, h, w] padded to the pass
      // (zero on padding), added after the stem and, with cellsEveryStep, to every step's block input too.
      const cellIn = cells ? torch.stack(members.map((m) => torch.F.pad(cells[m]!.to(z.dtype), [0, W - sizes[m]![1], 0, H - sizes[m]![0]]))) : null;
      if (cellIn) z = z.add(cellIn);
      if (cm) z = zeroPadding(z, cm);
      const blockIn = cellIn && opts.cellsEveryStep ? posEmb.add(cellIn) : posEmb;
      const steps: Tensor[] = [];
      const prior = this.config.inputPrior ?? 0;
      const priorLogits = prior !== 0 ? x.mul(prior) : null; // padding cells are all-zero one-hots: no prior there
      for (let t = 0; t < this.config.steps; t++) {
        z = z.add(this.block.forward(z.add(blockIn), passGammaBeta, cm));
        if (cm) z = zeroPadding(z, cm);
        const out = this.head.forward(z);
        steps.push(priorLogits ? out.add(priorLogits) : out);
      }
      const stacked = torch.stack(steps); // [T, B', 10, H, W]
      members.forEach((m, b) => {
        const [h, w] = sizes[m]!;
        logits[m] = stacked.select(1, b).narrow(2, 0, h).narrow(3, 0, w).permute(0, 2, 3, 1).contiguous();
      });
      pooledByPass.push(cellMean(z, cm));
    }
    let pooled = pooledByPass.length === 1 ? pooledByPass[0]! : torch.cat(pooledByPass);
    const passOrder = passes.flatMap((pass) => pass.members);
    if (passOrder.some((m, i) => m !== i)) {
      const positionOf = new Array<number>(B);
      passOrder.forEach((m, i) => (positionOf[m] = i));
      pooled = pooled.indexSelect(0, torch.tensor(positionOf, { dtype: "int64", device: dev }));
    }
    const size = this.sizeHead.forward(torch.cat([pooled, cond], 1)); // [B, 60]
    return {
      logits,
      heightLogits: size.narrow(1, 0, MAX_SIDE),
      widthLogits: size.narrow(1, MAX_SIDE, MAX_SIDE),
      pooled,
      cells: sizes.reduce((n, [h, w]) => n + h * w, 0),
      paddedCells,
      passes: passes.length,
    };
  }
}

/** The size head's prediction [height, width] (1-based). */
export function predictedSize(out: AgentOutput): [number, number] {
  return [out.heightLogits.argmax().item() + 1, out.widthLogits.argmax().item() + 1];
}

/**
 * The agent's own estimate of how right its last step is: the mean over cells of the top colour's
 * probability. The refiner's state uses it where the original design put R_before (the reward before
 * refinement), because R_before needs the target, which evaluation does not have; training and
 * evaluation must see the same state.
 */
export function confidence(out: AgentOutput): number {
  return torch.scope(() => {
    const last = out.logits.select(0, out.logits.shape[0] - 1).float();
    return last.softmax(-1).amax(-1).mean().item();
  });
}

/** [B, 2] int64 on the device: the size head's (height, width), 1-based. No host transfer. */
export function predictedSizes(out: { heightLogits: Tensor; widthLogits: Tensor }): Tensor {
  return torch.stack([out.heightLogits.argmax(-1), out.widthLogits.argmax(-1)], -1).add(1);
}

/** [B] float32 on the device: confidence() of each example, no host transfer. */
export function confidences(out: AgentBatchOutput): Tensor {
  return torch.stack(out.logits.map((l) => l.select(0, l.shape[0] - 1).float().softmax(-1).amax(-1).mean()));
}
