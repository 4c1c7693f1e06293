// Each optimizer group's gradient L2 norm before clipping (agent, qwen, refiner, ...), and the norm of
// them all, for the metrics a researcher reads to tell which part of the system a spike came from.
//
// One host transfer for every group: the norms are computed and combined on the device and read back
// as one small tensor, as the clip's own norm is (on CUDA each read waits for the device). Each
// gradient's norm is taken in the gradient's dtype and carried in float32, as clipGradNorm does, so
// the total is the number the clip compares with its max norm.
import * as torch from "../../torch";
import type { Tensor } from "../../torch";

export interface GradNorms {
  /** Each group's L2 gradient norm (0 for a group without gradients; Infinity or NaN when non-finite). */
  groups: Record<string, number>;
  /** The L2 norm of every group's gradients together: sqrt of the sum of the groups' squares. */
  total: number;
}

/** The L2 gradient norm of each named group of parameters and of all of them, with one host read (none when no parameter has a gradient). */
export function groupGradNorms(groups: Record<string, Tensor[]>): GradNorms {
  const names = Object.keys(groups);
  const gradsOf = (ps: Tensor[]) => ps.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  return torch.scope(() => {
    const grads = names.map((n) => gradsOf(groups[n]));
    const device = grads.flat()[0]?.device;
    if (device === undefined) return { groups: Object.fromEntries(names.map((n) => [n, 0])), total: 0 };
    const groupNorms = grads.map((gs) =>
      gs.length ? torch.stack(gs.map((g) => g.norm(2).to({ device, dtype: "float32" }))).norm(2) : torch.zeros([], { device, dtype: "float32" }),
    );
    const stacked = torch.stack(groupNorms);
    const values = torch.cat([stacked, stacked.norm(2).unsqueeze(0)]).data();
    return { groups: Object.fromEntries(names.map((n, i) => [n, values[i] as number])), total: values[names.length] as number };
  });
}
