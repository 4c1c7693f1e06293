// Drawing grids: ANSI colours for the terminal, HTML for reports, PNG for images; all with ARC's palette.
import { encodePng } from "./png.ts";
import type { Grid, Task } from "./types.ts";

/** ARC's standard palette (the colours of the official task viewer), by colour 0..9. */
export const PALETTE = [
  "#000000", // 0 black
  "#0074D9", // 1 blue
  "#FF4136", // 2 red
  "#2ECC40", // 3 green
  "#FFDC00", // 4 yellow
  "#AAAAAA", // 5 grey
  "#F012BE", // 6 magenta
  "#FF851B", // 7 orange
  "#7FDBFF", // 8 light blue
  "#870C25", // 9 maroon
] as const;

export const PALETTE_RGB: readonly (readonly [number, number, number])[] = PALETTE.map((h) => [
  parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16),
]);

// ---------------------------------------------------------------- terminal

export interface AnsiOptions {
  /** Colour cells with 24-bit backgrounds (default true); false prints digits, for logs and pipes. */
  colour?: boolean;
}

/** Whether a stream should get colours: a TTY, unless NO_COLOR is set; FORCE_COLOR forces them. */
export function wantsColour(stream: { isTTY?: boolean } = process.stdout): boolean {
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== "0") return true;
  return !!stream.isTTY && !process.env.NO_COLOR;
}

/** One string per grid row, each exactly 2 * width visible columns wide. */
export function gridLines(g: Grid, opts: AnsiOptions = {}): string[] {
  if (opts.colour === false) return g.map((row) => row.map((v) => `${v} `).join(""));
  return g.map(
    (row) => row.map((v) => { const [r, gr, b] = PALETTE_RGB[v] ?? [255, 255, 255]; return `\x1b[48;2;${r};${gr};${b}m  `; }).join("") + "\x1b[0m",
  );
}

export function renderAnsi(g: Grid, opts: AnsiOptions = {}): string {
  return gridLines(g, opts).join("\n");
}

/** Blocks of lines with known visible widths, placed side by side (shorter ones padded with blanks). */
function besideEachOther(blocks: { lines: string[]; width: number }[], gap = "  "): string[] {
  const h = Math.max(...blocks.map((b) => b.lines.length));
  return Array.from({ length: h }, (_, i) =>
    blocks.map((b) => b.lines[i] ?? " ".repeat(b.width)).join(gap).replace(/\s+$/, ""),
  );
}

const dims = (g: Grid) => `${g.length}x${g[0]?.length ?? 0}`;

/** A whole task: one block per pair, input and output side by side, with sizes. */
export function renderTaskAnsi(task: Task, opts: AnsiOptions = {}): string {
  const out: string[] = [`task ${task.id}: ${task.train.length} train, ${task.test.length} test`];
  const pair = (label: string, input: Grid, output?: Grid) => {
    out.push("", `${label}  ${dims(input)} -> ${output ? dims(output) : "?"}`);
    const a = { lines: gridLines(input, opts), width: 2 * (input[0]?.length ?? 0) };
    const b = output ? { lines: gridLines(output, opts), width: 2 * (output[0]?.length ?? 0) } : { lines: ["?"], width: 1 };
    // The arrow sits on the middle row of the taller grid.
    const mid = Math.floor((Math.max(a.lines.length, b.lines.length) - 1) / 2);
    const arrow = { lines: [...new Array<string>(mid).fill("  "), "->"], width: 2 };
    out.push(...besideEachOther([a, arrow, b]));
  };
  task.train.forEach((p, i) => pair(`train[${i}]`, p.input, p.output));
  task.test.forEach((p, i) => pair(`test[${i}]`, p.input, p.output));
  return out.join("\n");
}

// ---------------------------------------------------------------- HTML

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** Styles for gridHtml and taskHtml; htmlPage includes them. Cells are `<i class="cN">` for compact pages. */
export const ARC_CSS = `
.arc-grid{display:inline-grid;gap:1px;background:#444;border:1px solid #444;vertical-align:top}
.arc-grid i{display:block;width:var(--arc-cell,12px);height:var(--arc-cell,12px)}
${PALETTE.map((c, i) => `.arc-grid .c${i}{background:${c}}`).join("\n")}
.arc-task{margin:1.5em 0;padding-top:.5em;border-top:1px solid #ccc}
.arc-pairs{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
.arc-pair{display:flex;gap:.6em;align-items:center}
.arc-pair figure{margin:0}
.arc-pair figcaption{font:12px sans-serif;color:#555;margin-bottom:2px}
.arc-ok figcaption{color:#1a7f37;font-weight:bold}
.arc-bad figcaption{color:#cf222e}
.arc-arrow{font:18px sans-serif;color:#888}
.arc-grid i.x{box-shadow:inset 0 0 0 1px #000,inset 0 0 0 3px #fff}
`;

export interface GridHtmlOptions {
  /** Cell size in CSS pixels (default 12, or the page's --arc-cell). */
  cell?: number;
  /** The grid this one should equal (a target): cells that differ from it, or lie outside it, are marked (class "x"). */
  against?: Grid;
}

export function gridHtml(g: Grid, opts: GridHtmlOptions = {}): string {
  const w = g[0]?.length ?? 0;
  const style = `grid-template-columns:repeat(${w},auto)${opts.cell ? `;--arc-cell:${opts.cell}px` : ""}`;
  const t = opts.against;
  const cells = g.map((row, i) => row.map((v, j) => `<i class="c${v}${t && t[i]?.[j] !== v ? " x" : ""}"></i>`).join("")).join("");
  const wrong = t ? g.reduce((n, row, i) => n + row.filter((v, j) => t[i]?.[j] !== v).length, 0) : 0;
  const title = t && wrong ? `${dims(g)}, ${wrong} cell${wrong === 1 ? "" : "s"} wrong${dims(g) === dims(t) ? "" : ` (target ${dims(t)})`}` : dims(g);
  return `<div class="arc-grid" style="${style}" title="${title}">${cells}</div>`;
}

/** A captioned grid; `status` colours the caption (a correct or wrong attempt). */
export function figureHtml(caption: string, g: Grid | null | undefined, status?: "ok" | "bad", opts: GridHtmlOptions = {}): string {
  const body = g ? gridHtml(g, opts) : `<div class="arc-arrow">(none)</div>`;
  const cls = status ? ` class="arc-${status}"` : "";
  return `<figure${cls}><figcaption>${escapeHtml(caption)}${g ? ` ${dims(g)}` : ""}</figcaption>${body}</figure>`;
}

export interface TaskHtmlOptions extends GridHtmlOptions {
  /** Predicted grids per test pair (e.g. attempt 1 and 2); each is marked right or wrong when the output is known. */
  attempts?: readonly (readonly (Grid | null | undefined)[])[];
  /** Extra HTML after the title (scores, notes); not escaped. */
  note?: string;
}

const sameGrid = (a: Grid, b: Grid) => a.length === b.length && a.every((r, i) => r.length === b[i]!.length && r.every((v, j) => v === b[i]![j]));

/** A task as HTML: demonstrations, then test inputs with targets and any attempts. */
export function taskHtml(task: Task, opts: TaskHtmlOptions = {}): string {
  const arrow = `<span class="arc-arrow">&rarr;</span>`;
  const train = task.train
    .map((p, i) => `<div class="arc-pair">${figureHtml(`train[${i}] in`, p.input, undefined, opts)}${arrow}${figureHtml("out", p.output, undefined, opts)}</div>`)
    .join("");
  const test = task.test
    .map((p, i) => {
      const tries = (opts.attempts?.[i] ?? []).map((g, k) => {
        const status = g && p.output ? (sameGrid(g, p.output) ? "ok" : "bad") : undefined;
        return figureHtml(`attempt ${k + 1}${status === "ok" ? " \u2713" : status === "bad" ? " \u2717" : ""}`, g, status, opts);
      });
      const target = p.output ? figureHtml("target", p.output, undefined, opts) : "";
      return `<div class="arc-pair">${figureHtml(`test[${i}] in`, p.input, undefined, opts)}${arrow}${target}${tries.join("")}</div>`;
    })
    .join("");
  return `<section class="arc-task" id="task-${escapeHtml(task.id)}"><h2>${escapeHtml(task.id)}</h2>${opts.note ?? ""}` +
    `<div class="arc-pairs">${train}</div><h3>test</h3><div class="arc-pairs">${test}</div></section>`;
}

/** A standalone HTML page with the grid styles; `body` is inserted as is. */
export function htmlPage(title: string, body: string, extraCss = ""): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h2{font-size:1.1em;margin:.2em 0}h3{font-size:.9em;margin:.6em 0 .2em;color:#555}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}${ARC_CSS}${extraCss}</style>
</head><body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`;
}

// ---------------------------------------------------------------- PNG

export interface PngOptions {
  /** Pixels per cell (default 16). */
  cell?: number;
  /** Grid line width in pixels (default 1), drawn in grey. */
  line?: number;
}

const LINE_RGB = [0x44, 0x44, 0x44] as const;
const PAPER_RGB = [0xff, 0xff, 0xff] as const;

/** Draw grids into one RGB image: `rows` of grids, left to right, separated by `gap` pixels of white. */
export function gridsPng(rows: readonly (readonly Grid[])[], opts: PngOptions & { gap?: number } = {}): Uint8Array {
  const cell = opts.cell ?? 16, line = opts.line ?? 1, gap = opts.gap ?? cell;
  const size = (g: Grid) => [g.length * (cell + line) + line, (g[0]?.length ?? 0) * (cell + line) + line] as const;
  const rowH = rows.map((r) => Math.max(0, ...r.map((g) => size(g)[0])));
  const rowW = rows.map((r) => r.reduce((n, g, i) => n + size(g)[1] + (i ? gap : 0), 0));
  const W = Math.max(1, ...rowW) + 2 * gap, H = rowH.reduce((a, b) => a + b, 0) + gap * (rows.length + 1);
  const rgb = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) rgb.set(PAPER_RGB, i * 3);
  let y0 = gap;
  rows.forEach((row, ri) => {
    let x0 = gap;
    for (const g of row) {
      const [h, w] = size(g);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const onLine = y % (cell + line) < line || x % (cell + line) < line;
          const v = g[Math.floor(y / (cell + line))]?.[Math.floor(x / (cell + line))] ?? 0;
          rgb.set(onLine ? LINE_RGB : PALETTE_RGB[v]!, ((y0 + y) * W + x0 + x) * 3);
        }
      }
      x0 += w + gap;
    }
    y0 += rowH[ri]! + gap;
  });
  return encodePng(W, H, rgb);
}

export function gridPng(g: Grid, opts: PngOptions = {}): Uint8Array {
  return gridsPng([[g]], { ...opts, gap: 0 });
}

/** A task as one image: a row per pair (input, output); test pairs without output show the input alone. */
export function taskPng(task: Task, opts: PngOptions = {}): Uint8Array {
  return gridsPng([...task.train.map((p) => [p.input, p.output]), ...task.test.map((p) => (p.output ? [p.input, p.output] : [p.input]))], opts);
}
