#!/usr/bin/env bash
# Set up, then run the whole test suite: the main suite on 2 workers, then the Ray tests
# (tests/ray: a local multi-node Ray cluster and an MLflow server, started once) in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -n 2 -q --ignore=tests/ray "$@"
.venv/bin/python -m pytest -n 0 -q tests/ray
