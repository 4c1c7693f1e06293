// scripts/qwen.ts and bench/qwen.ts stay runnable (tiny model, CPU).
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { main } from "../scripts/qwen.ts";

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += s + "\n"), err: (s) => (err += s + "\n") });
  return { code, out, err };
}

describe("scripts/qwen.ts", () => {
  test("--help, bad arguments (exit 2)", async () => {
    const h = await run(["--help"]);
    expect(h.code).toBe(0);
    expect(h.out).toContain("--max_new_tokens");
    expect(h.out).toContain('"tiny"');
    for (const bad of [["--top_p", "0"], ["--max_new_tokens", "x"], ["--device", "tpu"], ["--dtype", "int8"], ["--nope"]]) {
      const r = await run(["--model", "tiny", ...bad]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^qwen: /);
    }
  });

  test("--model tiny: generation and hidden-state statistics (JSON)", async () => {
    const g = await run(["--model", "tiny", "--max_new_tokens", "3", "--json", "--device", "cpu"]);
    expect(g.code).toBe(0);
    const res = JSON.parse(g.out);
    expect(res).toMatchObject({ model: "tiny", device: "cpu", dtype: "float32", hidden_size: 64, layers: 2 });
    expect(res.ids.length).toBeGreaterThan(0);
    expect(res.ids.length).toBeLessThanOrEqual(3);
    const h = await run(["--model", "tiny", "--hidden", "--json", "--prompt", "0 1 2", "--raw", "--device", "cpu"]);
    expect(h.code).toBe(0);
    const st = JSON.parse(h.out);
    expect(st.prompt_tokens).toBe(5);
    expect(st.shape).toEqual([5, 64]);
    expect(st.finite).toBe(true);
    expect(st.mean_pooled_norm).toBeGreaterThan(0);
  });

  test("a missing model folder is exit 1 with one line", async () => {
    const r = await run(["--model", "/nonexistent/qwen", "--hidden", "--device", "cpu"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("/nonexistent/qwen");
  });
});

describe("bench/qwen.ts", () => {
  test("runs on the CPU and prints JSON naming the machine", () => {
    const r = spawnSync(process.execPath, [join(import.meta.dir, "..", "bench", "qwen.ts"), "--device", "cpu", "--size", "tiny", "--dtype", "float32", "--tokens", "8,16", "--warmup", "0", "--reps", "1"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.tokens)).toEqual([8, 16]);
    for (const l of lines) {
      expect(l).toMatchObject({ impl: "arc-efe", size: "tiny", device: "cpu", dtype: "float32" });
      expect(l.tok_per_s).toBeGreaterThan(0);
      expect(l.peak_rss_gib).toBeGreaterThan(0);
      expect(typeof l.machine.cpu).toBe("string");
      expect(l.machine.cores).toBeGreaterThan(0);
    }
  });
});
