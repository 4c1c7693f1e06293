// The training report of a run, made from its folder alone (the trainer also writes it after each
// validation): `bun scripts/report.ts --run runs/arc_20250101_120000`.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeDashboard } from "../src/pipeline/observe/report-html.ts";
import { latestRun } from "../src/pipeline/run/run-folder.ts";
import { oneLineErrors, parseCommandLine } from "../src/util/cli.ts";
oneLineErrors("report");

const USAGE = `Usage: bun scripts/report.ts [--run DIR | --run_dir DIR]

Writes <run>/report.html: one self-contained page (works offline) with the loss and metric curves of
metrics.jsonl, the validation figures over time, learning rates, GradScaler scale, examples/s, memory use,
and the grids of the latest validation (input, target, both attempts, right or wrong).

Options:
  --run DIR        the run folder (default: the newest run under --run_dir)
  --run_dir DIR    where run folders are (default runs)
  --help           this text

Exit codes: 0 ok (a damaged file left out, with a warning), 1 the report could not be written, 2 bad arguments
(or no such run).`;

const cli = parseCommandLine("report", USAGE, { run: { type: "string" }, run_dir: { type: "string", default: "runs" }, help: { type: "boolean" } }, process.argv.slice(2));
const runDir = (cli.values.run as string | undefined) ?? latestRun(cli.values.run_dir as string, { withCheckpoint: false }) ?? cli.fail(`no run folder under ${cli.values.run_dir}/ (give --run DIR)`);
if (!existsSync(runDir) || !statSync(runDir).isDirectory()) cli.fail(`--run ${runDir}: no such folder`);
if (!existsSync(join(runDir, "metrics.jsonl")) && !existsSync(join(runDir, "config.json"))) cli.fail(`--run ${runDir}: not a run folder (no metrics.jsonl or config.json)`);
// A damaged file is left out of the page with one line saying which; anything else is one line and exit 1.
try {
  console.log(`wrote ${writeDashboard(runDir, (line) => console.error(`report: warning: ${line}`))}`);
} catch (e) {
  console.error(`report: ${(e as Error).message.split("\n")[0]}`);
  process.exit(1);
}
