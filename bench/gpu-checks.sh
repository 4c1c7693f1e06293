#!/usr/bin/env bash
# Every check that needs the GPU machine, in one call (device time is scarce). From the project root,
# after `bash ../shared/gpu/pack.sh`, with `.gpu` carried:
#   run: bash .gpu/remote.sh 'bash bench/gpu-checks.sh'     (timeout ~480 s; results under $OUT)
# Steps are independent: a failing one is recorded and the next runs. Logs and JSON go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
step() {
  local name=$1; shift
  local t0=$(date +%s)
  echo "== $name: $*" | tee -a "$OUT/summary.txt"
  if timeout "${STEP_TIMEOUT:-240}" bash -c "$*" > "$OUT/$name.log" 2>&1; then r=ok; else r="FAILED ($?)"; fi
  echo "   $r in $(( $(date +%s) - t0 )) s" | tee -a "$OUT/summary.txt"
  tail -5 "$OUT/$name.log" | sed 's/^/   | /' | tee -a "$OUT/summary.txt"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
step build "bun run build:native"
step cuda_tests "bun test test/cuda test/qwen2.test.ts test/torch"
step ops "bun bench/ops.ts --device cuda > $OUT/ops-cuda.json && bun bench/ops.ts --device cpu > $OUT/ops-cpu.json"
step qwen "bun bench/qwen.ts --device cuda --hf > $OUT/qwen-cuda.jsonl"
step train "bun bench/train.ts --device cuda --model qwen-1.5b-random --out $OUT/train-cuda.json"
step smoke "bun scripts/train.ts --preset smoke --max_batches 10 --device cuda --run_dir /tmp/gpu-runs --quiet && bun scripts/eval.ts --checkpoint best --run_dir /tmp/gpu-runs --split val --quiet"
echo "done; results in $OUT"
