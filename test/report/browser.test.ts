// The training report and the eval report opened in headless Chromium: they load with no console errors
// and no request beyond the file itself (self-contained, so they work offline); every chart draws its
// expected number of series (each series' colour is on the canvas); a known validation grid's cells show
// ARC's palette at sampled screenshot pixels; a screenshot of each page is saved in the test's temporary
// folder. Skipped, saying so, only where no Chromium can be found (scripts/install-browser.sh installs it).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { PALETTE_RGB } from "../../src/arc/render";
import { writeDashboard } from "../../src/pipeline/observe/report-html";
import { canvasInk, decodePng, findChromium, gridCellCentres, launchChromium, openFile, pixelAt, seriesInk } from "../helpers/browser";
import { KNOWN_GRID, writeRunFixture } from "../helpers/runFixture";

const ROOT = join(import.meta.dir, "..", "..");
const CHROMIUM = findChromium();
if (!CHROMIUM) console.log("skipped: no chromium (run scripts/install-browser.sh, or set CHROMIUM_PATH)");
const TMP = mkdtempSync(join(tmpdir(), "arc-report-browser-"));
// ARC_KEEP_TMP=1 keeps the screenshots for a look.
afterAll(() => {
  if (process.env.ARC_KEEP_TMP) console.log(`screenshots kept in ${TMP}`);
  else rmSync(TMP, { recursive: true, force: true });
});

/** Requests the page makes besides its own file (a self-contained report makes none). */
function watchRequests(page: Page, own: string): string[] {
  const other: string[] = [];
  page.on("request", (r) => { if (r.url() !== own && !r.url().startsWith("data:")) other.push(r.url()); });
  return other;
}

async function open(browser: Browser, path: string) {
  const opened = await openFile(browser, path);
  const requests = watchRequests(opened.page, `file://${path}`);
  await opened.page.reload({ waitUntil: "load" }); // the watcher is attached now: see every request of a full load
  return { ...opened, requests };
}

/** Screenshot of the whole page, saved next to the report's test folder, decoded. */
async function screenshot(page: Page, name: string) {
  const path = join(TMP, `${name}.png`);
  const png = await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return decodePng(new Uint8Array(png));
}

/** Every cell of a grid on the page shows its colour's palette RGB at its centre (within 3 per channel). */
async function expectGridColours(page: Page, img: ReturnType<typeof decodePng>, selector: string, grid: number[][]) {
  const { rows, cols, centres } = await gridCellCentres(page, selector);
  expect([rows, cols]).toEqual([grid.length, grid[0].length]);
  const wrong: string[] = [];
  centres.forEach(([x, y], i) => {
    const v = grid[Math.floor(i / cols)][i % cols];
    const got = pixelAt(img, x, y);
    if (got.some((c, k) => Math.abs(c - PALETTE_RGB[v][k]) > 3)) wrong.push(`cell ${i} colour ${v}: ${got} at (${x},${y}), want ${PALETTE_RGB[v]}`);
  });
  expect(wrong).toEqual([]);
}

type DrawnChart = { id: string; series: number; colours: string[] };

/** The charts the page says it drew, each checked on its canvas: every series' colour is there. */
async function expectCharts(page: Page, expected: Record<string, number>) {
  const drawn = (await page.evaluate(() => (globalThis as unknown as { arcCharts: DrawnChart[] }).arcCharts)) ?? [];
  expect(Object.fromEntries(drawn.map((c) => [c.id, c.series]))).toEqual(expected);
  expect(await page.locator(".chart canvas").count()).toBe(Object.keys(expected).length);
  for (const c of drawn) {
    const ink = await canvasInk(page, `#chart-${c.id}`, c.colours[0]);
    expect({ chart: c.id, blank: ink.nonBlank === 0 }).toEqual({ chart: c.id, blank: false });
    // Each series shown alone leaves its colour: a 2-pixel line, or for a lone point a 7-pixel ring (> 10 pixels).
    const perSeries = await seriesInk(page, c.id, c.colours);
    expect({ chart: c.id, drawn: perSeries.map((n) => n > 10) }).toEqual({ chart: c.id, drawn: c.colours.map(() => true) });
  }
}

function runScript(script: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "scripts", script), ...args], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${script} ${args.join(" ")} exited ${r.status}:\n${(r.stderr ?? "").slice(-3000)}`);
  return r;
}

describe.skipIf(!CHROMIUM)("reports in headless Chromium", () => {
  let browser: Browser;
  beforeAll(async () => { browser = await launchChromium(CHROMIUM!); });
  afterAll(async () => { await browser?.close(); });

  test("training report of a known run: every chart with its series, the known grid in ARC's colours", async () => {
    const { dir } = writeRunFixture(join(TMP, "known"), { cuda: true });
    const path = writeDashboard(dir);
    const { page, errors, requests } = await open(browser, path);
    const img = await screenshot(page, "training-report-known");
    await expectCharts(page, {
      loss: 3, loss_terms: 4, accuracy: 2, validation: 4, mask: 2, size: 1, reward: 1, grad_norms: 1, memory: 2, lr: 3, scale: 1, throughput: 1, resources: 3,
    });
    const example = 'section[data-example="0"] .arc-pair > figure';
    await expectGridColours(page, img, `${example}:nth-of-type(2) .arc-grid`, KNOWN_GRID); // the target
    await expectGridColours(page, img, `${example}:nth-of-type(4) .arc-grid`, KNOWN_GRID); // attempt 2, which is right
    expect(await page.locator(`${example}:nth-of-type(3)`).getAttribute("class")).toBe("arc-bad");
    expect(await page.locator(`${example}:nth-of-type(4)`).getAttribute("class")).toBe("arc-ok");
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });

  test("a smoke run's training report and its checkpoint's eval report", async () => {
    const runs = join(TMP, "runs");
    runScript("train.ts", ["--preset", "smoke", "--max_batches", "6", "--log_every", "2", "--device", "cpu", "--run_dir", runs, "--quiet"]);
    const runDir = join(runs, readdirSync(runs).find((n) => n.startsWith("arc_"))!);
    const gallery = JSON.parse(readFileSync(join(runDir, "val_latest.json"), "utf8"));

    const train = await open(browser, join(runDir, "report.html"));
    // A CPU run: process memory only; the refiner's learning rate next to the agent's and Qwen's.
    const trainImg = await screenshot(train.page, "training-report-smoke");
    await expectCharts(train.page, {
      loss: 2, loss_terms: 4, accuracy: 2, validation: 4, mask: 2, size: 1, reward: 1, grad_norms: 5, memory: 2, lr: 3, scale: 1, throughput: 1, resources: 1,
    });
    await expectGridColours(train.page, trainImg, 'section[data-example="0"] .arc-pair > figure:nth-of-type(2) .arc-grid', gallery.results[0].target);
    expect(train.errors).toEqual([]);
    expect(train.requests).toEqual([]);
    await train.page.close();

    const out = join(TMP, "eval");
    runScript("eval.ts", ["--run", runDir, "--checkpoint", "latest", "--split", "val", "--device", "cpu", "--out", out]);
    const ev = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    const evalPage = await open(browser, join(out, "report.html"));
    const evalImg = await screenshot(evalPage.page, "eval-report");
    const first = "body > section.arc-task:nth-of-type(1) .arc-pair > figure";
    await expectGridColours(evalPage.page, evalImg, `${first}:nth-of-type(2) .arc-grid`, ev.results[0].target);
    await expectGridColours(evalPage.page, evalImg, `${first}:nth-of-type(3) .arc-grid`, ev.results[0].attempts[0]);
    expect(await evalPage.page.locator("section.arc-task").count()).toBe(ev.results.length);
    expect(evalPage.errors).toEqual([]);
    expect(evalPage.requests).toEqual([]);
    await evalPage.page.close();
  });

  test("the checks fail on a broken page: a script error is reported, a missing chart is noticed", async () => {
    // Guards against a harness that passes whatever the page does.
    const path = join(TMP, "broken.html");
    writeFileSync(path, `<!doctype html><html><body><div class="chart" id="chart-x"><canvas width="10" height="10"></canvas></div><script>window.arcCharts = []; undefinedFunction();</script></body></html>`);
    const { page, errors } = await open(browser, path);
    expect(errors.some((e) => e.includes("undefinedFunction"))).toBe(true);
    expect((await canvasInk(page, "#chart-x", "#0072B2")).nonBlank).toBe(0);
    await page.close();
  });
});
