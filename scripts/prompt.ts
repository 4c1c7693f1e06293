// The prompt stage on its own (docs/pipeline.md, "Prompt"): the chat prompt HybridPrompter builds for one example, its
// token count, the demonstrations shown and dropped, the greedy hint and the prompt vector p.
// `bun scripts/prompt.ts --help`.
import { COMMON_HELP, buildStageSystem, exampleHeader, exampleLabel, parseStageArgs, resolveExample, runStage } from "./lib/stage.ts";
import { oneLineErrors } from "../src/util/cli.ts";

const USAGE = `Usage: bun scripts/prompt.ts --task ID [--pair N] [options]

The prompt stage (docs/pipeline.md): prints the chat prompt HybridPrompter builds for one example (the task's
other pairs as "Input:/Output:" grids, then the example's input; never the example's output), its token
count, the demonstrations shown and dropped to fit --max_prompt_tokens, the greedy hint, and the prompt
vector p (the mean of Qwen's final hidden states from the end of the test input onward).

${COMMON_HELP}`;

async function main(argv: string[]): Promise<void> {
  const parsed = parseStageArgs(argv, USAGE);
  if (!parsed) return;
  const { args } = parsed;
  const { ex, where } = await resolveExample(args);
  const torch = await import("../src/torch.ts");
  const t0 = performance.now();
  const sys = await buildStageSystem(args);
  const loadMs = performance.now() - t0;
  const built = sys.prompter.build(ex);
  const t1 = performance.now();
  // Qwen as it trains (LoRA dropout is 0 here); gradient on, so "requires grad" says whether p reaches Qwen.
  const res = torch.scope(() => {
    const r = sys.prompter.embed(ex);
    const p = r.p.float();
    return {
      hint: r.hint,
      hintIds: r.hintIds,
      requiresGrad: r.p.requiresGrad,
      dim: r.p.shape[0]!,
      norm: p.norm().item(),
      mean: p.mean().item(),
      std: p.std().item(),
      finite: Boolean(p.isfinite().all().item()),
    };
  });
  const embedMs = performance.now() - t1;
  const out = {
    ...exampleHeader(ex, where),
    model: args.model,
    qwen_train: args.qwen_train,
    device: sys.qwen.device,
    tokens: built.ids.length,
    max_prompt_tokens: args.max_prompt_tokens,
    shown: built.shown,
    dropped: built.dropped,
    query_end: built.queryEnd,
    pooled_positions: built.ids.length - built.queryEnd + res.hintIds.length,
    hint: res.hint,
    hint_ids: res.hintIds,
    p_dim: res.dim,
    p_norm: res.norm,
    p_mean: res.mean,
    p_std: res.std,
    p_finite: res.finite,
    p_requires_grad: res.requiresGrad,
    load_ms: Math.round(loadMs),
    embed_ms: Math.round(embedMs),
    text: built.text,
  };
  if (args.json) {
    process.stdout.write(JSON.stringify(out) + "\n");
    return;
  }
  const lines = [
    `${exampleLabel(ex, where)}; model ${args.model} (qwen_train ${args.qwen_train}, ${out.device}), built in ${out.load_ms} ms`,
    "----- prompt -----",
    built.text.replace(/\n$/, ""),
    "----- end of prompt -----",
    `prompt tokens: ${out.tokens} (budget ${args.max_prompt_tokens}${out.tokens > args.max_prompt_tokens ? "; over it: the test input alone does not fit, and it is never dropped" : ""})`,
    `demonstrations: ${out.shown} shown, ${out.dropped} dropped`,
    `hint (${res.hintIds.length} token${res.hintIds.length === 1 ? "" : "s"}${args.hint_tokens === 0 ? ", --hint_tokens 0" : ""}): ${JSON.stringify(res.hint)}  ids [${res.hintIds.join(", ")}]`,
    `p: [${out.p_dim}], mean of ${out.pooled_positions} positions (from token ${out.query_end}); norm ${out.p_norm.toFixed(4)}, mean ${out.p_mean.toExponential(3)}, std ${out.p_std.toFixed(4)}, finite ${out.p_finite}, requires grad ${out.p_requires_grad} (${out.embed_ms} ms)`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

if (import.meta.main) {
  oneLineErrors("prompt");
  await runStage("prompt", () => main(process.argv.slice(2)));
}
