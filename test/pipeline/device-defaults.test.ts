// CUDA's own defaults (config/train-config.ts, CUDA_DEFAULTS): applied on CUDA where neither the command line nor a
// preset sets the flag; never on the CPU; listed as such by --help.
import { describe, expect, test } from "bun:test";
import { CUDA_DEFAULTS, DEFAULTS, helpText, parseTrainArgs, withDeviceDefaults } from "../../src/pipeline/config/train-config";

const onDevice = (argv: string[], device: string) => {
  const p = parseTrainArgs(argv);
  return withDeviceDefaults({ ...p.config, device }, p.explicit);
};

describe("device-dependent defaults", () => {
  test("on CUDA: batch 16, bf16, MLP recomputation, a token cap; on the CPU: the plain defaults", () => {
    const c = onDevice([], "cuda");
    expect(c.batch_size).toBe(16);
    expect(c.amp_dtype).toBe("bf16");
    expect(c.grad_checkpointing).toBe("mlp");
    expect(c.max_batch_tokens).toBe(24576);
    const cpu = onDevice([], "cpu");
    for (const k of Object.keys(CUDA_DEFAULTS)) expect(cpu[k as keyof typeof cpu]).toEqual(DEFAULTS[k as keyof typeof DEFAULTS]);
    expect(onDevice([], "cuda:1").batch_size).toBe(16);
  });
  test("a flag on the command line wins; a preset's value wins", () => {
    const c = onDevice(["--batch_size", "4", "--amp_dtype", "fp16", "--grad_checkpointing", "off"], "cuda");
    expect([c.batch_size, c.amp_dtype, c.grad_checkpointing, c.max_batch_tokens]).toEqual([4, "fp16", "off", 24576]);
    const smoke = onDevice(["--preset", "smoke"], "cuda");
    expect(smoke.batch_size).toBe(2); // the preset's
    expect(smoke.amp_dtype).toBe("bf16");
  });
  test("--help names the CUDA default beside the plain one", () => {
    const line = helpText().split("\n").find((l) => l.trimStart().startsWith("--batch_size"))!;
    expect(line).toContain(`[${DEFAULTS.batch_size} on the CPU] (on CUDA: 16)`);
  });
});
