// Flags from a file (--config run.yaml): a JSON or YAML mapping of flag names (snake_case, as on the
// command line without the dashes) to values, read and checked against the flag table, so a file
// fails as a command line would: one line, naming the file and the key. A run's own config.json (the
// trainer's TrainConfig: every flag, `resume` null) reads back as it is, so a run can be repeated from it.
// YAML goes through Bun's built-in parser (YAML 1.2: `1e-4` is a number, `yes` a string).
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { closestFlag } from "./flags";

/** What the file reader needs of a flag's spec (config/train-config.ts's FLAGS entries have this shape). */
export interface ConfigKeySpec {
  kind: "int" | "float" | "string" | "bool";
  choices?: readonly string[];
  min?: number;
  max?: number | (() => number);
}

export interface ConfigFileOptions {
  /** Keys that are read and dropped (fields a file may hold that are not flags). */
  ignore?: Iterable<string>;
  /** Keys whose null means "not set" (flags that default to none, like resume or backup_dir); they are left out of the result. */
  nullable?: Iterable<string>;
}

export type ConfigValue = string | number | boolean;

/** A file that cannot be read as flags: one line naming the file (and the key, where one is at fault). */
export class ConfigFileError extends Error {}

/**
 * The flag values in `path` (.json, .yaml or .yml), typed by `known` (flag name -> spec). The caller
 * merges them under the command line's (`{ ...fromFile, ...fromCommandLine }`: the command line wins).
 */
export function readConfigFile(path: string, known: Readonly<Record<string, ConfigKeySpec>>, opts: ConfigFileOptions = {}): Record<string, ConfigValue> {
  const data = parseFile(path);
  const ignore = new Set(opts.ignore ?? []);
  const nullable = new Set(opts.nullable ?? []);
  const out: Record<string, ConfigValue> = {};
  for (const [key, value] of Object.entries(data)) {
    if (ignore.has(key)) continue;
    const spec = Object.hasOwn(known, key) ? known[key] : undefined;
    if (!spec) {
      const near = closestFlag(key, Object.keys(known));
      throw new ConfigFileError(`${path}: unknown key "${key}"${near ? `; did you mean "${near}"?` : ""}`);
    }
    if (value === null && nullable.has(key)) continue;
    out[key] = checkedValue(path, key, spec, value);
  }
  return out;
}

/** The file's top-level mapping. */
function parseFile(path: string): Record<string, unknown> {
  const ext = extname(path).toLowerCase();
  if (![".json", ".yaml", ".yml"].includes(ext)) throw new ConfigFileError(`${path}: a config file is .json, .yaml or .yml, not "${ext || "no extension"}"`);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigFileError(`${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a file" : (e as Error).message}`);
  }
  let data: unknown;
  try {
    data = ext === ".json" ? JSON.parse(text) : Bun.YAML.parse(text);
  } catch (e) {
    throw new ConfigFileError(`${path} is not valid ${ext === ".json" ? "JSON" : "YAML"}: ${(e as Error).message.split("\n")[0]}`);
  }
  // An empty YAML file is null: no flags, as an empty command line.
  if (data === null && ext !== ".json") return {};
  if (data === null || typeof data !== "object" || Array.isArray(data))
    throw new ConfigFileError(`${path}: must be a mapping of flag names to values, got ${Array.isArray(data) ? "a list (several YAML documents?)" : data === null ? "null" : typeof data}`);
  return data as Record<string, unknown>;
}

const shown = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "a mapping" : `${typeof v} ${JSON.stringify(v)}`);

/** The value as its flag takes it, or an error naming the key, the file and the type expected. */
function checkedValue(path: string, key: string, spec: ConfigKeySpec, value: unknown): ConfigValue {
  const wrong = (expected: string) => new ConfigFileError(`${path}: ${key} must be ${expected}, got ${shown(value)}`);
  switch (spec.kind) {
    case "bool":
      if (typeof value !== "boolean") throw wrong("true or false");
      return value;
    case "int":
    case "float": {
      if (typeof value !== "number" || !Number.isFinite(value)) throw wrong(spec.kind === "int" ? "an integer" : "a number");
      if (spec.kind === "int" && !Number.isSafeInteger(value)) throw wrong("an integer");
      const max = typeof spec.max === "function" ? spec.max() : spec.max;
      if (spec.min !== undefined && value < spec.min) throw new ConfigFileError(`${path}: ${key} must be >= ${spec.min}, got ${value}`);
      if (max !== undefined && value > max) throw new ConfigFileError(`${path}: ${key} must be <= ${max}, got ${value}`);
      return value;
    }
    case "string": {
      // A choice that reads as a YAML boolean or number (tensorboard: false) is taken as its text.
      const text = typeof value === "string" ? value : spec.choices && (typeof value === "boolean" || typeof value === "number") ? String(value) : null;
      if (text === null) throw wrong(spec.choices ? `one of ${spec.choices.join(", ")}` : "a string");
      if (spec.choices && !spec.choices.includes(text)) throw wrong(`one of ${spec.choices.join(", ")}`);
      return text;
    }
  }
}
