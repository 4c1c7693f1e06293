// The training report's data and page without a browser: which curves a run's records give, aligned on
// the union of their steps; log axes leaving out values they cannot show; the gallery capped; the page
// self-contained, with data that cannot close its <script>. (test/report/browser.test.ts draws it.)
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExampleEval } from "../../src/pipeline/eval/evaluate";
import { GALLERY_MAX, chartData, dashboardHtml, readValidationGallery, writeValidationGallery } from "../../src/pipeline/observe/report-html";
import { writeRunFixture } from "../helpers/runFixture";

const TMP = mkdtempSync(join(tmpdir(), "arc-dashboard-test-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

describe("chartData", () => {
  test("series only where the records have them, aligned on the union of steps", () => {
    const charts = chartData([
      { type: "batch", step: 2, loss: 1, efe: 2, scale: 0 },
      { type: "batch", step: 4, loss: 0.5, efe: 1.5, scale: 2 },
      { type: "epoch", step: 5, efe: 1.7 },
      { type: "val", step: 5, exactFirst: 0.25, pass2: 0.5 },
    ]);
    expect(charts.map((c) => c.id)).toEqual(["loss", "validation", "scale"]);
    const loss = charts[0];
    expect(loss.x).toEqual([2, 4, 5]);
    expect(loss.labels.length).toBe(3);
    expect(loss.y).toEqual([[1, 0.5, null], [2, 1.5, null], [null, null, 1.7]]);
    expect(charts[1].y).toEqual([[0.25], [0.5]]);
    // The scale chart has a log axis: 0 cannot be drawn there and becomes a gap.
    expect(charts[2]).toMatchObject({ log: true, x: [2, 4], y: [[null, 2]] });
  });

  test("no records, no charts", () => {
    expect(chartData([])).toEqual([]);
  });
});

describe("the page", () => {
  test("self-contained: uPlot inlined, nothing fetched, data escaped inside its script", () => {
    const { dir } = writeRunFixture(join(TMP, "run"));
    const html = dashboardHtml(dir);
    // (uPlot's licence comment names its home page; the browser test checks that nothing is requested.)
    expect({ externalScriptOrStyle: /<script[^>]+src=|<link[^>]+href=/.test(html) }).toEqual({ externalScriptOrStyle: false });
    expect(html).toContain("uPlot");
    expect(html).toContain('id="chart-loss"');
    expect(html).toContain("Validation grids at step 40");
    const data = /<script type="application\/json" id="chart-data">([^]*?)<\/script>/.exec(html)![1];
    expect(JSON.parse(data).length).toBe(13);
  });

  test("a label with </script> in it stays data", () => {
    const { dir } = writeRunFixture(join(TMP, "run2"));
    writeValidationGallery(dir, 3, [{ ...fakeEval(0), task: "</script><b>x" }]);
    const html = dashboardHtml(dir);
    expect(html).toContain("&lt;/script&gt;&lt;b&gt;x");
    expect(html.match(/<\/script>/g)!.length).toBe(3); // the data, uPlot and the drawing script
  });

  test("the gallery keeps the first GALLERY_MAX examples and says how many there were", () => {
    const dir = join(TMP, "run3");
    writeRunFixture(dir);
    writeValidationGallery(dir, 7, Array.from({ length: GALLERY_MAX + 5 }, (_, i) => fakeEval(i)));
    const g = readValidationGallery(dir)!;
    expect(g.results.length).toBe(GALLERY_MAX);
    expect(g.examples).toBe(GALLERY_MAX + 5);
    expect(dashboardHtml(dir)).toContain(`(the first ${GALLERY_MAX} of ${GALLERY_MAX + 5})`);
  });
});

function fakeEval(i: number): ExampleEval {
  return {
    task: `t${i}`, kind: "test", index: 0, input: [[1]], target: [[2]], size: [1, 1], sizeSource: "task", attempts: [[[2]], [[3]]],
    firstCorrect: true, correct: true, cellAccBefore: 1, cellAccAfter: 0, hint: "",
  };
}
