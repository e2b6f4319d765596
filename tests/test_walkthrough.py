"""README's walk-through (``examples/history/walkthrough.sh``) runs end to end on a short budget.

Every step is the real command on the shipped synthetic company: build from the tables with a
26-week hold-out, tune, train, compare, backtest on the hold-out trace, export a rule table.
The budget is tiny (``INVALLOC_WALKTHROUGH_BUDGET=short``), so this checks the path and what
each step leaves behind, not who wins (README states the full run's result).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "history" / "walkthrough.sh"


def test_walkthrough_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "company"
    env = {
        **os.environ,
        "INVALLOC_WALKTHROUGH_BUDGET": "short",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "walk-through done" in done.stdout

    # 1. the built scenario, its hold-out trace (26 weeks, renumbered from 0) and the fit report
    assert (out / "company" / "company.yaml").is_file()
    with (out / "company" / "holdout.csv").open() as handle:
        periods = {int(row["period"]) for row in csv.DictReader(handle)}
    assert periods == set(range(26))
    assert json.loads((out / "company" / "fit" / "fit_report.json").read_text())["series"]
    # 2. the tuned rule where NAME@tuned finds it
    assert (out / "configs" / "tuned" / "company" / "base_stock.yaml").is_file()
    # 4. the comparison: both policies, the learned one by its run name
    with (out / "comparison" / "kpis.csv").open() as handle:
        labels = {row["label"] for row in csv.DictReader(handle)}
    assert labels == {"base_stock@tuned", "company-ars-s0"}
    # 5. the backtest replays the hold-out trace and says so
    report = (out / "backtest" / "report.html").read_text()
    assert "backtest: every episode replays the demand trace" in report and "holdout.csv" in report
    # 6. the rule table with its manifest
    manifest = json.loads((out / "rules" / "manifest.json").read_text())
    assert manifest and (out / "rules" / "rules.csv").is_file()
