// Random number generators: seeding and the generator states needed for exact resume.
import { type Device, deviceCode } from "./dtype";
import { N } from "./native";
import { handleOf } from "./args";
import { type Tensor, wrap } from "./tensor";

/** Seeds the CPU generator and every CUDA generator (torch.manual_seed). */
export function manualSeed(seed: number): void {
  N.manualSeed(seed);
}

/** The generator state of a device as a uint8 tensor (torch.get_rng_state / torch.cuda.get_rng_state). */
export const getRngState = (device: Device = "cpu"): Tensor => wrap(N.getRngState(deviceCode(device)));

export function setRngState(state: Tensor, device: Device = "cpu"): void {
  N.setRngState(deviceCode(device), handleOf(state, "state"));
}
