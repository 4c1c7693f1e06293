// The op table (native/ops.spec.ts) and what is generated from it: the binding still has every function
// the hand-written one had, the table and the addon agree, the generated files are fresh, and the
// scalar twins folded into their tensor ops behave as the twins did.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "../../scripts/gen-ops";
import * as torch from "../../src/torch";
import { nativeOpNames } from "../../src/torch/native.generated";

const ROOT = join(import.meta.dir, "..", "..");
const N = torch.native as unknown as Record<string, (...args: unknown[]) => unknown>;

/** Every function the addon exported before the op table: the OP() names in native/*.cc then. */
const OLD_OPS = [
  "setErrorClass", "dispose", "liveTensors", "disposeMany", "distInit", "distDestroy", "distIsInitialized",
  "distRank", "distWorldSize", "distBackends", "distAllReduce", "distBroadcast", "distBarrier", "distAllGather",
  "safetensorsLoad", "safetensorsSave", "empty", "zeros", "ones", "full", "arange", "linspace", "eye", "rand",
  "randn", "randint", "scalarTensor", "zerosLike", "onesLike", "fullLike", "randnLike", "randLike", "emptyLike",
  "to", "clone", "detach", "contiguous", "copy_", "fill_", "zero_", "uniform_", "normal_", "bernoulli",
  "multinomial", "add", "sub", "mul", "div", "pow", "remainder", "maximum", "minimum", "eq", "ne", "lt", "le", "gt",
  "ge", "logicalAnd", "logicalOr", "logicalXor", "atan2", "floorDivide", "equal", "allclose", "addS", "subS",
  "rsubS", "mulS", "divS", "rdivS", "powS", "rpowS", "remainderS", "floorDivideS", "eqS", "neS", "ltS", "leS", "gtS",
  "geS", "maximumS", "minimumS", "neg", "exp", "log", "log1p", "expm1", "log2", "sqrt", "rsqrt", "abs", "sign",
  "tanh", "sigmoid", "logSigmoid", "softplus", "relu", "gelu", "silu", "sin", "cos", "floor", "ceil", "round",
  "trunc", "reciprocal", "square", "erf", "logicalNot", "isnan", "isinf", "isfinite", "nanToNum", "clamp", "where",
  "whereS", "maskedFill", "lerp", "addcmul", "addcdiv", "add_", "sub_", "mul_", "div_", "addS_", "mulS_", "divS_",
  "clamp_", "maskedFill_", "lerp_", "addcmul_", "addcdiv_", "indexPut_", "scatter_", "sum", "mean", "prod", "amax",
  "amin", "maxDim", "minDim", "max", "min", "argmax", "argmin", "norm", "logsumexp", "var", "std", "all", "any",
  "cumsum", "countNonzero", "softmax", "logSoftmax", "matmul", "mm", "bmm", "linear", "outer", "einsum", "view",
  "reshape", "permute", "transpose", "unsqueeze", "squeeze", "flatten", "expand", "repeat", "repeatInterleave",
  "cat", "stack", "split", "splitSizes", "chunk", "narrow", "slice", "select", "indexSelect", "index", "gather",
  "scatter", "scatterS", "scatterAdd", "maskedSelect", "nonzero", "flip", "roll", "triu", "tril", "pad", "topk",
  "sort", "argsort", "oneHot", "embedding", "conv2d", "groupNorm", "layerNorm", "dropout", "crossEntropy", "nllLoss",
  "mseLoss", "klDiv", "bceWithLogits", "interpolate", "scaledDotProductAttention", "hasFusedAttention",
  "hasCpuAmpKernels", "manualSeed", "getRngState", "setRngState", "autocastEnabled", "autocastDtype", "setAutocast",
  "autocastIncrementNesting", "autocastDecrementNesting", "autocastClearCache", "setNumThreads", "getNumThreads",
  "version", "builtWithCuda", "cudaIsAvailable", "cudaDeviceCount", "cudaSynchronize", "cudaMemoryStats",
  "cudaResetPeakMemoryStats", "cudaEmptyCache", "syncCount", "resetSyncCount", "shape", "strides", "dtype", "device",
  "numel", "dim", "isContiguous", "nbytes", "describe", "fromTypedArray", "toTypedArray", "item", "requiresGrad",
  "setRequiresGrad", "isLeaf", "gradFn", "grad", "gradDtype", "setGrad", "retainGrad", "backward", "autogradGrad",
  "zeroGrad", "isGradEnabled", "setGradEnabled", "setData", "clipGradNorm", "adamStep", "adamKernel", "ampUnscale",
  "ampUpdateScale",
];

const t = () => torch.tensor([1, -2, 4]);
/** The values of a raw handle, which it then frees. */
function list(h: unknown): unknown {
  const x = new torch.Tensor(h as number);
  try {
    return x.tolist();
  } finally {
    x.dispose();
  }
}
const cond = () => torch.tensor([true, false, true]);
const idx = () => torch.tensor([2, 0], { dtype: "int64" });

/** Each scalar twin the table folded into its tensor op: that op called natively with a number, and what the twin gave. */
const FOLDED: Record<string, { op: string; call: () => unknown; expected: unknown }> = {
  addS: { op: "add", call: () => N.add(t()._h, 2), expected: [3, 0, 6] },
  subS: { op: "sub", call: () => N.sub(t()._h, 2), expected: [-1, -4, 2] },
  rsubS: { op: "rsub", call: () => N.rsub(t()._h, 2), expected: [1, 4, -2] },
  mulS: { op: "mul", call: () => N.mul(t()._h, 2), expected: [2, -4, 8] },
  divS: { op: "div", call: () => N.div(t()._h, 2), expected: [0.5, -1, 2] },
  rdivS: { op: "rdiv", call: () => N.rdiv(t()._h, 2), expected: [2, -1, 0.5] },
  powS: { op: "pow", call: () => N.pow(t()._h, 2), expected: [1, 4, 16] },
  rpowS: { op: "rpow", call: () => N.rpow(t()._h, 2), expected: [2, 0.25, 16] },
  remainderS: { op: "remainder", call: () => N.remainder(t()._h, 3), expected: [1, 1, 1] },
  floorDivideS: { op: "floorDivide", call: () => N.floorDivide(t()._h, 3), expected: [0, -1, 1] },
  eqS: { op: "eq", call: () => N.eq(t()._h, 4), expected: [0, 0, 1] },
  neS: { op: "ne", call: () => N.ne(t()._h, 4), expected: [1, 1, 0] },
  ltS: { op: "lt", call: () => N.lt(t()._h, 1), expected: [0, 1, 0] },
  leS: { op: "le", call: () => N.le(t()._h, 1), expected: [1, 1, 0] },
  gtS: { op: "gt", call: () => N.gt(t()._h, 1), expected: [0, 0, 1] },
  geS: { op: "ge", call: () => N.ge(t()._h, 1), expected: [1, 0, 1] },
  maximumS: { op: "maximum", call: () => N.maximum(t()._h, 0), expected: [1, 0, 4] },
  minimumS: { op: "minimum", call: () => N.minimum(t()._h, 0), expected: [0, -2, 0] },
  whereS: { op: "where", call: () => N.where(cond()._h, t()._h, 9), expected: [1, 9, 4] },
  scatterS: { op: "scatter", call: () => N.scatter(torch.zeros(3)._h, 0, idx()._h, 7), expected: [7, 0, 7] },
  addS_: { op: "add_", call: () => inPlace((h) => N.add_(h, 2)), expected: [3, 0, 6] },
  mulS_: { op: "mul_", call: () => inPlace((h) => N.mul_(h, 2)), expected: [2, -4, 8] },
  divS_: { op: "div_", call: () => inPlace((h) => N.div_(h, 2)), expected: [0.5, -1, 2] },
};

function inPlace(f: (h: number) => unknown): number {
  const x = t();
  f(x._h);
  return x.clone()._h;
}
const bools = (v: unknown): unknown => (Array.isArray(v) && typeof v[0] === "boolean" ? v.map(Number) : v);

describe("the op table", () => {
  test("the generated binding has every function the hand-written one had (a scalar twin through its tensor op)", () => {
    expect(OLD_OPS.length).toBe(263);
    const exported = new Set(Object.keys(N));
    const missing = OLD_OPS.filter((n) => !exported.has(n) && !(n in FOLDED));
    expect(missing).toEqual([]);
    for (const [twin, f] of Object.entries(FOLDED)) {
      expect(OLD_OPS).toContain(twin);
      expect(exported.has(f.op)).toBe(true);
      expect(exported.has(twin)).toBe(false);
      torch.scope(() => expect([twin, bools(list(f.call()))]).toEqual([twin, f.expected]));
    }
  });

  test("the table and the addon's exports agree", () => {
    expect([...nativeOpNames].sort() as string[]).toEqual(Object.keys(N).sort());
    for (const n of nativeOpNames) expect(typeof N[n]).toBe("function");
  });

  test("a JS number is a Scalar natively: int tensors stay int, a fractional number promotes", () => {
    torch.scope(() => {
      const i = torch.tensor([1, 2], { dtype: "int64" });
      expect(i.add(2).dtype).toBe("int64");
      expect(i.mul(3).tolist()).toEqual([3, 6]);
      expect(i.add(0.5).dtype).toBe("float32");
      expect(i.add(1, 2).tolist()).toEqual([3, 4]);
      expect(i.sub(1, 0.5).tolist()).toEqual([0.5, 1.5]);
      expect(i.floorDivide(1.5).tolist()).toEqual([1, 2]);
      const f = torch.tensor([1, 2]);
      expect(f.add(torch.ones(2), 3).tolist()).toEqual([4, 5]);
      expect(f.clone().sub_(1, 2).tolist()).toEqual([-1, 0]);
    });
  });

  test("tensor arguments are checked, naming the op and the argument", () => {
    const x = torch.ones(2);
    expect(() => torch.F.linear("x" as never, x)).toThrow(/^linear: argument 0 must be a Tensor/);
    expect(() => torch.F.embedding(x, {} as never)).toThrow(/^embedding: argument 0 must be a Tensor/);
    expect(() => torch.where(x, x, "1" as never)).toThrow(/^where: argument 2 must be a Tensor/);
    expect(() => x.index([null, 3 as never])).toThrow(/^index: argument 1\[1\] must be a Tensor/);
    expect(() => torch.stack("ab" as never)).toThrow(/^stack: argument 0 must be an array of Tensors/);
    const gone = torch.ones(2);
    gone.dispose();
    expect(() => x.add(gone)).toThrow(/add: argument 1 is a disposed tensor/);
    expect(() => x.mul(gone)).toThrow(/mul: argument 1 is a disposed tensor/);
  });

  test("reading .grad twice gives one Tensor while it is the gradient", () => {
    const p = torch.tensor([1, 2], { requiresGrad: true });
    expect(p.grad).toBeNull();
    p.mul(p).sum().backward();
    const g = p.grad!;
    expect(p.grad).toBe(g);
    const live = torch.liveTensors();
    for (let k = 0; k < 5; k++) p.grad;
    expect(torch.liveTensors()).toBe(live);
    // A second backward accumulates into the same gradient: still the same Tensor, new values.
    p.mul(3).sum().backward();
    expect(p.grad).toBe(g);
    expect(g.tolist()).toEqual([5, 7]);
    // Set to none and made again: a new Tensor.
    p.grad = null;
    expect(p.grad).toBeNull();
    p.sum().backward();
    const g2 = p.grad!;
    expect(g2).not.toBe(g);
    expect(g2.tolist()).toEqual([1, 1]);
    // Disposed by hand (or by a scope): the next read makes a new handle.
    g2.dispose();
    expect(p.grad!.tolist()).toEqual([1, 1]);
    const inner = torch.scope(() => p.grad!.isDisposed);
    expect(inner).toBe(false);
  });
});

describe("the generated files", () => {
  test("are what the generator writes from the table now", () => {
    for (const [rel, text] of generate()) expect([rel, readFileSync(join(ROOT, rel), "utf8") === text]).toEqual([rel, true]);
    const r = spawnSync(process.execPath, [join(ROOT, "scripts", "gen-ops.ts"), "--check"], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toContain("fresh");
    expect(r.status).toBe(0);
  });

  test("--check names a stale file and exits 1; a plain run rewrites it", () => {
    const dir = mkdtempSync(join(tmpdir(), "gen-ops-"));
    try {
      for (const d of ["scripts", "native", "src/torch"]) mkdirSync(join(dir, d), { recursive: true });
      cpSync(join(ROOT, "scripts", "gen-ops.ts"), join(dir, "scripts", "gen-ops.ts"));
      cpSync(join(ROOT, "native", "ops.spec.ts"), join(dir, "native", "ops.spec.ts"));
      const run = (...a: string[]) => spawnSync(process.execPath, [join(dir, "scripts", "gen-ops.ts"), ...a], { encoding: "utf8" });
      expect(run().status).toBe(0);
      expect(run("--check").status).toBe(0);
      const inc = join(dir, "native", "ops.generated.inc");
      writeFileSync(inc, `${readFileSync(inc, "utf8")}OP(extra, return 1;)\n`);
      const stale = run("--check");
      expect(stale.status).toBe(1);
      expect(stale.stderr).toContain("native/ops.generated.inc");
      expect(stale.stderr).not.toContain("tensor.generated.ts");
      expect(run().status).toBe(0);
      expect(run("--check").status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
