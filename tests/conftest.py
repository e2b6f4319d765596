from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from invalloc.config.loader import load_scenario
from invalloc.sim.network import compile_network

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def reference_file(name: str) -> Path:
    """A file of ../shared/reference; skipped loudly if the checkout has no shared folder."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.fail(f"reference file {path} is missing (the repository expects ../shared/reference beside it)")
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
