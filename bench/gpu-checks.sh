#!/usr/bin/env bash
# Every check that needs the GPU machine, in one call (device time is scarce: aim under 8 minutes).
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
BUDGET_S=${BUDGET_S:-450}
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
step build 240 "bun scripts/build-native.mjs --force && bun scripts/build-native.mjs --print && readelf -d build/Release/arc_torch.node | grep NEEDED"
step cuda_tests 150 "bun test --timeout 120000 test/cuda test/qwen2.test.ts test/torch"
step ops 40 "bun bench/ops.ts --device cuda > $OUT/ops-cuda.json"
step qwen 120 "bun bench/qwen.ts --device cuda --hf > $OUT/qwen-cuda.jsonl"
# Qwen2.5-1.5B shapes, random weights, LoRA: examples/s, peak memory and the extrapolated 3232-pair epoch
# (target: 150 s or less on an H200; the original system: 456 s) at B = 1/4/8/16, fp16 then bf16.
step train_fp16 150 "bun bench/train.ts --device cuda --model qwen-1.5b-random --amp_dtype fp16 --batch_sizes 1,4,8,16 --examples 96 --warmup 2 --out $OUT/train-cuda-fp16.json"
step train_bf16 120 "bun bench/train.ts --device cuda --model qwen-1.5b-random --amp_dtype bf16 --batch_sizes 8,16 --examples 96 --warmup 2 --out $OUT/train-cuda-bf16.json"
step smoke 90 "bun scripts/train.ts --preset smoke --max_batches 10 --device cuda --run_dir /tmp/gpu-runs --quiet && bun scripts/eval.ts --checkpoint best --run_dir /tmp/gpu-runs --split val --quiet"
# Data parallel: the Gloo tests on this machine's cores, then NCCL on the GPU (a group of one: NCCL refuses
# two ranks on one GPU): the all-reduce of Qwen2.5-1.5B-sized gradients next to Gloo's over 2 CPU ranks in
# the same step, and the trainer in a group of one over NCCL against no group.
step dist_tests 120 "bun test --timeout 120000 test/torch/distributed.test.ts test/pipeline/ddp.test.ts"
step nccl_allreduce 120 "bun bench/ddp.ts --skip_train --backend nccl --ranks 1 --out $OUT/ddp-nccl-allreduce.json && bun bench/ddp.ts --skip_train --backend gloo --ranks 2 --out $OUT/ddp-gloo-allreduce.json"
step nccl_trainer 90 "bun bench/ddp.ts --device cuda --backend nccl --group_of_one --skip_allreduce --out $OUT/ddp-nccl-trainer.json"
# ARC scores (bench/arc.ts) from a checkpoint trained on the GPU for a short budget: plain, votes, TTT, both.
# Last: it runs only when the budget has time left, on a subset of tasks.
[ -f .gpu/arc-agi-2.txz ] && step arc 240 "mkdir -p /tmp/arc && tar -C /tmp/arc -xJf .gpu/arc-agi-2.txz && bun bench/arc.ts --device cuda --arc /tmp/arc/ARC-AGI-2 --train_minutes 2 --synthetic 60 --max_tasks 40 --out $OUT/arc-cuda.json"
echo "done in $(( $(date +%s) - t_start )) s; results in $OUT" | tee -a "$OUT/summary.txt"
