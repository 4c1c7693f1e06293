#!/usr/bin/env bash
# Issue 22's CPU figures before and after, in one run on one machine: the same measurements taken in a
# checkout of the commit before the GPU-epoch work (a git worktree sharing this build of the addon, which
# has every op the older code calls, and node_modules) and in this tree. One JSON object on stdout:
#   native calls of one decode step (Qwen2.5-1.5B's structure, 28 layers, LoRA on every projection, at small
#   widths; the older code counted through the same native counter), and bench/train.ts on ARC-AGI-2 with the
#   trainer's defaults (the tiny Qwen on the CPU) at batch 8 and 16, four batches each, one Qwen pass a batch:
#   the prompt padding share (the timed batches', and the epoch's where the bench reports it), prompt tokens
#   per example, peak RSS.
#   bash bench/before-after.sh [BEFORE_COMMIT] > bench/results/before-after-cpu-$(date +%F).json
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
before=${1:-0e873aa}
wt=$(mktemp -d)/before
git worktree add -q --detach "$wt" "$before"
trap 'git worktree remove --force "$wt"' EXIT
mkdir -p "$wt/build"
ln -s "$PWD/build/Release" "$wt/build/Release"
ln -s "$PWD/node_modules" "$wt/node_modules"
data=../shared/data/arc/ARC-AGI-2
[ -d "$data" ] || { echo "before-after: needs $data (ARC-AGI-2's tasks)" >&2; exit 2; }
data=$(cd "$data" && pwd)
calls() { # calls ROOT: native calls of one decode step there
  (cd "$1" && npx bun -e '
    import * as torch from "./src/torch";
    import { N } from "./src/torch/native";
    import { Qwen2ForCausalLM, QWEN25_1_5B_CONFIG } from "./src/models/qwen2";
    import { applyLora } from "./src/models/lora";
    import { existsSync } from "node:fs";
    const cfg = { ...QWEN25_1_5B_CONFIG, vocabSize: 256, hiddenSize: 96, intermediateSize: 128, headDim: 8, dtype: "float32" };
    const m = Qwen2ForCausalLM.fromConfig(cfg, { seed: 0 });
    applyLora(m, { rank: 4 });
    m.eval();
    const b = 4, t = 6;
    const n = torch.noGrad(() => torch.scope(() => {
      const ids = torch.ones([b, t], { dtype: "int64" });
      const fed = torch.ones([b, 1], { dtype: "int64" });
      if (existsSync("src/models/decode-step.ts")) {
        const { staticDecodeStep } = require("./src/models/decode-step");
        const st = staticDecodeStep(m, { batch: b, promptLength: t, maxNew: 3, mask: null, useGraphs: false });
        st.cache.writeIndex = torch.arange(0, t, 1);
        m.forward({ inputIds: ids, pastKeyValues: st.cache, logitsToKeep: 1 });
        st.cache.writeIndex = null;
        st.step(fed);
        const c0 = N.nativeCallCount(); st.step(fed); return N.nativeCallCount() - c0 - 1;
      }
      // The growing cache: the step generate made before (a mask, as a padded batch has).
      const out = m.forward({ inputIds: ids, attentionMask: torch.ones([b, t], { dtype: "int64" }), padded: true, useCache: true, logitsToKeep: 1 });
      const mask = torch.ones([b, t + 1], { dtype: "int64" });
      const c0 = N.nativeCallCount();
      m.forward({ inputIds: fed, attentionMask: mask, padded: true, pastKeyValues: out.pastKeyValues, useCache: true, logitsToKeep: 1 });
      return N.nativeCallCount() - c0 - 1;
    }));
    console.log(n);')
}
train() { # train ROOT B: bench/train.ts JSON there
  # One Qwen pass per batch (--prompt_pad_share 1), so the timed batches' padding is the sampler's.
  (cd "$1" && npx bun bench/train.ts --preset none --data "$data" --batch_size "$2" --examples $((4 * $2)) --warmup 1 --prompt_pad_share 1 2>/dev/null)
}
cb=$(calls "$wt"); ca=$(calls .)
tb8=$(train "$wt" 8); ta8=$(train . 8); tb16=$(train "$wt" 16); ta16=$(train . 16)
npx bun -e '
  import { machine } from "./bench/machine";
  const [cb, ca, tb8, ta8, tb16, ta16, before] = process.argv.slice(1);
  const pick = (s: string) => { const r = JSON.parse(s); return { prompt_padding_share_epoch: r.padding.epoch_prompt_share ?? null, prompt_padding_share_timed: r.padding.prompt_tokens_share, mean_prompt_tokens: r.mean_prompt_tokens, peak_rss_gib: r.memory.peak_rss_gib, examples_per_s: r.examples_per_s }; };
  console.log(JSON.stringify({ bench: "before-after", before_commit: before, machine: machine(),
    native_calls_per_decode_step: { before: Number(cb), after: Number(ca) },
    batch_8: { before: pick(tb8), after: pick(ta8) }, batch_16: { before: pick(tb16), after: pick(ta16) },
    note: "examples/s of before and after are not comparable: grouped by length, the timed examples differ" }, null, 1));
' "$cb" "$ca" "$tb8" "$ta8" "$tb16" "$ta16" "$before"
