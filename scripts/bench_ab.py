"""Simulator speed of this tree against another commit, as ratios measured in one run.

A machine shared with others runs at different speeds from one minute to the next and from
one day to the next, so a rate measured today says little against one measured yesterday.
This script measures ``scripts/bench_sim.py``'s rows for this tree and for a base
commit *alternately*: each tree's simulator runs warm in a process of its own, on its own
tree's code, and the two take turns in short rounds ordered A B, B A, A B, … ; per row the
script reports the median over the rounds of this ÷ base (periods per CPU second), with the
lowest and highest round and how many rounds this tree was faster in. The rounds are shared
over a few fresh pairs of processes, as one process's speed also depends on where its memory
happens to lie.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_ab.py HEAD~3                       # the 2,000-SKU row
    .venv/bin/python scripts/bench_ab.py ee60390 --row retail --row generated_200x3x3
    .venv/bin/python scripts/bench_ab.py HEAD --rounds 8 --seconds 3 --json

The base commit is checked out in a temporary git worktree (removed at the end); its
kernels compile once there, before the rounds start. This tree is measured as it
is on disk, uncommitted changes included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROW = "generated_2000x3x3"

#: A worker inside one tree: that tree's ``bench_sim`` (which puts the tree's own ``src`` first on
#: the path) builds one row's simulator, then measures its rate on this process's CPU time for
#: each line ``SECONDS`` read, answering one JSON line each.
_WORKER = """
import json, sys, time
sys.path.insert(0, sys.argv[1] + "/scripts")
import bench_sim
bench_sim.clock = time.process_time
cases = {case[0]: case for case in bench_sim.CASES}
key = sys.argv[2]
if key not in cases:
    print(json.dumps({"error": f"row {key!r} is not in this tree's bench_sim (rows: {', '.join(cases)})"}), flush=True)
    sys.exit(0)
_, build, policy, params = cases[key]
episode = bench_sim.SimulatorEpisode(build(), policy, params)
bench_sim.timed(episode, 1.0)  # warm: the first episodes (and a cold cache's compile)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    rate, _ = bench_sim.timed(episode, float(line))
    print(json.dumps({"rate": rate}), flush=True)
"""


class Worker:
    """One tree's simulator for one row, in its own process, measured on demand."""

    def __init__(self, tree: Path, row: str) -> None:
        self.tree, self.row = tree, row
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(tree), row],
            cwd=tree,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._answer()  # ready (or the error)

    def _answer(self) -> dict:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                answer = json.loads(line)
                if "error" in answer:
                    raise RuntimeError(answer["error"])
                return answer
        tail = (self.process.stderr.read().strip().splitlines() or ["no output"])[-1]  # type: ignore[union-attr]
        raise RuntimeError(f"measuring {self.row} on {self.tree} failed: {tail}")

    def rate(self, seconds: float) -> float:
        """Simulated periods per CPU second over about ``seconds`` (a warm simulator, whole episodes)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        return float(self._answer()["rate"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def compare(base: Path, rows: list[str], rounds: int, seconds: float, pairs: int, progress=print) -> list[dict]:
    """Per row: both trees' rates in each round (alternating which goes first) and the ratios.

    Each tree's simulator stays warm in a process of its own, so a round is two measurements a
    few seconds apart: drifts of the machine's speed cancel in the ratio. One process's speed
    also depends on where its memory happens to lie, so the rounds are shared out over ``pairs``
    fresh pairs of processes."""
    results = []
    for row in rows:
        this_rates: list[float] = []
        base_rates: list[float] = []
        for pair in range(pairs):
            share = rounds // pairs + (1 if pair < rounds % pairs else 0)
            if not share:
                continue
            progress(f"{row}: starting both trees' simulators, pair {pair + 1} of {pairs}…")
            workers = {"this": Worker(ROOT, row)}
            try:
                workers["base"] = Worker(base, row)
                for _ in range(share):
                    names = ["this", "base"] if len(this_rates) % 2 == 0 else ["base", "this"]
                    rates = {name: workers[name].rate(seconds) for name in names}
                    this_rates.append(rates["this"])
                    base_rates.append(rates["base"])
                    progress(
                        f"{row}: round {len(this_rates)}/{rounds}: this {rates['this']:,.0f}, "
                        f"base {rates['base']:,.0f} periods/s ({rates['this'] / rates['base']:.3f})"
                    )
            finally:
                for worker in workers.values():
                    worker.close()
        ratios = [t / b for t, b in zip(this_rates, base_rates, strict=True)]
        results.append(
            {
                "row": row,
                "this_periods_per_s": this_rates,
                "base_periods_per_s": base_rates,
                "ratios": ratios,
                "median_ratio": statistics.median(ratios),
                "lowest_ratio": min(ratios),
                "highest_ratio": max(ratios),
                "rounds_faster": sum(ratio > 1.0 for ratio in ratios),
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare with (any git revision)")
    parser.add_argument("--row", action="append", help=f"a bench_sim row (repeatable; default {DEFAULT_ROW})")
    parser.add_argument("--rounds", type=int, default=16, help="alternating rounds (default 16)")
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement (default 1)")
    parser.add_argument(
        "--pairs", type=int, default=4, help="fresh pairs of processes the rounds are shared over (default 4)"
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.pairs < 1 or args.seconds <= 0:
        parser.error("--rounds and --pairs must be at least 1 and --seconds positive")
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        print(f"error: base: {args.base!r} is not a commit of this repository", file=sys.stderr)
        return 2
    commit = found.stdout.strip()
    rows = args.row or [DEFAULT_ROW]
    say = (lambda message: print(message, file=sys.stderr, flush=True)) if args.json else print
    with tempfile.TemporaryDirectory(prefix="invalloc-bench-ab-") as scratch:
        base = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(base), commit], cwd=ROOT, check=True)
        try:
            results = compare(base, rows, args.rounds, args.seconds, args.pairs, say)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    if args.json:
        summary = {"base": commit, "seconds": args.seconds, "rounds": args.rounds, "pairs": args.pairs, "rows": results}
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"this tree ÷ {commit[:10]}, periods per CPU second, "
        f"{args.rounds} alternating rounds in {args.pairs} process pairs:"
    )
    for result in results:
        print(
            f"  {result['row']}: median {result['median_ratio']:.3f} "
            f"(rounds {result['lowest_ratio']:.3f}–{result['highest_ratio']:.3f}; "
            f"faster in {result['rounds_faster']} of {args.rounds})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
