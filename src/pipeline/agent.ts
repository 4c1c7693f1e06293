// GridAgent (DESIGN §5.2): predicts an output grid from an input grid and the prompt vector p over T
// refinement steps with shared weights, plus the output size.
//
//   x = one-hot(input) [10, H, W];  z_0 = conv3x3(x);  e = row_emb[i] + col_emb[j]
//   z_t = z_{t-1} + Block(z_{t-1} + e),  Block(u) = conv3x3(GELU(FiLM_p(GroupNorm(conv3x3(u))))) + ctx(mean(u))
//   logits_t = conv1x1(z_t) -> [T, H, W, 10];  size head(mean(z_T), p) -> heights 1..30, widths 1..30
import * as nn from "../nn";
import * as torch from "../torch";
import type { Tensor } from "../torch";

export const MAX_SIDE = 30;
export const COLOURS = 10;

export interface AgentConfig {
  /** Width of the prompt vector p (Qwen's hidden size). */
  promptDim: number;
  /** Channels d (DESIGN: 128). */
  channels: number;
  /** Refinement steps T (DESIGN: 5). */
  steps: number;
  /** GroupNorm groups (must divide channels). */
  groups: number;
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
    this.film = this.registerModule("film", new nn.Linear(c.promptDim, 2 * c.channels));
    this.conv2 = this.registerModule("conv2", new nn.Conv2d(c.channels, c.channels, 3, { padding: 1 }));
    this.ctx = this.registerModule("ctx", new nn.Linear(c.channels, c.channels));
    // FiLM starts as the identity (gamma = beta = 0), so p modulates only what training makes it.
    nn.init.zeros_(this.film.weight);
    nn.init.zeros_(this.film.bias!);
  }
  /** u [1, d, H, W]; film [2d] from the (normalised) prompt. */
  forward(u: Tensor, gammaBeta: Tensor): Tensor {
    const d = this.c.channels;
    const gamma = gammaBeta.narrow(0, 0, d).view(1, d, 1, 1);
    const beta = gammaBeta.narrow(0, d, d).view(1, d, 1, 1);
    const h = this.norm.forward(this.conv1.forward(u)).mul(gamma.add(1)).add(beta);
    const local = this.conv2.forward(torch.F.gelu(h));
    const global = this.ctx.forward(u.mean([2, 3])).view(1, d, 1, 1);
    return local.add(global);
  }
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
    if (d % config.groups !== 0) throw new RangeError(`agent channels ${d} must be divisible by groups ${config.groups}`);
    this.stem = this.registerModule("stem", new nn.Conv2d(COLOURS, d, 3, { padding: 1 }));
    this.rowEmb = this.registerModule("row_emb", new nn.Embedding(MAX_SIDE, d));
    this.colEmb = this.registerModule("col_emb", new nn.Embedding(MAX_SIDE, d));
    // Qwen's hidden states have a few very large coordinates; normalising p keeps FiLM well scaled.
    this.promptNorm = this.registerModule("prompt_norm", new nn.LayerNorm(P));
    this.block = this.registerModule("block", new RefineBlock(config));
    this.head = this.registerModule("head", new nn.Conv2d(d, COLOURS, 1));
    this.sizeHead = this.registerModule("size_head", new nn.Sequential(new nn.Linear(d + P, d), new nn.GELU(), new nn.Linear(d, 2 * MAX_SIDE)));
    for (const emb of [this.rowEmb, this.colEmb]) nn.init.normal_(emb.weight, 0, 0.02);
  }

  /** One-hot [1, 10, H, W] of a grid, on the agent's device. */
  encode(grid: number[][]): Tensor {
    const dev = this.stem.weight.device;
    const H = grid.length;
    const W = grid[0].length;
    const idx = torch.fromTypedArray(Int32Array.from(grid.flat()), [H, W]).long();
    const oneHot = torch.F.oneHot(idx, COLOURS).permute(2, 0, 1).unsqueeze(0).to({ dtype: this.stem.weight.dtype, device: dev });
    return oneHot;
  }

  /** grid: the input grid (H, W <= 30); p: [P] prompt vector. */
  forward(grid: number[][], p: Tensor): AgentOutput {
    const H = grid.length;
    const W = grid[0]?.length ?? 0;
    if (H < 1 || W < 1 || H > MAX_SIDE || W > MAX_SIDE) throw new RangeError(`agent input is ${H}x${W}; sides must be 1..${MAX_SIDE}`);
    const d = this.config.channels;
    const dev = this.stem.weight.device;
    const pn = this.promptNorm.forward(p.to(this.stem.weight.dtype));
    const gammaBeta = this.block.film.forward(pn);
    const rows = this.rowEmb.forward(torch.arange(H, undefined, 1, { device: dev })); // [H, d]
    const cols = this.colEmb.forward(torch.arange(W, undefined, 1, { device: dev })); // [W, d]
    const e = rows.unsqueeze(1).add(cols.unsqueeze(0)).permute(2, 0, 1).unsqueeze(0); // [1, d, H, W]
    let z = this.stem.forward(this.encode(grid));
    const logits: Tensor[] = [];
    for (let t = 0; t < this.config.steps; t++) {
      z = z.add(this.block.forward(z.add(e), gammaBeta));
      logits.push(this.head.forward(z).squeeze(0).permute(1, 2, 0)); // [H, W, 10]
    }
    const pooled = z.mean([2, 3]).view(d);
    const size = this.sizeHead.forward(torch.cat([pooled, pn]));
    return {
      logits: torch.stack(logits),
      heightLogits: size.narrow(0, 0, MAX_SIDE),
      widthLogits: size.narrow(0, MAX_SIDE, MAX_SIDE),
      pooled,
    };
  }
}

/** The size head's prediction [height, width] (1-based). */
export function predictedSize(out: AgentOutput): [number, number] {
  return [out.heightLogits.argmax().item() + 1, out.widthLogits.argmax().item() + 1];
}

/**
 * The agent's own estimate of how right its last step is: the mean over cells of the top colour's
 * probability. The policy's state uses it where DESIGN §5.5 puts R_before, because R_before needs the
 * target, which evaluation does not have; training and evaluation must see the same state.
 */
export function confidence(out: AgentOutput): number {
  return torch.scope(() => {
    const last = out.logits.select(0, out.logits.shape[0] - 1).float();
    return last.softmax(-1).amax(-1).mean().item();
  });
}
