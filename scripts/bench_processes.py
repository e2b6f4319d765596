"""A benchmark script's whole measurement run in several fresh processes, one after the other.

One process's figures depend on the process: where its memory lies, and what the machine's
neighbours do in its minute. ``scripts/bench_env.py`` and ``scripts/bench_sim.py`` take
``--processes N``: they rerun themselves N times with ``--json`` through :func:`run_processes`
and give their verdicts on the median over the processes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

#: The options of the whole run that its processes do not take (each with a value).
RUN_OPTIONS = ("--processes", "--plot")


def rerun_command(script: str | Path, argv: list[str]) -> list[str]:
    """The command that reruns ``script`` with this run's options ``argv`` (``sys.argv[1:]``)
    but :data:`RUN_OPTIONS` and ``--json``, and with ``--json``."""
    command = [sys.executable, str(Path(script).resolve())]
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in RUN_OPTIONS:
            skip = True
        elif not (arg.startswith(tuple(f"{option}=" for option in RUN_OPTIONS)) or arg == "--json"):
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


#: The figure formats ``--plot`` writes, by file suffix.
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def add_run_options(parser: argparse.ArgumentParser, drawn: str) -> None:
    """``--processes N`` and ``--plot FILE`` (drawing ``drawn``) on a benchmark's parser."""
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run the whole measurement in N fresh processes in turn; the verdicts read the median over them",
    )
    parser.add_argument("--plot", metavar="FILE", help=f"with --processes: also draw {drawn} (PNG, SVG, PDF)")


def check_run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuses bad ``--processes`` and ``--plot`` before any measuring: a bad ``--plot`` with one
    ``error:`` line and exit 2."""
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.plot is not None and (problem := plot_problem(args.plot, args.processes)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)


def plot_problem(path: str, processes: int) -> str | None:
    """What is wrong with ``--plot PATH`` for a run over ``processes`` processes, as one line
    (checked before the minutes of measuring), or None."""
    if processes < 2:
        return f"--plot {path}: a plot draws a run over processes: give --processes 2 or more"
    target = Path(path)
    if target.suffix.lower() not in PLOT_SUFFIXES:
        return f"--plot {path}: the file must end in {', '.join(PLOT_SUFFIXES)}"
    if not target.resolve().parent.is_dir():
        return f"--plot {path}: the folder {target.resolve().parent} does not exist"
    if target.is_dir():
        return f"--plot {path}: is a folder"
    return None


def plot_processes(path: str | Path, title: str, panels: list[dict]) -> None:
    """A figure of a ``--processes`` run, one panel per verdict: each process's figure as a dot
    (in the order they ran), the median over them as a line and the target as a dashed line.

    Each panel is a dict: ``label`` (the panel's title), ``values`` (one per process), ``median``,
    ``unit`` (the y axis), and optionally ``target`` and ``at_least`` (True when the target is a
    floor, False when a ceiling). Written with matplotlib's object API (no pyplot state).
    """
    from matplotlib.figure import Figure

    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(4.4 * columns, 3.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes, panels, strict=False):
        values = panel["values"]
        runs = range(1, len(values) + 1)
        target = panel.get("target")
        met = [target is None or (v >= target if panel.get("at_least", True) else v <= target) for v in values]
        ax.scatter(runs, values, c=["tab:green" if m else "tab:red" for m in met], zorder=3)
        ax.axhline(panel["median"], color="tab:blue", label=f"median {_figure(panel['median'])}")
        if target is not None:
            ax.axhline(target, color="black", linestyle="--", label=f"target {_figure(target)}")
        low = min([*values, *([target] if target is not None else [])])
        high = max([*values, *([target] if target is not None else [])])
        ax.set_ylim(low - 0.1 * (high - low or 1.0), high + 0.1 * (high - low or 1.0))
        ax.set_xticks(list(runs))
        ax.set_xlabel("process (in the order run)")
        ax.set_ylabel(panel["unit"])
        ax.set_title(panel["label"], fontsize=10)
        ax.legend(fontsize=8, loc="best")
    figure.suptitle(title, fontsize=11)
    figure.savefig(path, dpi=110)


def _figure(value: float) -> str:
    """A figure as the tables print it: thousands separated and whole above 100, else 3 digits."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
