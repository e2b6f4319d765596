"""Oracle sweep: does the hindsight LP solve every episode, how long does it take, which fallback ran.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_oracle.py                                  # retail, seeds 7000000-7000199
    .venv/bin/python scripts/bench_oracle.py --seeds 0-19 --execute          # also simulate the plans
    .venv/bin/python scripts/bench_oracle.py --scenario orgym_invmanagement_v1 --seeds 0-99 --json

For each seed the simulator is reset (the episode's demand is drawn) and the oracle plans the
episode (:meth:`OraclePolicy.plan`: the bound program, then the plan program and its
re-solves). One row per seed: ``ok`` or ``error`` (with the error's line), the plan's wall
time, the number of solver attempts, the attempts that did not end optimal, and the strategies
(:data:`invalloc.baselines.oracle.SOLVE_STRATEGIES`) that solved a program after another
attempt had failed — the *fallbacks*. ``--execute`` also simulates each plan and reports the
mean executed reward beside the mean bound (README's oracle figures).

Exit status 1 when any seed failed. Times are wall clock and depend on the machine's load
(the 1-minute load average is printed with them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from invalloc.baselines.oracle import OraclePolicy  # noqa: E402
from invalloc.baselines.tuning import parse_seeds  # noqa: E402
from invalloc.config.loader import load_scenario  # noqa: E402
from invalloc.sim.network import compile_network  # noqa: E402
from invalloc.sim.policy import PolicyError  # noqa: E402
from invalloc.sim.simulator import Simulator, run_episode  # noqa: E402


def sweep_seed(simulator: Simulator, seed: int, execute: bool) -> dict:
    """Plan (and with ``execute`` simulate) one episode; a row of the sweep."""
    oracle = OraclePolicy()
    began = time.perf_counter()
    row: dict = {"seed": seed}
    try:
        if execute:
            reports = run_episode(simulator, oracle, seed=seed)
            row["reward"] = float(sum(r.reward for r in reports))
        else:
            simulator.reset(seed)
            oracle.reset(simulator.network, seed)
            oracle.plan(simulator)
        row["status"] = "ok"
        row["bound"] = oracle.bound
    except PolicyError as error:
        row["status"] = "error"
        row["error"] = str(error)
    row["seconds"] = time.perf_counter() - began
    solves: dict[tuple[str, int], list] = {}
    for program, attempts in oracle.attempts.items():
        for attempt in attempts:
            solves.setdefault((program, attempt.solve), []).append(attempt)
    row["solves"] = len(solves)
    row["attempts"] = sum(len(a) for a in solves.values())
    # A trial change of bounds that turns out infeasible is expected (the plan restores the
    # bounds); any other attempt that did not end optimal is a solver failure.
    row["failed"] = [
        f"{program} {a.strategy}: {a.status}"
        for (program, _), attempts in solves.items()
        for a in attempts
        if a.status != "Optimal" and not (a.trial and a.status == "Infeasible")
    ]
    # A fallback: the strategy that settled a solve (optimal, or a trial proved infeasible)
    # after another attempt of the same solve failed.
    row["fallbacks"] = [
        attempts[-1].strategy
        for attempts in solves.values()
        if len(attempts) > 1
        and (attempts[-1].status == "Optimal" or (attempts[-1].trial and attempts[-1].status == "Infeasible"))
    ]
    row["trials_infeasible"] = sum(
        attempts[-1].trial and attempts[-1].status == "Infeasible" for attempts in solves.values()
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="retail")
    parser.add_argument("--seeds", default="7000000-7000199", help="e.g. 7000000-7000199 or 0-9,20")
    parser.add_argument("--periods", type=int, default=None, help="episode length (default: the horizon)")
    parser.add_argument("--execute", action="store_true", help="also simulate each plan")
    parser.add_argument("--json", action="store_true", help="print the rows and summary as JSON")
    args = parser.parse_args(argv)
    network = compile_network(load_scenario(args.scenario))
    simulator = Simulator(network, check_invariants=False, periods=args.periods)
    seeds = parse_seeds(args.seeds)
    rows = []
    began = time.perf_counter()
    for seed in seeds:
        row = sweep_seed(simulator, seed, args.execute)
        rows.append(row)
        if not args.json:
            extra = f"  failed: {'; '.join(row['failed'])}  solved by: {', '.join(row['fallbacks'])}"
            print(
                f"{seed:>9}  {row['status']:<5}  {row['seconds']:6.2f} s  {row['solves']:>3} solves"
                f"  {row['attempts']:>3} attempts  {row['trials_infeasible']} trials infeasible"
                + (extra if row["failed"] else "")
                + (f"  {row['error']}" if row["status"] == "error" else ""),
                flush=True,
            )
    wall = time.perf_counter() - began
    seconds = np.array([r["seconds"] for r in rows])
    ok = [r for r in rows if r["status"] == "ok"]
    summary = {
        "scenario": args.scenario,
        "periods": simulator.periods,
        "seeds": len(rows),
        "solved": len(ok),
        "errors": [r["seed"] for r in rows if r["status"] == "error"],
        "seeds_with_failed_attempts": sum(bool(r["failed"]) for r in rows),
        "solves": sum(r["solves"] for r in rows),
        "attempts": sum(r["attempts"] for r in rows),
        "failed_attempts": dict(Counter(f for r in rows for f in r["failed"])),
        "fallbacks": dict(Counter(f for r in rows for f in r["fallbacks"])),
        "seconds_mean": float(seconds.mean()),
        "seconds_median": float(np.median(seconds)),
        "seconds_max": float(seconds.max()),
        "wall_seconds": wall,
        "load_average_1min": os.getloadavg()[0],
        "mean_bound": float(np.mean([r["bound"] for r in ok])) if ok else None,
    }
    if args.execute and ok:
        summary["mean_reward"] = float(np.mean([r["reward"] for r in ok]))
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=1))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
