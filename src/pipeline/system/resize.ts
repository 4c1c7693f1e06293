// Resizing predictions between grid sizes (docs/pipeline.md, "Resize"). The agent predicts at the input's size; the
// loss and the rewards need the target's. Hard predictions resize with nearest neighbour (colours stay
// colours), logits with bilinear interpolation (align_corners false), so the loss stays differentiable.
import * as torch from "../../torch";
import type { Tensor } from "../../torch";

/** Hard prediction [H, W] (int64 colours) -> [h, w] with nearest neighbour. */
export function resizeHard(pred: Tensor, h: number, w: number): Tensor {
  const [H, W] = pred.shape;
  if (H === h && W === w) return pred;
  const x = pred.view(1, 1, H, W).float();
  return torch.F.interpolate(x, { size: [h, w], mode: "nearest" }).view(h, w).long();
}

/** Logits [T, H, W, C] -> [T, h, w, C] with bilinear interpolation over H, W. */
export function resizeLogits(logits: Tensor, h: number, w: number): Tensor {
  const [T, H, W, C] = logits.shape;
  if (H === h && W === w) return logits;
  const x = logits.permute(0, 3, 1, 2); // [T, C, H, W]
  return torch.F.interpolate(x, { size: [h, w], mode: "bilinear", alignCorners: false }).permute(0, 2, 3, 1);
}

/** A grid (number[][]) from a hard prediction tensor [h, w]. */
export function toGrid(pred: Tensor): number[][] {
  return pred.tolist() as number[][];
}

/** A grid as an int64 tensor [H, W] on a device. */
export function gridTensor(grid: number[][], device: torch.Device = "cpu"): Tensor {
  const H = grid.length;
  const W = grid[0].length;
  return torch.fromTypedArray(Int32Array.from(grid.flat()), [H, W], { dtype: "int64", device });
}
