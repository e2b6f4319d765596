"""Simulator throughput: simulated periods per second, books on, invariant checks and audit off.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_sim.py              # a table
    .venv/bin/python scripts/bench_sim.py --json       # the numbers as JSON
    .venv/bin/python scripts/bench_sim.py --seconds 5  # longer measurements
    .venv/bin/python scripts/bench_sim.py --clock cpu  # this process's CPU time (a loaded machine)
    .venv/bin/python scripts/bench_sim.py --processes 5 --plot sim.png  # verdicts over 5 fresh processes
    .venv/bin/python scripts/bench_sim.py --profile generated_2000x3x3  # where a period's time goes

Rows:

- ``orgym_invmanagement_v1`` with a fixed policy ordering 20 units on every lane;
- ``retail`` with the base-stock policy (skipped, with a note, if the scenario is missing);
- generated 200- and 2,000-SKU × 3-DC × 3-channel scenarios with the base-stock policy.

Each simulator rate counts whole episodes (reset, policy and steps), twice: on one thread
(the episode's demand drawn at its reset), and with each next episode's demand drawn on the
simulator's background thread while the episode runs (*demand ahead*: what
:func:`~invalloc.sim.simulator.run_episodes`, ``compare``, ``tune`` and training's automatic
resets do). Beside them, a *yardstick*: a minimal pure-numpy step of the same network (on
hand (D, S), a ring buffer of goods in transit, a Poisson demand draw, ``min()`` sales,
holding cost; no SimPy, no books, no rules) timed in the same run. ``sim/yard`` is the
one-thread simulator's time per period divided by the yardstick's: how many times slower the
full simulator is than the bare arithmetic. The three take turns in :data:`ROUNDS` rounds
(A B C, C B A, …) and ``sim/yard`` is the median of the rounds' ratios, so that a drift in
the machine's speed weighs on all of them. A periods-per-second target is met by either rate.

The rates themselves depend on the machine of the day; ``scripts/bench_ab.py`` compares two
commits in one run. One process's rates also depend on the process and on what the machine's
neighbours do in its minutes: ``--processes N`` runs the whole measurement in N fresh processes
one after the other and gives each target's verdict on the **median over the processes** (of the
better of the two rates, and of sim/yard), with each process's figures and the lowest and highest
beside it (with ``--json``: every process's result under ``processes`` and the verdicts under
``over_processes``). ``--plot FILE`` (.png, .svg or .pdf) also draws each target's figures, a
dot per process, against their median and the target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from invalloc.baselines import make_policy  # noqa: E402
from invalloc.config.generate import generate_scenario  # noqa: E402
from invalloc.config.loader import SCENARIO_DIR, load_scenario, parse_scenario  # noqa: E402
from invalloc.sim.network import Network, compile_network  # noqa: E402
from invalloc.sim.simulator import Simulator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_processes import add_run_options, check_run_options, plot_processes, rerun_command, run_processes  # noqa: E402


def generated_network(n_skus: int, n_locations: int, n_channels: int) -> Network:
    """A generated scenario (seed 0) of the given size, validated and compiled."""
    data = generate_scenario(n_skus, n_locations, n_channels, seed=0)
    return compile_network(parse_scenario(data, "generated", Path.cwd()))


#: Targets in simulated periods per second (row key → target).
TARGETS = {"orgym_invmanagement_v1": 20_000.0, "generated_200x3x3": 2_500.0, "generated_2000x3x3": 1_000.0}
#: Targets on sim/yard, the simulator's time per period over the yardstick's (row key → at most).
YARDSTICK_TARGETS = {"generated_200x3x3": 4.0, "generated_2000x3x3": 4.0}
WARMUP_SECONDS = 0.5
#: The clock rates are measured with: wall time, or this process's CPU time (``--clock cpu``),
#: which other processes sharing the cores inflate far less.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


#: Rounds in which a row's simulator and its yardstick take turns (A B, B A, …): a shared
#: machine's speed drifts by tens of per cent within a minute, which a ratio of two rates
#: measured one after the other would carry whole.
ROUNDS = 6


class _Meter:
    """Whole episodes of ``episode(seed) -> periods run``, timed slice by slice (the seeds go
    on from one slice to the next)."""

    def __init__(self, episode: Callable[[int], int]) -> None:
        self.episode = episode
        self.seed = 0

    def warm(self, seconds: float) -> None:
        end = clock() + min(WARMUP_SECONDS, seconds)
        while clock() < end or self.seed < 2:  # at least two warm-up episodes (JIT, caches)
            self.episode(self.seed)
            self.seed += 1

    def slice(self, seconds: float) -> tuple[int, float]:
        """(periods run, time taken) over whole episodes lasting ≈ ``seconds`` (at least one)."""
        periods = 0
        start = clock()
        end = start + seconds
        while True:
            periods += self.episode(self.seed)
            self.seed += 1
            now = clock()
            if now >= end:
                return periods, now - start


def timed(
    episode: Callable[[int], int], seconds: float, on_warm: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Periods per second of ``episode(seed) -> periods run`` over ≈ ``seconds`` after a warm-up.

    Returns the rate and the measured time; ``on_warm`` is called between warm-up and
    measurement.
    """
    meter = _Meter(episode)
    meter.warm(seconds)
    if on_warm is not None:
        on_warm()
    periods, elapsed = meter.slice(seconds)
    return periods / elapsed, elapsed


def alternating(
    episodes: dict[str, Callable[[int], int]],
    seconds: float,
    rounds: int = ROUNDS,
    on_warm: Callable[[], None] | None = None,
) -> dict:
    """The rates of ``episodes`` (name → ``episode(seed) -> periods run``) over ≈ ``seconds``
    each, measured in ``rounds`` slices that take turns (in the given order, then reversed, …)
    after all warmed up (``on_warm`` called then). Returns ``rates`` (name → periods per second
    over all its slices), ``rounds`` (per round, name → its rate) and ``seconds`` (name → time
    measured)."""
    meters = {name: _Meter(episode) for name, episode in episodes.items()}
    for meter in meters.values():
        meter.warm(seconds)
    if on_warm is not None:
        on_warm()
    totals = {name: [0, 0.0] for name in meters}
    per_round = []
    for round_ in range(rounds):
        names = list(meters) if round_ % 2 == 0 else list(meters)[::-1]
        rate = {}
        for name in names:
            periods, elapsed = meters[name].slice(seconds / rounds)
            totals[name][0] += periods
            totals[name][1] += elapsed
            rate[name] = periods / elapsed
        per_round.append(rate)
    return {
        "rates": {name: periods / elapsed for name, (periods, elapsed) in totals.items()},
        "rounds": per_round,
        "seconds": {name: elapsed for name, (_, elapsed) in totals.items()},
    }


class SimulatorEpisode:
    """One episode of the full simulator (books on, invariants and audit off) under a baseline.

    With ``ahead``, the next seed's demand is drawn on the simulator's background thread while
    the episode runs, as :func:`~invalloc.sim.simulator.run_episodes` does (the meters' seeds
    follow one another). Also accumulates the time spent in the policy's ``act`` and in
    ``reset`` (seconds).
    """

    def __init__(self, network: Network, policy_name: str, params: dict[str, str] | None, ahead: bool = False) -> None:
        self.network = network
        self.sim = Simulator(network, check_invariants=False, audit=False)
        self.policy = make_policy(policy_name, params)
        self.ahead = ahead
        self.policy_seconds = 0.0
        self.reset_seconds = 0.0

    def __call__(self, seed: int) -> int:
        sim, policy = self.sim, self.policy
        started = clock()
        sim.reset(seed=seed)
        if self.ahead:
            sim.draw_ahead(seed + 1)
        policy.reset(self.network, seed=seed)
        self.reset_seconds += clock() - started
        periods = 0
        while not sim.done:
            started = clock()
            requests = policy.act(sim)
            self.policy_seconds += clock() - started
            sim.step(requests)
            periods += 1
        return periods


class Yardstick:
    """A bare numpy inventory step on the network's shapes: the arithmetic floor of one period.

    Demand per channel × SKU is drawn for the whole episode at reset (as the simulator does)
    and served from the first DC serving each channel; every DC orders up to a base-stock
    level through a ring buffer with its first inbound lane's lead time.
    """

    def __init__(self, network: Network) -> None:
        n = network
        self.horizon = n.scenario.episode.horizon
        d, s, c = len(n.locations), n.n_skus, len(n.channels)
        self.opening = n.opening_stock.astype(float)
        self.holding = n.holding_cost.astype(float)
        self.ring_size = n.max_lead_time + 1
        # Lead time per DC: its first purchase or transfer lane.
        lead = np.ones(d, dtype=np.int64)
        seen = np.zeros(d, dtype=bool)
        for dest, sampler in [
            *zip(n.purchase_location, n.purchase_lead_time, strict=True),
            *zip(n.transfer_destination, n.transfer_lead_time, strict=True),
        ]:
            if not seen[dest]:
                lead[dest], seen[dest] = max(int(round(sampler.mean)), 1), True
        self.lead = np.minimum(lead, self.ring_size - 1) if self.ring_size > 1 else np.zeros(d, dtype=np.int64)
        self.rows = np.arange(d)
        # Channel → serving DC (first sales lane of the channel), as a (D, C) routing matrix.
        self.route = np.zeros((d, c))
        for a in range(len(n.sales_location))[::-1]:
            self.route[:, n.sales_channel[a]] = 0.0
            self.route[n.sales_location[a], n.sales_channel[a]] = 1.0
        from invalloc.sim.demand import expected_demand

        self.mean = expected_demand(n, self.horizon)  # (H, C, S)
        self.price = n.price.max(axis=0)  # (S,)
        self.level = np.einsum("dc,cs->ds", self.route, self.mean.mean(axis=0)) * (self.lead[:, None] + 2.0)
        self.shape = (d, s)

    def episode(self, seed: int) -> int:
        rng = np.random.default_rng(seed)
        demand = rng.poisson(self.mean).astype(float)  # (H, C, S)
        on_hand = self.opening.copy()
        ring = np.zeros((self.ring_size, *self.shape))
        in_transit = np.zeros(self.shape)
        route, holding, price, level, lead, rows = (
            self.route,
            self.holding,
            self.price,
            self.level,
            self.lead,
            self.rows,
        )
        size = self.ring_size
        reward = 0.0
        for t in range(self.horizon):
            slot = t % size
            arrivals = ring[slot]
            on_hand += arrivals
            in_transit -= arrivals
            arrivals[:] = 0.0
            order = np.maximum(level - on_hand - in_transit, 0.0)
            ring[(t + lead) % size, rows] += order
            in_transit += order
            wanted = route @ demand[t]
            sales = np.minimum(on_hand, wanted)
            on_hand -= sales
            reward += float(sales.sum(axis=0) @ price) - float((holding * on_hand).sum())
        self.reward = reward
        return self.horizon


#: The rows: (key, the network, policy name, policy params).
CASES: list[tuple[str, Callable[[], Network], str, dict[str, str] | None]] = [
    (
        "orgym_invmanagement_v1",
        lambda: compile_network(load_scenario("orgym_invmanagement_v1")),
        "fixed",
        {"quantities": "20"},
    ),
    ("retail", lambda: compile_network(load_scenario("retail")), "base_stock", None),
    ("generated_200x3x3", lambda: generated_network(200, 3, 3), "base_stock", None),
    ("generated_2000x3x3", lambda: generated_network(2000, 3, 3), "base_stock", None),
]


def profile(key: str, seconds: float, top: int = 15) -> None:
    """Where one row's time goes: its episodes run under cProfile for ≈ ``seconds`` after a
    warm-up; prints the ``top`` functions by own time, in µs per simulated period."""
    import cProfile
    import pstats

    _, build, policy, params = next(case for case in CASES if case[0] == key)
    episode = SimulatorEpisode(build(), policy, params)
    profiler = cProfile.Profile()
    timed(episode, seconds, profiler.enable)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # (file, line, name) → (calls, calls, own s, cumulative s, callers)
    periods = sum(
        calls for (file, _, name), (calls, *_rest) in stats.items() if name == "step" and file.endswith("simulator.py")
    )
    rows = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    print(f"{key}: {periods:,} periods profiled; µs per period, own time (cumulative), calls per period")
    for (file, line, name), (calls, _, own, cumulative, _) in rows:
        where = f"{Path(file).name}:{line}({name})" if line else name
        print(f"{own / periods * 1e6:9.1f} ({cumulative / periods * 1e6:8.1f})  {calls / periods:6.2f}  {where}")


def rows(seconds: float) -> list[dict]:
    results = []
    for key, build, policy, params in CASES:
        row: dict = {
            "scenario": key,
            "policy": policy + (f" ({params['quantities']} units)" if params else ""),
        }
        if key == "retail" and not (SCENARIO_DIR / "retail.yaml").is_file():
            row["note"] = f"skipped: {SCENARIO_DIR / 'retail.yaml'} is missing"
            results.append(row)
            continue
        network = build()
        row["shape"] = {
            "skus": network.n_skus,
            "dcs": len(network.locations),
            "channels": len(network.channels),
            "decisions": network.n_decisions,
            "horizon": network.scenario.episode.horizon,
        }
        episode = SimulatorEpisode(network, policy, params)

        def restart_clocks(episode: SimulatorEpisode = episode) -> None:
            episode.policy_seconds = episode.reset_seconds = 0.0

        # The simulator (one thread, and with demand drawn ahead) and the yardstick take turns,
        # so the machine's drifts weigh on all of them.
        measured = alternating(
            {
                "simulator": episode,
                "ahead": SimulatorEpisode(network, policy, params, ahead=True),
                "yardstick": Yardstick(network).episode,
            },
            seconds,
            on_warm=restart_clocks,
        )
        rates = measured["rates"]
        row["simulator_periods_per_s"] = rates["simulator"]
        row["ahead_periods_per_s"] = rates["ahead"]
        # Shares of the (one-thread) simulator's time spent in the policy's act() and in reset().
        row["policy_share"] = episode.policy_seconds / measured["seconds"]["simulator"]
        row["reset_share"] = episode.reset_seconds / measured["seconds"]["simulator"]
        row["yardstick_periods_per_s"] = rates["yardstick"]
        ratios = [rate["yardstick"] / rate["simulator"] for rate in measured["rounds"]]
        row["sim_over_yardstick_rounds"] = ratios
        row["sim_over_yardstick"] = statistics.median(ratios)
        row["ahead_over_simulator"] = statistics.median(
            rate["ahead"] / rate["simulator"] for rate in measured["rounds"]
        )
        if key in TARGETS:
            row["target_periods_per_s"] = TARGETS[key]
            row["target_met"] = max(rates["simulator"], rates["ahead"]) >= TARGETS[key]
        if key in YARDSTICK_TARGETS:
            row["target_sim_over_yardstick"] = YARDSTICK_TARGETS[key]
            row["yardstick_target_met"] = row["sim_over_yardstick"] <= YARDSTICK_TARGETS[key]
        results.append(row)
    return results


def over_processes(results: list[dict]) -> list[dict]:
    """Per row, the verdicts over several processes' results (``--json`` outputs): the median,
    lowest and highest of each process's better rate (one thread or demand ahead, as a rate
    target reads) and of its sim/yard; in how many processes each target was met, and whether
    the medians meet it."""
    verdicts = []
    for i, first in enumerate(results[0]["rows"]):
        if "note" in first:  # a skipped row
            continue
        runs = [result["rows"][i] for result in results]
        rates = [max(run["simulator_periods_per_s"], run["ahead_periods_per_s"]) for run in runs]
        ratios = [run["sim_over_yardstick"] for run in runs]
        verdict = {
            "scenario": first["scenario"],
            "shape": first["shape"],
            "periods_per_s": rates,
            "median_periods_per_s": statistics.median(rates),
            "low_periods_per_s": min(rates),
            "high_periods_per_s": max(rates),
            "yardstick_periods_per_s": [run["yardstick_periods_per_s"] for run in runs],
            # The machine's own speed in those minutes: a slow machine slows both alike.
            "median_yardstick_periods_per_s": statistics.median(run["yardstick_periods_per_s"] for run in runs),
            "sim_over_yardstick": ratios,
            "median_sim_over_yardstick": statistics.median(ratios),
        }
        if "target_periods_per_s" in first:
            target = first["target_periods_per_s"]
            verdict["target_periods_per_s"] = target
            verdict["met_in"] = sum(rate >= target for rate in rates)
            verdict["target_met"] = verdict["median_periods_per_s"] >= target
        if "target_sim_over_yardstick" in first:
            target = first["target_sim_over_yardstick"]
            verdict["target_sim_over_yardstick"] = target
            verdict["yardstick_met_in"] = sum(ratio <= target for ratio in ratios)
            verdict["yardstick_target_met"] = verdict["median_sim_over_yardstick"] <= target
        verdicts.append(verdict)
    return verdicts


def print_over_processes(verdicts: list[dict], processes: int) -> None:
    """The table of :func:`over_processes`' verdicts."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Simulated periods per second over {processes} fresh processes: each process's better rate "
        "(one thread or demand ahead), and their median"
    )
    for column in (
        "scenario",
        "S×D×C",
        "each process",
        "median (target)",
        "lowest–highest",
        "yardstick, median",
        "sim/yard, median (target)",
    ):
        table.add_column(column, justify="left" if column in ("scenario", "S×D×C") else "right")
    for row in verdicts:
        shape = row["shape"]
        median = f"{row['median_periods_per_s']:,.0f}"
        if "target_periods_per_s" in row:
            met = "met" if row["target_met"] else "NOT met"
            median += f" (≥ {row['target_periods_per_s']:,.0f}: {met}, in {row['met_in']} of {processes})"
        ratio = f"{', '.join(f'{r:.1f}' for r in row['sim_over_yardstick'])} → {row['median_sim_over_yardstick']:.1f}×"
        if "target_sim_over_yardstick" in row:
            met = "met" if row["yardstick_target_met"] else "NOT met"
            ratio += f" (≤ {row['target_sim_over_yardstick']:g}×: {met})"
        table.add_row(
            row["scenario"],
            f"{shape['skus']}×{shape['dcs']}×{shape['channels']}",
            ", ".join(f"{rate:,.0f}" for rate in row["periods_per_s"]),
            median,
            f"{row['low_periods_per_s']:,.0f}–{row['high_periods_per_s']:,.0f}",
            f"{row['median_yardstick_periods_per_s']:,.0f}",
            ratio,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)


def print_table(results: list[dict], seconds: float, clock_name: str = "wall") -> None:
    headers = [
        "scenario",
        "S×D×C",
        "policy",
        "sim periods/s",
        "demand ahead",
        "policy / reset",
        "yardstick periods/s",
        "sim/yard",
        "target",
    ]
    table: list[list[str]] = []
    notes = []
    for row in results:
        if "note" in row:
            notes.append(f"{row['scenario']}: {row['note']}")
            table.append([row["scenario"], "-", row["policy"], "skipped", "-", "-", "-", "-", "-"])
            continue
        shape = row["shape"]
        targets = []
        if "target_periods_per_s" in row:
            targets.append(f"≥ {row['target_periods_per_s']:,.0f}: " + ("met" if row["target_met"] else "NOT met"))
        if "target_sim_over_yardstick" in row:
            met = "met" if row["yardstick_target_met"] else "NOT met"
            targets.append(f"≤ {row['target_sim_over_yardstick']:g}×: {met}")
        target = "; ".join(targets) or "-"
        table.append(
            [
                row["scenario"],
                f"{shape['skus']}×{shape['dcs']}×{shape['channels']}",
                row["policy"],
                f"{row['simulator_periods_per_s']:,.0f}",
                f"{row['ahead_periods_per_s']:,.0f} ({row['ahead_over_simulator']:.2f}×)",
                f"{row['policy_share']:.0%} / {row['reset_share']:.0%}",
                f"{row['yardstick_periods_per_s']:,.0f}",
                f"{row['sim_over_yardstick']:.1f}×",
                target,
            ]
        )
    title = (
        "Simulated periods per second (books on, invariant checks off, audit off; "
        f"≈{seconds:g} s {clock_name} time each)"
    )
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain aligned text
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
        print(title)
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for r in table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    else:
        grid = Table(title=title)
        for i, header in enumerate(headers):
            grid.add_column(header, justify="right" if 3 <= i <= 7 else "left", no_wrap=True)
        for r in table:
            grid.add_row(*r)
        console = Console()
        if not console.is_terminal:
            console = Console(width=160)
        console.print(grid)
    print(
        "sim periods/s: one thread. demand ahead: each next episode's demand drawn on a second thread "
        "while the episode runs, as run_episodes, compare, tune and training's automatic resets do "
        "(in brackets: ÷ one thread, the median of the rounds; on --clock cpu both threads count)."
    )
    print("policy / reset: share of the one-thread simulator's time spent in the policy's act() and in reset().")
    print(
        "sim/yard: the simulator's time per period ÷ a bare numpy step of the same shapes "
        f"(the median of {ROUNDS} rounds in which the two take turns)."
    )
    for note in notes:
        print(note)


def plot_over_processes(path: str, verdicts: list[dict], processes: int) -> None:
    """:func:`over_processes`' verdicts as a figure: a panel per target, each process a dot."""
    panels = []
    for row in verdicts:
        shape = row["shape"]
        name = f"{row['scenario']} ({shape['skus']}×{shape['dcs']}×{shape['channels']})"
        if "target_periods_per_s" in row:
            panels.append(
                {
                    "label": f"{name}: periods/s",
                    "values": row["periods_per_s"],
                    "median": row["median_periods_per_s"],
                    "target": row["target_periods_per_s"],
                    "unit": "periods/s (better of 1 thread, ahead)",
                }
            )
        if "target_sim_over_yardstick" in row:
            panels.append(
                {
                    "label": f"{name}: sim/yard",
                    "values": row["sim_over_yardstick"],
                    "median": row["median_sim_over_yardstick"],
                    "target": row["target_sim_over_yardstick"],
                    "at_least": False,
                    "unit": "× the bare numpy step's time",
                }
            )
    plot_processes(path, f"bench_sim.py over {processes} fresh processes", panels)


def _describe(result: dict) -> str:
    """One process's rates, one row after another (the better of one thread and demand ahead)."""
    return "; ".join(
        f"{row['scenario']} {max(row['simulator_periods_per_s'], row['ahead_periods_per_s']):,.0f}/s"
        for row in result["rows"]
        if "note" not in row
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.5, help="measuring time per rate (default 2.5)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="wall time (default) or this process's CPU time"
    )
    parser.add_argument(
        "--profile",
        choices=[case[0] for case in CASES],
        help="instead of the table: where one row's time goes (cProfile, µs per period by function)",
    )
    add_run_options(parser, "each target's figures per process")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    check_run_options(parser, args)
    global clock
    clock = CLOCKS[args.clock]
    if args.profile:
        profile(args.profile, args.seconds)
        return 0
    if args.processes > 1:
        results = run_processes(
            rerun_command(__file__, sys.argv[1:] if argv is None else argv), args.processes, _describe
        )
        verdicts = over_processes(results)
        if args.plot is not None:
            plot_over_processes(args.plot, verdicts, args.processes)
        if args.json:
            print(json.dumps({"processes": results, "over_processes": verdicts}, indent=2))
        else:
            print_over_processes(verdicts, args.processes)
        return 0
    results = rows(args.seconds)
    if args.json:
        print(json.dumps({"seconds": args.seconds, "clock": args.clock, "rows": results}, indent=2))
    else:
        print_table(results, args.seconds, args.clock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
