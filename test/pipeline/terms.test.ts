// The loss's logged terms are named once (objective/terms.ts) and everything else follows from that table:
// the device vector's layout, an example's logs, the batch record's window means, report.html's chart of
// loss terms and the non-finite message. Adding a term is its entry there plus its tensor in efe.ts.
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Example, loadTask } from "../../src/arc";
import { efeLoss, efeLossDevice } from "../../src/pipeline/objective/efe";
import { ALL_TERMS, EXAMPLE_TERMS, STEP_TERMS, firstNonFiniteTerm, packTerms, unpackTerms } from "../../src/pipeline/objective/terms";
import { RunMonitor } from "../../src/pipeline/observe/monitor";
import { CHARTS } from "../../src/pipeline/observe/report-html";
import { type System, buildSystem } from "../../src/pipeline/system/system";
import { trainExample } from "../../src/pipeline/system/training-step";
import * as torch from "../../src/torch";
import { FIXTURE_ARC } from "../helpers/fixtures";
import { tinySystemConfig } from "../helpers/system";

let sys: System;
let ex: Example;
beforeAll(async () => {
  torch.manualSeed(0);
  sys = await buildSystem(tinySystemConfig());
  ex = { task: loadTask(join(FIXTURE_ARC, "training", "colourmap3x3.json")), index: 1 };
});

describe("the logged terms' table", () => {
  test("packTerms and unpackTerms agree on the layout: every term by its name, per-step terms with their T values", () => {
    const scalars = Object.fromEntries(Object.keys(EXAMPLE_TERMS).map((n, i) => [n, torch.tensor([i + 1])])) as never;
    const perStep = Object.fromEntries(Object.keys(STEP_TERMS).map((n, i) => [n, torch.tensor([10 * i, 10 * i + 1, 10 * i + 2])])) as never;
    const back = unpackTerms(packTerms(scalars, perStep).tolist() as number[], 3);
    Object.keys(EXAMPLE_TERMS).forEach((n, i) => expect(back[n as keyof typeof back]).toBe(i + 1));
    Object.keys(STEP_TERMS).forEach((n, i) => expect(back[n as keyof typeof back]).toEqual([10 * i, 10 * i + 1, 10 * i + 2]));
  });

  test("efeLossDevice's vector read back is efeLoss's terms; a trained example logs every term, finite", () => {
    torch.scope(() => {
      const inp = { logits: torch.randn([5, 3, 3, 10]), target: torch.randint(0, 10, [3, 3]), heightLogits: torch.randn([30]), widthLogits: torch.randn([30]), sizeWeight: 0.7 };
      const d = efeLossDevice(inp);
      const host = unpackTerms(d.logged.tolist() as number[], d.steps);
      const terms = efeLoss(inp);
      for (const t of ALL_TERMS) expect(host[t.name]).toEqual(terms[t.name]);
      const logs = trainExample(sys, ex, { sizeWeight: 0.8 }).logs;
      for (const t of ALL_TERMS) expect({ term: t.name, finite: Number.isFinite(logs[t.name]) }).toEqual({ term: t.name, finite: true });
    });
  });

  test("the batch record averages every windowMean term under its metric name; the chart of loss terms draws the chart terms", () => {
    const logs = torch.scope(() => trainExample(sys, ex, { sizeWeight: 0.8 }).logs);
    const monitor = new RunMonitor("cpu", [], { step: 0, resumed: false, batchSize: 1, optimizers: [], out: () => {}, warn: () => {} });
    monitor.example(logs);
    monitor.example({ ...logs, risk: logs.risk + 2 });
    const extras = monitor.batchExtras(2);
    for (const t of ALL_TERMS.filter((t) => t.windowMean)) expect(extras[t.metric]).toBeCloseTo(t.name === "risk" ? logs.risk + 1 : logs[t.name], 12);
    for (const t of ALL_TERMS.filter((t) => !t.windowMean)) expect(extras[t.metric]).toBeUndefined();
    const chart = CHARTS.find((c) => c.id === "loss_terms")!;
    expect(chart.series.map((s) => s.key)).toEqual(ALL_TERMS.filter((t) => t.chart).map((t) => t.metric));
  });

  test("the non-finite message names the first term in the order the loss is built", () => {
    expect(firstNonFiniteTerm({ risk: 1, ambiguity: Number.NaN, complexity: Number.NaN, loss: Number.NaN })).toBe("ambiguity");
    expect(firstNonFiniteTerm({ risk: 1, sizeCe: Number.POSITIVE_INFINITY, loss: Number.NaN })).toBe("size cross-entropy");
    expect(firstNonFiniteTerm({ risk: 1, loss: 2 })).toBeNull();
  });
});
