#!/usr/bin/env bash
# One-time setup on a fresh machine: LibTorch (Debian's libtorch-dev when no other LibTorch is found),
# cmake and a C++ compiler, then `npm install` (which installs Bun from npm and builds the native addon).
# Idempotent: skips what is already there. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_torch() {
  [ -n "${LIBTORCH:-}" ] && return 0
  [ -n "${Torch_DIR:-}" ] && return 0
  for d in /usr/lib/x86_64-linux-gnu/cmake/Torch /usr/lib/aarch64-linux-gnu/cmake/Torch /usr/local/lib/cmake/Torch; do
    [ -f "$d/TorchConfig.cmake" ] && return 0
  done
  python3 -c "import torch, os, sys; sys.exit(0 if os.path.isdir(torch.utils.cmake_prefix_path) else 1)" 2>/dev/null
}

need=()
# Debian's libtorch links the reference BLAS (libblas.so.3); OpenBLAS (OpenMP build, like libtorch) takes
# over that alternative and makes CPU matmuls about 3x faster.
have_torch || need+=(libtorch-dev)
if [[ " ${need[*]} " == *" libtorch-dev "* ]] || [ -f /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake ]; then
  dpkg -s libopenblas0-openmp >/dev/null 2>&1 || need+=(libopenblas0-openmp)
fi
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: missing ${need[*]} and no apt-get here; install LibTorch, cmake and g++ yourself (see README.md)" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${need[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
