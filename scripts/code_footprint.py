"""Machine code an environment step runs: distinct 64-byte lines of code, by library and by compiled function.

Usage (from the repository root; needs Linux ``perf``)::

    .venv/bin/python scripts/code_footprint.py [--scenario retail] [--seconds 10]
        [--frequency 25000] [--actors] [--json]

Inside PPO, each env step runs between two forward passes of the policy, so the CPU caches
hold PyTorch's code and data rather than the environment's. A step then costs more the more
distinct code it runs, not only the more instructions (``scripts/bench_env.py``: one step
takes 2–3 times longer right after a forward pass than back to back). This script measures
that code. It runs the scenario's environment (random compact actions, ``info="lean"``,
resets included) for ``--seconds`` under ``perf record -e cpu-clock`` (a software event: no
hardware counters needed, so it works in VMs), and counts the distinct 64-byte lines of code
its samples fell in:

- per shared object (the Python interpreter, numpy, libc, …);
- for the compiled kernels (numba's code has no file: perf names it ``perf-PID.map``), per
  region of code, each named by the compiled functions whose entry points lie nearest it (the one
  compiled period, the compact mapping, the observation's pass, the reset and its demand draws,
  …, and numba's reference counting, ``NRT_incref``/``NRT_decref``). A region usually holds one
  compiled function and what it inlined (two placed close together show as one region, named
  by both); its share of the compiled samples is where the compiled time goes.

Each step runs about the same code, so the lines of a few seconds of steps are the lines one
step runs; rarely run lines may have no sample, so the counts are a lower bound (they grow a
little with ``--seconds`` or ``--frequency``). ``--actors`` runs the period as the actors' five
compiled calls (decision point, suppliers, receiving, customers, finance), as with an audit log,
so that its code is attributed to each business step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

#: Bytes of one line of code in the CPU caches.
LINE_BYTES = 64
#: Lines of compiled code further apart than this belong to different regions (numba places
#: each compiled library's code in its own allocation).
REGION_GAP_BYTES = 16 * 1024
#: Compiled functions whose entry points name the regions: (module, function).
COMPILED_FUNCTIONS = (
    ("invalloc.sim.kernels", "run_period"),
    ("invalloc.sim.kernels", "decision_point"),
    ("invalloc.sim.kernels", "supply_orders"),
    ("invalloc.sim.kernels", "put_away"),
    ("invalloc.sim.kernels", "serve_period"),
    ("invalloc.sim.kernels", "close_books"),
    ("invalloc.sim.kernels", "reset_episode"),
    ("invalloc.sim.kernels", "money_outlook"),
    ("invalloc.sim.kernels", "bills_and_headroom"),
    ("invalloc.sim.kernels.demand", "draw_negative_binomial_tiers"),
    ("invalloc.sim.kernels.demand", "draw_poisson_tiers"),
    ("invalloc.sim.kernels.demand", "draw_normal_channel"),
    ("invalloc.sim.kernels.demand", "draw_channel_split"),
    ("invalloc.env.actions", "_compact_mapping"),
    ("invalloc.env.observations", "_record_and_observe"),
)


def is_compiled_code(shared_object: str) -> bool:
    """Whether perf's name for a sample's object is code generated at run time (numba's)."""
    name = shared_object.strip("()")
    return os.path.basename(name).startswith("perf-") or name in ("[unknown]", "//anon", "[anon]")


def footprint(samples: Iterable[tuple[int, str]], functions: dict[str, list[int]]) -> dict:
    """The distinct lines of code of ``samples`` ((instruction address, shared object) pairs).

    Returns ``objects`` (per shared object: samples, distinct lines, KB, most first) and
    ``compiled_regions`` (runs of compiled-code lines less than :data:`REGION_GAP_BYTES`
    apart: start address, span and executed KB, share of the compiled samples, and the
    ``functions`` (name → entry addresses) whose entry is nearest that region, within
    :data:`REGION_GAP_BYTES`), most executed first.
    """
    lines: dict[str, Counter] = {}
    for address, shared_object in samples:
        lines.setdefault(shared_object, Counter())[address // LINE_BYTES] += 1
    objects = [
        {
            "object": name,
            "compiled": is_compiled_code(name),
            "samples": sum(counts.values()),
            "lines": len(counts),
            "kb": len(counts) * LINE_BYTES / 1024,
        }
        for name, counts in lines.items()
    ]
    objects.sort(key=lambda row: -row["lines"])
    compiled = Counter()
    for name, counts in lines.items():
        if is_compiled_code(name):
            compiled.update(counts)
    regions: list[list[int]] = []
    for line in sorted(compiled):
        if regions and (line - regions[-1][-1]) * LINE_BYTES <= REGION_GAP_BYTES:
            regions[-1].append(line)
        else:
            regions.append([line])
    total = sum(compiled.values()) or 1
    spans = [(region[0] * LINE_BYTES, (region[-1] + 1) * LINE_BYTES) for region in regions]
    # Each function names the region nearest its entry (within REGION_GAP_BYTES): the entry
    # itself may have no sample.
    named: list[list[str]] = [[] for _ in regions]
    for name, addresses in functions.items():
        for address in addresses:
            distances = [max(start - address, address - end + 1, 0) for start, end in spans]
            if distances and min(distances) <= REGION_GAP_BYTES:
                named[distances.index(min(distances))].append(name)
    rows = []
    for region, (start, end), names in zip(regions, spans, named, strict=True):
        rows.append(
            {
                "start": hex(start),
                "span_kb": (end - start) / 1024,
                "executed_kb": len(region) * LINE_BYTES / 1024,
                "lines": len(region),
                "share": sum(compiled[line] for line in region) / total,
                "functions": sorted(set(names)),
            }
        )
    rows.sort(key=lambda row: -row["lines"])
    return {"objects": objects, "compiled_regions": rows}


def parse_perf_script(text: str, window: tuple[float, float]) -> list[tuple[int, str]]:
    """(address, shared object) of each line of ``perf script -F time,ip,dso`` whose time
    (seconds of CLOCK_MONOTONIC: ``perf record -k CLOCK_MONOTONIC``) lies in ``window``."""
    samples = []
    start, end = window
    for row in text.splitlines():
        parts = row.split(None, 2)
        if len(parts) != 3:
            continue
        try:
            moment, address = float(parts[0].rstrip(":")), int(parts[1], 16)
        except ValueError:
            continue
        if start <= moment <= end:
            samples.append((address, parts[2].strip()))
    return samples


def entry_addresses() -> dict[str, list[int]]:
    """The entry addresses of :data:`COMPILED_FUNCTIONS`' compiled signatures in this process."""
    import importlib

    addresses: dict[str, list[int]] = {}
    for module, name in COMPILED_FUNCTIONS:
        dispatcher = getattr(importlib.import_module(module), name, None)
        for overload in getattr(dispatcher, "overloads", {}).values():
            address = overload.library.get_pointer_to_function(overload.fndesc.llvm_func_name)
            if address:
                addresses.setdefault(name, []).append(int(address))
    # numba's reference counts of arrays that own their memory: an atomic increment or
    # decrement, called out of line for every such array passed, viewed or dropped.
    from numba.core.runtime.nrt import rtsys

    for name in ("NRT_incref", "NRT_decref"):
        try:
            address = rtsys.library.get_pointer_to_function(name)
        except Exception:  # the runtime not initialised (no array ever allocated): nothing to name
            continue
        if address:
            addresses[name] = [int(address)]
    return addresses


def child(scenario: str, seconds: float, actors: bool, functions_path: Path) -> None:
    """Run the environment for ``seconds`` (after a warm-up); write the compiled functions'
    entry addresses and the steps taken to ``functions_path``."""
    import numpy as np

    from invalloc.env import AllocationEnv
    from invalloc.sim.simulator import Simulator

    if actors:
        # One compiled call per actor, as with an audit log (the period's code by business step).
        Simulator._one_call_periods = lambda self: False  # type: ignore[method-assign]
    env = AllocationEnv(scenario, info="lean")
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (1024, *env.action_space.shape)).astype(np.float32)
    env.reset(seed=0)
    for step in range(1024):  # warm-up: kernels loaded, the first twenty episodes run
        if env.step(actions[step % 1024])[3]:
            env.reset()
    steps, started = 0, time.clock_gettime(time.CLOCK_MONOTONIC)
    end = started + seconds
    while time.clock_gettime(time.CLOCK_MONOTONIC) < end:
        steps += 1
        if env.step(actions[steps % 1024])[3]:
            env.reset()
    window = (started, time.clock_gettime(time.CLOCK_MONOTONIC))
    functions_path.write_text(json.dumps({"functions": entry_addresses(), "steps": steps, "window": window}))


def _fail(*problems: str) -> NoReturn:
    """One ``error:`` line per problem, exit 2."""
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    sys.exit(2)


def measure(scenario: str, seconds: float, frequency: int, actors: bool) -> dict:
    """Record the child under perf and count its lines of code."""
    perf = shutil.which("perf")
    if perf is None:
        _fail("perf: not found on PATH (Linux perf, e.g. the linux-perf package, is needed)")
    with tempfile.TemporaryDirectory(prefix="invalloc-footprint-") as folder:
        data, functions_path = Path(folder) / "perf.data", Path(folder) / "functions.json"
        command = [sys.executable, __file__, "--child", str(functions_path), "--scenario", scenario]
        command += ["--seconds", str(seconds)] + (["--actors"] if actors else [])
        record = [
            perf,
            "record",
            "-q",
            "-k",
            "CLOCK_MONOTONIC",
            "-e",
            "cpu-clock",
            "-F",
            str(frequency),
            "-o",
            str(data),
            "--",
            *command,
        ]
        done = subprocess.run(record, capture_output=True, text=True)
        if done.returncode != 0 or not functions_path.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            _fail(f"perf record: exit {done.returncode}: {last}")
        script = subprocess.run([perf, "script", "-i", str(data), "-F", "time,ip,dso"], capture_output=True, text=True)
        if script.returncode != 0:
            _fail(f"perf script: exit {script.returncode}: {script.stderr.strip()[-300:]}")
        child_result = json.loads(functions_path.read_text())
    samples = parse_perf_script(script.stdout, tuple(child_result["window"]))
    if not samples:
        _fail("perf script: no samples in the measured steps (perf without -k CLOCK_MONOTONIC?)")
    result = footprint(samples, child_result["functions"])
    result.update(scenario=scenario, seconds=seconds, frequency=frequency, actors=actors, steps=child_result["steps"])
    return result


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    objects = Table(
        title=f"{result['scenario']}: distinct 64-byte lines of code sampled in {result['steps']:,} env steps "
        f"({result['seconds']:g} s at {result['frequency']:,} samples/s)"
    )
    for column in ("object", "samples", "lines", "KB"):
        objects.add_column(column, justify="left" if column == "object" else "right")
    for row in result["objects"][:12]:
        name = "compiled kernels (numba)" if row["compiled"] else os.path.basename(row["object"].strip("()"))
        objects.add_row(escape(name), f"{row['samples']:,}", f"{row['lines']:,}", f"{row['kb']:.0f}")
    console.print(objects)
    regions = Table(title="compiled code by region (a compiled function and what it inlined)")
    for column in ("functions in the region", "span KB", "executed KB", "share of compiled samples"):
        regions.add_column(column, justify="left" if column.startswith("functions") else "right")
    for row in result["compiled_regions"][:12]:
        regions.add_row(
            ", ".join(row["functions"]) or "(other)",
            f"{row['span_kb']:.1f}",
            f"{row['executed_kb']:.1f}",
            f"{row['share']:.1%}",
        )
    console.print(regions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="retail")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the env steps under perf")
    parser.add_argument("--frequency", type=int, default=25000, help="perf's samples per second")
    parser.add_argument("--actors", action="store_true", help="the period as the actors' five compiled calls")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.scenario, args.seconds, args.actors, args.child)
        return
    if args.seconds <= 0 or args.frequency <= 0:
        parser.error("--seconds and --frequency must be positive")
    from invalloc.config.loader import ScenarioError, load_scenario

    try:
        load_scenario(args.scenario)
    except ScenarioError as error:
        _fail(*error.lines())  # one line per problem, as the command line prints them
    result = measure(args.scenario, args.seconds, args.frequency, args.actors)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
