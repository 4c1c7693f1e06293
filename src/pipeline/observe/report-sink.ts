// report.html: after each validation, its grids (val_latest.json) and the page with every chart redrawn.
// A report that cannot be written costs the report, never the training.
import type { ExampleEval } from "../eval/evaluate";
import { writeDashboard, writeValidationGallery } from "./report-html";
import type { MetricsSink } from "./sink";

export class ReportSink implements MetricsSink {
  constructor(private readonly runDir: string, private readonly warn: (line: string) => void) {}

  write(): void {}

  validated(step: number, results: ExampleEval[]): void {
    try {
      writeValidationGallery(this.runDir, step, results);
      writeDashboard(this.runDir);
    } catch (e) {
      this.warn(`could not write ${this.runDir}/report.html: ${(e as Error).message}`);
    }
  }
}
