from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from invalloc.config.loader import load_scenario
from invalloc.sim.network import compile_network

#: Reference data carried by the repository (what each case is and its source: docs/validation.md).
DATA = Path(__file__).resolve().parent / "data"


def reference_file(name: str) -> Path:
    """A file of tests/data; a missing one fails the test (it is part of the repository)."""
    path = DATA / name
    if not path.is_file():
        pytest.fail(f"reference file {path} is missing from the checkout")
    return path


@pytest.fixture(scope="session")
def orgym_vector() -> dict:
    return json.loads(reference_file("orgym_invmanagement_v0_vector.json").read_text())


@pytest.fixture
def orgym_trace(tmp_path, orgym_vector) -> Path:
    path = tmp_path / "trace.csv"
    pd.DataFrame(
        {
            "period": range(len(orgym_vector["demand"])),
            "channel": "customers",
            "sku": "item",
            "quantity": orgym_vector["demand"],
        }
    ).to_csv(path, index=False)
    return path


def network_of(name: str, **overrides):
    return compile_network(load_scenario(name, overrides or None))


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory) -> Path:
    """One migrated MLflow sqlite store per test session (migrations take seconds); copied per test."""
    import mlflow

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()  # runs the migrations
    return path


@pytest.fixture
def mlflow_uri(tmp_path, mlflow_template_db, monkeypatch) -> str:
    """A fresh, already migrated sqlite tracking store in this test's temp dir."""
    import shutil

    store = tmp_path / "tracking"
    store.mkdir()
    shutil.copyfile(mlflow_template_db, store / "mlflow.db")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
