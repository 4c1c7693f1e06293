// Loads the native addon (build/Release/arc_torch.node) and installs TorchError as the class every
// native failure is thrown as. Everything else talks to LibTorch through `N`.
import { existsSync } from "node:fs";
import { join } from "node:path";

/** Every failure inside LibTorch or the addon, with LibTorch's message (first line). */
export class TorchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TorchError";
  }
}

const addonPath = process.env.ARC_TORCH_ADDON ?? join(import.meta.dir, "..", "..", "build", "Release", "arc_torch.node");

function load(): any {
  if (!existsSync(addonPath)) {
    throw new TorchError(
      `the native addon is not built (${addonPath} is missing): run \`bun run build:native\` ` +
        "(it needs LibTorch: `apt-get install libtorch-dev` on Debian/Ubuntu; see README.md)",
    );
  }
  const mod = require(addonPath);
  mod.setErrorClass(TorchError);
  return mod;
}

/** The raw addon: handles are numbers, dtypes are LibTorch ScalarType codes, devices -1 (cpu) / k (cuda:k). */
// biome-ignore lint: the addon is untyped by nature; src/torch/*.ts give it types.
export const N: Record<string, (...args: any[]) => any> = load();
