"""``invalloc sweep`` on a local multi-node Ray cluster against a real MLflow server.

The cluster (``ray.cluster_utils.Cluster``): a head with no CPUs and two worker nodes of one CPU
each, so trials can only run on the workers. The sweep runs as the real command in a subprocess
(its own Ray driver), like a user would run it; the test reads the outcome from the server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from invalloc.agents.sweep import NODE_TAG, OVERRIDES_TAG, PARENT_TAG_KEY, SEED_TAG

if importlib.util.find_spec("ray") is None:  # not imported here: token auth is set up before `import ray`
    pytest.skip("invalloc[ray] is not installed", allow_module_level=True)

SOURCE = Path(__file__).resolve().parents[2] / "src"
#: Trial length of the sweeps here: one evaluation, at the end.
TIMESTEPS = 256


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def _children() -> dict[int, int]:
    """Every process's parent: pid → ppid (Linux /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(text[text.rindex(")") + 2 :].split()[1])
    return parents


def descendants(pid: int) -> set[tuple[int, str]]:
    """The processes below ``pid``, each with its start time (a reused pid is another process)."""
    from invalloc.processes import process_start

    parents = _children()
    found, frontier = set(), [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current:
                frontier.append(child)
                start = process_start(child)
                if start is not None:
                    found.add((child, start))
    return found


def alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    from invalloc.processes import process_start

    return {(pid, start) for pid, start in processes if process_start(pid) == start}


def _wait_gone(processes: set[tuple[int, str]], seconds: float = 30.0) -> set[tuple[int, str]]:
    deadline = time.monotonic() + seconds
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(processes)


# ---------------------------------------------------------------------------------------------
# Fixtures: an MLflow server, a Ray cluster
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory):
    """A real ``mlflow server`` on a free loopback port (sqlite backend, proxied artifacts)."""
    import urllib.request

    folder = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "mlartifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],  # fmt: skip
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "server.log", "wb"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    processes = descendants(os.getpid())
    yield uri
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert not _wait_gone(processes), "an MLflow server process was left behind"


@pytest.fixture(scope="module")
def ray_token(tmp_path_factory: pytest.TempPathFactory):
    """Token authentication for this process and the clusters it starts, set before ``import ray``."""
    token = tmp_path_factory.mktemp("ray-token") / "auth_token"
    token.touch(mode=0o600)
    token.write_text(os.urandom(32).hex())
    saved = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    os.environ.pop("RAY_ADDRESS", None)
    yield token
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def cluster(ray_token: Path):
    """A Ray cluster on this machine: a head with 0 CPUs and two worker nodes of 1 CPU each.

    Torn down after the test, and every process it started must be gone. Never ``ray stop``
    (it would stop every cluster on the machine).
    """
    from ray.cluster_utils import Cluster

    before = descendants(os.getpid())
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0}, shutdown_at_exit=True)
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        cluster.workers = workers
        yield cluster
    finally:
        started = descendants(os.getpid()) - before
        cluster.shutdown()
        left = _wait_gone(started)
        assert not left, f"Ray processes left behind: {sorted(left)}"


def _sweep(cluster, server: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SOURCE)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invalloc.cli",
            "sweep",
            "tiny_smoke",
            "--address",
            cluster.address,
            "--tracking-uri",
            server,
            *args,
        ],  # fmt: skip
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


def test_sweep_runs_trials_on_both_nodes_like_serial_training(cluster, tracking_server, tmp_path):
    import mlflow
    import pandas as pd
    from typer.testing import CliRunner

    from invalloc.cli import app

    rates = ["0.001", "0.0003"]
    sweep = _sweep(
        cluster,
        tracking_server,
        "--set", f"hyperparameters.learning_rate={','.join(rates)}",
        "--set", f"timesteps={TIMESTEPS}",
        "--seeds", "0-1",
        "--register", "sweep_best",
    )  # fmt: skip
    stdout, stderr = sweep.communicate(timeout=1800)
    assert sweep.returncode == 0, stderr[-3000:]
    assert "4 trial(s) finished, 0 failed, 0 lost on 2 node(s)" in stdout, stdout

    client = mlflow.MlflowClient(tracking_server)
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
    assert {run.data.tags[NODE_TAG] for run in runs} == {node.node_id for node in cluster.workers}

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


def test_losing_a_node_mid_sweep_leaves_no_run_running(cluster, tracking_server):
    import mlflow

    sweep = _sweep(
        cluster,
        tracking_server,
        "--set", "hyperparameters.learning_rate=0.001,0.0003",
        "--set", "timesteps=4096",
        "--seeds", "0-1",
    )  # fmt: skip
    client = mlflow.MlflowClient(tracking_server)
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
    node = next(node for node in cluster.workers if node.node_id == victim.data.tags[NODE_TAG])
    cluster.remove_node(node, allow_graceful=False)

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
