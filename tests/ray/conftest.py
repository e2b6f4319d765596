"""Fixtures of the Ray tests: a local multi-node Ray cluster and a real MLflow server.

These tests run as their own pytest step, after the main suite and with ``-n 0``
(``scripts/test.sh``): each fixture starts real processes once per session. Teardown stops
exactly what the fixture started (never ``ray stop``, which would stop every cluster on the
machine) and fails the session if any of those processes is still alive.

Ray's token authentication stays on: ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN_PATH`` point at a token
in a temporary folder, set before ``ray`` is first imported in this process.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from process_tree import descendants, node_processes, wait_ended  # noqa: I001 - the module beside this file

#: Most seconds a process started here may take to come up or to end once told to.
START_SECONDS = 120.0
STOP_SECONDS = 30.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist every worker would start its own cluster: these tests need ``-n 0``."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        skip = pytest.mark.skip(reason="tests/ray start real clusters: run them with -n 0 (scripts/test.sh does)")
        for item in items:
            if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
                item.add_marker(skip)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class RayTestCluster:
    """A running ``ray.cluster_utils.Cluster``: ``address`` (HOST:PORT of its head) and the
    node ids of its two 1-CPU worker nodes (the head has no CPU, so all work runs on them)."""

    address: str
    worker_node_ids: frozenset[str]
    token_path: Path


@pytest.fixture(scope="session")
def ray_test_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayTestCluster]:
    """A head with 0 CPUs plus two worker nodes of 1 CPU each, token auth on; stopped at the end."""
    folder = tmp_path_factory.mktemp("ray-auth")
    token = folder / "auth_token"
    token.touch(mode=0o600)
    token.write_text(secrets.token_hex(32))
    saved = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN")}
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)
    os.environ.pop("RAY_AUTH_TOKEN", None)

    from ray.cluster_utils import Cluster  # after the environment: Ray reads it on import

    cluster = Cluster()
    try:
        cluster.add_node(num_cpus=0, include_dashboard=False, gcs_server_port=free_port())  # the head
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        yield RayTestCluster(cluster.address, frozenset(node.node_id for node in workers), token)
    finally:
        started = _cluster_processes(cluster)
        cluster.shutdown()
        left = wait_ended(started)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert not left, f"Ray processes left running after the cluster stopped: {sorted(left)}"


def _cluster_processes(cluster: object) -> set[int]:
    """The processes of every node of ``cluster`` (GCS, raylets, agents, …) and their workers."""
    return node_processes(cluster.list_all_nodes())  # type: ignore[attr-defined]


@pytest.fixture
def own_cluster(ray_test_cluster):
    """Another cluster like the session's (a head with 0 CPUs, two 1-CPU workers), with the
    session's token (Ray reads one per process), for a test that kills one of its nodes
    (the session's cluster stays whole). ``own_cluster.workers``: its two worker nodes; a test
    that removes a node puts the node's processes in ``own_cluster.removed_processes``.

    Stopped after the test; every process it started must be gone. Never ``ray stop``.
    """
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        cluster.workers = workers
        yield cluster
    finally:
        started = _cluster_processes(cluster) | getattr(cluster, "removed_processes", set())
        cluster.shutdown()
        left = wait_ended(started, seconds=60.0)
        assert not left, f"Ray processes left running: {sorted(left)}"


@dataclass(frozen=True)
class MlflowTestServer:
    """A running ``mlflow server``: ``uri`` (http://127.0.0.1:PORT), its sqlite ``backend`` and
    its ``artifacts`` folder (``--artifacts-destination``)."""

    uri: str
    backend: Path
    artifacts: Path


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowTestServer]:
    """``mlflow server`` on a free loopback port with a fresh sqlite store; stopped at the end."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    backend, artifacts = folder / "mlflow.db", folder / "artifacts"
    port = free_port()
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", f"sqlite:///{backend}"),
        *("--artifacts-destination", str(artifacts)),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    log = (folder / "server.log").open("wb")
    # No job runner (its consumers are a dozen processes these tests never use).
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder, env=environment
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited with {server.returncode}: {(folder / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer {uri}/health in {START_SECONDS:.0f} s")
            time.sleep(0.5)
        yield MlflowTestServer(uri, backend, artifacts)
    finally:
        group = descendants(server.pid) | {server.pid}
        try:
            os.killpg(server.pid, signal.SIGTERM)  # its own session: the server and its workers
        except ProcessLookupError:
            pass
        try:
            server.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        left = wait_ended(group)
        log.close()
        assert not left, f"MLflow server processes left running: {sorted(left)}"
