#!/usr/bin/env bash
# The main job for a new user: set up, then simulate the default scenario (retail) with the
# rule-based base-stock policy over 10 seeds and print its KPI table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/invalloc simulate --scenario retail --policy base_stock --episodes 10 "$@"
