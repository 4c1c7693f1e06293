// Command lines of the runnable stages: node:util parseArgs with the conventions every script shares
// (--help prints the usage; a bad flag or value is one line on stderr and exit code 2, a mistyped flag
// with the closest known one suggested).
import { type ParseArgsConfig, parseArgs } from "node:util";
import { parseArgsErrorLine } from "./flags";

export type Values = Record<string, string | boolean | undefined>;

export interface Cli {
  values: Values;
  /** One-line usage error: prints `<name>: <msg>` and exits with code 2. */
  fail(msg: string): never;
  /** An integer flag >= min. */
  int(flag: string, min?: number): number;
  /** A number flag within [min, max]. */
  num(flag: string, min?: number, max?: number): number;
}

/** Parses argv, or prints the usage (--help, exit 0) or a one-line error (exit 2). */
export function parseCommandLine(name: string, usage: string, options: NonNullable<ParseArgsConfig["options"]>, argv: string[]): Cli {
  const fail = (msg: string): never => {
    process.stderr.write(`${name}: ${msg}\n${usage.split("\n")[0]} (--help for more)\n`);
    process.exit(2);
  };
  let values: Values = {};
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }) as { values: Values });
  } catch (e) {
    fail(parseArgsErrorLine(e, Object.keys(options)));
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return {
    values,
    fail,
    int(flag, min = 1) {
      const v = Number(values[flag]);
      if (!Number.isInteger(v) || v < min) fail(`--${flag} must be an integer >= ${min}, got "${values[flag]}"`);
      return v;
    },
    num(flag, min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY) {
      const v = Number(values[flag]);
      if (!Number.isFinite(v) || v < min || v > max) fail(`--${flag} must be a number in [${min}, ${max}], got "${values[flag]}"`);
      return v;
    },
  };
}

/**
 * Makes an error that reaches a script's top level one line, `<name>: <message>`, and exit code 1, never
 * a stack trace with a source excerpt (ARC_DEBUG=1 prints the stack too). Call it first in a script.
 */
export function oneLineErrors(name: string): void {
  const fail = (e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`${name}: ${msg.split("\n")[0]}\n`);
    if (process.env.ARC_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  };
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);
}
