// The grids of an evaluation or a prediction as one page (eval.ts's and predict.ts's report.html): each task's
// demonstrations once, above its test grids; then per evaluated output a section with its input, the target
// when known and both attempts, labelled with where each came from, wrong cells marked.
import { type Grid, type Task, escapeHtml, figureHtml, htmlPage } from "../../arc/index";

export interface HtmlItem {
  task: string;
  kind: "train" | "test";
  index: number;
  input: Grid;
  /** Absent for hidden outputs (predict.ts). */
  target?: Grid;
  attempts: [Grid, Grid];
  /** Where each attempt came from ("before refinement", "vote rank 1, 3 votes", ...). */
  labels: [string, string];
  /** Pass@2 when the target is known. */
  correct?: boolean;
  /** HTML after the grids (size, cell accuracy, notes); not escaped. */
  note?: string;
}

export const EVAL_CSS = `
.arc-demos{margin:1.8em 0 .4em;padding-top:.5em;border-top:2px solid #999}
.arc-demo{display:flex;gap:.6em;align-items:center}
.arc-demo figure{margin:0}
.arc-demo figcaption{font:12px sans-serif;color:#555;margin-bottom:2px}
.arc-task .arc-pair{flex-wrap:wrap}
.arc-summary td:nth-child(3){color:#666}
`;

const arrow = `<span class="arc-arrow">&rarr;</span>`;

/** A task's demonstrations; for a validation example (kind "train"), its own pair is marked, as the prompt leaves it out. */
export function demonstrationsHtml(task: Task, evaluatedTrain: ReadonlySet<number> = new Set()): string {
  const pairs = task.train
    .map((p, i) => {
      const own = evaluatedTrain.has(i) ? " (evaluated below; not shown to the model)" : "";
      return `<div class="arc-demo">${figureHtml(`train[${i}] in${own}`, p.input)}${arrow}${figureHtml("out", p.output)}</div>`;
    })
    .join("");
  return `<div class="arc-demos" id="task-${escapeHtml(task.id)}" data-task="${escapeHtml(task.id)}"><h2>${escapeHtml(task.id)}: ${task.train.length} demonstrations</h2><div class="arc-pairs">${pairs}</div></div>`;
}

function itemHtml(e: HtmlItem): string {
  const t = e.target;
  const status = (g: Grid) => (t ? (JSON.stringify(g) === JSON.stringify(t) ? "ok" : "bad") : undefined);
  const mark = e.correct === undefined ? "" : e.correct ? " \u2713" : " \u2717";
  return `<section class="arc-task" data-task="${escapeHtml(e.task)}"><h3>${escapeHtml(e.task)} ${e.kind}[${e.index}]${mark}</h3><div class="arc-pair">` +
    figureHtml(`${e.kind}[${e.index}] input`, e.input) +
    (t ? figureHtml("target", t) : "") +
    e.attempts.map((g, k) => figureHtml(`attempt ${k + 1} (${e.labels[k]})`, g, status(g), t ? { against: t } : {})).join("") +
    `</div>${e.note ? `<p>${e.note}</p>` : ""}</section>`;
}

/** The page: `head` (summary tables, HTML), then per task its demonstrations and its items, in the items' order of first appearance. */
export function evaluationPage(title: string, head: string, items: readonly HtmlItem[], tasks: ReadonlyMap<string, Task>): string {
  const byTask = Map.groupBy(items, (e) => e.task);
  const body = [...byTask.entries()]
    .map(([id, es]) => {
      const task = tasks.get(id);
      const own = new Set(es.filter((e) => e.kind === "train").map((e) => e.index));
      return (task ? demonstrationsHtml(task, own) : "") + es.map(itemHtml).join("\n");
    })
    .join("\n");
  return htmlPage(title, `<div class="arc-head">${head}</div>\n${body}`, EVAL_CSS);
}
