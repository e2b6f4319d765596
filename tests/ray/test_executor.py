"""``--executor ray`` on compare, tune and simulate: the same bytes as ``--executor local``.

Runs on the session's multi-node cluster (``conftest.py``: a head without CPUs and two 1-CPU
worker nodes), so every episode or candidate runs on a worker node, and checks from the line
each command prints (``ray: N worker(s) on M node(s): ids``) that both worker nodes took part.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from invalloc.cli import app

SOURCE = Path(__file__).resolve().parents[2] / "src"
#: Fields of compare's JSON that describe the run, not its results.
RUN_FIELDS = ("seconds", "processes", "mlflow_run_id", "report")


def invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def ray_nodes(stderr: str) -> set[str]:
    """The node ids of the ``ray: …`` line a command prints after running on Ray."""
    found = re.search(r"^ray: \d+ worker\(s\) on \d+ node\(s\): (.+)$", stderr, re.MULTILINE)
    assert found, stderr
    return set(found.group(1).split(", "))


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (the report's statements/ and trajectories/ too), by relative path."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_cli_import_does_not_import_ray() -> None:
    code = "import sys, invalloc, invalloc.cli, invalloc.cluster; assert 'ray' not in sys.modules, 'ray imported'"
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SOURCE)}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_compare_on_ray_writes_the_same_report(ray_test_cluster, mlflow_server, tmp_path: Path) -> None:
    common = ["compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "priority", "--episodes", "4"]
    common += ["--seed", "3", "--tracking-uri", mlflow_server.uri, "--json"]
    code, local_out, local_err = invoke([*common, "--out", str(tmp_path / "local"), "--processes", "1"])
    assert code == 0, local_err
    remote = [*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--ray-address", ray_test_cluster.address]
    code, ray_out, ray_err = invoke(remote)
    assert code == 0, ray_err

    assert ray_nodes(ray_err) == ray_test_cluster.worker_node_ids  # both worker nodes ran episodes
    local_files, ray_files = files_of(tmp_path / "local"), files_of(tmp_path / "ray")
    assert {"episodes.csv", "kpis.csv", "paired_differences.csv"} <= set(local_files)
    assert set(local_files) == set(ray_files)
    for name in local_files:
        if name != "report.html":  # it states the run's time, duration and processes
            assert local_files[name] == ray_files[name], name
    local_json, ray_json = json.loads(local_out), json.loads(ray_out)
    for run_field in RUN_FIELDS:
        local_json.pop(run_field), ray_json.pop(run_field)
    assert local_json == ray_json


def test_tune_on_ray_writes_the_same_parameters(
    ray_test_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class _Frozen(datetime):  # tuned_at: the clock is the one thing allowed to differ
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return datetime(2026, 1, 1, tzinfo=UTC)

    monkeypatch.setattr("invalloc.baselines.tuning.datetime", _Frozen)
    common = ["tune", "--scenario", "tiny", "--policy", "base_stock", "--seeds", "0-3", "--budget", "10", "--json"]
    code, local_out, local_err = invoke([*common, "--out", str(tmp_path / "local.yaml")])
    assert code == 0, local_err
    remote = [*common, "--out", str(tmp_path / "ray.yaml"), "--executor", "ray", "--ray-address"]
    code, ray_out, ray_err = invoke([*remote, ray_test_cluster.address])
    assert code == 0, ray_err

    assert ray_nodes(ray_err) == ray_test_cluster.worker_node_ids
    assert (tmp_path / "local.yaml").read_bytes() == (tmp_path / "ray.yaml").read_bytes()
    local_json, ray_json = json.loads(local_out), json.loads(ray_out)
    assert local_json.pop("file") != ray_json.pop("file")
    assert local_json == ray_json


def test_simulate_on_ray_prints_the_same_episodes(ray_test_cluster, tmp_path: Path) -> None:
    common = ["simulate", "--scenario", "tiny", "--policy", "priority", "--episodes", "4", "--seed", "7", "--json"]
    code, local_out, local_err = invoke([*common, "--audit-log", str(tmp_path / "local.csv")])
    assert code == 0, local_err
    remote = [*common, "--audit-log", str(tmp_path / "ray.csv"), "--executor", "ray"]
    code, ray_out, ray_err = invoke([*remote, "--ray-address", ray_test_cluster.address])
    assert code == 0, ray_err

    assert ray_nodes(ray_err) == ray_test_cluster.worker_node_ids
    assert local_out == ray_out
    assert len(json.loads(ray_out)["episodes"]) == 4
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "ray.csv").read_bytes()


def test_local_store_is_refused_on_a_multi_node_cluster(ray_test_cluster, tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    code, _, stderr = invoke(
        [
            *("compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "priority", "--episodes", "2"),
            *("--out", str(tmp_path / "out"), "--tracking-uri", f"sqlite:///{store}"),
            *("--executor", "ray", "--ray-address", ray_test_cluster.address),
        ]
    )
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: --tracking-uri sqlite:///{store}: the 3 nodes"), lines[0]
    assert "mlflow server --backend-store-uri" in lines[0] and "--artifacts-destination" in lines[0]
    assert not store.exists() and not (tmp_path / "out").exists()


def test_unreachable_address_is_one_line(ray_test_cluster, mlflow_server, tmp_path: Path) -> None:
    """A port where no Ray head listens, and one where another server (MLflow) does."""
    port = mlflow_server.uri.rsplit(":", 1)[1]
    for address in ("127.0.0.1:1", f"127.0.0.1:{port}"):
        done = subprocess.run(
            [sys.executable, "-m", "invalloc.cli", "simulate", "--scenario", "tiny", "--periods", "3"]
            + ["--executor", "ray", "--ray-address", address],
            env={**os.environ, "PYTHONPATH": str(SOURCE)},
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2, done.stderr
        assert len(lines) == 1 and lines[0].startswith(f"error: --ray-address {address}: "), done.stderr


def test_without_an_address_a_new_local_cluster_runs_and_stops(ray_test_cluster, monkeypatch) -> None:
    """Not the test cluster already running on this machine (ray.init() alone would join it)."""
    from process_tree import descendants, wait_ended

    from invalloc.cluster import WorkerPool, ray_cluster

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    before = descendants(os.getpid())
    with ray_cluster(num_cpus=1) as cluster:
        assert cluster.started and cluster.nodes == 1 and cluster.address != ray_test_cluster.address
        with WorkerPool(lambda: abs, size=4) as pool:  # at most one actor per CPU
            assert pool.size == 1
            assert pool.map([(-1,), (2,), (-3,)]) == [1, 2, 3]
        started = descendants(os.getpid()) - before
    assert started, "the local cluster started no process"
    assert not wait_ended(started), "processes of the local cluster outlived it"
