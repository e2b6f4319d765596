"""The quickstart end to end on a very short training (the full one is README's first command)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.quickstart import BASELINES


def test_quickstart_trains_compares_and_exports(tmp_path, mlflow_uri, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["quickstart", "--timesteps", "1024", "--episodes", "2", "--out", "results", "--tracking-uri", mlflow_uri]
    )
    assert result.exit_code == 0, result.output
    output = result.output
    for baseline in BASELINES:  # each tuned baseline has a row, named without its @tuned
        assert baseline.removesuffix("@tuned") in output
    # The verdict is stated against the best tuned baseline, with the paired CI, whichever way it goes.
    assert "the best tuned baseline" in output and "paired difference" in output and "95% CI" in output
    assert "@tuned" in output.split("the best tuned baseline", 1)[1]
    report = tmp_path / "results" / "report" / "report.html"
    assert report.is_file()
    manifest = json.loads((tmp_path / "results" / "rules" / "manifest.json").read_text())
    assert manifest["files"]
    client = mlflow.MlflowClient(mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    names = {run.info.run_name for run in runs}
    assert "quickstart" in names
    assert all(run.info.status == "FINISHED" for run in runs)
    # Idempotent: a second run replaces the results folder.
    again = CliRunner().invoke(
        app,
        [
            "quickstart",
            "--timesteps",
            "1024",
            "--episodes",
            "2",
            "--out",
            "results",
            "--tracking-uri",
            mlflow_uri,
            "--no-export",
        ],  # fmt: skip
    )
    assert again.exit_code == 0, again.output
    assert report.is_file()


def test_quickstart_refuses_a_bad_out_before_training(tmp_path, mlflow_uri):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "report").mkdir()
    (occupied / "report" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["quickstart", "--out", str(occupied), "--tracking-uri", mlflow_uri])
    assert result.exit_code == 2
    assert "report" in result.output and "Traceback" not in result.output
    client = mlflow.MlflowClient(mlflow_uri)
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert Path(occupied / "report" / "notes.txt").read_text() == "mine"
