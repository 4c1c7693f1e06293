// The agent stage on its own (docs/pipeline.md, "Agent" and "Resize"): the GridAgent's prediction for one example at every
// refinement step, the size head's output size, and the last step resized to the size evaluation uses.
// `bun scripts/agent.ts --help`.
import type { Grid } from "../src/arc/types.ts";
import { COMMON_HELP, buildStageSystem, exampleHeader, exampleLabel, parseStageArgs, resolveExample, runStage } from "./lib/stage.ts";
import { oneLineErrors } from "../src/util/cli.ts";

const USAGE = `Usage: bun scripts/agent.ts --task ID [--pair N] [options]

The agent stage (docs/pipeline.md): runs Qwen (the prompt vector p, as scripts/prompt.ts shows it) and the
GridAgent once, without refinement, in evaluation mode, and prints the input, the hard prediction of each
of the T refinement steps (at the input's size), the size head's prediction, and the last step resized
(nearest) to the size evaluation would use: the one a size rule reads off the demonstrations (src/arc/size-rules.ts), else the
size head's. With a known target: the target and the cell accuracy at its size. Colours on a terminal
(NO_COLOR=1 or a pipe: digits).

${COMMON_HELP}`;

const dims = (g: Grid) => `${g.length}x${g[0]?.length ?? 0}`;

async function main(argv: string[]): Promise<void> {
  const parsed = parseStageArgs(argv, USAGE);
  if (!parsed) return;
  const { args } = parsed;
  const { ex, where } = await resolveExample(args);
  const torch = await import("../src/torch.ts");
  const { context, target, gridLines, wantsColour } = await import("../src/arc/index.ts");
  const { outputSizeFromDemos } = await import("../src/arc/size-rules.ts");
  const { predictedSize } = await import("../src/pipeline/system/agent.ts");
  const { hardPrediction } = await import("../src/pipeline/system/forward.ts");
  const { cellAccuracy } = await import("../src/pipeline/objective/reward.ts");

  const sys = await buildStageSystem(args);
  const ctx = context(ex);
  const tgt = target(ex) ?? null;
  sys.qwen.eval();
  sys.agent.eval();
  const t0 = performance.now();
  const res = torch.noGrad(() =>
    torch.scope(() => {
      const prompt = sys.prompter.embed(ex);
      const out = sys.agent.forward(ctx.query, prompt.p);
      const steps = out.logits.argmax(-1); // [T, H, W]
      const grids: Grid[] = [];
      for (let t = 0; t < steps.shape[0]!; t++) grids.push(steps.select(0, t).tolist() as Grid);
      const head = predictedSize(out);
      const certain = outputSizeFromDemos(ex.task, ctx.query).size;
      const size: [number, number] = certain ?? head;
      const final = hardPrediction(out.logits, size[0], size[1]);
      return { grids, head, certain, size, final, acc: tgt ? cellAccuracy(hardPrediction(out.logits, tgt.length, tgt[0]!.length), tgt) : null };
    }),
  );
  const ms = performance.now() - t0;
  const out = {
    ...exampleHeader(ex, where),
    input: ctx.query,
    steps: res.grids,
    size_head: res.head,
    certain_size: res.certain,
    size: res.size,
    size_source: res.certain ? "task" : "head",
    prediction: res.final,
    target: tgt,
    cell_acc: res.acc,
    ms: Math.round(ms),
  };
  if (args.json) {
    process.stdout.write(JSON.stringify(out) + "\n");
    return;
  }
  const colour = wantsColour(process.stdout);
  const w = (g: Grid) => 2 * (g[0]?.length ?? 0);
  // Blocks side by side when they fit 120 columns, else one under another.
  const show = (blocks: { title: string; grid: Grid }[]): string[] => {
    const width = blocks.reduce((a, b) => a + Math.max(w(b.grid), b.title.length) + 2, 0);
    if (width > 120) return blocks.flatMap((b) => [b.title, ...gridLines(b.grid, { colour }), ""]);
    const cols = blocks.map((b) => ({ lines: gridLines(b.grid, { colour }), width: Math.max(w(b.grid), b.title.length), own: w(b.grid) }));
    const h = Math.max(...cols.map((c) => c.lines.length));
    const lines = [blocks.map((b, i) => b.title.padEnd(cols[i]!.width)).join("  ").trimEnd()];
    for (let i = 0; i < h; i++) {
      lines.push(cols.map((c) => (c.lines[i] !== undefined ? c.lines[i] + " ".repeat(c.width - c.own) : " ".repeat(c.width))).join("  ").trimEnd());
    }
    return [...lines, ""];
  };
  const T = res.grids.length;
  const lines = [
    `${exampleLabel(ex, where)}; model ${args.model}, agent d=${args.agent_channels} T=${T} (untrained), ${sys.qwen.device}; ${out.ms} ms`,
    "",
    ...show([{ title: `input ${dims(ctx.query)}`, grid: ctx.query }]),
    `predictions of the ${T} refinement steps (argmax at the input's size ${dims(ctx.query)}):`,
    ...show(res.grids.map((g, t) => ({ title: `step ${t + 1}`, grid: g }))),
    `size head: ${res.head[0]}x${res.head[1]}` +
      (tgt ? ` (target ${dims(tgt)}${res.head[0] === tgt.length && res.head[1] === tgt[0]!.length ? ", right" : ", wrong"})` : "") +
      (res.certain ? `; from the demonstrations: ${res.certain[0]}x${res.certain[1]}` : "; the task does not fix the output size"),
    "",
    ...show([
      { title: `step ${T} resized to ${res.size[0]}x${res.size[1]} (${out.size_source})`, grid: res.final },
      ...(tgt ? [{ title: `target ${dims(tgt)}`, grid: tgt }] : []),
    ]),
    ...(res.acc !== null ? [`cell accuracy at the target size: ${res.acc.toFixed(4)}`] : ["(no known target)"]),
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

if (import.meta.main) {
  oneLineErrors("agent");
  await runStage("agent", () => main(process.argv.slice(2)));
}
