#!/usr/bin/env bash
# (Also: cp ../shared/bench/hf_stages.py .gpu/  — transformers' reference for the decode step.)
# Every check that needs the GPU machine, in one call (device time is scarce: the whole script, build
# included, stays under 7 minutes; steps are ordered by what they tell, and past $BUDGET_S no step starts).
# From the project root, after `bash ../shared/gpu/pack.sh` and a copy of Gloo's headers into the pack
# (the GPU machine has no libgloo-dev; torch.distributed needs them to build):
#   mkdir -p .gpu/gloo-include && cp -r /usr/include/gloo .gpu/gloo-include/
#   tar -C ../shared/data/arc -cJf .gpu/arc-agi-2.txz ARC-AGI-2     (the ARC step's data, ~1 MiB)
#   run: bash .gpu/remote.sh 'bash bench/gpu-checks.sh'     (timeout_s ~540; results under $OUT)
# The addon builds by the README's python3 route against the machine's PyTorch (remote.sh's LIBTORCH
# wins, which names the same torch). Steps are independent: a failing one is recorded and the next
# runs; each has its own time limit and the whole script stops starting steps past $BUDGET_S.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
BUDGET_S=${BUDGET_S:-400}
mkdir -p "$OUT"
t_start=$(date +%s)
step() {
  local name=$1 limit=$2; shift 2
  local t0 elapsed
  t0=$(date +%s)
  elapsed=$((t0 - t_start))
  if [ $((elapsed + 20)) -gt "$BUDGET_S" ]; then
    echo "== $name: skipped (budget of ${BUDGET_S} s spent: ${elapsed} s)" | tee -a "$OUT/summary.txt"
    return
  fi
  echo "== $name: $*" | tee -a "$OUT/summary.txt"
  if timeout "$limit" bash -c "$*" > "$OUT/$name.log" 2>&1; then r=ok; else r="FAILED ($?)"; fi
  echo "   $r in $(( $(date +%s) - t0 )) s" | tee -a "$OUT/summary.txt"
  tail -5 "$OUT/$name.log" | sed 's/^/   | /' | tee -a "$OUT/summary.txt"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)' >> "$OUT/gpu.txt" 2>&1
# The CUDA build needs a toolkit (nvcc, headers): record where one is, for the next session's plans.
{ echo "nvcc: $(command -v nvcc || echo none)"; ls -d /usr/local/cuda* 2>/dev/null; echo "CUDA_HOME=${CUDA_HOME:-} CUDA_PATH=${CUDA_PATH:-}"; } >> "$OUT/gpu.txt" 2>&1
[ -d .gpu/gloo-include/gloo ] && export ARC_GLOO_INCLUDE=$PWD/.gpu/gloo-include
step build 150 "bun scripts/build-native.mjs --force && bun scripts/build-native.mjs --print && readelf -d build/Release/arc_torch.node | grep NEEDED"
# The hint's decode: prefill, ms per step for the growing cache, the static cache and its CUDA graph, native
# calls per step (Qwen2.5-1.5B shapes, LoRA r16, B = 16 left-padded prompts of 600-1000 tokens, 16 tokens);
# then without LoRA on equal 800-token prompts beside transformers' generate (hf_stages.py, same call).
step decode 100 "bun bench/decode.ts --device cuda > $OUT/decode-cuda.json"
step decode_hf 150 "bun bench/decode.ts --device cuda --lora_rank 0 --lengths 800 --hf --hf_script .gpu/hf_stages.py > $OUT/decode-cuda-hf.json"
# The training step (bench/train.ts: the trainer's sampler, grouped by prompt length): examples/s, the
# extrapolated epoch of 3232 pairs (target 150 s, the original 456 s), CUDA peak. A batch size's examples are
# a few batches (each size's own process); warm-up and profile batches kept short.
mkdir -p /tmp/arc && tar -C /tmp/arc -xJf .gpu/arc-agi-2.txz  # ARC-AGI-2's tasks (no ../shared on that machine)
TRAIN="bun bench/train.ts --device cuda --model qwen-1.5b-random --data /tmp/arc/ARC-AGI-2 --warmup 2 --profile_batches 2"
# The trainer's CUDA defaults (config.ts CUDA_DEFAULTS: batch 16, bf16, MLP recomputation, a 24576-token cap).
step train_defaults 150 "$TRAIN --examples 160 --out $OUT/train-cuda-defaults.json"
step cuda_tests 150 "bun test --timeout 120000 test/cuda test/models test/qwen2.test.ts test/lora.test.ts"
step train_bf16_b16 150 "$TRAIN --batch_sizes 16 --grad_checkpointing off --max_batch_tokens 0 --examples 160 --out $OUT/train-cuda-bf16-b16.json"
step train_fp16_b16 120 "$TRAIN --batch_sizes 16 --amp_dtype fp16 --grad_checkpointing off --max_batch_tokens 0 --examples 64 --out $OUT/train-cuda-fp16-b16.json"
step train_ckpt_b8 100 "$TRAIN --batch_sizes 8 --grad_checkpointing layer --max_batch_tokens 0 --examples 64 --out $OUT/train-cuda-bf16-b8-ckpt.json"
step train_b4 100 "$TRAIN --batch_sizes 4 --amp_dtype fp16 --grad_checkpointing off --max_batch_tokens 0 --examples 32 --out $OUT/train-cuda-b4.json"
step smoke 90 "bun scripts/train.ts --preset smoke --max_batches 10 --device cuda --run_dir /tmp/gpu-runs --quiet && bun scripts/eval.ts --checkpoint best --run_dir /tmp/gpu-runs --split val --quiet"
# Data parallel over NCCL (a group of one: NCCL refuses two ranks on one GPU); ran green on 2026-12-04.
step nccl_trainer 90 "bun bench/ddp.ts --device cuda --backend nccl --group_of_one --skip_allreduce --out $OUT/ddp-nccl-trainer.json"
# Issue 27's bench on the GPU, last (skipped when the budget is spent): the per-cell read trained 2 minutes on
# the generator's training split, scored plain and with votes on 200 synthetic tasks no run trained on.
step arc_cells 200 "bun bench/arc.ts --device cuda --train_minutes 2 --train_data synthetic --train_args='--agent_context cells' --sets synthetic --modes plain,votes --out $OUT/arc-cuda-cells.json"
echo "done in $(( $(date +%s) - t_start )) s; results in $OUT" | tee -a "$OUT/summary.txt"
# Eight files come back at most: everything in one archive.
tar -C "$OUT" -czf /tmp/gpu-results.tgz . && rm -rf "${OUT:?}"/* && mv /tmp/gpu-results.tgz "$OUT/gpu-results.tgz"
