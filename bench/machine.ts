// A description of the machine for benchmark JSON: every figure says where it was measured.
import { spawnSync } from "node:child_process";
import { cpus, totalmem } from "node:os";
import * as torch from "../src/torch";

export function machine(): Record<string, unknown> {
  const gpu = spawnSync("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader"], { encoding: "utf8" });
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    gpu: gpu.status === 0 ? gpu.stdout.trim() : null,
    libtorch: torch.version().libtorch,
    builtWithCuda: torch.version().cuda,
    cudaAvailable: torch.cuda.isAvailable(),
    torchThreads: torch.getNumThreads(),
    bun: Bun.version,
  };
}

/** Runs a Python reference script with the first interpreter that has torch; its JSON line, or null. */
export function pythonReference(script: string, args: string[]): Record<string, unknown> | null {
  for (const py of [process.env.PYTHON ?? "python3", "/usr/bin/python3"]) {
    const r = spawnSync(py, [script, ...args], { encoding: "utf8", timeout: 600_000 });
    if (r.status === 0) {
      const line = r.stdout.trim().split("\n").filter((l) => l.startsWith("{")).at(-1);
      if (line) return { ...JSON.parse(line), python: py };
    }
  }
  return null;
}
