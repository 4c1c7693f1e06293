// The data stage on its own: download the public ARC sets, print statistics, draw a task, generate
// synthetic tasks. `bun scripts/data.ts --help`.
import { writeFileSync } from "node:fs";
import { outputFileProblem } from "../src/util/durable.ts";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { augmentTask, DIHEDRAL_NAMES, randomColourPerm } from "../src/arc/augment.ts";
import { DATASETS, dataCacheDir, downloadDataset, type DatasetName } from "../src/arc/download.ts";
import { ArcDataError } from "../src/arc/errors.ts";
import { DATA_SPEC_HELP, findTask, loadDataset, loadTask } from "../src/arc/load.ts";
import { escapeHtml, htmlPage, renderTaskAnsi, taskHtml, taskPng, wantsColour } from "../src/arc/render.ts";
import { Rng } from "../src/arc/rng.ts";
import { SIDE_BUCKETS, splitStats, type SplitStats } from "../src/arc/stats.ts";
import { FAMILIES, generate, getFamily } from "../src/arc/synthetic.ts";
import type { Task } from "../src/arc/types.ts";
import { oneLineErrors } from "../src/util/cli.ts";

const USAGE = `Usage: bun scripts/data.ts <command> [options]

Commands:
  download NAME        download arc-agi-1 or arc-agi-2 once into the cache
                       (cache: $ARC_DATA_DIR, else ~/.cache/arc-efe/data; --force downloads again)
  stats                tasks, pairs, grid sizes, size-changing share, per split
  show TASK            draw a task: an id in --data, a task file, or a synthetic id (family-seed)
  synth                generate a synthetic task (--family F --seed S), or --list the families

Common options:
  --data SPEC          ${DATA_SPEC_HELP} (default arc-agi-2)
  --help               this text

show / synth options:
  --json               print the task as JSON instead of drawing it
  --html FILE          also write an HTML page of the task
  --png FILE           also write a PNG image of the task
  --no-colour          digits instead of colours (default when stdout is not a terminal)
  --augment K          show the task under dihedral transform K (0..7) and a colour permutation (seed K)

stats options:
  --json               machine-readable output

Exit codes: 0 ok, 1 data error (bad file, failed download), 2 bad arguments.`;

/** A usage error: one line, exit code 2. */
class UsageError extends Error {}

export interface Io {
  out(s: string): void;
  err(s: string): void;
}
const stdio: Io = { out: (s) => process.stdout.write(s + "\n"), err: (s) => process.stderr.write(s + "\n") };

const OPTIONS = {
  data: { type: "string", default: "arc-agi-2" },
  help: { type: "boolean", short: "h" },
  json: { type: "boolean" },
  html: { type: "string" },
  png: { type: "string" },
  "no-colour": { type: "boolean" },
  "no-color": { type: "boolean" },
  augment: { type: "string" },
  family: { type: "string" },
  seed: { type: "string" },
  list: { type: "boolean" },
  force: { type: "boolean" },
} satisfies ParseArgsConfig["options"];

/** Which options each command takes (the rest are rejected, so a typo is not silently ignored). */
const ALLOWED: Record<string, (keyof typeof OPTIONS)[]> = {
  download: ["force"],
  stats: ["data", "json"],
  show: ["data", "json", "html", "png", "no-colour", "no-color", "augment"],
  synth: ["family", "seed", "list", "json", "html", "png", "no-colour", "no-color", "augment"],
};

function int(name: string, v: string | undefined, lo: number, hi: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v) || Number(v) < lo || Number(v) > hi) throw new UsageError(`--${name} must be an integer ${lo}..${hi}, got "${v}"`);
  return Number(v);
}

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    // Node's messages add advice about "--" that does not apply here: keep the first sentence.
    io.err(`data.ts: ${(e as Error).message.split("\n")[0]!.replace(/\. To specify a positional.*$/, "")} (see --help)`);
    return 2;
  }
  const { values: v, positionals: pos } = parsed;
  const [cmd, ...rest] = pos;
  if (v.help || cmd === "help") { io.out(USAGE); return 0; }
  try {
    if (!cmd) throw new UsageError("missing command: download, stats, show or synth");
    const allowed = ALLOWED[cmd];
    if (!allowed) throw new UsageError(`unknown command "${cmd}": download, stats, show or synth`);
    const given = Object.keys(v).filter((k) => k !== "data" || argv.some((a) => a === "--data" || a.startsWith("--data=")));
    const bad = given.find((k) => !allowed.includes(k as keyof typeof OPTIONS));
    if (bad) throw new UsageError(`${cmd} does not take --${bad}`);
    const wantArgs = cmd === "download" || cmd === "show" ? 1 : 0;
    if (rest.length > wantArgs) throw new UsageError(`${cmd}: unexpected argument "${rest[wantArgs]}"`);
    if (rest.length < wantArgs) throw new UsageError(cmd === "download" ? `download needs a dataset name: ${Object.keys(DATASETS).join(" or ")}` : "show needs a task id or file");
    // Output files are probed before any work (a task set may take a while to load).
    for (const flag of ["html", "png"] as const) {
      const path = v[flag];
      const why = typeof path === "string" ? outputFileProblem(path) : null;
      if (why) throw new UsageError(`--${flag} ${path}: cannot write it: ${why}`);
    }
    switch (cmd) {
      case "download": return await download(rest[0]!, !!v.force, io);
      case "stats": return await stats(v.data, !!v.json, io);
      case "show": return await show(rest[0]!, v, io);
      default: return synth(v, io);
    }
  } catch (e) {
    if (e instanceof UsageError) { io.err(`data.ts: ${e.message} (see --help)`); return 2; }
    if (e instanceof ArcDataError) { io.err(`data.ts: ${e.message}`); return 1; }
    throw e;
  }
}

async function download(name: string, force: boolean, io: Io): Promise<number> {
  if (!Object.hasOwn(DATASETS, name)) throw new UsageError(`unknown dataset "${name}": ${Object.keys(DATASETS).join(" or ")}`);
  const dir = await downloadDataset(name as DatasetName, { force });
  const ds = await loadDataset(dir);
  io.out(`${name}: ${ds.training.length} training and ${ds.evaluation.length} evaluation tasks in ${dir} (cache ${dataCacheDir()})`);
  return 0;
}

const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : "-");

function statsTable(cols: [string, SplitStats][]): string[] {
  const rows: [string, (s: SplitStats) => string][] = [
    ["tasks", (s) => `${s.tasks}`],
    ["train pairs", (s) => `${s.trainPairs}`],
    ["test pairs", (s) => `${s.testPairs}`],
    ["  with known output", (s) => `${s.testPairsWithOutput}`],
    ["size-changing train pairs", (s) => `${s.sizeChangingTrainPairs} (${pct(s.sizeChangingTrainPairs, s.trainPairs)})`],
    ["size-changing pairs, all", (s) => `${s.sizeChangingPairs} (${pct(s.sizeChangingPairs, s.trainPairs + s.testPairsWithOutput)})`],
    ["output size from demos", (s) => `${s.tasksWithCertainSize} tasks`],
    ["  and right on test", (s) => `${s.tasksWithCertainSizeRight} tasks`],
    ["mean cells in / out", (s) => `${s.meanInputCells.toFixed(0)} / ${s.meanOutputCells.toFixed(0)}`],
    ...SIDE_BUCKETS.map((b, i): [string, (s: SplitStats) => string] => [`larger side ${b}: in / out`, (s) => `${s.inputSides[i]} / ${s.outputSides[i]}`]),
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const cells = rows.map(([, f]) => cols.map(([, s]) => f(s)));
  const w = cols.map(([n], j) => Math.max(n.length, ...cells.map((c) => c[j]!.length)));
  return [
    " ".repeat(w0) + cols.map(([n], j) => "  " + n.padStart(w[j]!)).join(""),
    ...rows.map(([label], i) => label.padEnd(w0) + cells[i]!.map((c, j) => "  " + c.padStart(w[j]!)).join("")),
  ];
}

async function stats(spec: string, json: boolean, io: Io): Promise<number> {
  const ds = await loadDataset(spec);
  const cols: [string, SplitStats][] = ds.flat
    ? [["tasks", splitStats(ds.training)]]
    : [["training", splitStats(ds.training)], ["evaluation", splitStats(ds.evaluation)]];
  if (json) {
    io.out(JSON.stringify({ name: ds.name, root: ds.root ?? null, flat: !!ds.flat, sideBuckets: SIDE_BUCKETS, ...Object.fromEntries(cols) }, null, 2));
    return 0;
  }
  io.out(`data: ${ds.name}${ds.root && ds.root !== ds.name ? ` (${ds.root})` : ""}${ds.flat ? " (no training/evaluation split)" : ""}`);
  for (const line of statsTable(cols)) io.out(line);
  return 0;
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

/** Find TASK: a synthetic id `family-seed`, a file, or an id in --data. */
async function resolveTask(ref: string, spec: string): Promise<{ task: Task; where: string }> {
  const m = /^([a-z0-9_]+)-(\d+)$/.exec(ref);
  if (m && FAMILIES.some((f) => f.name === m[1])) return { task: generate(m[1]!, Number(m[2])).task, where: "synthetic" };
  if (ref.endsWith(".json")) return { task: loadTask(ref), where: ref };
  const ds = await loadDataset(spec);
  const hit = findTask(ds, ref);
  if (!hit) throw new ArcDataError(`task "${ref}" is not in ${ds.name} (neither training nor evaluation)`);
  return { task: hit.task, where: `${ds.name} ${hit.split}` };
}

function output(task: Task, header: string, v: Values, io: Io): number {
  if (v.augment !== undefined) {
    const k = int("augment", v.augment, 0, 7, 0);
    task = augmentTask(task, { dihedral: k, colours: randomColourPerm(new Rng(k)) });
    header += ` (augmented: ${DIHEDRAL_NAMES[k]}, colours permuted)`;
  }
  if (v.html) writeFileSync(v.html, htmlPage(`ARC task ${task.id}`, taskHtml(task, { note: `<p>${escapeHtml(header)}</p>` })));
  if (v.png) writeFileSync(v.png, taskPng(task));
  if (v.json) { io.out(JSON.stringify(task)); return 0; }
  io.out(header);
  io.out(renderTaskAnsi(task, { colour: !(v["no-colour"] || v["no-color"]) && wantsColour() }));
  return 0;
}

async function show(ref: string, v: Values, io: Io): Promise<number> {
  const { task, where } = await resolveTask(ref, v.data);
  return output(task, `${task.id} (${where})`, v, io);
}

function synth(v: Values, io: Io): number {
  if (v.list) {
    const w = Math.max(...FAMILIES.map((f) => f.name.length));
    for (const f of FAMILIES) io.out(`${f.name.padEnd(w)}  ${f.sizeChanging ? "size-changing " : "same size     "}  ${f.description}`);
    return 0;
  }
  if (!v.family) throw new UsageError("synth needs --family F (see synth --list)");
  try { getFamily(v.family); } catch (e) { throw new UsageError((e as Error).message); }
  const seed = int("seed", v.seed, 0, Number.MAX_SAFE_INTEGER, 0);
  const g = generate(v.family, seed);
  const params = g.params === null ? "" : `, params ${JSON.stringify(g.params)}`;
  return output(g.task, `${g.task.id} (synthetic ${g.family}${params})`, v, io);
}

if (import.meta.main) {
  oneLineErrors("data.ts");
  process.exit(await main(process.argv.slice(2)));
}
