#!/usr/bin/env bash
# The main job for a new user: set up, then `invalloc quickstart` — train PPO on `retail`,
# compare it with the rule-based baselines on the same held-out demand (report in
# quickstart-results/report/), export it as a verified rule table (quickstart-results/rules/).
# Runs are tracked in ./mlflow.db (open with: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db).
# Idempotent: each run replaces quickstart-results/ and adds new MLflow runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/invalloc quickstart "$@"
