"""The measurement scripts README quotes run end to end (on `tiny`, small settings).

They are the only place speed and export targets are measured, so a change that breaks one
(a signature, an import) must fail here rather than the next time someone re-measures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from invalloc.agents.training import train

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mlflow_template_db) -> tuple[str, str]:
    store = tmp_path_factory.mktemp("scripts-store")
    shutil.copyfile(mlflow_template_db, store / "mlflow.db")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    return uri, train("tiny_smoke", tracking_uri=uri, run_name="scripts", progress=False).run_id


def _script(name: str, *args: str, tmp: Path) -> dict:
    """Run ``scripts/NAME`` with ``--json`` and a private TMPDIR; its JSON output."""
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "TORCHINDUCTOR_CACHE_DIR": str(tmp.parent / "inductor")}
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args, "--json"], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout.strip()
    return json.loads(text[text.index("{") :])  # anything a library printed first is skipped


def test_bench_rules_exports_a_run_and_measures_it(tiny_run, tmp_path):
    uri, run_id = tiny_run
    figures = _script("bench_rules.py", "--run", run_id, "--tracking-uri", uri, "--max-rules", "8", tmp=tmp_path / "t")
    assert figures["scenario"] == "tiny" and 1 <= figures["rules"] <= 8
    assert 0.0 <= figures["fidelity"] <= 1.0 and figures["decisions_per_second"] > 0
    assert figures["best_baseline"].endswith("@tuned")  # tiny ships tuned parameters
    assert not list((tmp_path / "t").iterdir())  # its temporary folders are gone


def test_imitability_fits_and_measures_a_run(tiny_run, tmp_path):
    uri, run_id = tiny_run
    options = ["--run", run_id, "--tracking-uri", uri, "--episodes", "6", "--held-out", "3"]
    figures = _script("imitability.py", *options, tmp=tmp_path / "t")
    assert figures and all(isinstance(value, int | float | str | dict | list) for value in figures.values())
    assert not list((tmp_path / "t").iterdir())


def test_bench_oracle_sweeps_seeds(tmp_path):
    result = _script("bench_oracle.py", "--scenario", "tiny", "--seeds", "0-2", tmp=tmp_path / "t")
    assert [row["seed"] for row in result["rows"]] == [0, 1, 2]
    assert all(row["status"] == "ok" and row["bound"] > 0 for row in result["rows"])
