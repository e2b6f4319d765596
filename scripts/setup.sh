#!/usr/bin/env bash
# Create .venv (if needed) and install invalloc with its dev tools and the Ray extra. Idempotent: a stamp of
# pyproject.toml skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: invalloc needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.invalloc-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first, pinned. On this project's machine `torch==2.13.0` resolves to a CPU build (local
  # wheels); from PyPI on Linux the same pin is the multi-GB CUDA build. For the CPU build on an
  # ordinary machine, set TORCH_INDEX_URL to PyTorch's CPU wheel index (see README, "Two commands").
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    .venv/bin/python -m pip install --quiet "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
  else
    .venv/bin/python -m pip install --quiet "torch==2.13.0"
  fi
  .venv/bin/python -m pip install --quiet -e ".[dev,ray]"
  echo "$want" > "$stamp"
fi
# Compile the numba kernels into their caches now (about 20 s of CPU each, once; seconds when warm),
# so that the first simulate/compare/tune/train, and every Ray worker, starts warm. The kernels'
# cache (__pycache__ beside them) also goes stale when their source changes, so this runs every time.
# Only a head start: a failure (an unwritable cache) leaves the compile to the first run.
.venv/bin/python scripts/warm_kernels.py --ray-workers \
  || echo "warning: the numba kernels were not compiled ahead; the first run compiles them" >&2
