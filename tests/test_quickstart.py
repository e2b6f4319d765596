"""The quickstart end to end on a very short training (the full one is README's first command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.quickstart import BASELINES


def test_quickstart_trains_compares_and_exports(tmp_path, mlflow_uri, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # As a user runs it, in its own process: everything it prints is in its output.
    result = subprocess.run(
        [str(Path(sys.executable).with_name("invalloc")), "quickstart", "--timesteps", "1024", "--episodes", "2",
         "--out", "results", "--tracking-uri", mlflow_uri],
        capture_output=True, text=True, timeout=1800, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    # No MLflow noise: no warning (nor its raw ANSI codes), no INFO line, no progress bar.
    for noise in ("Warning", "WARNING", "\x1b[", " INFO ", "Downloading artifacts", "Uploading artifacts"):
        assert noise not in output, f"{noise!r} in the quickstart's output:\n{output}"
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
    training = [run for run in runs if run.info.run_name.startswith("quickstart-")]
    assert [run.info.run_name for run in training] == ["quickstart-retail_ars_quick-retail-s0"]
    assert {"mlflow.source.name", "mlflow.user", "mlflow.source.type"} <= set(training[0].data.tags)
    assert all(run.info.status == "FINISHED" for run in runs)
    # The policy and its rule table are registered.
    policy = client.get_model_version("invalloc-policy-retail", "1")
    assert policy.run_id == training[0].info.run_id
    assert client.get_registered_model("invalloc-rules-retail").aliases == {"candidate": 1}
    assert manifest["registry"]["model_name"] == "invalloc-rules-retail"
    assert "models:/invalloc-policy-retail/1" in output
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
