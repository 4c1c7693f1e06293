// The system's own state, apart from any run: its weights by checkpoint name (agent.*, demo_encoder.*, demo_cells.*, refiner.*, qwen.*)
// and an in-memory snapshot of everything a step or an adaptation changes, to put back afterwards (test-time
// training adapts a copy of the weights per task; the trainer's OOM retry re-runs a step from the same state).
import { loadLoraStateDict, loraStateDict } from "../../models/lora";
import * as torch from "../../torch";
import type { Tensor } from "../../torch";
import type { System } from "./system";

/** Trainable and persistent tensors by checkpoint name: agent.*, demo_encoder.* and demo_cells.* (when there are), refiner.*, and qwen.* (LoRA or full). */
export function modelTensors(sys: System): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(sys.agent.stateDict())) out[`agent.${k}`] = t;
  if (sys.demoEncoder) for (const [k, t] of Object.entries(sys.demoEncoder.stateDict())) out[`demo_encoder.${k}`] = t;
  if (sys.demoCells) for (const [k, t] of Object.entries(sys.demoCells.stateDict())) out[`demo_cells.${k}`] = t;
  for (const [k, t] of Object.entries(sys.refiner.stateDict())) out[`refiner.${k}`] = t;
  if (sys.config.qwen_train === "lora") for (const [k, t] of Object.entries(loraStateDict(sys.qwen))) out[`qwen.${k}`] = t;
  if (sys.config.qwen_train === "full") for (const [k, t] of Object.entries(sys.qwen.stateDict())) out[`qwen.${k}`] = t;
  return out;
}

/** The tensors whose names start with `prefix`, renamed without it. */
export const withPrefix = (rec: Record<string, Tensor>, prefix: string): Record<string, Tensor> =>
  Object.fromEntries(Object.entries(rec).filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));

/** Loads a checkpoint's model tensors into a built system (strict: names and shapes must match). */
export function loadModelTensors(sys: System, model: Record<string, Tensor>): void {
  sys.agent.loadStateDict(withPrefix(model, "agent."));
  const demo = withPrefix(model, "demo_encoder.");
  if (sys.demoEncoder) sys.demoEncoder.loadStateDict(demo);
  else if (Object.keys(demo).length) throw new Error(`the checkpoint has a demonstration encoder (demo_encoder.*) but the system has none (--agent_context ${sys.config.agent_context ?? "prompt"})`);
  const cells = withPrefix(model, "demo_cells.");
  if (sys.demoCells) sys.demoCells.loadStateDict(cells);
  else if (Object.keys(cells).length) throw new Error(`the checkpoint has a demonstration cell attention (demo_cells.*) but the system has none (--agent_context ${sys.config.agent_context ?? "prompt"})`);
  sys.refiner.loadStateDict(withPrefix(model, "refiner."));
  const q = withPrefix(model, "qwen.");
  if (sys.config.qwen_train === "lora") loadLoraStateDict(sys.qwen, q);
  if (sys.config.qwen_train === "full") sys.qwen.loadStateDict(q);
}

/** A system's mutable state held in memory, to be put back: see snapshotSystem. */
export interface SystemSnapshot {
  /** Puts the weights, memory, refiner baseline and (unless `rng: false`) the generators back as they were. */
  restore(opts?: { rng?: boolean }): void;
  dispose(): void;
}

/**
 * Saves what a step or an adaptation changes besides the optimizer: copies of `params` (none by default),
 * the episodic memory, the refiner's baseline and the CPU (and the run's CUDA) generator. The copies are
 * kept out of every scope until dispose().
 */
export function snapshotSystem(sys: System, params: Tensor[] = []): SystemSnapshot {
  const copies = torch.noGrad(() => params.map((p) => torch.keep(p.detach().clone())));
  const memory = { tensors: Object.fromEntries(Object.entries(sys.memory.stateTensors()).map(([k, t]) => [k, torch.keep(t)])), json: structuredClone(sys.memory.stateJson()) };
  const refiner = structuredClone(sys.refiner.stateJson());
  const device = sys.config.device as torch.Device;
  const rng = torch.keep(torch.getRngState());
  const cudaRng = device.startsWith("cuda") ? torch.keep(torch.getRngState(device)) : null;
  return {
    restore(opts = {}) {
      torch.noGrad(() => params.forEach((p, i) => p.copy_(copies[i]!)));
      sys.memory.loadState(memory.tensors, memory.json);
      sys.refiner.loadStateJson(refiner);
      if (opts.rng === false) return;
      torch.setRngState(rng);
      if (cudaRng) torch.setRngState(cudaRng, device);
    },
    dispose() {
      for (const t of [...copies, ...Object.values(memory.tensors), rng, ...(cudaRng ? [cudaRng] : [])]) t.dispose();
    },
  };
}
