// DemoCellAttention: a per-cell route from the demonstrations to the grid agent, beside (or instead of)
// the pooled vector c (demo-encoder.ts). Each cell of a task's test input attends over the cells of that
// task's demonstrations, and what it reads is added to the agent's per-cell input features (after its stem):
//
//   h = DemoEncoder.cellFeatures(batch)       the trunk over every row: demonstrations, then the test inputs
//   q_ij = W_q (h_query[i, j] + pos[i, j])    one query per test-input cell
//   k_n,uv = W_k (h_n[u, v] + pos[u, v]),  v_n,uv = W_v [h_n[u, v], out_n[u, v], changed_n[u, v]]
//   r_ij = W_o sum over the task's demonstration cells of softmax(q . k / sqrt(C)) v    -> [d, H, W]
//
// pos is a learned row + column embedding, so a test cell can look up the same place in the demonstrations.
// Each task is computed on its own (its demonstrations' cells only, masked off the padding), so a batch
// gives each task what it gets alone; a task with no demonstration gets zeros.
import * as nn from "../../nn/index";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import { COLOURS, MAX_SIDE } from "./agent";
import type { DemoBatch } from "./demo-batch";

/** Pair channels the values read besides the trunk: the output's one-hot and the changed flag (demo-batch.ts). */
const VALUE_RAW = COLOURS + 1;

export interface DemoCellAttentionConfig {
  /** The encoder's width C (its trunk's channels). */
  channels: number;
  /** The agent's width d (what the result is added to). */
  agentChannels: number;
}

export class DemoCellAttention extends nn.Module {
  readonly rowEmb: nn.Embedding;
  readonly colEmb: nn.Embedding;
  readonly query: nn.Linear;
  readonly key: nn.Linear;
  readonly value: nn.Linear;
  readonly out: nn.Linear;

  constructor(readonly config: DemoCellAttentionConfig) {
    super();
    const C = config.channels;
    this.rowEmb = this.registerModule("row_emb", new nn.Embedding(MAX_SIDE, C));
    this.colEmb = this.registerModule("col_emb", new nn.Embedding(MAX_SIDE, C));
    this.query = this.registerModule("query", new nn.Linear(C, C));
    this.key = this.registerModule("key", new nn.Linear(C, C));
    this.value = this.registerModule("value", new nn.Linear(C + VALUE_RAW, C));
    this.out = this.registerModule("out", new nn.Linear(C, config.agentChannels));
  }

  /** [H * W, C]: the row + column embedding of every cell of an H x W canvas, row-major. */
  private positions(H: number, W: number, device: torch.Device): Tensor {
    const rows = this.rowEmb.forward(torch.arange(H, undefined, 1, { device }));
    const cols = this.colEmb.forward(torch.arange(W, undefined, 1, { device }));
    return rows.unsqueeze(1).add(cols.unsqueeze(0)).reshape(H * W, this.config.channels);
  }

  /**
   * Per task b, [d, H_b, W_b] at its test input's size (`querySizes`). `batch` must hold the test inputs
   * (withQueries); `h` is the encoder's cellFeatures(batch).
   */
  forward(h: Tensor, batch: DemoBatch, querySizes: readonly (readonly [number, number])[]): Tensor[] {
    if (!batch.withQueries) throw new RangeError("the cell attention needs the test inputs: build the batch with withQueries");
    const B = batch.counts.length;
    if (querySizes.length !== B) throw new RangeError(`cell attention: ${querySizes.length} query sizes for ${B} tasks`);
    const C = this.config.channels;
    const d = this.config.agentChannels;
    const [, , Hm, Wm] = h.shape;
    const dev = h.device;
    const pos = this.positions(Hm, Wm, dev); // [Hm * Wm, C]
    const cellsOf = (t: Tensor) => t.permute(0, 2, 3, 1).reshape(t.shape[0] * Hm * Wm, t.shape[1]); // [n, ch, Hm, Wm] -> [n * Hm * Wm, ch]
    const raw = batch.pairs.narrow(1, COLOURS, VALUE_RAW).to(h.dtype);
    const out: Tensor[] = [];
    let start = 0;
    batch.counts.forEach((n, b) => {
      const [H, W] = querySizes[b]!;
      if (n === 0) {
        out.push(torch.zeros([d, H, W], { device: dev, dtype: h.dtype }));
        return;
      }
      const hd = h.narrow(0, start, n);
      const keys = this.key.forward(cellsOf(hd).add(pos.repeat([n, 1]))); // [n * Hm * Wm, C]
      const values = this.value.forward(torch.cat([cellsOf(hd), cellsOf(raw.narrow(0, start, n))], 1));
      const valid = batch.mask.narrow(0, start, n).reshape(n * Hm * Wm).gt(0);
      const hq = h.select(0, batch.demos + b).narrow(1, 0, H).narrow(2, 0, W).permute(1, 2, 0).reshape(H * W, C);
      const q = this.query.forward(hq.add(this.positions(H, W, dev)));
      const scores = q.matmul(keys.t()).div(Math.sqrt(C)).maskedFill(valid.logicalNot().unsqueeze(0), -Infinity);
      const read = this.out.forward(scores.softmax(1).matmul(values)); // [H * W, d]
      out.push(read.t().reshape(d, H, W));
      start += n;
    });
    return out;
  }
}
