"""A benchmark script's whole measurement run in several fresh processes, one after the other.

One process's figures depend on the process: where its memory lies, and what the machine's
neighbours do in its minute. ``scripts/bench_env.py`` and ``scripts/bench_sim.py`` take
``--processes N``: they rerun themselves N times with ``--json`` through :func:`run_processes`
and give their verdicts on the median over the processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def rerun_command(script: str | Path, argv: list[str]) -> list[str]:
    """The command that reruns ``script`` with this run's options ``argv`` (``sys.argv[1:]``)
    but ``--processes`` and ``--json``, and with ``--json``."""
    command = [sys.executable, str(Path(script).resolve())]
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not (arg.startswith("--processes=") or arg == "--json"):
            command.append(arg)
    return [*command, "--json"]


def run_processes(command: list[str], count: int, describe: Callable[[dict], str]) -> list[dict]:
    """``command`` (a :func:`rerun_command`) run ``count`` times in turn; each run's JSON output.

    Progress goes to standard error: a line before each process and ``describe(result)`` after
    it. A failed process ends the whole run with one ``error:`` line naming it.
    """
    from rich.console import Console

    console = Console(stderr=True)
    results = []
    for i in range(count):
        console.print(f"process {i + 1} of {count}…")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            sys.exit(f"error: process {i + 1} of {count} failed (exit {done.returncode}): {last}")
        text = done.stdout.strip()
        results.append(json.loads(text[text.index("{") :]))  # anything a library printed first is skipped
        console.print(f"  {describe(results[-1])}")
    return results
