"""Paired comparison of policies on common random numbers.

Every policy runs episode ``i`` with seed ``seed + i``. The simulator draws an episode's
demand from its seed alone, so all policies meet identical demand on episode ``i`` (common
random numbers; checked here on every episode by a digest of the demand arrays) and the
difference of two policies' KPIs on episode ``i`` is free of demand noise. Over the
episodes we report, per policy and KPI, the mean and its 95% Student-t confidence
interval, and against the *reference* policy the paired differences: mean, 95% CI and a
paired t-test (:func:`scipy.stats.ttest_rel`; p-values are not adjusted for the many KPIs
and policies, so read them per question). When the hindsight oracle is compared too, each
policy's *gap closed* is

    (mean reward of the policy − mean reward of the reference)
    / (mean oracle bound − mean reward of the reference),

the share of the distance from the reference to the hindsight bound (the LP value no
causal policy can exceed on that demand) that the policy covers: 0 is no better than the
reference, 1 would match the bound. Its 95% CI is a paired percentile bootstrap over
episodes (:data:`BOOTSTRAP_RESAMPLES`, fixed seed, so deterministic).

Episodes run in this process, or — when the first episode shows the rest would take more
than :data:`PARALLEL_ABOVE_SECONDS` — on a pool of ``spawn`` worker processes that each
build the simulator and the policies from the resolved specs. An episode's result depends
only on its seed, so the numbers are identical whatever the number of processes. Scripts
that call :func:`run_comparison` need the usual ``if __name__ == "__main__":`` guard. With
``executor="ray"`` every episode runs on Ray actors instead (:class:`invalloc.cluster.WorkerPool`,
one simulator per actor), with the same results.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING

import numpy as np

from invalloc.evaluation.results import (  # noqa: F401 - re-exported: the comparison's results and statistics
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    KPI_DIRECTION,
    KPI_LABELS,
    Comparison,
    ComparisonError,
    EpisodeResult,
    default_reference,
    gap_table,
    kpi_direction,
    kpi_label,
    kpi_short_label,
    kpi_table,
    paired_table,
)
from invalloc.evaluation.specs import PolicySpec, build_policy, parse_spec, resolve_specs
from invalloc.sim.policy import Policy, PolicyError

if TYPE_CHECKING:
    from pathlib import Path

    from invalloc.sim.network import Network
    from invalloc.sim.simulator import PeriodReport

PARALLEL_ABOVE_SECONDS = 10.0  # estimated in-process time of the remaining episodes above which workers run
TRACE_EPISODE = 0  # the episode whose period-by-period profit and cash are kept for the plots


def _kpis(reports: Sequence[PeriodReport], network: Network) -> dict[str, float]:
    """The compared KPIs of one episode (see :class:`EpisodeResult`)."""
    from invalloc.sim.kpis import episode_kpis

    raw = episode_kpis(reports, network)
    unfilled = "lost_units" if "lost_units" in raw else "backordered_units"
    kpis = {key: float(raw[key]) for key in ("total_reward", "profit", "fill_rate")}
    kpis.update({f"fill_rate_by_tier/{tier}": float(rate) for tier, rate in raw["fill_rate_by_tier"].items()})
    for key in ("contract_breaches", unfilled, "average_inventory_value"):
        kpis[key] = float(raw[key])
    # By DC: on hand at each close valued at standard cost (cost layers are not kept per DC in
    # the report), over the same periods as the other KPIs (after the warm-up).
    warmup = network.scenario.episode.warmup
    kept = [r for r in reports if r.period >= warmup] or list(reports)
    by_dc = np.mean([r.on_hand @ network.standard_cost for r in kept], axis=0)  # (D,)
    kpis.update({f"inventory_value_by_dc/{dc}": float(by_dc[d]) for d, dc in enumerate(network.locations)})
    for key in ("inventory_turns", "minimum_cash", "write_downs", "rule_interventions"):
        kpis[key] = float(raw[key])
    return kpis


def _demand_digest(reports: Sequence[PeriodReport]) -> str:
    digest = hashlib.sha256()
    for report in reports:
        digest.update(np.ascontiguousarray(report.demand, dtype=np.float64).tobytes())
    return digest.hexdigest()


class _Runner:
    """A simulator and one policy per spec, in one process; runs every policy on an episode."""

    def __init__(
        self,
        scenario_source: str,
        specs: Sequence[PolicySpec],
        tracking_uri: str | None,
        check_invariants: bool,
        policies: Sequence[Policy] | None = None,
        demand_trace: str | None = None,
    ) -> None:
        from invalloc.config.loader import load_scenario
        from invalloc.sim.network import compile_network
        from invalloc.sim.simulator import Simulator

        self.network = compile_network(load_scenario(scenario_source))
        self.simulator = Simulator(self.network, check_invariants=check_invariants, demand_trace=demand_trace)
        self._check_invariants = check_invariants
        self._booked = None  # a BookedSimulator for the statements and plots of TRACE_EPISODE
        self.specs = list(specs)
        self.demand_trace = demand_trace
        self.policies = list(policies) if policies is not None else [build_policy(s, tracking_uri) for s in specs]

    def run(self, episode: int, seed: int, next_seed: int | None = None) -> list[EpisodeResult]:
        """Every policy on ``seed``, in spec order (one draw of its demand, kept for them all); the
        demand of ``next_seed``, the episode to run next if known, is drawn meanwhile."""
        from invalloc.sim.simulator import run_episode

        results = []
        simulator = self.simulator
        if episode == TRACE_EPISODE:
            from invalloc.sim.statements import BookedSimulator

            if self._booked is None:
                self._booked = BookedSimulator(
                    self.network, check_invariants=self._check_invariants, demand_trace=self.demand_trace
                )
            simulator = self._booked
            if next_seed is not None:
                self.simulator.draw_ahead(next_seed)  # the next episode runs on the plain simulator
                next_seed = None
        for i, policy in enumerate(self.policies):
            reports = run_episode(simulator, policy, seed=seed, next_seed=next_seed if i == 0 else None)
            kpis = _kpis(reports, self.network)
            bound = getattr(policy, "bound_of_last_episode", None)
            if bound is not None:
                kpis["oracle_bound"] = float(bound)
            trace = details = None
            if episode == TRACE_EPISODE:
                from invalloc.evaluation.episode_reports import episode_details

                trace = {
                    "reward": [float(r.reward) for r in reports],
                    "profit": [float(r.profit) for r in reports],
                    "cash": [float(r.cash) for r in reports],
                }
                details = episode_details(reports, simulator.books, self.network)
            results.append(EpisodeResult(episode, seed, kpis, _demand_digest(reports), trace, details))
        return results


def _runner_run(
    scenario_source: str, specs: list[PolicySpec], tracking_uri: str | None, check: bool, demand_trace: str | None
) -> Callable[[int, int], list[EpisodeResult]]:
    """The episode function of one Ray actor (its runner built once)."""
    return _Runner(scenario_source, specs, tracking_uri, check, demand_trace=demand_trace).run


_WORKER: dict[str, _Runner] = {}  # per worker process: its runner, built once by _worker_init


def _worker_init(
    scenario_source: str,
    specs: list[PolicySpec],
    tracking_uri: str | None,
    check: bool,
    demand_trace: str | None = None,
) -> None:
    # Several workers share few cores: one math thread each (a learned policy's torch MLP is small).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    _WORKER["runner"] = _Runner(scenario_source, specs, tracking_uri, check, demand_trace=demand_trace)


def _worker_run(episode: int, seed: int) -> list[EpisodeResult]:
    return _WORKER["runner"].run(episode, seed)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _run_episodes(
    runner: _Runner,
    scenario_source: str,
    specs: list[PolicySpec],
    tracking_uri: str | None,
    check_invariants: bool,
    episodes: int,
    seed: int,
    processes: int | None,
    advance: Callable[[], None],
) -> tuple[list[list[EpisodeResult]], int]:
    """Results per episode (each a list in spec order) and the number of processes used."""
    began = time.perf_counter()
    by_episode: list[list[EpisodeResult] | None] = [None] * episodes
    by_episode[0] = runner.run(0, seed, seed + 1 if episodes > 1 else None)
    advance()
    remaining = episodes - 1
    if remaining == 0:
        return by_episode, 1  # type: ignore[return-value]
    estimate = (time.perf_counter() - began) * remaining  # seconds in this process
    if processes is None:
        workers = min(_cores(), remaining) if estimate > PARALLEL_ABOVE_SECONDS else 1
    else:
        workers = min(processes, remaining)
    if workers <= 1:
        for episode in range(1, episodes):
            by_episode[episode] = runner.run(
                episode, seed + episode, seed + episode + 1 if episode + 1 < episodes else None
            )
            advance()
        return by_episode, 1  # type: ignore[return-value]
    import multiprocessing

    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(scenario_source, specs, tracking_uri, check_invariants, runner.demand_trace),
    )
    try:
        futures = {pool.submit(_worker_run, episode, seed + episode): episode for episode in range(1, episodes)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                by_episode[futures[future]] = future.result()  # re-raises a worker's error here
                advance()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return by_episode, workers  # type: ignore[return-value]


def _run_on_ray(
    scenario_source: str,
    specs: list[PolicySpec],
    tracking_uri: str,
    check_invariants: bool,
    episodes: int,
    seed: int,
    processes: int | None,
    address: str | None,
    advance: Callable[[], None],
    demand_trace: str | None = None,
) -> tuple[list[list[EpisodeResult]], int, list[str]]:
    """Every episode on Ray actors: results per episode, the number of actors and the nodes used."""
    from invalloc.cluster import WorkerPool, check_shared_tracking, ray_cluster

    with ray_cluster(address) as cluster:
        check_shared_tracking(tracking_uri, cluster.nodes)
        build = functools.partial(_runner_run, scenario_source, specs, tracking_uri, check_invariants, demand_trace)
        with WorkerPool(build, size=min(processes or episodes, episodes)) as pool:
            rows = pool.map(
                [(episode, seed + episode) for episode in range(episodes)],
                advance,
                describe=lambda call: f"episode {call[0]} (seed {call[1]}) of every policy",
            )
            return rows, pool.size, sorted(pool.nodes)


def draws_besides_demand(network: Network) -> list[str]:
    """What the scenario draws at random besides the channels' demand (from each episode's seed).

    With a demand trace these are all that can make two episodes differ: the split of a
    channel's whole units over its tiers, random lead times and partial deliveries.
    """
    found = []
    integer = bool(network.integer_units.any())
    if integer and any(np.count_nonzero(network.tier_channel == c) > 1 for c in range(len(network.channels))):
        found.append("the split of channel demand over tiers")
    samplers = network.purchase_lead_time + network.transfer_lead_time + network.sales_lead_time
    if any(not sampler.is_fixed for sampler in samplers):
        found.append("random lead times")
    if bool((network.purchase_reliability < 1.0).any()):
        found.append("partial deliveries")
    return found


def _check_trace(loaded, demand_trace: str | os.PathLike, episodes: int) -> dict[str, object]:  # noqa: ANN001
    """Read the trace as the simulator will (every problem: :class:`DemandTraceError`) and
    describe the backtest for the report: ``demand_trace`` (absolute path), its ``sha256`` and
    what still varies between episodes.

    :raises ComparisonError: more than one episode of a scenario that draws nothing else at
        random (every episode would be the same).
    """
    from pathlib import Path

    from invalloc.digests import sha256_file
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    network = compile_network(loaded)
    Simulator(network, check_invariants=False, demand_trace=demand_trace)  # DemandTraceError
    others = draws_besides_demand(network)
    if episodes > 1 and not others:
        raise ComparisonError(
            f"--episodes {episodes}: with --demand-trace every episode replays the same demand and scenario "
            f"{loaded.scenario.name} draws nothing else at random, so the episodes would be identical; "
            "use --episodes 1"
        )
    path = Path(demand_trace).resolve()
    return {"demand_trace": str(path), "demand_trace_sha256": sha256_file(path), "demand_trace_varies": others}


def run_comparison(
    scenario: str,
    specs: list[str],
    episodes: int,
    seed: int,
    reference: str | None = None,
    tracking_uri: str | None = None,
    processes: int | None = None,
    progress: bool = True,
    *,
    check_invariants: bool = True,
    log_to_mlflow: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
    demand_trace: str | None = None,
    rendered_report: Path | None = None,
) -> Comparison:
    """Run every policy on episodes ``seed … seed + episodes − 1`` and compare them pairwise.

    :param scenario: scenario YAML path or shipped name.
    :param specs: policy specs (:mod:`invalloc.evaluation.specs`), at least two with the reference.
    :param episodes: number of episodes (≥ 1; ≥ 2 for confidence intervals).
    :param seed: seed of episode 0.
    :param reference: spec the others are measured against; added to the policies if not among
        them. None: the best baseline by mean total reward (:func:`default_reference`).
    :param tracking_uri: MLflow store (None: ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``);
        learned policies load from it and the comparison is logged to it as one run.
    :param processes: worker processes; None decides from the cost of the first episode, 1
        runs everything in this process.
    :param progress: show a progress bar on standard error.
    :param check_invariants: check the books every period (an :class:`InvariantError` is a bug).
    :param log_to_mlflow: log the run (tables as artifacts, plots as figures, the HTML report).
    :param executor: ``local`` (this process or a process pool) or ``ray`` (actors on the cluster
        :func:`invalloc.cluster.resolve_address` picks from ``ray_address``; ``processes`` caps
        the actors). Results are identical.
    :param demand_trace: a CSV ``period,channel,sku,quantity`` every episode replays instead of
        the scenario's random demand (a backtest on held-out history; other draws — the split
        over tiers, lead times, supplier reliability — still follow each episode's seed:
        :func:`draws_besides_demand`). Checked before the store is touched; more than one
        episode is refused when the scenario draws nothing else (they would be identical).
    :param rendered_report: an empty folder the logged report is drawn into and left in (for
        :func:`~invalloc.evaluation.report.write_report` to copy); None: drawn in a temporary one.
    :raises PolicyError: a bad spec (one line naming it), before any episode runs.
    :raises ComparisonError: too few policies or a bad number. Also ``ScenarioError`` and
        ``TrackingError`` from loading the scenario and checking the store, ``ClusterError``
        for an unusable Ray cluster or a local store on a multi-node one.

    >>> comparison = run_comparison("tiny", ["base_stock", "base_stock:level=0"], 5, 0)  # doctest: +SKIP
    >>> comparison.paired.query("kpi == 'total_reward'")["verdict"].item()  # doctest: +SKIP
    'worse'
    """
    from pathlib import Path

    from invalloc.config.loader import load_scenario
    from invalloc.tracking import configure_tracking, resolve_tracking_uri

    began = time.perf_counter()
    if episodes < 1:
        raise ComparisonError(f"--episodes {episodes}: must be at least 1")
    if processes is not None and processes < 1:
        raise ComparisonError(f"--processes {processes}: must be at least 1")
    if executor not in ("local", "ray"):
        raise ComparisonError(f"--executor {executor}: must be local or ray")
    loaded = load_scenario(scenario)
    backtest: dict[str, object] = {}
    if demand_trace is not None:
        backtest = _check_trace(loaded, demand_trace, episodes)
    # Check the store before any work, so an unreachable server costs one line, not a run.
    uri = configure_tracking(tracking_uri) if log_to_mlflow else resolve_tracking_uri(tracking_uri)
    texts = [str(text).strip() for text in specs]
    duplicates = sorted({text for text in texts if texts.count(text) > 1})
    if duplicates:
        raise PolicyError(f"--policy {duplicates[0]}: given twice; every policy is compared once")
    reference_text = None
    if reference is not None:
        try:
            reference_text = parse_spec(reference, scenario_name=loaded.scenario.name).text
        except PolicyError as error:
            raise PolicyError(str(error).replace("--policy", "--reference", 1)) from None
        if reference_text not in texts:
            texts.append(reference_text)
    if len(texts) < 2:
        raise ComparisonError("give at least two policies to compare (--policy SPEC, repeated, or --reference SPEC)")
    resolved = resolve_specs(texts, loaded, uri)
    policy_specs = [spec for spec, _ in resolved]
    source = str(Path(loaded.source).resolve())
    trace = str(Path(demand_trace).resolve()) if demand_trace is not None else None
    runner = _Runner(source, policy_specs, uri, check_invariants, [policy for _, policy in resolved], trace)

    from rich.console import Console
    from rich.progress import Progress

    nodes: list[str] = []
    with Progress(console=Console(stderr=True), transient=True, disable=not progress) as bar:
        task = bar.add_task(f"comparing {len(policy_specs)} policies", total=episodes)
        if executor == "ray":
            by_episode, used, nodes = _run_on_ray(
                source, policy_specs, uri, check_invariants, episodes, seed, processes, ray_address,
                lambda: bar.advance(task), trace,
            )  # fmt: skip
        else:
            by_episode, used = _run_episodes(
                runner, source, policy_specs, uri, check_invariants, episodes, seed, processes,
                lambda: bar.advance(task),
            )  # fmt: skip

    for episode, row in enumerate(by_episode):
        digests = {r.demand_digest for r in row}
        if len(digests) != 1:  # would void every paired statistic: a simulator bug, not bad input
            raise RuntimeError(f"episode {episode} (seed {seed + episode}): policies saw different demand")
    results = {spec.text: [row[i] for row in by_episode] for i, spec in enumerate(policy_specs)}
    chosen = reference_text or default_reference(policy_specs, results)
    oracle = next((s.text for s in policy_specs if s.is_oracle), None)
    network = runner.network
    comparison = Comparison(
        scenario=loaded.scenario.name,
        scenario_source=str(loaded.source),
        scenario_digest=loaded.digest,
        specs=policy_specs,
        reference=chosen,
        oracle=oracle,
        episodes=episodes,
        seed=seed,
        results=results,
        kpis=kpi_table(results),
        paired=paired_table(results, chosen),
        gap=gap_table(results, chosen, oracle) if oracle is not None else None,
        tiers=list(network.tiers),
        tier_min_fill_rate={t: float(v) for t, v in zip(network.tiers, network.tier_min_fill_rate, strict=True)},
        dcs=list(network.locations),
        check_invariants=check_invariants,
        processes=used,
        seconds=time.perf_counter() - began,
        tracking_uri=uri,
        nodes=nodes,
        extra={
            "treasury_buffer": float(loaded.scenario.finance.treasury_buffer),
            "currency": str(loaded.scenario.currency),
            **backtest,
        },
    )
    if log_to_mlflow:
        from invalloc.evaluation.mlflow_run import log_comparison

        comparison.mlflow_run_id = log_comparison(comparison, uri, rendered_report)
    return comparison


__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "CONFIDENCE",
    "Comparison",
    "ComparisonError",
    "EpisodeResult",
    "KPI_DIRECTION",
    "PARALLEL_ABOVE_SECONDS",
    "PolicyError",
    "default_reference",
    "gap_table",
    "kpi_label",
    "kpi_table",
    "paired_table",
    "run_comparison",
]
