// Per-group gradient norms before clipping, against norms worked out by hand.
import { afterEach, describe, expect, test } from "bun:test";
import { groupGradNorms } from "../../../src/pipeline/trainer/grad-norms";
import * as torch from "../../../src/torch";
import type { Tensor } from "../../../src/torch";

const made: Tensor[] = [];
/** A kept parameter of these values, with `grad` as its gradient (none when grad is null). */
function param(values: number[] | number[][], grad: number[] | number[][] | null, dtype: torch.DType = "float32"): Tensor {
  const p = torch.keep(torch.tensor(values, { dtype }).requiresGrad_(true));
  if (grad) p.grad = torch.keep(torch.tensor(grad, { dtype }));
  made.push(p);
  return p;
}
afterEach(() => torch.dispose(made.splice(0)));

describe("groupGradNorms", () => {
  test("each group's L2 norm and the total, worked out by hand, with one host read", () => {
    // agent: |(3, 4)| = 5. qwen: sqrt(1+4+4 + 0+16) = 5. refiner: sqrt(1+1+1+1) = 2. total: sqrt(25+25+4) = sqrt(54).
    const groups = {
      agent: [param([1, 1], [3, 4])],
      qwen: [param([0, 0, 0], [1, 2, 2]), param([[1, 1]], [[0, 4]])],
      refiner: [param([[0, 0], [0, 0]], [[1, -1], [-1, 1]]), param([5], null)],
    };
    const before = torch.liveTensors();
    const { result, syncs } = torch.countSyncs(() => groupGradNorms(groups));
    expect(syncs).toBe(1);
    expect(torch.liveTensors()).toBe(before); // nothing left behind
    expect(result.groups.agent).toBeCloseTo(5, 6);
    expect(result.groups.qwen).toBeCloseTo(5, 6);
    expect(result.groups.refiner).toBeCloseTo(2, 6);
    expect(result.total).toBeCloseTo(Math.sqrt(54), 6);
    expect(Object.keys(result.groups)).toEqual(["agent", "qwen", "refiner"]);
    // The gradients are left as they were (measured, not clipped).
    expect(groups.agent[0].grad!.tolist()).toEqual([3, 4]);
  });

  test("the total is what clipGradNorm measures over all the groups' parameters", () => {
    const groups = { a: [param([0, 0, 0, 0], [0.5, -1.5, 2.25, 3])], b: [param([0, 0], [7, -0.125], "float64"), param([[0, 0]], [[1, 2]], "bfloat16")] };
    const r = groupGradNorms(groups);
    expect(r.total).toBeCloseTo(torch.gradNorm([...groups.a, ...groups.b]), 5);
    expect(r.groups.a).toBeCloseTo(Math.sqrt(0.25 + 2.25 + 5.0625 + 9), 6);
    // A bfloat16 gradient's norm is taken in bfloat16, as the clip takes it: sqrt(5) rounds to 2.234375.
    expect(r.groups.b).toBeCloseTo(Math.sqrt(49 + 0.015625 + 2.234375 ** 2), 6);
  });

  test("a group without gradients is 0; no gradient anywhere reads nothing", () => {
    const { result, syncs } = torch.countSyncs(() => groupGradNorms({ agent: [param([1], null)], qwen: [] }));
    expect(result).toEqual({ groups: { agent: 0, qwen: 0 }, total: 0 });
    expect(syncs).toBe(0);
    expect(groupGradNorms({ agent: [param([1, 2], [0, 0])], qwen: [] })).toEqual({ groups: { agent: 0, qwen: 0 }, total: 0 });
  });

  test("a non-finite gradient shows in its group and the total, the other groups stay finite", () => {
    const r = groupGradNorms({ agent: [param([0, 0], [3, 4])], qwen: [param([0], [Number.POSITIVE_INFINITY])], refiner: [param([0], [Number.NaN])] });
    expect(r.groups.agent).toBeCloseTo(5, 6);
    expect(r.groups.qwen).toBe(Number.POSITIVE_INFINITY);
    expect(r.groups.refiner).toBeNaN();
    expect(Number.isFinite(r.total)).toBe(false);
  });
});
