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

/**
 * Edits between two strings, a swap of neighbours counting as one edit (optimal string alignment
 * distance, the Damerau-Levenshtein variant that edits no substring twice): "epcohs" is 1 from "epochs".
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** How a flag's name is compared: case and "-" against "_" ignored ("--Lora-Rank" is --lora_rank). */
const comparable = (name: string): string => name.replace(/^-+/, "").toLowerCase().replace(/-/g, "_");

/**
 * The known flag (its name without dashes) closest to a mistyped one (given with or without its dashes), or
 * null when none is close: at most a third of the name's length in edits (one for short names, three at
 * most), so a guess is offered only where it is likely what was meant. Ties go to the first in `known`.
 */
export function closestFlag(name: string, known: Iterable<string>): string | null {
  const wanted = comparable(name);
  const limit = Math.min(3, Math.max(1, Math.floor(wanted.length / 3)));
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const k of known) {
    const d = editDistance(wanted, comparable(k));
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** "; did you mean --X?" for a mistyped flag, or "" when no known flag is close. */
export function flagSuggestion(name: string, known: Iterable<string>): string {
  const k = closestFlag(name, known);
  return k === null ? "" : `; did you mean --${k}?`;
}

/**
 * node:util parseArgs's error as one line: "unknown flag '--epoch'; did you mean --epochs?" for a flag
 * not in `known` (the option names), its own first line (without the advice on positionals) for the rest.
 */
export function parseArgsErrorLine(e: unknown, known: Iterable<string>): string {
  const line = (e instanceof Error ? e.message : String(e)).split("\n")[0].replace(/\. To specify.*$/, "");
  const unknown = /^Unknown option '(-[^']*)'/.exec(line);
  if (!unknown) return line;
  return `unknown flag '${unknown[1]}'${flagSuggestion(unknown[1], known)}`;
}
