// The binding on CUDA: ops agree with the CPU, AMP uses the fused kernels, memory statistics move, RNG
// state round-trips. Runs where CUDA is present (the GPU machine); elsewhere every test is reported as
// skipped, with the reason printed.
import { describe, expect, test } from "bun:test";
import * as torch from "../../src/torch";
import * as nn from "../../src/nn";
import { expectClose } from "../helpers/numeric";

const cuda = torch.cuda.isAvailable();
if (!cuda) console.warn(`test/cuda: skipped (no CUDA: addon built ${torch.version().cuda ? "with" : "without"} CUDA, LibTorch ${torch.version().libtorch})`);

describe.skipIf(!cuda)("CUDA", () => {
  test("ops on cuda:0 match the CPU", () => {
    torch.manualSeed(0);
    const a = torch.randn(64, 32);
    const b = torch.randn(32, 16);
    const ref = torch.F.gelu(a.matmul(b)).softmax(-1);
    const got = torch.F.gelu(a.cuda().matmul(b.cuda())).softmax(-1);
    expect(got.device).toBe("cuda:0");
    expectClose(got.cpu().flatten().tolist(), ref.flatten().tolist(), 1e-5, 1e-4);
    const img = torch.randn(1, 3, 5, 5);
    const w = torch.randn(4, 3, 3, 3);
    expectClose(torch.F.conv2d(img.cuda(), w.cuda(), null, { padding: 1 }).cpu().flatten().tolist(), torch.F.conv2d(img, w, null, { padding: 1 }).flatten().tolist(), 1e-4, 1e-4);
    const x = torch.randn(1, 10, 3, 7);
    expectClose(torch.F.interpolate(x.cuda(), { size: [9, 4], mode: "bilinear" }).cpu().flatten().tolist(), torch.F.interpolate(x, { size: [9, 4], mode: "bilinear" }).flatten().tolist(), 1e-5);
  });

  test("autocast float16 runs matmul in half and keeps softmax in float32", () => {
    const a = torch.randn([8, 8], { device: "cuda" });
    const [mm, sm] = torch.autocast({ device: "cuda" }, () => [a.matmul(a).dtype, a.softmax(-1).dtype]);
    expect(mm).toBe("float16");
    expect(sm).toBe("float32");
    expect(torch.autocast({ device: "cuda", dtype: "bfloat16" }, () => a.matmul(a).dtype)).toBe("bfloat16");
    expect(a.matmul(a).dtype).toBe("float32");
  });

  test("GradScaler on CUDA: fused unscale, skip on inf, backoff and growth", () => {
    const p = torch.keep(torch.zeros([2], { device: "cuda", requiresGrad: true }));
    const opt = { steps: 0, params: () => [p], step() { this.steps++; } };
    const s = new torch.GradScaler({ initScale: 4, growthInterval: 2 });
    p.grad = torch.tensor([8, -4]).cuda();
    s.unscale_(opt);
    expect(p.grad!.cpu().tolist()).toEqual([2, -1]);
    expect(s.step(opt)).toBe(true);
    s.update();
    p.grad = torch.tensor([1, Number.POSITIVE_INFINITY]).cuda();
    expect(s.step(opt)).toBe(false);
    s.update();
    expect(s.getScale()).toBe(2);
    for (let i = 0; i < 2; i++) {
      p.grad = torch.ones(2).cuda();
      s.step(opt);
      s.update();
    }
    expect(s.getScale()).toBe(4);
    expect(opt.steps).toBe(3);
  });

  test("a training step trains on CUDA and leaks neither tensors nor CUDA memory", () => {
    torch.manualSeed(0);
    const model = new nn.Sequential(new nn.Linear(16, 32), new nn.GELU(), new nn.Linear(32, 1)).to("cuda");
    const opt = new torch.AdamW(model.parameters(), { lr: 1e-2 });
    const x = torch.keep(torch.randn([64, 16], { device: "cuda" }));
    const y = torch.keep(x.sum(1, true).tanh());
    const step = () => torch.scope(() => {
      const loss = torch.F.mseLoss(model.forward(x), y);
      loss.backward();
      opt.step();
      opt.zeroGrad();
      return loss.item();
    });
    const first = step();
    torch.cuda.synchronize();
    const live = torch.liveTensors();
    const mem = torch.cuda.memoryStats().allocated;
    let last = first;
    for (let i = 0; i < 300; i++) last = step();
    torch.cuda.synchronize();
    expect(torch.liveTensors()).toBe(live);
    expect(torch.cuda.memoryStats().allocated).toBe(mem);
    expect(last).toBeLessThan(first / 5);
    expect(torch.cuda.memoryStats().peakAllocated).toBeGreaterThanOrEqual(mem);
  });

  test("memInfo: the card's total memory, and free memory that falls while a large tensor lives", () => {
    const before = torch.cuda.memInfo(0);
    expect(before.total).toBeGreaterThan(1 << 30);
    expect(before.free).toBeLessThanOrEqual(before.total);
    const big = torch.empty([256, 1024, 1024], { device: "cuda", dtype: "float32" }); // 1 GiB
    torch.cuda.synchronize();
    expect(torch.cuda.memInfo(0).free).toBeLessThan(before.free);
    big.dispose();
  });

  test("CUDA RNG state round-trips; safetensors load onto the GPU", () => {
    torch.manualSeed(5);
    const st = torch.getRngState("cuda");
    const a = torch.randn([4], { device: "cuda" }).cpu().tolist();
    torch.setRngState(st, "cuda");
    expect(torch.randn([4], { device: "cuda" }).cpu().tolist()).toEqual(a);
    const path = `/tmp/cuda-st-${process.pid}.safetensors`;
    torch.safetensors.saveFile(path, { w: torch.arange(6, undefined, 1, { dtype: "float32" }) });
    const w = torch.safetensors.loadFile(path, { device: "cuda" }).w;
    expect(w.device).toBe("cuda:0");
    expect(w.cpu().tolist()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
