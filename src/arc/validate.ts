// Validation of untrusted task JSON. Every rule of the format is checked here, once, and a failure names
// the file, the place (`train[2].output`) and the reason, so a bad file among a thousand is found at once.
// The result is a fresh copy: nothing of the parsed JSON (extra keys, -0) leaks into the pipeline.
import { ArcDataError } from "./errors.ts";
import { MAX_SIDE, type Grid, type Pair, type Task, type TestPair } from "./types.ts";

/** A short description of a JSON value for error messages: `a string ("1")`, `null`, `a list`. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "missing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return `a string (${JSON.stringify(v.length > 20 ? v.slice(0, 20) + "..." : v)})`;
  if (typeof v === "number") return `the number ${v}`;
  if (typeof v === "boolean") return `the boolean ${v}`;
  return "an object";
}

class Invalid extends Error {}

function checkGrid(v: unknown): Grid {
  if (!Array.isArray(v)) throw new Invalid(`is ${describe(v)}, not a list of rows`);
  if (v.length === 0) throw new Invalid("has no rows (an empty list)");
  if (v.length > MAX_SIDE) throw new Invalid(`has ${v.length} rows, more than ${MAX_SIDE}`);
  const out: Grid = [];
  let w = -1;
  for (let r = 0; r < v.length; r++) {
    const row: unknown = v[r];
    if (!Array.isArray(row)) throw new Invalid(`row ${r} is ${describe(row)}, not a list of cells`);
    if (row.length === 0) throw new Invalid(`row ${r} is empty`);
    if (row.length > MAX_SIDE) throw new Invalid(`row ${r} has ${row.length} cells, more than ${MAX_SIDE}`);
    if (r === 0) w = row.length;
    else if (row.length !== w) throw new Invalid(`row ${r} has ${row.length} cells, row 0 has ${w}`);
    const cells = new Array<number>(row.length);
    for (let c = 0; c < row.length; c++) {
      const x: unknown = row[c];
      if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > 9) {
        const shown = typeof x === "number" ? String(x) : describe(x);
        throw new Invalid(`cell (${r},${c}) is ${shown}, not an integer 0..9`);
      }
      cells[c] = x + 0; // + 0 turns -0 into 0
    }
    out.push(cells);
  }
  return out;
}

/** Validate one grid; `where` prefixes the message (e.g. `task.json: test[0].input`). */
export function validateGrid(v: unknown, where: string): Grid {
  try {
    return checkGrid(v);
  } catch (e) {
    if (e instanceof Invalid) throw new ArcDataError(`${where}: ${e.message}`);
    throw e;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function checkPairs(task: Record<string, unknown>, key: "train" | "test", source: string): (Pair | TestPair)[] {
  if (!Object.hasOwn(task, key)) throw new ArcDataError(`${source}: missing "${key}"`);
  const list = task[key];
  if (!Array.isArray(list)) throw new ArcDataError(`${source}: "${key}" is ${describe(list)}, not a list of pairs`);
  if (list.length === 0) throw new ArcDataError(`${source}: "${key}" is empty`);
  return list.map((p: unknown, i) => {
    const at = `${source}: ${key}[${i}]`;
    if (!isObject(p)) throw new ArcDataError(`${at} is ${describe(p)}, not an object with "input" and "output"`);
    if (!Object.hasOwn(p, "input")) throw new ArcDataError(`${at}: missing "input"`);
    const input = validateGrid(p.input, `${at}.input`);
    // Hidden test sets have test inputs only; demonstrations always need their output.
    if (!Object.hasOwn(p, "output") || (key === "test" && p.output === undefined)) {
      if (key === "train") throw new ArcDataError(`${at}: missing "output"`);
      return { input };
    }
    return { input, output: validateGrid(p.output, `${at}.output`) };
  });
}

/** Validate parsed JSON as a task; `source` (usually the file) starts every error message. */
export function validateTask(json: unknown, source: string, id: string): Task {
  if (!isObject(json)) throw new ArcDataError(`${source}: is ${describe(json)}, not a task object with "train" and "test"`);
  const train = checkPairs(json, "train", source) as Pair[];
  const test = checkPairs(json, "test", source) as TestPair[];
  return { id, train, test };
}

/** Parse and validate the text of a task file. */
export function parseTask(text: string, source: string, id: string): Task {
  let json: unknown;
  try {
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    // SyntaxError, or RangeError for absurdly deep nesting: both mean "not a task file".
    throw new ArcDataError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  return validateTask(json, source, id);
}
