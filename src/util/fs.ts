// Small file-system questions asked in several places.
import { statSync } from "node:fs";

/** Whether `path` is a folder (false when it does not exist or cannot be read). */
export function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
