// Loaded once before the test files (bunfig.toml [test] preload): pins LibTorch's intra-op threads to
// ARC_TEST_THREADS (default 1) for the in-process tests. Builds default differently (Debian's 1.13
// picks 1 in a VM, pip's 2.x picks 2), and on a busy 2-core machine two threads make the small ops
// these tests run many times slower (1000 AdamW steps: 1 s on one thread, 26 s on two). Tests that
// start their own processes choose their own threads.
//
// The per-test timeout is set on the command line (`npm test` is `bun test --timeout 120000`): bun 1.4
// ignores bunfig's `timeout`, and a preload's setDefaultTimeout reaches only the first file.
import { existsSync } from "node:fs";
import { join } from "node:path";

const threads = Number(process.env.ARC_TEST_THREADS ?? 1);
// Without the addon the torch tests fail on their own with the build's message; the others still run.
if (existsSync(join(import.meta.dir, "..", "build", "Release", "arc_torch.node"))) {
  const torch = await import("../src/torch");
  torch.setNumThreads(threads);
  const v = torch.version();
  console.error(`test setup: LibTorch ${v.libtorch}${v.cuda ? " (CUDA build)" : ""}, ${threads} intra-op thread${threads === 1 ? "" : "s"}`);
}
