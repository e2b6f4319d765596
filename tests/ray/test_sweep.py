"""``invalloc sweep`` on a local multi-node Ray cluster against a real MLflow server.

The cluster (``ray.cluster_utils.Cluster``): a head with no CPUs and two worker nodes of one CPU
each, so trials can only run on the workers. The sweep runs as the real command in a subprocess
(its own Ray driver), like a user would run it; the test reads the outcome from the server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from process_tree import node_processes  # noqa: I001 - the module beside this file

from invalloc.agents.sweep import NODE_TAG, OVERRIDES_TAG, PARENT_TAG_KEY, SEED_TAG

if importlib.util.find_spec("ray") is None:  # not imported here: token auth is set up before `import ray`
    pytest.skip("invalloc[ray] is not installed", allow_module_level=True)

SOURCE = Path(__file__).resolve().parents[2] / "src"
#: Trial length of the sweeps here: one evaluation, at the end.
TIMESTEPS = 256


def _sweep(address: str, server: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SOURCE)}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "invalloc.cli", "sweep", "tiny_smoke", "--address", address]
    return subprocess.Popen(
        [*command, "--tracking-uri", server, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _parent_id(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("MLflow sweep run: ")]
    assert lines, stdout
    return lines[0].removeprefix("MLflow sweep run: ").strip()


def _trials(client, parent_id: str) -> list:
    parent = client.get_run(parent_id)
    return client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG_KEY}` = '{parent_id}'", max_results=100
    )


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_sweep_runs_trials_on_both_nodes_like_serial_training(ray_test_cluster, mlflow_server, tmp_path):
    import mlflow
    import pandas as pd
    from typer.testing import CliRunner

    from invalloc.cli import app

    rates = ["0.001", "0.0003"]
    sweep = _sweep(
        ray_test_cluster.address,
        mlflow_server.uri,
        "--set", f"hyperparameters.learning_rate={','.join(rates)}",
        "--set", f"timesteps={TIMESTEPS}",
        "--seeds", "0-1",
        "--register", "sweep_best",
    )  # fmt: skip
    stdout, stderr = sweep.communicate(timeout=1800)
    assert sweep.returncode == 0, stderr[-3000:]
    assert "4 trial(s) finished, 0 failed, 0 lost on 2 node(s)" in stdout, stdout

    client = mlflow.MlflowClient(mlflow_server.uri)
    parent_id = _parent_id(stdout)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    runs = _trials(client, parent_id)
    assert len(runs) == 4
    assert {run.info.status for run in runs} == {"FINISHED"}
    # Every configuration × seed once; the trials ran on both worker nodes (and only there).
    points = {(json.loads(run.data.tags[OVERRIDES_TAG])["hyperparameters.learning_rate"], run.data.tags[SEED_TAG])
              for run in runs}  # fmt: skip
    assert points == {(float(rate), seed) for rate in rates for seed in ("0", "1")}
    assert {run.data.tags[NODE_TAG] for run in runs} == set(ray_test_cluster.worker_node_ids)

    # The parent's results: one row per configuration, each over both seeds.
    results = pd.read_csv(client.download_artifacts(parent_id, "sweep/results.csv", str(tmp_path)))
    assert sorted(results["finished"]) == [2, 2]
    assert parent.data.tags["invalloc.sweep.lost_trials"] == "none"
    best_run = parent.data.tags["invalloc.sweep.best_run"]
    assert client.get_model_version("sweep_best", "1").run_id == best_run

    # Each trial equals a serial `invalloc train` of the same settings, and its artifacts download.
    base = yaml.safe_load((SOURCE / "invalloc" / "experiments" / "tiny_smoke.yaml").read_text())
    for run in runs:
        rate = json.loads(run.data.tags[OVERRIDES_TAG])["hyperparameters.learning_rate"]
        seed = run.data.tags[SEED_TAG]
        folder = tmp_path / run.info.run_id
        folder.mkdir()
        trial = pd.read_csv(client.download_artifacts(run.info.run_id, "evaluation.csv", str(folder)))
        assert Path(client.download_artifacts(run.info.run_id, "best", str(folder))).is_dir()
        experiment = {
            **base,
            "timesteps": TIMESTEPS,
            "hyperparameters": {**base["hyperparameters"], "learning_rate": rate},
        }
        path = folder / "tiny_smoke.yaml"
        path.write_text(yaml.safe_dump(experiment))
        serial = CliRunner().invoke(
            app, ["train", str(path), "--seed", seed, "--tracking-uri", f"sqlite:///{tmp_path / 'serial.db'}"]
        )
        assert serial.exit_code == 0, serial.output
        serial_id = serial.stdout.split("MLflow run: ")[1].split()[0]
        local = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'serial.db'}")
        expected = pd.read_csv(local.download_artifacts(serial_id, "evaluation.csv", str(folder / "serial")))
        pd.testing.assert_frame_equal(trial, expected, check_exact=True)


def test_losing_a_node_mid_sweep_leaves_no_run_running(own_cluster, mlflow_server):
    import mlflow

    sweep = _sweep(
        own_cluster.address,
        mlflow_server.uri,
        "--set", "hyperparameters.learning_rate=0.001,0.0003",
        "--set", "timesteps=4096",
        "--seeds", "0-1",
    )  # fmt: skip
    client = mlflow.MlflowClient(mlflow_server.uri)
    parent_id = None
    victim = None
    deadline = time.monotonic() + 900
    while victim is None:
        assert sweep.poll() is None, sweep.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(1.0)
        if parent_id is None:
            found = client.search_runs(
                [e.experiment_id for e in client.search_experiments()],
                filter_string="tags.`invalloc.sweep` = 'parent' and attributes.status = 'RUNNING'",
            )
            parent_id = found[0].info.run_id if found else None
            continue
        running = [run for run in _trials(client, parent_id) if run.info.status == "RUNNING"]
        if running:
            victim = running[0]
    node = next(node for node in own_cluster.workers if node.node_id == victim.data.tags[NODE_TAG])
    own_cluster.removed_processes = node_processes([node])  # checked gone at teardown too
    own_cluster.remove_node(node, allow_graceful=False)

    stdout, stderr = sweep.communicate(timeout=1800)
    assert sweep.returncode == 1, stderr[-3000:]
    assert "lost: trial" in stderr, stderr[-3000:]
    runs = {run.info.run_id: run for run in _trials(client, parent_id)}
    assert "RUNNING" not in {run.info.status for run in runs.values()}
    assert runs[victim.info.run_id].info.status == "KILLED"
    parent = client.get_run(parent_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["invalloc.sweep.lost_trials"] != "none"
    # The other trials ran on the node that is left and finished.
    finished = [run for run in runs.values() if run.info.status == "FINISHED"]
    assert finished and all(run.data.tags[NODE_TAG] != node.node_id for run in finished)
