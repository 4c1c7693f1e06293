// DemoEncoder: what a task's demonstrations say about its rule, as one vector c [C] per task, which
// conditions the grid agent beside (or instead of) the prompt vector p (`--agent_context`).
//
//   pair n: x_n = [one-hot(in), one-hot(out), changed, in-cells, out-cells]  (demo-batch.ts)
//   h_n = L x (GELU(GroupNorm(conv3x3(.))))(conv3x3(x_n));  v_n = MLP([cellMean(h_n), sizes_n])
//   c_b = LayerNorm(sum_n a_bn v_n),  a_bn = 1/n_b over task b's pairs ("mean"), or
//         softmax over task b's pairs of (W_q v_query_b) . (W_k v_n) / sqrt(C) ("attention", the query
//         being the test input run through the same trunk as a pair with no output)
//
// All of a batch's pairs run as one padded pass with cell masks, as the agent's batched pass does
// (activations zeroed off each pair's cells before every 3x3 conv, GroupNorm and the mean over its
// cells only), so each task gets what it gets alone. A task with no demonstration gets LayerNorm(0).
import * as nn from "../../nn/index";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { type CellMask, cellMean, maskedGroupNorm, zeroPadding } from "./agent";
import { type DemoBatch, PAIR_CHANNELS, SIZE_FEATURES } from "./demo-batch";

export type DemoPooling = "mean" | "attention";

export interface DemoEncoderConfig {
  /** Width C of the trunk and of c. */
  channels: number;
  /** Conv layers after the stem. */
  layers: number;
  /** GroupNorm groups (must divide channels). */
  groups: number;
  /** How a task's pair vectors become one. */
  pooling: DemoPooling;
}

export const defaultDemoEncoderConfig = (channels = 64): DemoEncoderConfig => ({ channels, layers: 3, groups: Math.min(8, channels), pooling: "mean" });

/** One trunk layer: conv3x3, GroupNorm over the pair's cells, GELU. */
class TrunkLayer extends nn.Module {
  readonly conv: nn.Conv2d;
  readonly norm: nn.GroupNorm;
  constructor(c: DemoEncoderConfig) {
    super();
    this.conv = this.registerModule("conv", new nn.Conv2d(c.channels, c.channels, 3, { padding: 1 }));
    this.norm = this.registerModule("norm", new nn.GroupNorm(c.groups, c.channels));
  }
  /** h zero off the cells -> the layer's output, zero off the cells again. */
  forward(h: Tensor, cm: CellMask): Tensor {
    return zeroPadding(torch.F.gelu(maskedGroupNorm(this.conv.forward(h), this.norm, cm)), cm);
  }
}

export class DemoEncoder extends nn.Module {
  readonly stem: nn.Conv2d;
  readonly trunk: nn.ModuleList<TrunkLayer>;
  readonly pairMlp: nn.Sequential;
  readonly query: nn.Linear | null;
  readonly key: nn.Linear | null;
  readonly outNorm: nn.LayerNorm;

  constructor(readonly config: DemoEncoderConfig) {
    super();
    const C = config.channels;
    if (C % config.groups !== 0) throw new RangeError(`demo encoder channels ${C} must be divisible by groups ${config.groups}`);
    this.stem = this.registerModule("stem", new nn.Conv2d(PAIR_CHANNELS, C, 3, { padding: 1 }));
    this.trunk = this.registerModule("trunk", new nn.ModuleList(Array.from({ length: config.layers }, () => new TrunkLayer(config))));
    // Sizes enter after the pooling: the mean over cells cannot see how large the grids were.
    this.pairMlp = this.registerModule("pair_mlp", new nn.Sequential(new nn.Linear(C + SIZE_FEATURES, C), new nn.GELU(), new nn.Linear(C, C)));
    const attention = config.pooling === "attention";
    this.query = attention ? this.registerModule("query", new nn.Linear(C, C)) : null;
    this.key = attention ? this.registerModule("key", new nn.Linear(C, C)) : null;
    // c enters the agent beside the normalised p, so it is normalised too.
    this.outNorm = this.registerModule("out_norm", new nn.LayerNorm(C));
  }

  /** The trunk's per-cell features [rows, C, Hmax, Wmax] of every row (zero off each row's cells). */
  cellFeatures(batch: DemoBatch): Tensor {
    const dtype = this.stem.weight.dtype;
    const cm: CellMask = { mask: batch.mask, cellCounts: batch.cellCounts };
    let h = zeroPadding(this.stem.forward(batch.pairs.to(dtype)), cm);
    for (const layer of this.trunk) h = h.add(layer.forward(h, cm));
    return h;
  }

  /** Every row's vector [rows, C]: the trunk over its cells, pooled, with its sizes. */
  private rowVectors(batch: DemoBatch, h = this.cellFeatures(batch)): Tensor {
    const cm: CellMask = { mask: batch.mask, cellCounts: batch.cellCounts };
    return this.pairMlp.forward(torch.cat([cellMean(h, cm), batch.sizes.to(h.dtype)], 1));
  }

  /**
   * c [B, C] for the batch's tasks (in the batch's order). Attention pooling needs the test inputs in the
   * batch. `cells`: cellFeatures(batch) when the caller has them already (the cell attention reads them too).
   */
  forward(batch: DemoBatch, cells?: Tensor): Tensor {
    const rows = this.rowVectors(batch, cells);
    const N = Math.max(batch.demos, 1); // the membership's width (one all-zero column when there are no demonstrations)
    const pairs = rows.narrow(0, 0, N);
    const member = batch.membership.to(rows.dtype); // [B, N]
    let weights: Tensor;
    if (this.query && this.key) {
      if (!batch.withQueries) throw new RangeError("attention pooling needs the test inputs: build the batch with withQueries");
      const B = batch.counts.length;
      const q = this.query.forward(rows.narrow(0, batch.demos, B)); // [B, C]
      const k = this.key.forward(pairs); // [N, C]
      const scores = q.matmul(k.t()).div(Math.sqrt(this.config.channels)); // [B, N]
      // Other tasks' pairs get -inf; a task with none gets all-zero weights (its softmax row would be 0/0).
      const masked = scores.maskedFill(member.eq(0), -Infinity);
      const has = member.sum(1, true).gt(0);
      weights = masked.maskedFill(has.logicalNot().expandAs(masked), 0).softmax(1).mul(has.to(rows.dtype));
    } else {
      weights = member.div(member.sum(1, true).clamp(1));
    }
    return this.outNorm.forward(weights.matmul(pairs));
  }
}
