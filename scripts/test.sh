#!/usr/bin/env bash
# Set up, then run the whole test suite (on 2 workers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -n 2 -q "$@"
