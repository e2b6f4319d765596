"""Processes below a process, from /proc (Linux): what the Ray tests started and must end."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

#: Most seconds a process may take to end once told to.
STOP_SECONDS = 30.0


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc: Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The processes of ``pids`` still running (zombies count as ended)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def wait_ended(pids: set[int], seconds: float = STOP_SECONDS) -> set[int]:
    """Wait until the processes end; returns those still alive after ``seconds`` (then killed)."""
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive(pids)
    for pid in left:  # our own processes only, by id
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


def node_processes(nodes: list) -> set[int]:
    """The processes of Ray ``nodes`` (``ray.cluster_utils.Cluster`` nodes: raylets, agents, the
    head's GCS) and every process below them (their workers)."""
    pids: set[int] = set()
    for node in nodes:
        for infos in node.all_processes.values():
            pids.update(info.process.pid for info in infos)
    for pid in list(pids):
        pids |= descendants(pid)
    return pids
