// eval.ts's report.html in headless Chromium: each task's demonstrations drawn above its test grids in ARC's
// colours, and on every attempt exactly the cells that differ from the target marked (a white ring inside
// the cell, its centre still the cell's colour). Skipped, saying so, where no Chromium can be found.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { PALETTE_RGB } from "../../src/arc/render";
import { decodePng, findChromium, gridCellCentres, launchChromium, openFile, pixelAt } from "../helpers/browser";

const ROOT = join(import.meta.dir, "..", "..");
const FIXTURES = join(ROOT, "test", "fixtures", "arc");
const CHROMIUM = findChromium();
if (!CHROMIUM) console.log("skipped: no chromium (run scripts/install-browser.sh, or set CHROMIUM_PATH)");
const TMP = mkdtempSync(join(tmpdir(), "arc-eval-report-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

function run(script: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "scripts", script), ...args], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${script} ${args.join(" ")} exited ${r.status}:\n${(r.stderr ?? "").slice(-3000)}`);
}

type Grid = number[][];
const wrongCells = (g: Grid, t: Grid) => g.reduce((n, row, i) => n + row.filter((v, j) => t[i]?.[j] !== v).length, 0);

describe.skipIf(!CHROMIUM)("eval report in headless Chromium", () => {
  let browser: Browser;
  beforeAll(async () => { browser = await launchChromium(CHROMIUM!); });
  afterAll(async () => { await browser?.close(); });

  test("demonstrations above each task's test grids; wrong cells marked on the attempts", async () => {
    const runs = join(TMP, "runs");
    run("train.ts", ["--preset", "smoke", "--max_batches", "2", "--data", FIXTURES, "--device", "cpu", "--run_dir", runs, "--quiet"]);
    const runDir = join(runs, readdirSync(runs).find((n) => n.startsWith("arc_"))!);
    const out = join(TMP, "eval");
    run("eval.ts", ["--run", runDir, "--device", "cpu", "--quiet", "--out", out]);
    const ev = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    const { page, errors } = await openFile(browser, join(out, "report.html"));
    const img = decodePng(new Uint8Array(await page.screenshot({ path: join(TMP, "eval-report.png"), fullPage: true })));

    // One demonstrations block per task, before that task's first test section.
    const tasks = [...new Set(ev.results.map((r: { task: string }) => r.task))] as string[];
    expect(await page.locator(".arc-demos").count()).toBe(tasks.length);
    const order = await page.evaluate(() => [...(globalThis as any).document.querySelectorAll(".arc-demos, section.arc-task")].map((e: any) => `${e.tagName === "SECTION" ? "test" : "demos"}:${e.dataset.task}`));
    for (const t of tasks) expect(order.indexOf(`demos:${t}`)).toBeLessThan(order.indexOf(`test:${t}`));
    // The first task's first demonstration input, drawn in ARC's colours.
    const first = JSON.parse(readFileSync(join(FIXTURES, "evaluation", `${tasks[0]}.json`), "utf8"));
    const demo = `.arc-demos[data-task="${tasks[0]}"] .arc-demo:nth-of-type(1) figure:nth-of-type(1) .arc-grid`;
    const { rows, cols, centres } = await gridCellCentres(page, demo);
    expect([rows, cols]).toEqual([first.train[0].input.length, first.train[0].input[0].length]);
    centres.forEach(([x, y], i) => {
      const want = PALETTE_RGB[first.train[0].input[Math.floor(i / cols)][i % cols]];
      expect(pixelAt(img, x, y).every((c, k) => Math.abs(c - want[k]) <= 3)).toBe(true);
    });

    // Marked cells: per attempt, exactly the cells that differ from the target.
    const marks = await page.evaluate(() =>
      [...(globalThis as any).document.querySelectorAll("section.arc-task")].map((s: any) =>
        [...s.querySelectorAll(".arc-pair > figure")].slice(2).map((f: any) => f.querySelectorAll(".arc-grid i.x").length)),
    );
    const want = ev.results.map((r: { attempts: Grid[]; target: Grid }) => r.attempts.map((a) => wrongCells(a, r.target)));
    expect(marks).toEqual(want);
    expect(want.flat().some((n: number) => n > 0)).toBe(true);
    // A marked cell shows the ring (white near its edge) around its own colour (the centre).
    const cell = page.locator("section.arc-task .arc-grid i.x").first();
    const box = (await cell.boundingBox())!;
    const scroll = await page.evaluate(() => [(globalThis as any).scrollX, (globalThis as any).scrollY]);
    const [x0, y0] = [box.x + scroll[0], box.y + scroll[1]];
    expect(pixelAt(img, x0 + 2, y0 + box.height / 2)).toEqual([255, 255, 255]);
    const cls = (await cell.getAttribute("class"))!;
    const colour = PALETTE_RGB[Number(/c(\d)/.exec(cls)![1])];
    expect(pixelAt(img, x0 + box.width / 2, y0 + box.height / 2).every((c, k) => Math.abs(c - colour[k]) <= 3)).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });
});
