#!/usr/bin/env bash
# The README's walk-through on the SYNTHETIC example company, end to end: build a scenario from
# the tables with demand fitted on the first 78 weeks (18 months), tune a baseline, train a
# learned correction to it, compare on 30 held-out seeds, backtest both on the last 26 weeks
# exactly as they happened, and export the learned policy as a rule table.
#
#   bash examples/history/walkthrough.sh [OUT]      # OUT defaults to ./company-walkthrough
#
# INVALLOC_WALKTHROUGH_BUDGET=short runs every step on a tiny budget (the test suite does: it
# checks the path, not the result).
#
# Everything it writes goes to OUT (the scenario, the fit report, tuned parameters, the MLflow
# store, the comparison and backtest reports, the rule table). Run it from anywhere; it uses the
# `invalloc` on PATH, else the repository's .venv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(mkdir -p "${1:-company-walkthrough}" && cd "${1:-company-walkthrough}" && pwd)"
invalloc="$(command -v invalloc || echo "$here/../../.venv/bin/invalloc")"
export MLFLOW_TRACKING_URI="sqlite:///$out/mlflow.db"
cd "$out"
if [[ "${INVALLOC_WALKTHROUGH_BUDGET:-full}" == short ]]; then
    tuning=(--seeds 0-2 --budget 12); training=(--timesteps 2000); episodes=2
    extraction=(--max-rules 8 --iterations 1 --episodes 2 --teacher-episodes 4 --validation-episodes 1 --evaluation-episodes 2)
else
    tuning=(--seeds 0-19); training=(); episodes=30; extraction=()
fi
step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
start=$SECONDS

step "1. build the scenario from the tables; fit on 78 weeks, hold out 26"
"$invalloc" scenario build --products "$here/products.csv" --locations "$here/locations.csv" \
    --lanes "$here/lanes.csv" --channels "$here/channels.csv" --suppliers "$here/suppliers.csv" \
    --stock "$here/stock.csv" --rules "$here/rules.yaml" --history "$here/sales.csv" \
    --out company/company.yaml --holdout-periods 26 --fit-report company/fit

step "2. tune the base-stock rule on training seeds (./configs/tuned/company/ is what NAME@tuned reads)"
"$invalloc" tune --scenario company/company.yaml --policy base_stock "${tuning[@]}" \
    --out configs/tuned/company/base_stock.yaml

step "3. train a learned correction to the tuned rule (ARS, examples/history/company_ars.yaml)"
cp "$here/company_ars.yaml" company/company_ars.yaml
"$invalloc" train company/company_ars.yaml --run-name company-ars-s0 "${training[@]}" | tee train.log
run="$(sed -n 's/^MLflow run: //p' train.log)"

step "4. compare on held-out seeds of the fitted demand"
"$invalloc" compare --scenario company/company.yaml --policy base_stock@tuned --policy "run:$run" \
    --episodes "$episodes" --out comparison

step "5. backtest on the 26 held-out weeks as they happened"
"$invalloc" compare --scenario company/company.yaml --demand-trace company/holdout.csv \
    --policy base_stock@tuned --policy "run:$run" --out backtest

step "6. export the learned policy as a rule table"
"$invalloc" export --run "$run" --out rules "${extraction[@]}"

printf '\nwalk-through done in %d s; reports: %s/comparison/report.html, %s/backtest/report.html, %s/rules\n' \
    $((SECONDS - start)) "$out" "$out" "$out"
