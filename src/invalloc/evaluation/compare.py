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
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from invalloc.evaluation.specs import PolicySpec, build_policy, parse_spec, resolve_specs
from invalloc.sim.policy import Policy, PolicyError

if TYPE_CHECKING:
    from invalloc.sim.network import Network
    from invalloc.sim.simulator import PeriodReport

CONFIDENCE = 0.95  # level of every confidence interval and the test's two-sided alpha = 1 − level
PARALLEL_ABOVE_SECONDS = 10.0  # estimated in-process time of the remaining episodes above which workers run
BOOTSTRAP_RESAMPLES = 2000  # resamples of the gap-closed bootstrap
BOOTSTRAP_SEED = 0  # seed of the bootstrap's resampling (results must not change between runs)
TRACE_EPISODE = 0  # the episode whose period-by-period profit and cash are kept for the plots

#: KPIs where a higher value is better (+1) or worse (−1); inventory levels are neither (0).
#: Keys of per-tier and per-DC KPIs are matched by their prefix before the ``/``.
KPI_DIRECTION: dict[str, int] = {
    "total_reward": 1,
    "profit": 1,
    "fill_rate": 1,
    "fill_rate_by_tier": 1,
    "contract_breaches": -1,
    "lost_units": -1,
    "backordered_units": -1,
    "average_inventory_value": 0,
    "inventory_value_by_dc": 0,
    "inventory_turns": 1,
    "minimum_cash": 1,
    "write_downs": -1,
    "rule_interventions": -1,
    "oracle_bound": 1,
}

#: Plain-language label and unit of each KPI (per-tier / per-DC keys use their prefix).
KPI_LABELS: dict[str, str] = {
    "total_reward": "total reward (discounted, currency)",
    "profit": "profit (accrual, currency)",
    "fill_rate": "fill rate (share of demand served on time)",
    "fill_rate_by_tier": "fill rate",
    "contract_breaches": "contract fill-rate breaches (tier × period)",
    "lost_units": "lost sales (units)",
    "backordered_units": "backordered units (units)",
    "average_inventory_value": "average inventory value (currency, at cost)",
    "inventory_value_by_dc": "average inventory value at standard cost (currency)",
    "inventory_turns": "inventory turns (per year)",
    "minimum_cash": "minimum cash (currency)",
    "write_downs": "write-downs (currency)",
    "rule_interventions": "rule interventions (decisions cut)",
    "oracle_bound": "hindsight bound on total reward (currency)",
}


class ComparisonError(ValueError):
    """A comparison that cannot run as asked (too few policies, a bad option); one line."""


def kpi_label(key: str, currency: str = "currency") -> str:
    """``fill_rate_by_tier/stores/key`` → ``fill rate — stores/key``; money in ``currency`` (e.g. USD)."""
    prefix, _, detail = key.partition("/")
    label = KPI_LABELS.get(prefix, key).replace("currency", currency)
    return f"{label} — {detail}" if detail else label


def kpi_short_label(key: str) -> str:
    """The label without its unit, for narrow terminals: ``fill rate — stores/key``."""
    prefix, _, detail = key.partition("/")
    label = KPI_LABELS.get(prefix, key).split(" (")[0]
    return f"{label} — {detail}" if detail else label


def kpi_direction(key: str) -> int:
    return KPI_DIRECTION.get(key.partition("/")[0], 0)


# --------------------------------------------------------------------------- one episode
@dataclass
class EpisodeResult:
    """One policy on one episode.

    :param kpis: flat KPIs (money in the scenario currency, quantities in units), keys as in
        :data:`KPI_DIRECTION`; per-tier fill rates as ``fill_rate_by_tier/<channel>/<tier>``,
        per-DC inventory as ``inventory_value_by_dc/<dc>``; the oracle adds ``oracle_bound``.
    :param demand_digest: sha256 of the episode's demand, (periods, T, S) float64 — equal for
        every policy on the same episode (common random numbers).
    :param trace: per period (every period, warm-up included): ``reward`` (discounted),
        ``profit`` (accrual), ``cash`` at the close — kept for :data:`TRACE_EPISODE` only.
    """

    episode: int
    seed: int
    kpis: dict[str, float]
    demand_digest: str
    trace: dict[str, list[float]] | None = None


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
    ) -> None:
        from invalloc.config.loader import load_scenario
        from invalloc.sim.network import compile_network
        from invalloc.sim.simulator import Simulator

        self.network = compile_network(load_scenario(scenario_source))
        self.simulator = Simulator(self.network, check_invariants=check_invariants)
        self.specs = list(specs)
        self.policies = list(policies) if policies is not None else [build_policy(s, tracking_uri) for s in specs]

    def run(self, episode: int, seed: int) -> list[EpisodeResult]:
        """Every policy on ``seed``, in spec order."""
        from invalloc.sim.simulator import run_episode

        results = []
        for policy in self.policies:
            reports = run_episode(self.simulator, policy, seed=seed)
            kpis = _kpis(reports, self.network)
            bound = getattr(policy, "bound_of_last_episode", None)
            if bound is not None:
                kpis["oracle_bound"] = float(bound)
            trace = None
            if episode == TRACE_EPISODE:
                trace = {
                    "reward": [float(r.reward) for r in reports],
                    "profit": [float(r.profit) for r in reports],
                    "cash": [float(r.cash) for r in reports],
                }
            results.append(EpisodeResult(episode, seed, kpis, _demand_digest(reports), trace))
        return results


def _runner_run(
    scenario_source: str, specs: list[PolicySpec], tracking_uri: str | None, check: bool
) -> Callable[[int, int], list[EpisodeResult]]:
    """The episode function of one Ray actor (its runner built once)."""
    return _Runner(scenario_source, specs, tracking_uri, check).run


_WORKER: dict[str, _Runner] = {}  # per worker process: its runner, built once by _worker_init


def _worker_init(scenario_source: str, specs: list[PolicySpec], tracking_uri: str | None, check: bool) -> None:
    # Several workers share few cores: one math thread each (a learned policy's torch MLP is small).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    _WORKER["runner"] = _Runner(scenario_source, specs, tracking_uri, check)


def _worker_run(episode: int, seed: int) -> list[EpisodeResult]:
    return _WORKER["runner"].run(episode, seed)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- the comparison
@dataclass
class Comparison:
    """The result of :func:`run_comparison`.

    :param scenario: the scenario's name; ``scenario_source`` its YAML, ``scenario_digest`` its sha256.
    :param specs: the compared policies in order (the reference included); ``labels`` their spec texts.
    :param reference: label of the reference policy; ``oracle``: label of the oracle or None.
    :param seed: seed of episode 0; episode ``i`` used ``seed + i`` for every policy.
    :param results: label → one :class:`EpisodeResult` per episode, in episode order.
    :param kpis: per policy and KPI: ``mean``, ``ci_low``, ``ci_high``, ``std``, ``n``.
    :param paired: per non-reference policy and KPI: ``mean_difference`` (policy − reference),
        its ``ci_low``/``ci_high``, ``t_statistic``, ``p_value`` and a ``verdict``.
    :param gap: with the oracle: per policy ``mean_reward``, ``reference_reward``,
        ``oracle_bound``, ``gap_closed`` (share) and its ``ci_low``/``ci_high``; else None.
    :param tiers: ``channel/tier`` names; ``tier_min_fill_rate`` their contractual minimum.
    :param dcs: DC names. ``processes``: worker processes used (1 = in this process).
    :param nodes: ids of the Ray nodes that ran episodes (empty when run locally).
    :param mlflow_run_id: the comparison's MLflow run (None if not logged), in ``tracking_uri``.
    """

    scenario: str
    scenario_source: str
    scenario_digest: str
    specs: list[PolicySpec]
    reference: str
    oracle: str | None
    episodes: int
    seed: int
    results: dict[str, list[EpisodeResult]]
    kpis: pd.DataFrame
    paired: pd.DataFrame
    gap: pd.DataFrame | None
    tiers: list[str]
    tier_min_fill_rate: dict[str, float]
    dcs: list[str]
    check_invariants: bool
    processes: int
    seconds: float
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [spec.text for spec in self.specs]

    def episode_table(self) -> pd.DataFrame:
        """One row per policy and episode: ``policy``, ``episode``, ``seed`` and every KPI."""
        rows = [
            {"policy": label, "episode": r.episode, "seed": r.seed, **r.kpis}
            for label, results in self.results.items()
            for r in results
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready tables and settings (NaN → None)."""

        def records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
            if frame is None:
                return None
            return [
                {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
                for row in frame.to_dict(orient="records")
            ]

        return {
            "scenario": self.scenario,
            "scenario_source": self.scenario_source,
            "scenario_digest": self.scenario_digest,
            "episodes": self.episodes,
            "seeds": [self.seed, self.seed + self.episodes - 1],
            "reference": self.reference,
            "oracle": self.oracle,
            "policies": [{"spec": s.text, "kind": s.kind, "description": s.describe()} for s in self.specs],
            "kpis": records(self.kpis),
            "paired": records(self.paired),
            "gap": records(self.gap),
            "processes": self.processes,
            "seconds": round(self.seconds, 3),
            "tracking_uri": self.tracking_uri,
            "mlflow_run_id": self.mlflow_run_id,
        }


def kpi_table(results: dict[str, list[EpisodeResult]], level: float = CONFIDENCE) -> pd.DataFrame:
    """Mean and ``level`` Student-t CI of every KPI per policy (long format, KPI order kept)."""
    from invalloc.sim.kpis import mean_confidence_interval

    rows = []
    for label, episodes in results.items():
        for key in episodes[0].kpis:
            values = np.array([r.kpis[key] for r in episodes])
            mean, low, high = mean_confidence_interval(values, level)
            if len(values) < 2:  # no interval from one episode (not a zero-width one)
                low = high = math.nan
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            n = len(values)
            rows.append({"policy": label, "kpi": key, "mean": mean, "ci_low": low, "ci_high": high, "std": std, "n": n})
    return pd.DataFrame(rows, columns=["policy", "kpi", "mean", "ci_low", "ci_high", "std", "n"])


def _verdict(key: str, low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "too few episodes"
    if low <= 0.0 <= high:
        return "no significant difference"
    direction = kpi_direction(key)
    higher = low > 0.0
    if direction == 0:
        return "higher" if higher else "lower"
    return "better" if higher == (direction > 0) else "worse"


def paired_table(results: dict[str, list[EpisodeResult]], reference: str, level: float = CONFIDENCE) -> pd.DataFrame:
    """Paired differences (policy − reference) per episode, for every KPI both policies have.

    ``t_statistic`` and ``p_value`` are the paired t-test's; with identical differences on every
    episode the test is undefined and p is 1 (all zero) or 0 (a constant non-zero difference).
    ``verdict``: ``better``/``worse`` when the CI excludes 0 (by the KPI's direction),
    ``higher``/``lower`` for KPIs that are neither, else ``no significant difference``; with one
    episode the CI, test and verdict are undefined (NaN, ``too few episodes``).
    """
    from scipy import stats

    from invalloc.sim.kpis import mean_confidence_interval

    columns = [
        "policy", "reference", "kpi", "mean_difference", "ci_low", "ci_high", "t_statistic", "p_value", "verdict", "n"
    ]  # fmt: skip
    rows = []
    base = results[reference]
    for label, episodes in results.items():
        if label == reference:
            continue
        for key in episodes[0].kpis:
            if key not in base[0].kpis:
                continue
            ours = np.array([r.kpis[key] for r in episodes])
            theirs = np.array([r.kpis[key] for r in base])
            differences = ours - theirs
            mean, low, high = mean_confidence_interval(differences, level)
            if len(differences) < 2:
                low = high = t_stat = p_value = math.nan
            elif np.ptp(differences) == 0.0:
                t_stat = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
                p_value = 1.0 if mean == 0.0 else 0.0
            else:
                test = stats.ttest_rel(ours, theirs)
                t_stat, p_value = float(test.statistic), float(test.pvalue)
            rows.append(
                {
                    "policy": label,
                    "reference": reference,
                    "kpi": key,
                    "mean_difference": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "t_statistic": t_stat,
                    "p_value": p_value,
                    "verdict": _verdict(key, low, high),
                    "n": len(differences),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def gap_table(
    results: dict[str, list[EpisodeResult]], reference: str, oracle: str, level: float = CONFIDENCE
) -> pd.DataFrame:
    """Share of the reference-to-oracle-bound gap in mean total reward that each policy closes.

    NaN where the bound does not exceed the reference (no gap to close).
    """
    bound = np.array([r.kpis["oracle_bound"] for r in results[oracle]])
    base = np.array([r.kpis["total_reward"] for r in results[reference]])
    n = len(base)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    samples = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n)) if n > 1 else None
    tail = (1.0 - level) / 2 * 100
    rows = []
    for label, episodes in results.items():
        reward = np.array([r.kpis["total_reward"] for r in episodes])
        gap = float(bound.mean() - base.mean())
        closed = float((reward.mean() - base.mean()) / gap) if gap > 0 else math.nan
        low = high = closed if n > 1 else math.nan
        if samples is not None and gap > 0:
            gaps = bound[samples].mean(axis=1) - base[samples].mean(axis=1)
            gains = reward[samples].mean(axis=1) - base[samples].mean(axis=1)
            shares = np.divide(gains, gaps, out=np.full_like(gains, np.nan), where=gaps > 0)
            if np.isfinite(shares).any():
                low, high = (float(v) for v in np.nanpercentile(shares, [tail, 100 - tail]))
        rows.append(
            {
                "policy": label,
                "mean_reward": float(reward.mean()),
                "reference_reward": float(base.mean()),
                "oracle_bound": float(bound.mean()),
                "gap_closed": closed,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def default_reference(specs: Sequence[PolicySpec], results: dict[str, list[EpisodeResult]]) -> str:
    """The best baseline by mean total reward (the oracle is no baseline a planner can run).

    Without a baseline among the policies: the first policy that is not the oracle.
    """
    baselines = [s.text for s in specs if s.kind == "baseline" and not s.is_oracle]
    if not baselines:
        return next(s.text for s in specs if not s.is_oracle)
    means = {label: float(np.mean([r.kpis["total_reward"] for r in results[label]])) for label in baselines}
    return max(baselines, key=lambda label: means[label])  # max keeps the first of equals


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
    by_episode[0] = runner.run(0, seed)
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
            by_episode[episode] = runner.run(episode, seed + episode)
            advance()
        return by_episode, 1  # type: ignore[return-value]
    import multiprocessing

    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(scenario_source, specs, tracking_uri, check_invariants),
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
) -> tuple[list[list[EpisodeResult]], int, list[str]]:
    """Every episode on Ray actors: results per episode, the number of actors and the nodes used."""
    from invalloc.cluster import WorkerPool, check_shared_tracking, ray_cluster

    with ray_cluster(address) as cluster:
        check_shared_tracking(tracking_uri, cluster.nodes)
        build = functools.partial(_runner_run, scenario_source, specs, tracking_uri, check_invariants)
        with WorkerPool(build, size=min(processes or episodes, episodes)) as pool:
            rows = pool.map([(episode, seed + episode) for episode in range(episodes)], advance)
            return rows, pool.size, sorted(pool.nodes)


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
    runner = _Runner(source, policy_specs, uri, check_invariants, [policy for _, policy in resolved])

    from rich.console import Console
    from rich.progress import Progress

    nodes: list[str] = []
    with Progress(console=Console(stderr=True), transient=True, disable=not progress) as bar:
        task = bar.add_task(f"comparing {len(policy_specs)} policies", total=episodes)
        if executor == "ray":
            by_episode, used, nodes = _run_on_ray(
                source, policy_specs, uri, check_invariants, episodes, seed, processes, ray_address,
                lambda: bar.advance(task),
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
        },
    )
    if log_to_mlflow:
        from invalloc.evaluation.mlflow_run import log_comparison

        comparison.mlflow_run_id = log_comparison(comparison, uri)
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
