"""A worker node lost in the middle of ``--executor ray`` work: one ``error:`` line naming the
node and the call it ran, exit code 1, nothing written.

A whole node: the command runs in a subprocess (its own Ray driver) on a cluster of the test's
own (``own_cluster``: a head without CPUs, two 1-CPU worker nodes); once one of its actors is
at work on a worker node, the test removes that node without grace (its raylet and workers are
killed), as when a machine of the cluster goes down. One worker process: it exits in the middle
of a call of the worker pool every command uses (compare, tune, simulate).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_tree import descendants, node_processes  # noqa: I001 - the module beside this file

if importlib.util.find_spec("ray") is None:  # not imported here: token auth is set up before `import ray`
    pytest.skip("invalloc[ray] is not installed", allow_module_level=True)

SOURCE = Path(__file__).resolve().parents[2] / "src"
#: Most seconds until an actor is at work on the node to remove (workers start, load the cache).
START_SECONDS = 600.0


def _busy_actor(node) -> bool:
    """True once a process of ``node`` runs a call of an invalloc worker (Ray titles the
    process of an actor's method ``ray::_Actor.call``)."""
    for pid in node_processes([node]):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"_Actor.call" in command:
            return True
    return False


def test_losing_a_node_mid_simulate_is_one_error_line(own_cluster, tmp_path: Path) -> None:
    audit = tmp_path / "out" / "audit.csv"
    # Long enough (40 episodes of 1,000 periods, books and audit log on) that the work is still
    # under way well after the first call starts.
    command = [sys.executable, "-m", "invalloc.cli", "simulate", "--scenario", "retail", "--policy", "base_stock"]
    command += ["--episodes", "40", "--periods", "1000", "--seed", "0", "--json", "--audit-log", str(audit)]
    command += ["--executor", "ray", "--ray-address", own_cluster.address]
    env = {**os.environ, "PYTHONPATH": str(SOURCE)}
    before = descendants(os.getpid())
    simulate = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    try:
        victim = own_cluster.workers[0]
        deadline = time.monotonic() + START_SECONDS
        while not _busy_actor(victim):
            assert simulate.poll() is None, simulate.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no actor started work on the node"
            time.sleep(0.2)
        own_cluster.removed_processes = node_processes([victim])  # checked gone at teardown too
        own_cluster.remove_node(victim, allow_graceful=False)
        stdout, stderr = simulate.communicate(timeout=900)
    finally:
        if simulate.poll() is None:  # only on a failed assertion above: our own child, by id
            simulate.kill()
            simulate.communicate()

    assert simulate.returncode == 1, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith(f"error: ray: lost the worker on node {victim.node_id}"), lines[0]
    assert "while it ran episode " in lines[0], lines[0]
    # Ray reports the node's death, or (first, while it has not yet noticed) an actor that stopped answering.
    assert lines[0].endswith(("its node died; stopped, nothing written", "went down); stopped, nothing written"))
    assert stdout == ""
    assert not audit.exists() and list(tmp_path.iterdir()) == []  # nothing written, not even the folder
    left = {pid for pid in descendants(os.getpid()) - before if pid != simulate.pid}
    assert not left, f"processes of the command outlived it: {sorted(left)}"


def test_a_worker_process_that_dies_mid_call_is_one_lost_worker_error(ray_test_cluster) -> None:
    """The worker process ends in the middle of a call (as when the system kills it), on the
    session's cluster: the pool names the node the actor ran on, the call and the cause."""
    from invalloc.cluster import WorkerLostError, WorkerPool, ray_cluster

    def work(value: int) -> int:
        if value == 3:
            os._exit(1)  # the actor's process dies in this call
        return value

    with ray_cluster(ray_test_cluster.address), WorkerPool(lambda: work, size=2) as pool:
        with pytest.raises(WorkerLostError) as lost:
            pool.map([(value,) for value in range(6)], describe=lambda call: f"input {call[0]}")
    line = str(lost.value)
    assert "\n" not in line and lost.value.exit_code == 1
    node = line.removeprefix("ray: lost the worker on node ").split()[0]
    assert node in ray_test_cluster.worker_node_ids, line
    assert line.endswith("while it ran input 3: its worker process died; stopped, nothing written"), line
