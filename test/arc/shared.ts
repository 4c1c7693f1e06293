// Where the shared ARC-AGI-2 data lives for tests; missing data is a failure, never a silent skip.
import { existsSync } from "node:fs";
import path from "node:path";

export const ARC2 = path.join(import.meta.dir, "../../../shared/data/arc/ARC-AGI-2");

export function requireArc2(): string {
  if (!existsSync(path.join(ARC2, "training")) || !existsSync(path.join(ARC2, "evaluation"))) {
    throw new Error(`the shared ARC-AGI-2 data is missing: expected ${ARC2}/training and /evaluation (see ../shared/data/README.md)`);
  }
  return ARC2;
}
