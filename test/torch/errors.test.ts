// Bad input is a TorchError naming the problem, and the process carries on.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";

const { F, TorchError } = torch;

function throwsTorch(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(TorchError);
  expect((caught as Error).message).toMatch(message);
}

describe("bad input never aborts the process", () => {
  test("shape mismatches", () => {
    throwsTorch(() => torch.ones(2).add(torch.ones(3)), /add: The size of tensor a \(2\) must match the size of tensor b \(3\)/);
    throwsTorch(() => torch.ones(2, 3).matmul(torch.ones(2, 3)), /matmul: .*cannot be multiplied/);
    throwsTorch(() => torch.ones(6).view(4), /view: shape '\[4\]' is invalid for input of size 6/);
    throwsTorch(() => torch.cat([torch.ones(2, 2), torch.ones(3, 3)], 0), /cat:/);
    throwsTorch(() => F.conv2d(torch.ones(1, 2, 4, 4), torch.ones(1, 3, 3, 3)), /conv2d:/);
  });

  test("dtype mismatches", () => {
    throwsTorch(() => torch.ones(2, 2).matmul(torch.ones([2, 2], { dtype: "int64" })), /matmul: expected .*(Float|Long)/i);
    throwsTorch(() => F.crossEntropy(torch.ones(2, 3), torch.ones(2)), /crossEntropy:/);
    throwsTorch(() => F.embedding(torch.ones(2), torch.ones(3, 4)), /embedding:/);
  });

  test("out-of-range indices", () => {
    throwsTorch(() => torch.ones(3).indexSelect(0, torch.tensor([5], { dtype: "int64" })), /indexSelect: .*out of range|index out of range/i);
    throwsTorch(() => F.embedding(torch.tensor([7], { dtype: "int64" }), torch.ones(3, 2)), /embedding: .*out of range/i);
    throwsTorch(() => torch.ones(2, 2).gather(1, torch.tensor([[0, 9], [0, 0]], { dtype: "int64" })), /gather:/);
    throwsTorch(() => torch.ones(3).index([torch.tensor([3], { dtype: "int64" })]), /index: index 3 is out of bounds/);
    throwsTorch(() => torch.ones(3).narrow(0, 2, 5), /narrow:/);
    throwsTorch(() => torch.ones(3).select(0, 3), /select:/);
    throwsTorch(() => torch.ones(3).sum(4), /sum: Dimension out of range/);
    expect(() => torch.ones(2).size(5)).toThrow(TorchError);
  });

  // Where CUDA exists this case cannot arise (test/cuda covers the GPU); bun reports it as skipped there.
  test.skipIf(torch.cuda.isAvailable())("CUDA requested without CUDA", () => {
    throwsTorch(() => torch.zeros([2], { device: "cuda" }), /CUDA .*not available/);
    throwsTorch(() => torch.ones(2).to("cuda"), /CUDA .*not available/);
    throwsTorch(() => torch.ones(2).cuda(3), /CUDA .*not available/);
    throwsTorch(() => torch.autocast({ device: "cuda" }, () => 1), /CUDA requested but CUDA is not available/);
    throwsTorch(() => torch.ones(2).to("gpu" as never), /unknown dtype "gpu"/);
    throwsTorch(() => torch.zeros([2], { device: "tpu" as never }), /unknown device "tpu"/);
  });

  test("wrong argument types from JS", () => {
    const t = torch.ones(2);
    throwsTorch(() => t.add("x" as never), /add: argument 1 must be a Tensor \(got undefined\)/);
    throwsTorch(() => t.add(null as never), /argument 1 must be a Tensor/);
    throwsTorch(() => t.view("a" as never), /view: argument 1\[0\] must be an integer/);
    throwsTorch(() => t.flip(undefined as never), /flip: argument 1\[0\] must be an integer/);
    throwsTorch(() => t.roll(1, "x" as never), /roll: argument 2\[0\] must be an integer/);
    throwsTorch(() => t.view([1.5] as never), /argument 1\[0\] must be an integer/);
    throwsTorch(() => torch.zeros("3" as never), /zeros: argument 0\[0\] must be an integer/);
    throwsTorch(() => torch.cat([t, {} as never]), /cat: argument 0\[1\] must be a Tensor/);
    throwsTorch(() => t.sum(undefined, "yes" as never), /sum: argument 2 must be a boolean/);
    throwsTorch(() => torch.tensor([[1, 2], [3]]), /ragged data at \[1\]/);
    throwsTorch(() => torch.tensor(["a"] as never), /element at \[0\] is string/);
    throwsTorch(() => torch.ones(3).item(), /item\(\) needs a tensor with one element/);
    throwsTorch(() => torch.ones(2).to("float8" as never), /unknown dtype "float8"/);
    throwsTorch(() => F.interpolate(torch.ones(1, 1, 2, 2), { size: [3, 3], mode: "bicubic" as never }), /mode must be "nearest" or "bilinear"/);
    throwsTorch(() => F.crossEntropy(torch.ones(2, 2), torch.zeros([2], { dtype: "int64" }), { reduction: "avg" as never }), /reduction must be/);
  });

  test("impossible allocations and negative sizes", () => {
    throwsTorch(() => torch.zeros(-1), /zeros:/);
    throwsTorch(() => torch.empty(1_000_000, 1_000_000, 1_000), /empty:/);
  });

  test("the process still computes after every error above", () => {
    expect(torch.ones(2).add(1).sum().item()).toBe(4);
  });
});
