#!/usr/bin/env bash
# One-time setup on a fresh machine: a LibTorch, cmake and a C++ compiler, then `npm ci` (which
# installs Bun from npm and builds the native addon against that LibTorch). Idempotent: skips what is
# already there.
#
#   bash scripts/setup.sh                    Debian's libtorch-dev 1.13 (CPU) from apt: the quick start
#   bash scripts/setup.sh --torch pip-cpu    PyTorch 2.x CPU from pip, in a virtual environment
#   bash scripts/setup.sh --torch pip-cuda   PyTorch 2.x CUDA from pip (with its nvidia-* libraries)
#
# The pip variants keep their virtual environment outside the clone, in $ARC_VENV or
# ~/.cache/arc-efe/venv-<variant> (reused when it already has torch), and record the LibTorch inside it
# in .libtorch, which `npm run build:native` reads (LIBTORCH/Torch_DIR/CMAKE_PREFIX_PATH still win).
# Python is used at build time only: the addon links LibTorch's C++ libraries and never imports Python.
#   ARC_TORCH_SPEC   the pip requirement (default torch==2.13.0+cpu, torch==2.14.1 for pip-cuda)
#   ARC_TORCH_INDEX  an extra index for it (default for pip-cpu: PyTorch's CPU wheel index)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

variant=debian
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) variant=${2:-}; shift 2 || { echo "setup: --torch needs debian, pip-cpu or pip-cuda" >&2; exit 2; } ;;
    --torch=*) variant=${1#--torch=}; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown argument $1 (takes --torch debian|pip-cpu|pip-cuda)" >&2; exit 2 ;;
  esac
done
case "$variant" in debian|pip-cpu|pip-cuda) ;; *) echo "setup: --torch takes debian, pip-cpu or pip-cuda, got '$variant'" >&2; exit 2 ;; esac

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
apt_install() {
  [ $# -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "setup: missing $* and no apt-get here; install them yourself (see README.md)" >&2
    exit 1
  fi
  echo "setup: installing $* with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
# Gloo's headers: LibTorch's ProcessGroupGloo.hpp (torch.distributed) includes them, and neither Debian's
# libtorch-dev nor pip's wheels ship them. Without them the addon builds with no torch.distributed.
[ -f /usr/include/gloo/context.h ] || need+=(libgloo-dev)

if [ "$variant" = debian ]; then
  [ -f /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake ] || [ -f /usr/lib/aarch64-linux-gnu/cmake/Torch/TorchConfig.cmake ] || need+=(libtorch-dev)
  # Debian's libtorch links the reference BLAS (libblas.so.3); OpenBLAS (OpenMP build, like libtorch)
  # takes over that alternative and makes CPU matmuls about 3x faster.
  dpkg -s libopenblas0-openmp >/dev/null 2>&1 || need+=(libopenblas0-openmp)
  apt_install "${need[@]}"
  rm -f .libtorch
else
  command -v python3 >/dev/null || need+=(python3)
  python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
  apt_install "${need[@]}"
  venv=${ARC_VENV:-$HOME/.cache/arc-efe/venv-$variant}
  py="$venv/bin/python"
  if [ "$variant" = pip-cpu ]; then
    spec=${ARC_TORCH_SPEC:-torch==2.13.0+cpu}
    index=${ARC_TORCH_INDEX-https://download.pytorch.org/whl/cpu}
  else
    spec=${ARC_TORCH_SPEC:-torch==2.14.1}
    index=${ARC_TORCH_INDEX:-}
  fi
  # Where torch is, without importing it (an import takes seconds and warns about missing numpy).
  torch_dir() { "$py" -c 'import importlib.util as u; s = u.find_spec("torch"); print(s.submodule_search_locations[0])' 2>/dev/null; }
  if [ -x "$py" ] && tp=$(torch_dir) && [ -f "$tp/share/cmake/Torch/TorchConfig.cmake" ]; then
    echo "setup: reusing $venv ($(sed -n "s/^__version__ = '\(.*\)'/torch \1/p" "$tp/version.py"))"
  else
    echo "setup: making $venv with $spec"
    python3 -m venv "$venv"
    pip=("$py" -m pip install -q --disable-pip-version-check)
    [ -n "$index" ] && pip+=(--extra-index-url "$index")
    # torch alone first, then only the requirements LibTorch's C++ libraries need: the nvidia-* and
    # cuda-toolkit wheels (CUDA runtime, cuBLAS, cuDNN, NCCL, ...) and the few pure-Python packages
    # `import torch` needs at build time. Triton and cuda-bindings serve Python code we never run.
    "${pip[@]}" --no-deps "$spec"
    mapfile -t reqs < <("$py" - <<'EOF'
import re
from importlib.metadata import requires
for r in requires("torch") or []:
    if "extra ==" in r:
        continue
    name = re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0].lower()
    if name in ("triton", "cuda-bindings"):
        continue
    print(r.split(";")[0].strip())
EOF
)
    [ ${#reqs[@]} -gt 0 ] && "${pip[@]}" "${reqs[@]}"
  fi
  tp=$(torch_dir)
  [ -f "$tp/share/cmake/Torch/TorchConfig.cmake" ] || { echo "setup: $venv has no LibTorch (no $tp/share/cmake/Torch)" >&2; exit 1; }
  echo "$tp" > .libtorch
  echo "setup: LibTorch from $tp (recorded in .libtorch)"
fi

# node_modules as package-lock.json says (npm ci, whose install script builds the addon), unless it
# already is; then just (re)build the addon, which is a no-op when it is current for this LibTorch.
if [ -d node_modules ] && npm ls --depth=0 >/dev/null 2>&1; then
  echo "setup: node_modules is current"
elif [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
node scripts/build-native.mjs
