// The Qwen stage on its own: generate from a prompt, or print hidden-state statistics (what the prompt
// stage feeds the agent). `bun scripts/qwen.ts --help`.
import { parseArgs, type ParseArgsConfig } from "node:util";
import * as torch from "../src/torch.ts";
import { type DType, type Device, TorchError } from "../src/torch.ts";
import { HubError } from "../src/hub.ts";
import { DEFAULT_MODEL, MODEL_SPEC_HELP, loadQwen } from "../src/models/load.ts";
import { oneLineErrors } from "../src/util/cli.ts";

const USAGE = `Usage: bun scripts/qwen.ts [options]

Generates a reply to a prompt (Qwen2.5's chat template), or with --hidden prints statistics of the
final hidden states (after model.norm) without running the lm_head.

Options:
  --model M               ${MODEL_SPEC_HELP}
  --prompt TEXT           the user message (default: a small ARC-style question)
  --system TEXT           system message (default: Qwen2.5's)
  --raw                   encode the prompt as is, without the chat template
  --max_new_tokens N      default 32
  --do_sample             sample instead of greedy decoding
  --temperature T         default 1 (with --do_sample)
  --top_k K               default 0 = off (with --do_sample)
  --top_p P               default 1 = off (with --do_sample)
  --repetition_penalty R  default 1 = off
  --seed S                RNG seed (sampling, and the tiny model's weights; default 0)
  --hidden                hidden-state statistics instead of generation
  --device D              cpu, cuda or cuda:N (default cuda when available, else cpu)
  --dtype T               float32, bfloat16 or float16 (default: the checkpoint's)
  --json                  one JSON object instead of text
  --help                  this text

Exit codes: 0 ok, 1 model error (download, weights, torch), 2 bad arguments.`;

const DEFAULT_PROMPT = "Input:\n0 0 1\n0 1 0\n1 0 0\nOutput:\n1 0 0\n0 1 0\n0 0 1\n\nState the rule in one sentence.";

const OPTIONS = {
  model: { type: "string", default: DEFAULT_MODEL },
  prompt: { type: "string" },
  system: { type: "string" },
  raw: { type: "boolean" },
  max_new_tokens: { type: "string" },
  do_sample: { type: "boolean" },
  temperature: { type: "string" },
  top_k: { type: "string" },
  top_p: { type: "string" },
  repetition_penalty: { type: "string" },
  seed: { type: "string" },
  hidden: { type: "boolean" },
  device: { type: "string" },
  dtype: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsConfig["options"];

class UsageError extends Error {}

function num(name: string, v: string | undefined, dflt: number, check: (x: number) => boolean, what: string): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x) || !check(x)) throw new UsageError(`--${name} must be ${what}, got "${v}"`);
  return x;
}

export interface Io {
  out(s: string): void;
  err(s: string): void;
}
const stdio: Io = { out: (s) => process.stdout.write(s + "\n"), err: (s) => process.stderr.write(s + "\n") };

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  let v;
  try {
    v = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }).values;
  } catch (e) {
    io.err(`qwen: ${(e as Error).message}\n(see --help)`);
    return 2;
  }
  if (v.help) {
    io.out(USAGE);
    return 0;
  }
  let maxNew: number, temperature: number, topK: number, topP: number, penalty: number, seed: number, device: Device, dtype: DType | undefined;
  try {
    maxNew = num("max_new_tokens", v.max_new_tokens, 32, (x) => Number.isInteger(x) && x >= 0 && x <= 32768, "an integer 0..32768");
    temperature = num("temperature", v.temperature, 1, (x) => x > 0, "positive");
    topK = num("top_k", v.top_k, 0, (x) => Number.isInteger(x) && x >= 0, "a non-negative integer");
    topP = num("top_p", v.top_p, 1, (x) => x > 0 && x <= 1, "in (0, 1]");
    penalty = num("repetition_penalty", v.repetition_penalty, 1, (x) => x > 0, "positive");
    seed = num("seed", v.seed, 0, (x) => Number.isInteger(x) && x >= 0, "a non-negative integer");
    const dev = v.device ?? (torch.cuda.isAvailable() ? "cuda" : "cpu");
    if (!/^(cpu|cuda(:\d+)?)$/.test(dev)) throw new UsageError(`--device must be cpu, cuda or cuda:N, got "${dev}"`);
    if (dev !== "cpu" && !torch.cuda.isAvailable()) throw new UsageError(`--device ${dev}: CUDA is not available (this LibTorch: ${torch.version().libtorch}${torch.version().cuda ? "" : ", built without CUDA"})`);
    device = dev as Device;
    if (v.dtype !== undefined && !["float32", "bfloat16", "float16"].includes(v.dtype)) throw new UsageError(`--dtype must be float32, bfloat16 or float16, got "${v.dtype}"`);
    dtype = v.dtype as DType | undefined;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`qwen: ${e.message}`);
      return 2;
    }
    throw e;
  }

  try {
    torch.manualSeed(seed);
    const t0 = performance.now();
    const { model, tokenizer } = await loadQwen(v.model, { device, dtype, seed });
    const loadMs = performance.now() - t0;
    model.eval();
    const text = v.prompt ?? DEFAULT_PROMPT;
    const ids = v.raw
      ? tokenizer.encode(text)
      : tokenizer.encodeChat([...(v.system !== undefined ? [{ role: "system", content: v.system }] : []), { role: "user", content: text }], { addGenerationPrompt: true });
    if (ids.length === 0) throw new UsageError("the prompt encodes to no tokens");
    const base = {
      model: v.model, device, dtype: model.dtype, params: model.numParameters(), layers: model.config.numHiddenLayers,
      hidden_size: model.hiddenSize, prompt_tokens: ids.length, load_ms: Math.round(loadMs),
    };

    if (v.hidden) {
      const t1 = performance.now();
      const stats = torch.noGrad(() =>
        torch.scope(() => {
          const input = torch.tensor([ids], { dtype: "int64", device });
          const h = model.forward({ inputIds: input, computeLogits: false }).hiddenStates.select(0, 0).float(); // [T, D]
          const pooled = h.mean(0);
          const tokenNorms = h.norm(2, -1);
          return {
            shape: h.shape,
            mean: h.mean().item(),
            std: h.std().item(),
            min: h.min().item(),
            max: h.max().item(),
            finite: Boolean(h.isfinite().all().item()),
            token_norm_mean: tokenNorms.mean().item(),
            last_token_norm: tokenNorms.select(0, h.shape[0] - 1).item(),
            mean_pooled_norm: pooled.norm().item(),
          };
        }),
      );
      const res = { ...base, ...stats, forward_ms: Math.round(performance.now() - t1) };
      if (v.json) io.out(JSON.stringify(res));
      else {
        io.out(`model ${res.model} (${(res.params / 1e6).toFixed(1)} M parameters, ${res.dtype}, ${device}), loaded in ${res.load_ms} ms`);
        io.out(`prompt: ${ids.length} tokens; final hidden states [${stats.shape.join(", ")}] in ${res.forward_ms} ms`);
        io.out(`  mean ${stats.mean.toExponential(3)}  std ${stats.std.toFixed(4)}  min ${stats.min.toFixed(3)}  max ${stats.max.toFixed(3)}  finite ${stats.finite}`);
        io.out(`  token L2 norm: mean ${stats.token_norm_mean.toFixed(3)}, last ${stats.last_token_norm.toFixed(3)}; mean-pooled vector norm ${stats.mean_pooled_norm.toFixed(4)}`);
      }
      return 0;
    }

    const t1 = performance.now();
    const input = torch.tensor([ids], { dtype: "int64", device });
    const [out] = model.generate(input, { maxNewTokens: maxNew, doSample: v.do_sample ?? false, temperature, topK, topP, repetitionPenalty: penalty });
    input.dispose();
    const genMs = performance.now() - t1;
    const stop = out.length > 0 && model.generationConfig.eosTokenIds.includes(out[out.length - 1]);
    const res = {
      ...base, new_tokens: out.length, stopped_at_eos: stop, generate_ms: Math.round(genMs),
      tokens_per_s: out.length / (genMs / 1000), ids: out, text: tokenizer.decode(out, { skipSpecialTokens: true }),
    };
    if (v.json) io.out(JSON.stringify(res));
    else {
      io.out(`model ${res.model} (${(res.params / 1e6).toFixed(1)} M parameters, ${res.dtype}, ${device}), loaded in ${res.load_ms} ms`);
      io.out(`prompt: ${ids.length} tokens; ${out.length} new tokens in ${res.generate_ms} ms (${res.tokens_per_s.toFixed(1)} tokens/s)${stop ? ", stopped at EOS" : ""}`);
      io.out("---");
      io.out(res.text);
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`qwen: ${e.message}`);
      return 2;
    }
    // Hub, torch and tokenizer errors (a missing file, a bad checkpoint, CUDA out of memory): one clear line.
    if (e instanceof HubError || e instanceof TorchError || e instanceof Error) {
      io.err(`qwen: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) {
  oneLineErrors("qwen");
  process.exit(await main(process.argv.slice(2)));
}
