// The training report: <run>/report.html, one self-contained page (uPlot inlined, so it opens offline
// and from a copied folder) with the loss and metric curves of metrics.jsonl, the validation figures
// over time, learning rates and the GradScaler's scale, examples/s and memory use, and the grids of the
// latest validation (input, target, both attempts, right or wrong).
//
//   writeValidationGallery(runDir, step, results);   // <run>/val_latest.json (after each validation)
//   writeDashboard(runDir);                          // <run>/report.html from what the run folder holds
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join } from "node:path";
import { escapeHtml, figureHtml, htmlPage } from "../../arc/render";
import type { Grid } from "../../arc/types";
import type { ExampleEval } from "../eval/evaluate";
import { writeFileAtomic } from "../../util/durable";
import { readMetrics } from "../run/run-folder";
import { ALL_TERMS } from "../objective/terms";
import { withCurrentNames } from "./metric-names";

export const REPORT_FILE = "report.html";
export const GALLERY_FILE = "val_latest.json";
/** Grids shown from the latest validation (each draws four grids of up to 30x30 cells). */
export const GALLERY_MAX = 32;

// ---- the latest validation's grids ---------------------------------------------------------------

export interface GalleryExample {
  task: string;
  kind: string;
  index: number;
  input: Grid;
  target: Grid;
  attempts: [Grid, Grid];
  firstCorrect: boolean;
  correct: boolean;
  cellAccBefore: number;
  cellAccAfter: number;
  size: [number, number];
  sizeSource: string;
  hint: string;
}

export interface Gallery {
  step: number;
  /** How many examples the validation had (the gallery keeps the first GALLERY_MAX). */
  examples: number;
  results: GalleryExample[];
}

export function writeValidationGallery(runDir: string, step: number, results: ExampleEval[]): void {
  const kept = results.slice(0, GALLERY_MAX).map((r): GalleryExample => ({
    task: r.task, kind: r.kind, index: r.index, input: r.input, target: r.target, attempts: r.attempts,
    firstCorrect: r.firstCorrect, correct: r.correct, cellAccBefore: r.cellAccBefore, cellAccAfter: r.cellAccAfter,
    size: r.size, sizeSource: r.sizeSource, hint: r.hint,
  }));
  writeFileAtomic(join(runDir, GALLERY_FILE), JSON.stringify({ step, examples: results.length, results: kept } satisfies Gallery));
}

export function readValidationGallery(runDir: string): Gallery | null {
  const path = join(runDir, GALLERY_FILE);
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, "utf8")) as Gallery;
}

// ---- charts --------------------------------------------------------------------------------------

/** One curve: a key of one kind of metrics record. */
interface SeriesSpec {
  kind: "batch" | "val" | "epoch";
  key: string;
  label: string;
  /** Drawn against a second y axis on the right (a quantity of another scale in the same chart). */
  right?: boolean;
}
interface ChartSpec {
  id: string;
  title: string;
  log?: boolean;
  series: SeriesSpec[];
}

// A series is labelled by its metric name, as the console, metrics.jsonl and TensorBoard name it.
const b = (key: string): SeriesSpec => ({ kind: "batch", key, label: key });
const v = (key: string): SeriesSpec => ({ kind: "val", key, label: `val/${key}` });

/** What the page plots; a series appears only when the run's records have it (e.g. GPU memory on CUDA). */
export const CHARTS: readonly ChartSpec[] = [
  { id: "loss", title: "Loss (0.7 EFE + 0.3 (-reward)): window means, and the epoch's mean", series: [b("loss"), b("efe"), { kind: "epoch", key: "efe", label: "epoch/efe" }] },
  { id: "loss_terms", title: "Loss terms (window means)", series: ALL_TERMS.filter((t) => t.chart).map((t) => b(t.metric)) },
  { id: "accuracy", title: "Cell accuracy in training: acc after refinement, d_acc the refinement's gain", series: [b("acc"), b("d_acc")] },
  { id: "validation", title: "Validation: exact (attempt 1), pass2, cell_acc after and before refinement", series: [v("exact"), v("pass2"), v("cell_acc"), v("cell_acc_before")] },
  { id: "mask", title: "Hard-cell mask ratio and size weight", series: [b("mask"), b("size_weight")] },
  { id: "size", title: "Size error", series: [b("d_size")] },
  { id: "reward", title: "RL reward", series: [b("rl_reward")] },
  { id: "grad_norms", title: "Gradient norms before clipping", log: true, series: [b("qwen_grad"), b("grad_norm_agent"), b("grad_norm_qwen"), b("grad_norm_refiner"), b("grad_norm_total")] },
  { id: "memory", title: "Episodic memory: threshold theta, entries (right axis)", series: [b("theta"), { ...b("memory"), right: true }] },
  { id: "lr", title: "Learning rates", log: true, series: [b("lr_agent"), b("lr_qwen"), b("lr_rl")] },
  { id: "scale", title: "GradScaler scale", log: true, series: [b("scale")] },
  { id: "throughput", title: "Examples/s", series: [b("examples_per_s")] },
  { id: "resources", title: "Memory use (MiB): process RSS, GPU allocated and peak", series: [b("rss_mb"), b("gpu_alloc_mb"), b("gpu_peak_mb")] },
];

/** A chart as the page draws it: x = steps, one column per series (null where that series has no point). */
export interface ChartData {
  id: string;
  title: string;
  log: boolean;
  labels: string[];
  /** Per series: drawn against the right axis. */
  right: boolean[];
  x: number[];
  y: (number | null)[][];
}

/** The charts of a run's records (runs written before the metric names were unified included); charts with no data are left out. */
export function chartData(written: Record<string, unknown>[]): ChartData[] {
  const records = written.map(withCurrentNames);
  const out: ChartData[] = [];
  for (const c of CHARTS) {
    const present = c.series.filter((s) => records.some((r) => r.type === s.kind && typeof r[s.key] === "number" && Number.isFinite(r[s.key])));
    if (!present.length) continue;
    const points = present.map((s) => {
      const m = new Map<number, number>();
      for (const r of records) if (r.type === s.kind && typeof r.step === "number" && typeof r[s.key] === "number" && Number.isFinite(r[s.key])) m.set(r.step, r[s.key] as number);
      return m;
    });
    const x = [...new Set(points.flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
    // A log axis cannot show values <= 0 (a frozen Qwen's gradient norm is 0): those points are gaps.
    const keep = (y: number | undefined) => (y === undefined || (c.log && y <= 0) ? null : y);
    out.push({ id: c.id, title: c.title, log: !!c.log, labels: present.map((s) => s.label), right: present.map((s) => !!s.right), x, y: points.map((m) => x.map((s) => keep(m.get(s)))) });
  }
  return out;
}

// ---- the page ------------------------------------------------------------------------------------

const requireHere = createRequire(import.meta.url);
let uplotAssets: { js: string; css: string } | null = null;
/** uPlot's browser build and styles, read once from node_modules to inline into each page. */
function uplot(): { js: string; css: string } {
  uplotAssets ??= {
    js: readFileSync(requireHere.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
    css: readFileSync(requireHere.resolve("uplot/dist/uPlot.min.css"), "utf8"),
  };
  return uplotAssets;
}

/** Distinct, colour-blind-friendly series colours (Okabe-Ito). */
export const SERIES_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

/** Draws every chart of the embedded data; `window.arcCharts` lists what was drawn and `window.arcPlots` holds the uPlot objects (for tests and debugging). */
const DRAW_SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var colours = ${JSON.stringify(SERIES_COLOURS)};
  window.arcCharts = [];
  window.arcPlots = {};
  data.forEach(function (c) {
    var el = document.getElementById("chart-" + c.id);
    var width = Math.max(280, Math.min(560, el.clientWidth || 480));
    // Points are drawn for a sparse series (a lone validation point has no line to show it by).
    var series = [{ label: "step" }].concat(c.labels.map(function (l, i) {
      var n = c.y[i].filter(function (y) { return y != null; }).length;
      return { label: l, scale: c.right[i] ? "r" : "y", stroke: colours[i % colours.length], width: 2, spanGaps: true, points: { show: n < 40, size: 7 } };
    }));
    // Steps are whole numbers; log axes label in scientific notation (1e-4 rather than 0.0001 rounded away).
    var sci = function (u, splits) { return splits.map(function (v) { return v == null ? "" : v.toExponential(0); }); };
    var axes = [{ label: "step", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] },
      { size: 64, values: c.log ? sci : undefined }];
    if (c.right.indexOf(true) >= 0) axes.push({ scale: "r", side: 1, size: 64, grid: { show: false } });
    var opts = {
      title: c.title, width: width, height: 220, series: series,
      scales: { x: { time: false }, y: c.log ? { distr: 3 } : {}, r: {} },
      axes: axes,
      legend: { live: true },
    };
    var u = new uPlot(opts, [c.x].concat(c.y), el);
    window.arcPlots[c.id] = u;
    window.arcCharts.push({ id: c.id, title: c.title, series: u.series.length - 1, points: c.x.length, colours: series.slice(1).map(function (s) { return s.stroke; }) });
  });
})();
`;

const EXTRA_CSS = `
.charts{display:flex;flex-wrap:wrap;gap:1em}
.chart{flex:0 1 560px;min-width:280px}
.figures td{font-variant-numeric:tabular-nums}
.uplot .u-title{font-size:14px}
details{margin:1em 0}
`;

const pct = (x: unknown) => (typeof x === "number" ? x.toFixed(4) : "-");

function summaryHtml(runDir: string, config: Record<string, unknown>, records: Record<string, any>[]): string {
  const last = [...records].reverse();
  const lastBatch = last.find((r) => r.type === "batch");
  const lastVal = last.find((r) => r.type === "val");
  const step = records.reduce((m, r) => Math.max(m, typeof r.step === "number" ? r.step : 0), 0);
  const facts = [
    ["run", escapeHtml(basename(runDir))],
    ["model", escapeHtml(String(config.model ?? "?"))],
    ["data", escapeHtml(String(config.data ?? "?"))],
    ["device", escapeHtml(String(config.device ?? "?"))],
    ["step", String(step)],
    ["epochs", escapeHtml(String(config.epochs ?? "?"))],
  ];
  const row = (k: string, val: string) => `<tr><th>${k}</th><td>${val}</td></tr>`;
  let html = `<table class="figures">${facts.map(([k, val]) => row(k, val)).join("")}</table>`;
  if (lastVal)
    html += `<h2>Latest validation (step ${lastVal.step})</h2><table class="figures">` +
      row("exact (attempt 1)", `${pct(lastVal.exact)} (${lastVal.exact_count ?? "?"}/${lastVal.examples ?? "?"})`) +
      row("pass2", `${pct(lastVal.pass2)} (${lastVal.pass2_count ?? "?"}/${lastVal.examples ?? "?"})`) +
      row("cell_acc", `${pct(lastVal.cell_acc)} (cell_acc_before ${pct(lastVal.cell_acc_before)})`) +
      row("accuracy_delta", pct(lastVal.accuracy_delta)) + `</table>`;
  if (lastBatch)
    html += `<h2>Latest batch line (step ${lastBatch.step}, window means)</h2><table class="figures">` +
      row("efe", pct(lastBatch.efe)) + row("acc / d_acc", `${pct(lastBatch.acc)} / ${pct(lastBatch.d_acc)}`) +
      row("qwen_grad", typeof lastBatch.qwen_grad === "number" ? lastBatch.qwen_grad.toExponential(2) : "-") + `</table>`;
  return html;
}

/** Gallery cells in CSS pixels: large enough to read a 30x30 grid, four to a row. */
const CELL = { cell: 14 };

function galleryHtml(g: Gallery | null): string {
  if (!g) return `<h2>Validation grids</h2><p>No validation yet.</p>`;
  const note = g.examples > g.results.length ? ` (the first ${g.results.length} of ${g.examples})` : "";
  const items = g.results.map((e, i) => {
    const same = (a: Grid) => JSON.stringify(a) === JSON.stringify(e.target);
    const mark = (a: Grid) => (same(a) ? "ok" : "bad");
    const tick = (a: Grid) => (same(a) ? " \u2713" : " \u2717");
    return `<section class="arc-task" data-example="${i}"><h2>${escapeHtml(e.task)} ${escapeHtml(e.kind)}[${e.index}] ${e.correct ? "\u2713 solved" : "\u2717"}</h2>` +
      `<div class="arc-pair">${figureHtml("input", e.input, undefined, CELL)}${figureHtml("target", e.target, undefined, CELL)}` +
      `${figureHtml(`attempt 1${tick(e.attempts[0])}`, e.attempts[0], mark(e.attempts[0]), CELL)}${figureHtml(`attempt 2${tick(e.attempts[1])}`, e.attempts[1], mark(e.attempts[1]), CELL)}</div>` +
      `<p>size ${e.size[0]}x${e.size[1]} from ${escapeHtml(e.sizeSource)}; cell accuracy ${e.cellAccBefore.toFixed(3)} &rarr; ${e.cellAccAfter.toFixed(3)}` +
      `${e.hint ? `; hint <code>${escapeHtml(e.hint)}</code>` : ""}</p></section>`;
  });
  return `<h2>Validation grids at step ${g.step}${note}</h2><div class="gallery">${items.join("\n")}</div>`;
}

/**
 * Part of the page from a file that may be damaged (torn, garbage, `null`, the wrong shape, a folder): its
 * value, or `fallback` with one line to `warn` naming the file and what is wrong (issue 26: a report never
 * crashes on what a run left behind).
 */
function tolerant<T>(what: string, fn: () => T, fallback: T, warn: (line: string) => void): T {
  try {
    return fn();
  } catch (e) {
    warn(`${what} could not be read (${(e as Error).message.split("\n")[0]}); the report is made without it`);
    return fallback;
  }
}

function readConfigJson(runDir: string): Record<string, unknown> {
  const path = join(runDir, "config.json");
  if (!existsSync(path)) return {};
  const v = JSON.parse(readFileSync(path, "utf8"));
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
  return v as Record<string, unknown>;
}

/** The page for a run folder's current contents; a damaged file is left out, said once to `warn`. */
export function dashboardHtml(runDir: string, warn: (line: string) => void = () => {}): string {
  const config = tolerant(join(runDir, "config.json"), () => readConfigJson(runDir), {}, warn);
  // Runs written before the metric names were unified render under today's names.
  const records = tolerant(join(runDir, "metrics.jsonl"), () => readMetrics(runDir).map(withCurrentNames), [], warn);
  const charts = tolerant(`the curves of ${join(runDir, "metrics.jsonl")}`, () => chartData(records), [], warn);
  const { js, css } = uplot();
  // JSON inside <script>: "<" escaped so no value can close the element.
  const json = JSON.stringify(charts).replace(/</g, "\\u003c");
  const chartDivs = charts.length
    ? `<div class="charts">${charts.map((c) => `<div class="chart" id="chart-${c.id}" data-series="${c.labels.length}"></div>`).join("")}</div>`
    : `<p>No metrics yet.</p>`;
  const configTable = `<details><summary>config.json</summary><table>${Object.entries(config).map(([k, val]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(JSON.stringify(val))}</td></tr>`).join("")}</table></details>`;
  const summary = tolerant(`the summary of ${join(runDir, "metrics.jsonl")}`, () => summaryHtml(runDir, config, records), "", warn);
  const gallery = tolerant(join(runDir, GALLERY_FILE), () => galleryHtml(readValidationGallery(runDir)), "", warn);
  const body = summary + configTable + `<h2>Curves</h2>${chartDivs}` + gallery +
    `<script type="application/json" id="chart-data">${json}</script><script>${js}</script><script>${DRAW_SCRIPT}</script>`;
  return htmlPage(`arc-efe training: ${basename(runDir)}`, body, css + EXTRA_CSS);
}

/** Writes <run>/report.html (atomically: a browser reloading it never sees half a page). */
export function writeDashboard(runDir: string, warn?: (line: string) => void): string {
  const path = join(runDir, REPORT_FILE);
  writeFileAtomic(path, dashboardHtml(runDir, warn));
  return path;
}
