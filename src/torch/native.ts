// Loads the native addon (build/Release/arc_torch.node) and installs TorchError as the class every
// native failure is thrown as. Everything else talks to LibTorch through `N`.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { libc } from "../util/libc";
import type { NativeAddon } from "./native.generated";

/** Every failure inside LibTorch or the addon, with LibTorch's message (first line). */
export class TorchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TorchError";
  }
}

const addonPath = process.env.ARC_TORCH_ADDON ?? join(import.meta.dir, "..", "..", "build", "Release", "arc_torch.node");

/**
 * LibTorch's OpenMP threads spin while they wait for work. With more busy threads than cores (two
 * processes, a compile beside a run, a test suite) the spinning starves the threads doing the work, many
 * times slower than passive waiting (docs/pipeline.md, "Measurements behind the design"). OpenMP reads OMP_WAIT_POLICY from the C environment once, when LibTorch
 * loads, and Bun's process.env does not write that environment, so libc's setenv is called directly.
 * A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
 */
function passiveOpenMpWaits(): void {
  if (process.env.OMP_WAIT_POLICY !== undefined || process.env.GOMP_SPINCOUNT !== undefined) return;
  const c = libc();
  if (!c) return; // not glibc: LibTorch keeps OpenMP's default
  c.setenvDefault("OMP_WAIT_POLICY", "PASSIVE");
  process.env.OMP_WAIT_POLICY = "PASSIVE"; // what child processes inherit, and what a reader sees
}

function load(): NativeAddon {
  if (!existsSync(addonPath)) {
    throw new TorchError(
      `the native addon is not built (${addonPath} is missing): run \`bun run build:native\` ` +
        "(it needs LibTorch: `apt-get install libtorch-dev` on Debian/Ubuntu; see README.md)",
    );
  }
  passiveOpenMpWaits();
  const mod = require(addonPath);
  mod.setErrorClass(TorchError);
  return mod;
}

/**
 * The raw addon: handles are numbers, dtypes are LibTorch ScalarType codes, devices -1 (cpu) / k (cuda:k).
 * Its type is generated from the op table (native/ops.spec.ts), so a call with the wrong arguments or a
 * misspelt op fails the typecheck.
 */
export const N: NativeAddon = load();
