"""A registered rule table is an MLflow model: pyfunc loading in a fresh process, `--policy
models:/…`, refusal of tampered files, idempotent export and aliases that follow the review."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.config.loader import load_scenario
from invalloc.export.exporter import export_rule_table, register_table, review
from invalloc.rules import RuleTableError, load_rule_table
from invalloc.rules.manifest import content_digest
from invalloc.rules.table import boundary_grid
from rule_teachers import QUICK_RETAIL_SETTINGS, retail_ppo_teacher  # noqa: E402, I001 - tests/ helper

runner = CliRunner()
SOURCE = Path(__file__).resolve().parents[1] / "src"
MODEL = "invalloc-rules-retail"
CHAMPION = f"models:/{MODEL}@champion"
QUICK = QUICK_RETAIL_SETTINGS


@pytest.fixture(scope="module")
def teacher():
    return retail_ppo_teacher()


@pytest.fixture(scope="module")
def registered(teacher, tmp_path_factory, mlflow_template_db):
    """A store with the table exported and registered (@candidate), then approved (@champion)."""
    root = tmp_path_factory.mktemp("registered")
    shutil.copyfile(mlflow_template_db, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    out = root / "retail_rules"
    manifest = export_rule_table(teacher, load_scenario("retail"), out, QUICK, tracking_uri=uri, register=MODEL)
    assert manifest["registry"]["alias"] == "candidate"
    manifest = review(out, "Ada", "pilot", "approved", uri)
    return {"uri": uri, "out": out, "manifest": manifest, "root": root}


@pytest.fixture(scope="module")
def drafts(teacher, tmp_path_factory) -> list[Path]:
    """Two more tables of the same teacher (other extraction seeds), exported as drafts, not registered."""
    root = tmp_path_factory.mktemp("drafts")
    tables = []
    for seed in (11, 12):
        out = root / f"retail_rules_{seed}"
        export_rule_table(teacher, load_scenario("retail"), out, replace(QUICK, seed=seed))
        tables.append(out)
    return tables


def _states(table, rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` states around every rule boundary: boundary points, some moved at random."""
    rng = np.random.default_rng(seed)
    grid = boundary_grid(table)
    states = grid[rng.integers(0, len(grid), rows)]
    moved = rng.random(rows) < 0.5
    states[moved] = states[moved] * rng.uniform(0.5, 1.5, (int(moved.sum()), states.shape[1]))
    return pd.DataFrame(states, columns=table.feature_names)


LOAD_IN_FRESH_PROCESS = """
import json, sys
import mlflow
import pandas as pd

model = mlflow.pyfunc.load_model(sys.argv[1])
states = pd.read_csv(sys.argv[2], dtype=float)
model.predict(states).to_csv(sys.argv[3], index=False)
import invalloc
heavy = {"torch", "stable_baselines3", "sb3_contrib", "sklearn", "gymnasium", "numba", "simpy"}
print(json.dumps({"invalloc": invalloc.__file__, "heavy": sorted({m.split(".")[0] for m in sys.modules} & heavy)}))
"""


def _fresh_process(uri: str, *args: str) -> subprocess.CompletedProcess:
    """Python in a new interpreter, with only MLflow's own settings: invalloc comes from the model."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = uri
    return subprocess.run(
        [sys.executable, "-c", LOAD_IN_FRESH_PROCESS, *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_champion_loads_in_a_fresh_process_and_decides_like_rules_decide(registered, tmp_path):
    """Acceptance: `mlflow.pyfunc.load_model("models:/invalloc-rules-retail@champion")` in a new
    interpreter (no torch, no SB3) predicts the decisions of `invalloc rules decide` on 10,000 states."""
    import mlflow

    table, _ = load_rule_table(registered["out"])
    _states(table, 10_000).to_csv(tmp_path / "states.csv", index=False)
    decided = tmp_path / "decided.csv"
    command = ["rules", "decide", str(registered["out"]), "--input", str(tmp_path / "states.csv")]
    result = runner.invoke(app, [*command, "--output", str(decided)])
    assert result.exit_code == 0, result.output
    predicted = tmp_path / "predicted.csv"
    process = _fresh_process(registered["uri"], CHAMPION, str(tmp_path / "states.csv"), str(predicted))
    assert process.returncode == 0, process.stderr[-2000:]
    loaded = json.loads(process.stdout.strip().splitlines()[-1])
    assert loaded["heavy"] == []
    # The model ran its own copy of the invalloc code (code_paths), not an installed one.
    assert f"{os.sep}code{os.sep}invalloc{os.sep}__init__.py" in loaded["invalloc"]
    expected, actual = pd.read_csv(decided), pd.read_csv(predicted)
    assert len(actual) == 10_000 and list(actual.columns) == list(expected.columns)
    assert (actual["rule_id"] == expected["rule_id"]).all()
    assert actual["rule_id"].nunique() == len(table)  # every rule decided some state
    np.testing.assert_allclose(actual.iloc[:, 1:].to_numpy(), expected.iloc[:, 1:].to_numpy(), rtol=1e-12)
    # Its requirements are what a package index serves: MLflow, numpy, pandas, no local versions.
    mlflow.set_tracking_uri(registered["uri"])  # the registry of models:/ URIs
    folder = Path(mlflow.artifacts.download_artifacts(CHAMPION, tracking_uri=registered["uri"], dst_path=str(tmp_path)))
    requirements = (folder / "requirements.txt").read_text().split()
    assert sorted(r.split("==")[0] for r in requirements) == ["mlflow", "numpy", "pandas"]
    assert all("==" in r and "+" not in r for r in requirements)
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))


def test_simulate_and_compare_accept_a_registered_rule_table(registered, tmp_path, monkeypatch):
    """`--policy models:/NAME@ALIAS` of a rule table acts exactly like `--policy rules:DIR`."""
    from invalloc.evaluation.specs import resolve_specs

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered["uri"])
    out = str(registered["out"])
    results = {}
    for spec in (CHAMPION, f"rules:{out}"):
        result = runner.invoke(app, ["simulate", "--scenario", "retail", "--policy", spec, "--episodes", "1", "--json"])
        assert result.exit_code == 0, result.output
        results[spec] = json.loads(result.stdout)
    assert results[CHAMPION]["episodes"] == results[f"rules:{out}"]["episodes"]
    resolved = resolve_specs([CHAMPION, f"rules:{out}", "base_stock"], load_scenario("retail"), registered["uri"])
    assert [spec.kind for spec, _ in resolved] == ["rules", "rules", "baseline"]
    assert resolved[0][0].name == f"{MODEL}@champion"
    command = ["compare", "--scenario", "retail", "--policy", CHAMPION, "--policy", "base_stock"]
    result = runner.invoke(app, [*command, "--episodes", "2", "--processes", "1", "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output


def _model_table(registered) -> Path:
    """The table directory inside the registered model's artifacts, in the store's artifact folder."""
    import mlflow

    client = mlflow.MlflowClient(registered["uri"])
    version = client.get_model_version_by_alias(MODEL, "champion")
    folder = Path(version.source.removeprefix("file://")) / "artifacts" / "rule_table"
    assert (folder / "manifest.json").is_file()
    return folder


def test_a_tampered_registered_table_is_refused(registered, tmp_path, monkeypatch):
    """A file of the registered model edited in the store: refused by `mlflow.pyfunc.load_model`,
    by `simulate --policy models:/…` (one line naming the file), also when forged consistently."""
    import mlflow

    from tampering import forge_audit_log, rehash

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered["uri"])
    mlflow.set_tracking_uri(registered["uri"])  # the registry of models:/ URIs
    folder = _model_table(registered)
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    try:
        (folder / "rules.csv").write_text((folder / "rules.csv").read_text().replace("1", "2", 1))
        with pytest.raises(RuleTableError, match="rules.csv: sha256 does not match"):
            mlflow.pyfunc.load_model(CHAMPION)
        result = runner.invoke(app, ["simulate", "--scenario", "retail", "--policy", CHAMPION])
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.output
        assert result.stderr.startswith("error: --policy") and "rules.csv" in result.stderr
        # Forged consistently (files re-hashed, audit log rewritten): the model's recorded digest refuses it.
        rehash(folder)
        forge_audit_log(folder)
        load_rule_table(folder)  # the directory alone verifies
        with pytest.raises(RuleTableError, match="the model recorded when it was logged"):
            mlflow.pyfunc.load_model(CHAMPION)
        result = runner.invoke(app, ["simulate", "--scenario", "retail", "--policy", CHAMPION])
        assert result.exit_code == 2 and "recorded when it was logged" in result.stderr, result.output
    finally:
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)
    assert mlflow.pyfunc.load_model(CHAMPION).predict(_states(load_rule_table(folder)[0], 5)).shape[0] == 5


def test_loading_the_model_in_process_leaves_workers_the_whole_package(registered):
    """MLflow puts the model's own (partial) copy of invalloc first on sys.path; in a process that
    already uses invalloc it is taken off again, so the processes it spawns import the whole package."""
    import subprocess

    import mlflow

    mlflow.pyfunc.load_model(CHAMPION)
    copies = [entry for entry in sys.path if (Path(entry or ".") / "invalloc" / "__init__.py").is_file()]
    assert all(Path(entry or ".").resolve() == SOURCE.resolve() for entry in copies), copies
    child = subprocess.run(
        [sys.executable, "-c", "import invalloc.baselines.tuning, invalloc.evaluation.compare"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(entry for entry in sys.path if entry)},
        capture_output=True,
        text=True,
    )
    assert child.returncode == 0, child.stderr


def test_export_twice_gives_the_same_version(registered, teacher, tmp_path):
    """Acceptance: the same run and settings give the same hashes and no new registered version."""
    import mlflow

    client = mlflow.MlflowClient(registered["uri"])
    runs_before = client.search_runs([client.get_experiment_by_name("rule-exports").experiment_id])
    again = tmp_path / registered["out"].name
    manifest = export_rule_table(
        teacher, load_scenario("retail"), again, QUICK, tracking_uri=registered["uri"], register=MODEL
    )
    first = registered["manifest"]
    assert manifest["files"] == first["files"]
    assert content_digest(manifest) == content_digest(first)
    assert manifest["registry"]["version"] == first["registry"]["version"]
    assert manifest["registry"]["export_run_id"] == first["registry"]["export_run_id"]
    assert manifest["registry"]["alias"] == "champion"  # an approved version keeps its alias
    assert len(client.search_model_versions(f"name='{MODEL}'")) == 1
    runs_after = client.search_runs([client.get_experiment_by_name("rule-exports").experiment_id])
    assert len(runs_after) == len(runs_before)
    assert runner.invoke(app, ["rules", "verify", str(again), "--tracking-uri", registered["uri"]]).exit_code == 0


def test_lifecycle_candidate_champion_retired(drafts, tmp_path, mlflow_uri):
    """Acceptance: export → candidate; approve moves candidate → champion; approving another table
    of the scenario moves champion and retires the old version (its tags and its registered
    manifest); retire removes champion; at most one champion per scenario, across models too."""
    import mlflow

    client = mlflow.MlflowClient(mlflow_uri)
    a, b, c = tmp_path / "a" / drafts[0].name, tmp_path / "b" / drafts[1].name, tmp_path / "c" / drafts[0].name
    for source, target in ((drafts[0], a), (drafts[1], b), (drafts[0], c)):
        shutil.copytree(source, target)
    store = ["--tracking-uri", mlflow_uri]

    def approve(directory: Path, *options: str) -> str:
        command = ["rules", "approve", str(directory), "--reviewer", "Ada", "--comment", "ok", *options, *store]
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        return result.stdout

    # Exported and registered: the candidate, tagged with its kind, status, content and scenario.
    manifest_a = json.loads((a / "manifest.json").read_text())
    assert register_table(a, manifest_a, mlflow_uri, MODEL)["alias"] == "candidate"
    assert client.get_registered_model(MODEL).aliases == {"candidate": 1}
    tags = client.get_model_version(MODEL, "1").tags
    assert tags["invalloc.kind"] == "rule_table" and tags["review_status"] == "draft"
    assert tags["content_sha256"] == content_digest(manifest_a)
    assert tags["invalloc.scenario_hash"] == manifest_a["scenario"]["digest"]
    # Approved: candidate → champion (the same version: registering it again found it).
    assert f"{MODEL} v1 @champion" in approve(a, "--register", MODEL)
    assert client.get_registered_model(MODEL).aliases == {"champion": 1}
    # Another table of the scenario: candidate next to the champion, then champion; v1 retired.
    manifest_b = json.loads((b / "manifest.json").read_text())
    assert content_digest(manifest_b) != content_digest(manifest_a)
    assert register_table(b, manifest_b, mlflow_uri, MODEL)["version"] == "2"
    assert client.get_registered_model(MODEL).aliases == {"champion": 1, "candidate": 2}
    approve(b, "--register", MODEL)
    assert client.get_registered_model(MODEL).aliases == {"champion": 2}
    old = client.get_model_version(MODEL, "1")
    assert old.tags["review_status"] == "retired" and old.tags["review_comment"] == f"superseded by {MODEL} v2"
    mlflow.set_tracking_uri(mlflow_uri)
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}/1", dst_path=str(tmp_path / "dl1")))
    assert load_rule_table(folder / "artifacts" / "rule_table")[1]["review"]["status"] == "retired"
    # One champion per scenario across registered models: approving under another name retires v2.
    approve(c, "--register", "retail-other")
    assert client.get_registered_model("retail-other").aliases == {"champion": 1}
    assert client.get_registered_model(MODEL).aliases == {}
    assert client.get_model_version(MODEL, "2").tags["review_status"] == "retired"
    # Active keeps champion; retired removes it.
    approve(c, "--status", "active")
    assert client.get_registered_model("retail-other").aliases == {"champion": 1}
    assert "@champion" not in approve(c, "--status", "retired")
    assert client.get_registered_model("retail-other").aliases == {}
    assert client.get_model_version("retail-other", "1").tags["review_status"] == "retired"
    assert json.loads((c / "manifest.json").read_text())["registry"]["alias"] is None
