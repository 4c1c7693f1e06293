// Strict flag parsing shared by scripts/train.ts and scripts/eval.ts, on top of node:util parseArgs:
// decimal numbers only (no hex, binary or "Infinity"), negative numbers accepted as values (so a range
// check can name them), and a flag given twice is an error rather than "the last one wins".
import { type ParseArgsConfig, parseArgs } from "node:util";

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;

/** A decimal number ("1e-4", "0.5", "-3"), or null for anything else ("0x10", "1_000", "Infinity", ""). */
export function parseDecimal(s: string): number | null {
  if (!DECIMAL.test(s.trim())) return null;
  const v = Number(s);
  return Number.isFinite(v) ? v : null;
}

/** A decimal integer that is exactly representable (|v| <= 2^53 - 1), or null. */
export function parseInteger(s: string): number | null {
  if (!INTEGER.test(s.trim())) return null;
  const v = Number(s);
  return Number.isSafeInteger(v) ? v : null;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * `--max -1`: parseArgs takes "-1" for an option ("argument is ambiguous"). Joins a negative number to
 * the string flag before it (`--max=-1`), so the flag's own check can report the value.
 */
export function joinNegativeValues(argv: string[], options: Options): string[] {
  const args = [...argv];
  for (let j = 0; j + 1 < args.length; j++) {
    const name = /^--([A-Za-z0-9_-]+)$/.exec(args[j])?.[1];
    if (name && options[name]?.type === "string" && /^-(\d|\.\d)/.test(args[j + 1])) args.splice(j, 2, `${args[j]}=${args[j + 1]}`);
  }
  return args;
}

/** The first flag given more than once (`--seed 1 --seed=2`), or null. Unknown flags are parseArgs's to report. */
export function duplicateFlag(args: string[], options: Options): string | null {
  let tokens: { kind: string; name?: string }[];
  try {
    ({ tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true }) as unknown as { tokens: { kind: string; name?: string }[] });
  } catch {
    return null;
  }
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== "option" || !t.name) continue;
    if (seen.has(t.name)) return t.name;
    seen.add(t.name);
  }
  return null;
}
