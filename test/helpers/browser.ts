// Reports opened in a real headless Chromium (Debian's `chromium`, driven by playwright-core; no browser
// download): console errors collected, charts inspected, pixels sampled from a PNG screenshot.
// Code run inside the page reaches its globals through `globalThis as any` (the project's TypeScript has
// no DOM types).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { unzlibSync } from "fflate";
import { type Browser, type Page, chromium } from "playwright-core";

/** The Chromium to drive: $CHROMIUM_PATH, else the first of the usual names on PATH; null when none. */
export function findChromium(): string | null {
  const env = process.env.CHROMIUM_PATH;
  if (env) return existsSync(env) ? env : null;
  for (const name of ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"]) {
    const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    const path = r.stdout.trim();
    if (r.status === 0 && path && existsSync(path)) return path;
  }
  return null;
}

export async function launchChromium(executablePath: string): Promise<Browser> {
  // --no-sandbox: the tests run as root in containers, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
}

export interface OpenedPage {
  page: Page;
  /** Console errors, uncaught exceptions and failed requests, in order. */
  errors: string[];
}

/** Opens a local HTML file at a fixed viewport and device scale 1 (a CSS pixel is a screenshot pixel). */
export async function openFile(browser: Browser, path: string): Promise<OpenedPage> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const errors: string[] = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
  await page.goto(`file://${path}`, { waitUntil: "load" });
  return { page, errors };
}

export interface DecodedPng {
  width: number;
  height: number;
  /** RGBA, row-major. */
  pixels: Uint8Array;
}

/** Decodes an 8-bit RGB or RGBA non-interlaced PNG (what Chromium's screenshots are). */
export function decodePng(png: Uint8Array): DecodedPng {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let p = 8;
  let width = 0, height = 0, colourType = 0;
  const idat: Uint8Array[] = [];
  while (p < png.length) {
    const len = dv.getUint32(p);
    const type = String.fromCharCode(...png.subarray(p + 4, p + 8));
    const data = png.subarray(p + 8, p + 8 + len);
    if (type === "IHDR") {
      width = dv.getUint32(p + 8);
      height = dv.getUint32(p + 12);
      if (data[8] !== 8 || data[12] !== 0) throw new Error("decodePng: only 8-bit, non-interlaced images");
      colourType = data[9];
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    p += 12 + len;
  }
  const channels = colourType === 6 ? 4 : colourType === 2 ? 3 : 0;
  if (!channels) throw new Error(`decodePng: colour type ${colourType} is not RGB or RGBA`);
  const joined = new Uint8Array(idat.reduce((a, d) => a + d.length, 0));
  let o = 0;
  for (const d of idat) { joined.set(d, o); o += d.length; }
  const raw = unzlibSync(joined);
  const stride = width * channels;
  const out = new Uint8Array(width * height * 4);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.slice(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? line[i - channels] : 0;
      const b = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      let add = 0;
      if (filter === 1) add = a;
      else if (filter === 2) add = b;
      else if (filter === 3) add = (a + b) >> 1;
      else if (filter === 4) {
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        add = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      line[i] = (line[i] + add) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      for (let k = 0; k < 3; k++) out[(y * width + x) * 4 + k] = line[x * channels + k];
      out[(y * width + x) * 4 + 3] = channels === 4 ? line[x * channels + 3] : 255;
    }
    prev = line;
  }
  return { width, height, pixels: out };
}

export function pixelAt(img: DecodedPng, x: number, y: number): [number, number, number] {
  const i = (Math.round(y) * img.width + Math.round(x)) * 4;
  return [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]];
}

/** Page coordinates (document, not viewport) of the centres of a grid's cells, row by row. */
export async function gridCellCentres(page: Page, gridSelector: string): Promise<{ rows: number; cols: number; centres: [number, number][] }> {
  return page.evaluate((sel) => {
    const g = globalThis as any;
    const grid = g.document.querySelector(sel);
    if (!grid) throw new Error(`no element ${sel}`);
    const cols = g.getComputedStyle(grid).gridTemplateColumns.split(" ").length;
    const cells = [...grid.children].map((c: any) => c.getBoundingClientRect());
    return {
      rows: cells.length / cols,
      cols,
      centres: cells.map((r: any) => [r.left + r.width / 2 + g.scrollX, r.top + r.height / 2 + g.scrollY] as [number, number]),
    };
  }, gridSelector);
}

/** Pixels on a chart's canvas within a small distance of a colour, and pixels that are not transparent. */
async function inkOf(page: Page, chartSelector: string, colour: string): Promise<{ ofColour: number; nonBlank: number }> {
  return page.evaluate(([sel, hex]) => {
    const canvas = (globalThis as any).document.querySelector(`${sel} canvas`);
    if (!canvas) throw new Error(`no canvas in ${sel}`);
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height) as { data: Uint8ClampedArray };
    const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    let ofColour = 0;
    let nonBlank = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) continue;
      nonBlank++;
      if (data[i + 3] > 200 && Math.abs(data[i] - c[0]) + Math.abs(data[i + 1] - c[1]) + Math.abs(data[i + 2] - c[2]) < 24) ofColour++;
    }
    return { ofColour, nonBlank };
  }, [chartSelector, colour] as const);
}

/** A canvas's ink: pixels not transparent, and pixels of a colour. */
export async function canvasInk(page: Page, chartSelector: string, colour: string): Promise<{ ofColour: number; nonBlank: number }> {
  return inkOf(page, chartSelector, colour);
}

/**
 * For each series of a uPlot chart (window.arcPlots[id]), the pixels of its colour on the canvas while
 * it alone is shown, so series drawn on top of each other (equal learning rates) are each seen.
 */
export async function seriesInk(page: Page, id: string, colours: string[]): Promise<number[]> {
  type Plot = { series: unknown[]; setSeries(i: number, o: { show: boolean }): void };
  const show = (only: number | null) =>
    page.evaluate(([chart, k]) => new Promise<void>((resolve) => {
      const g = globalThis as any;
      const u = (g.arcPlots as Record<string, Plot>)[chart as string];
      for (let i = 1; i < u.series.length; i++) u.setSeries(i, { show: k === null || i === k });
      g.requestAnimationFrame(() => g.requestAnimationFrame(() => resolve()));
    }), [id, only] as const);
  const out: number[] = [];
  for (let i = 0; i < colours.length; i++) {
    await show(i + 1);
    out.push((await inkOf(page, `#chart-${id}`, colours[i])).ofColour);
  }
  await show(null);
  return out;
}
