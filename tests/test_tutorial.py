"""docs/tutorial.ipynb executes from top to bottom without error (nbclient, a real Jupyter kernel),
on the short budget, in a temporary folder with its own MLflow sqlite store: the example company
from examples/history/ built into a scenario, its fit report, a tuned baseline, a short training
run compared with it, a backtest on the hold-out, a rule table."""

from __future__ import annotations

import os
from pathlib import Path

import invalloc

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
#: Most seconds one cell may take before the test fails (the whole short run takes about two minutes).
CELL_TIMEOUT = 300


def test_tutorial_notebook_runs(tmp_path, monkeypatch):
    import nbclient  # the dev extra installs nbclient, nbformat and ipykernel
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel inherits this environment: the short budget, a store in tmp_path, and the
    # invalloc under test first on its path.
    monkeypatch.setenv("INVALLOC_TUTORIAL_BUDGET", "short")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    source = str(Path(invalloc.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("INVALLOC_EXAMPLES", str(ROOT / "examples" / "history"))
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell on the first error

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert errors == []
    images = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5  # the plots are shown inline
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for cell in code for o in cell.outputs
    )
    output = tmp_path / "tutorial-output"
    assert "company.yaml: 50 SKUs × 3 channels" in text and "hold-out verdicts" in text
    assert "statements reconciled with the ledger: True" in text
    assert f"backtest: every episode replays the demand trace {output / 'holdout.csv'}" in text
    assert "company_ars-company-s0" in text and "base_stock@base_stock_tuned.yaml" in text  # short labels
    for path in ("company.yaml", "holdout.csv", "fit/fit_report.html", "comparison/report.html",
                 "backtest/report.html", "rules/manifest.json"):  # fmt: skip
        assert (output / path).is_file(), path
