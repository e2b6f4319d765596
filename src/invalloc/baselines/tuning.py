"""Derivative-free tuning of rule-based policies with common random numbers.

A rule-based policy (:func:`invalloc.baselines.make_policy`) has a handful of numbers —
echelon order-up-to levels, a cover in periods, ``s`` and ``S`` — that planners set by hand.
:func:`tune` searches them on a set of *training seeds*: every candidate is simulated on the
same seeds, and because demand for a seed does not depend on the policy (common random
numbers), two candidates are compared on identical demand. The objective is the mean over
the seeds of the episode's total (discounted) reward, a deterministic function of the
parameters once the seeds are fixed.

Method. Parameters live on a grid (whole units for levels and ``s``/``S``, 0.05 periods for
cover). The search evaluates

1. the *start*: a textbook level, expected demand over the echelon lead time + 1 period plus
   one standard deviation (or the policy's default cover);
2. an *exploration* of a quarter of the budget (at most 20 points per dimension + 5): a Latin
   hypercube over the bounds;
3. a *compass (pattern) search* from the best point so far: try ± one step along each
   parameter, move to the best improving neighbour and try the same move once more
   (Hooke–Jeeves), halve the steps when no neighbour improves, stop at a grid local optimum
   (Kolda, Lewis & Torczon, *SIAM Review* 45(3), 2003); then up to two restarts from the best
   exploration points in other regions while budget remains.

Everything is deterministic for a given ``seed`` (which only drives the Latin hypercube).
Repeated points are served from a cache and do not count against the budget. Episodes run
with invariant checks off. When the start point shows the whole search would take more than
about 15 seconds and the machine has two or more cores, candidates are evaluated by two
worker processes (``spawn`` start method, created inside :func:`tune`; scripts that call it
need the usual ``if __name__ == "__main__":`` guard). With ``executor="ray"`` they are Ray actors
instead, one per CPU of the cluster (:class:`invalloc.cluster.WorkerPool`); the result is the same.

>>> result = tune("tiny", "base_stock", seeds=range(4), budget=12, progress=False)  # doctest: +SKIP
>>> result.params  # doctest: +SKIP
{'cover': '1.75'}
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from invalloc.baselines import make_policy
from invalloc.sim.planning import PlanningView, Replenishment, downstream_order, through_tiers
from invalloc.sim.policy import PolicyError

DEFAULT_BUDGET = 300  # distinct candidates evaluated, each on every training seed
EXPLORE_SHARE = 0.25  # share of the budget spent on the Latin hypercube …
EXPLORE_PER_DIMENSION = 20  # … but at most 20 points per tuned dimension (+ 5)
RESTARTS = 2  # extra compass searches from other regions, budget permitting
PARALLEL_ABOVE_SECONDS = 15.0  # estimated serial run time above which two workers are used
METHOD = "latin hypercube + compass search (step halving, Hooke-Jeeves moves), common random numbers"

#: Search-space shorthand: make_policy parameter → (low, high[, step]) for one number, a list of
#: such tuples for a comma-separated list (``levels``), or a string or number for a fixed parameter.
SearchSpec = Mapping[str, Any]


# --------------------------------------------------------------------------- search space
@dataclass(frozen=True)
class Dimension:
    """One tuned number.

    :param name: label for reports, e.g. ``levels[stage0]``.
    :param key: the make_policy parameter it feeds; several dimensions with the same key
        form a comma-separated list in their order.
    :param low: smallest value (units, or periods for ``cover``).
    :param high: largest value, ≥ low.
    :param step: grid resolution; values are ``low + k·step``.
    :param start: starting value (snapped to the grid); the middle of the range if None.
    :param plus: name of an earlier dimension whose value is added to this one (``S = s + gap``
        keeps ``S ≥ s``).
    :param text: format of the parameter text, e.g. ``"auto{:+g}"`` gives ``auto-3`` (an offset
        from the automatic stop); None: the number itself.
    """

    name: str
    key: str
    low: float
    high: float
    step: float = 1.0
    start: float | None = None
    plus: str | None = None
    text: str | None = None

    @property
    def points(self) -> int:
        """Number of grid points, ≥ 1."""
        return int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1

    def value(self, index: int) -> float:
        return round(self.low + index * self.step, 10)

    def index(self, value: float) -> int:
        return int(min(max(round((value - self.low) / self.step), 0), self.points - 1))


@dataclass(frozen=True)
class SearchSpace:
    """The tuned dimensions and the parameters passed unchanged (``fixed``)."""

    dimensions: tuple[Dimension, ...]
    fixed: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [d.name for d in self.dimensions]
        if not self.dimensions:
            raise PolicyError("search space: no dimension to tune")
        for d in self.dimensions:
            if not (math.isfinite(d.low) and math.isfinite(d.high) and d.high >= d.low):
                raise PolicyError(f"search space {d.name}: bounds ({d.low:g}, {d.high:g}) need low ≤ high, both finite")
            if not d.step > 0:
                raise PolicyError(f"search space {d.name}: step {d.step:g} must be positive")
            if d.plus is not None and d.plus not in names[: names.index(d.name)]:
                raise PolicyError(f"search space {d.name}: plus={d.plus} must name an earlier dimension")

    def params(self, index: Sequence[int]) -> dict[str, str]:
        """make_policy parameters for a grid point."""
        values: dict[str, float] = {}
        grouped: dict[str, list[str]] = {}
        for d, i in zip(self.dimensions, index, strict=True):
            v = d.value(int(i)) + (values[d.plus] if d.plus else 0.0)
            values[d.name] = v
            grouped.setdefault(d.key, []).append(d.text.format(v) if d.text else _format(v))
        return {**dict(self.fixed), **{key: ",".join(parts) for key, parts in grouped.items()}}

    def start(self) -> tuple[int, ...]:
        return tuple(d.index(d.start if d.start is not None else (d.low + d.high) / 2) for d in self.dimensions)

    def describe(self) -> dict[str, Any]:
        """JSON/YAML-friendly description for :attr:`TuneResult.settings`."""
        dims = [
            {
                key: (float(value) if isinstance(value, int | float | np.number) else value)
                for key, value in asdict(d).items()
            }
            for d in self.dimensions
        ]
        return {"dimensions": dims, "fixed": dict(self.fixed)}

    @classmethod
    def from_spec(cls, spec: SearchSpec) -> SearchSpace:
        """Build from the shorthand, e.g. ``{"levels": [(0, 160), (0, 360), (0, 760)], "allocation": "priority"}``."""
        dims, fixed = [], {}
        for key, value in spec.items():
            if isinstance(value, str | int | float):
                fixed[key] = value if isinstance(value, str) else _format(float(value))
                continue
            items = list(value) if value and isinstance(next(iter(value)), list | tuple) else [value]
            for k, item in enumerate(items):
                item = tuple(item)
                if len(item) not in (2, 3):
                    raise PolicyError(f"search space {key}: expected (low, high) or (low, high, step), got {item}")
                step = float(item[2]) if len(item) == 3 else 1.0
                name = key if len(items) == 1 else f"{key}[{k}]"
                dims.append(Dimension(name, key, float(item[0]), float(item[1]), step))
        return cls(tuple(dims), fixed)


def _format(value: float) -> str:
    """Shortest text that make_policy reads back as the same value: ``60``, ``1.35``."""
    return str(int(value)) if float(value).is_integer() else f"{value:.10g}"


def _planning_figures(scenario: str | Path) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Network, echelon demand per period (D, S), inbound lead time (D, S), echelon lead time (D,)
    and the DC order downstream first, from the scenario's demand model (its mean over the horizon)."""
    from invalloc.config.loader import load_scenario
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    network = compile_network(load_scenario(scenario))
    simulator = Simulator(network, check_invariants=False)
    mean_tier = np.mean([simulator.demand_forecast(k) for k in range(simulator.periods)], axis=0)  # (T, S)
    demand = through_tiers(network) @ mean_tier  # (D, S) per period, including downstream DCs
    lead = Replenishment.build(network).lead_time  # (D, S) mean lead time of the first inbound lane
    downstream = downstream_order(network)
    echelon_lead = lead.max(axis=1).astype(float)  # (D,) own lead time + the longest path below
    for d in downstream:  # nearest customers first, so every child is done before its source
        children = network.transfer_destination[network.transfer_source == d]
        if len(children):
            echelon_lead[d] = lead[d].max() + max(echelon_lead[c] for c in children)
    return network, demand, lead, echelon_lead, downstream


def default_search_space(scenario: str | Path, policy: str) -> SearchSpace:
    """A sensible search space for ``policy`` on ``scenario``.

    - base_stock, proportional, priority, fixed_split on a single-SKU network: echelon ``levels``
      per DC (downstream first), each in [0, 2·μ·(Λ+1)] with μ the echelon demand per period and
      Λ the echelon lead time, starting at μ·(Λ+1) + √(μ·(Λ+1)); and the last ordering period
      ``stop`` per DC in [0, horizon − 1], starting at the last period whose order can still
      reach a customer.
    - the same policies with several SKUs (per-DC levels would be shared by every SKU): a
      ``cover`` per DC (downstream first) in [0, max(6, 2·longest lead time)] periods, step
      0.05, starting at 2; and ``stop=auto±K``, the automatic stop moved by K ∈ [−12, 0]
      periods (running stock down before the horizon), starting at 0. :func:`tune` searches
      the covers in two stages (one shared cover first, then one per DC from it).
    - fixed_split also tunes ``split``: one weight per channel in [0, 1], step 0.05.
    - s_S on a single-SKU network: ``s`` in [0, 2·m] and ``S − s`` in [0, 2·m] (so S ≥ s), m =
      max over DCs of μ·(L+1) with the DC's own demand and inbound lead time, and ``stop`` per
      DC as above; with several SKUs: ``s_cover`` in [0, max(6, 2·longest lead time)] and
      ``S_cover − s_cover`` in [0, the same] periods (step 0.05), and ``stop=auto±K``.
    """
    if policy not in ("base_stock", "proportional", "priority", "fixed_split", "s_S"):
        raise PolicyError(
            f"tune: no default search space for policy '{policy}' "
            "(tune base_stock, proportional, priority, fixed_split or s_S, or pass search_space)"
        )
    network, demand, lead, echelon_lead, downstream = _planning_figures(scenario)
    dims: list[Dimension] = []
    horizon = network.scenario.episode.horizon
    useful = PlanningView(network).last_useful_order(horizon)
    # The last ordering period per DC: a finite episode rewards not buying what cannot sell.
    stops = [
        Dimension(f"stop[{network.locations[d]}]", "stop", 0.0, horizon - 1.0, 1.0, start=float(useful[d]))
        for d in downstream
    ]
    stop_offset = Dimension("stop", "stop", -12.0, 0.0, 1.0, start=0.0, text="auto{:+g}")
    cover_high = max(6.0, 2.0 * float(lead.max()))
    if policy == "s_S":
        if network.n_skus == 1:
            m = float(np.max(demand * (lead + 1.0)))
            high = max(10.0, math.ceil(2 * m))
            dims.append(Dimension("s", "s", 0.0, high, 1.0, start=round(m)))
            dims.append(Dimension("S-s", "S", 0.0, high, 1.0, start=max(1.0, round(float(demand.max()))), plus="s"))
            return SearchSpace(tuple(dims + stops))
        dims.append(Dimension("s_cover", "s_cover", 0.0, cover_high, 0.05, start=0.5))
        dims.append(Dimension("S_cover-s_cover", "S_cover", 0.0, cover_high, 0.05, start=1.5, plus="s_cover"))
        return SearchSpace((*dims, stop_offset))
    if network.n_skus == 1:
        for d in downstream:
            mean = float(demand[d, 0]) * (echelon_lead[d] + 1.0)
            high = max(10.0, math.ceil(2 * mean))
            dims.append(
                Dimension(f"levels[{network.locations[d]}]", "levels", 0.0, high, 1.0, start=mean + math.sqrt(mean))
            )
        dims += stops
    else:
        for d in downstream:
            dims.append(Dimension(f"cover[{network.locations[d]}]", "cover", 0.0, cover_high, 0.05, start=2.0))
        dims.append(stop_offset)
    if policy == "fixed_split":
        for channel in network.channels:
            dims.append(Dimension(f"split[{channel}]", "split", 0.0, 1.0, 0.05, start=0.5))
    return SearchSpace(tuple(dims))


# --------------------------------------------------------------------------- evaluation
def _build_simulator(scenario: str | Path):
    from invalloc.config.loader import load_scenario
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    return Simulator(compile_network(load_scenario(scenario)), check_invariants=False)


def _run(simulator, policy: str, params: Mapping[str, str], seeds: Sequence[int]) -> np.ndarray:
    """Total (discounted) reward of one episode per seed, shape (len(seeds),)."""
    from invalloc.sim.simulator import run_episodes

    chosen = make_policy(policy, dict(params))
    # Every candidate runs on these seeds: their demand is drawn once, then kept.
    simulator.demands.keep(seeds)
    totals = np.empty(len(seeds))
    for i, reports in enumerate(run_episodes(simulator, chosen, seeds)):
        totals[i] = math.fsum(report.reward for report in reports)
    return totals


_WORKER: dict[str, Any] = {}  # per worker process: the simulator, built once by _worker_init


def _worker_init(scenario: str) -> None:
    _WORKER["simulator"] = _build_simulator(scenario)


def _worker_run(task: tuple[str, dict[str, str], tuple[int, ...]]) -> np.ndarray:
    policy, params, seeds = task
    return _run(_WORKER["simulator"], policy, params, seeds)


def _ray_worker(scenario: str) -> Callable[[tuple[str, dict[str, str], tuple[int, ...]]], np.ndarray]:
    """The task function of one Ray actor (its simulator built once)."""
    simulator = _build_simulator(scenario)
    return lambda task: _run(simulator, *task)


class _Evaluator:
    """Evaluates candidates on fixed seeds, in this process or on a pool of workers (processes or Ray actors)."""

    def __init__(self, scenario: str, policy: str, seeds: Sequence[int]) -> None:
        self.scenario, self.policy, self.seeds = scenario, policy, tuple(int(s) for s in seeds)
        self.simulator = _build_simulator(scenario)
        self.pool: Any = None  # a ProcessPoolExecutor or an invalloc.cluster.WorkerPool
        self.workers = 1

    def start_ray(self, workers: int | None) -> None:
        """Ray actors, at most ``workers`` (None: one per CPU of the connected cluster)."""
        from invalloc.cluster import WorkerPool

        if self.pool is None:
            self.pool = WorkerPool(functools.partial(_ray_worker, self.scenario), size=workers)
            self.workers = self.pool.size

    @property
    def nodes(self) -> list[str]:
        """Ids of the Ray nodes that evaluated candidates (empty for local processes)."""
        return sorted(getattr(self.pool, "nodes", ()))

    def start_pool(self, workers: int) -> None:
        if workers > 1 and self.pool is None:
            import multiprocessing

            self.pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(self.scenario,),
            )
            self.workers = workers

    def close(self) -> None:
        if isinstance(self.pool, ProcessPoolExecutor):
            self.pool.shutdown(cancel_futures=True)
        elif self.pool is not None:
            self.pool.close()
        self.pool = None

    def __call__(self, candidates: Sequence[Mapping[str, str]]) -> list[np.ndarray]:
        if self.pool is None or not candidates:
            return [_run(self.simulator, self.policy, params, self.seeds) for params in candidates]
        # One task per candidate, or seed chunks when there are fewer candidates than workers.
        chunks = self.workers if len(candidates) < self.workers else 1
        parts = [tuple(part.tolist()) for part in np.array_split(np.asarray(self.seeds), chunks) if len(part)]
        tasks = [(self.policy, dict(params), part) for params in candidates for part in parts]
        if isinstance(self.pool, ProcessPoolExecutor):
            results = list(self.pool.map(_worker_run, tasks))
        else:
            results = self.pool.map([(task,) for task in tasks])
        return [np.concatenate(results[i * len(parts) : (i + 1) * len(parts)]) for i in range(len(candidates))]


def _scenario_source(scenario: str | Path) -> tuple[str, str]:
    """(scenario name, absolute path of its YAML) — workers load it by path."""
    from invalloc.config.loader import load_scenario

    loaded = load_scenario(scenario)
    return loaded.scenario.name, str(Path(loaded.source).resolve())


def evaluate(
    scenario: str | Path,
    policy: str,
    params: Mapping[str, str],
    seeds: Iterable[int],
    *,
    workers: int = 1,
) -> np.ndarray:
    """Total discounted reward of ``policy`` with ``params`` on ``scenario``, one episode per seed.

    :param workers: processes to use; 1 runs in this process.
    :returns: array (len(seeds),) in the order of ``seeds``.

    >>> rewards = evaluate("orgym_invmanagement_v1", "base_stock", {"levels": "89,209,420"}, range(3))
    >>> rewards.shape
    (3,)
    """
    seeds = [int(s) for s in seeds]
    make_policy(policy, dict(params))  # parameter errors before any simulation
    _, source = _scenario_source(scenario)
    evaluator = _Evaluator(source, policy, seeds)
    try:
        if workers > 1 and len(seeds) >= 2 * workers:
            evaluator.start_pool(workers)
        return evaluator([params])[0]
    finally:
        evaluator.close()


# --------------------------------------------------------------------------- search
@dataclass
class Candidate:
    """One evaluated parameter vector."""

    params: dict[str, str]
    mean_reward: float  # mean total reward over the training seeds
    stderr: float  # standard error of that mean (sample std / √n)
    phase: str  # "start", "explore", "local" or "restart"


@dataclass
class TuneResult:
    """Outcome of :func:`tune`.

    :ivar params: the best parameters, as make_policy / ``--param`` strings.
    :ivar mean_reward: their mean total reward over the training seeds (in-sample: evaluate on
        held-out seeds for an unbiased figure).
    :ivar rewards: their total reward per training seed, shape (len(seeds),).
    :ivar history: every distinct candidate evaluated, in order.
    :ivar settings: method, budget, evaluations, seed, workers, search space, wall time.
    """

    scenario: str
    policy: str
    params: dict[str, str]
    mean_reward: float
    stderr: float
    rewards: np.ndarray
    seeds: list[int]
    history: list[Candidate]
    settings: dict[str, Any]


class _Search:
    """Grid search state: cache, budget, history, best point."""

    def __init__(self, space: SearchSpace, evaluator: Callable, budget: int, on_batch: Callable) -> None:
        self.space, self.evaluator, self.budget, self.on_batch = space, evaluator, budget, on_batch
        self.cache: dict[tuple[int, ...], float] = {}
        self.rewards: dict[tuple[int, ...], np.ndarray] = {}
        self.history: list[Candidate] = []
        self.best: tuple[int, ...] | None = None

    @property
    def left(self) -> int:
        return self.budget - len(self.cache)

    def value(self, point: tuple[int, ...]) -> float:
        return self.cache[point]

    def evaluate(self, points: Iterable[tuple[int, ...]], phase: str) -> None:
        """Evaluate the new points among ``points`` (in order) while budget remains."""
        new: list[tuple[int, ...]] = []
        for point in points:
            if point not in self.cache and point not in new:
                new.append(point)
        new = new[: max(self.left, 0)]
        if not new:
            return
        params = [self.space.params(p) for p in new]
        for point, p, totals in zip(new, params, self.evaluator(params), strict=True):
            mean = float(np.mean(totals))
            stderr = float(np.std(totals, ddof=1) / math.sqrt(len(totals))) if len(totals) > 1 else 0.0
            self.cache[point], self.rewards[point] = mean, totals
            self.history.append(Candidate(p, mean, stderr, phase))
            if self.best is None or mean > self.cache[self.best]:
                self.best = point
        self.on_batch(len(new), self.cache[self.best])

    def compass(self, start: tuple[int, ...], phase: str) -> tuple[int, ...]:
        """Compass search with step halving from ``start``; returns the grid local optimum reached."""
        dims = self.space.dimensions
        steps = [max(1, (d.points - 1) // 8) for d in dims]
        x = start
        self.evaluate([x], phase)
        while self.left > 0:
            neighbours = []
            for i, d in enumerate(dims):
                for sign in (1, -1):
                    y = list(x)
                    y[i] = min(max(y[i] + sign * steps[i], 0), d.points - 1)
                    if tuple(y) != x:
                        neighbours.append(tuple(y))
            self.evaluate(neighbours, phase)
            scored = [y for y in neighbours if y in self.cache]
            best = max(scored, key=self.value, default=None)
            if best is not None and self.value(best) > self.value(x):
                # Hooke–Jeeves: try the same move once more.
                further = tuple(min(max(2 * b - a, 0), d.points - 1) for a, b, d in zip(x, best, dims, strict=True))
                self.evaluate([further], phase)
                x = further if further in self.cache and self.value(further) > self.value(best) else best
                continue
            if all(s == 1 for s in steps):
                break
            steps = [max(1, s // 2) for s in steps]
        return x


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )


def tune(
    scenario: str | Path,
    policy: str,
    seeds: Sequence[int],
    *,
    budget: int = DEFAULT_BUDGET,
    search_space: SearchSpace | SearchSpec | None = None,
    progress: bool = True,
    seed: int = 0,
    workers: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> TuneResult:
    """Find the parameters of ``policy`` with the best mean total reward on ``seeds``.

    :param scenario: shipped scenario name or YAML path.
    :param policy: base_stock, proportional, priority, fixed_split or s_S (any make_policy
        name with an explicit ``search_space``).
    :param seeds: training seeds; every candidate is simulated on all of them (common random
        numbers). 50 seeds are plenty for the OR-Gym mirror.
    :param budget: most distinct candidates to evaluate (each costs len(seeds) episodes); the
        search stops earlier once the compass search and its restarts have converged.
    :param search_space: a :class:`SearchSpace`, the shorthand of
        :meth:`SearchSpace.from_spec`, or None for :func:`default_search_space`.
    :param progress: show a rich progress bar on standard error.
    :param seed: seed of the Latin hypercube; the result is deterministic for a given seed.
    :param workers: worker processes; None picks 2 when the search is estimated to take more
        than 15 s on one core and the machine has 2 or more cores, else 1. With ``executor="ray"``:
        the most Ray actors (None: one per CPU of the cluster).
    :param executor: ``local`` (processes of this machine) or ``ray`` (actors on the cluster that
        :func:`invalloc.cluster.resolve_address` picks from ``ray_address``); same result.
    :raises PolicyError: unknown policy or parameter, or a bad search space.
    :raises ClusterError: an unusable Ray cluster.
    """
    if executor == "ray":
        from invalloc.cluster import ray_cluster

        with ray_cluster(ray_address):  # nested calls (covers in stages) reuse the connection
            return _tune(scenario, policy, seeds, budget, search_space, progress, seed, workers, "ray")
    if executor != "local":
        raise PolicyError(f"--executor {executor}: must be local or ray")
    return _tune(scenario, policy, seeds, budget, search_space, progress, seed, workers, "local")


def _tune(
    scenario: str | Path,
    policy: str,
    seeds: Sequence[int],
    budget: int,
    search_space: SearchSpace | SearchSpec | None,
    progress: bool,
    seed: int,
    workers: int | None,
    executor: str,
) -> TuneResult:
    started = time.perf_counter()
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise PolicyError("tune: no training seeds given")
    if budget < 1:
        raise PolicyError(f"tune: budget {budget} must be at least 1")
    if search_space is None:
        space = default_search_space(scenario, policy)
        if sum(d.key == "cover" for d in space.dimensions) >= 2:
            return _tune_covers_in_stages(scenario, policy, seeds, space, budget, progress, seed, workers, executor)
    elif isinstance(search_space, SearchSpace):
        space = search_space
    else:
        space = SearchSpace.from_spec(search_space)
    name, source = _scenario_source(scenario)
    make_policy(policy, space.params(space.start()))  # unknown policy or parameter: fail before simulating
    evaluator = _Evaluator(source, policy, seeds)
    rng = np.random.default_rng(seed)

    with _progress(progress) as bar:
        task = bar.add_task(f"tuning {policy} on {name}", total=budget, best="–")

        def on_batch(count: int, best: float) -> None:
            bar.update(task, advance=count, best=f"{best:,.4g}")

        search = _Search(space, evaluator, budget, on_batch)
        try:
            # 1. the start point, in this process: validates parameters and times a candidate.
            clock = time.perf_counter()
            start = space.start()
            search.evaluate([start], "start")
            seconds_per_candidate = time.perf_counter() - clock
            if executor == "ray":
                evaluator.start_ray(workers)
                workers = evaluator.workers
            elif workers is None:
                estimate = seconds_per_candidate * budget
                workers = 2 if (os.cpu_count() or 1) >= 2 and estimate > PARALLEL_ABOVE_SECONDS else 1
            evaluator.start_pool(workers)
            # 2. exploration: a Latin hypercube over the grid.
            dims = space.dimensions
            n_explore = min(
                max(2 * len(dims) + 2, int(EXPLORE_SHARE * budget)), EXPLORE_PER_DIMENSION * len(dims) + 5, search.left
            )
            explored: list[tuple[int, ...]] = [start]
            if n_explore > 0:
                from scipy.stats import qmc

                unit = qmc.LatinHypercube(d=len(dims), rng=rng).random(n_explore)
                points = [
                    tuple(min(int(u * d.points), d.points - 1) for u, d in zip(row, dims, strict=True)) for row in unit
                ]
                search.evaluate(points, "explore")
                explored += [p for p in points if p in search.cache]
            # 3. compass search from the best point, then restarts from other regions.
            optima = [search.compass(search.best, "local")]
            first_steps = [max(1, (d.points - 1) // 8) for d in dims]
            for _ in range(RESTARTS):
                far = [
                    p
                    for p in sorted(explored, key=search.value, reverse=True)
                    if all(any(abs(a - b) > s for a, b, s in zip(p, o, first_steps, strict=True)) for o in optima)
                ]
                if not far or search.left <= 2 * len(dims):
                    break
                optima.append(search.compass(far[0], "restart"))
            nodes = evaluator.nodes
        finally:
            evaluator.close()

    best = search.best
    assert best is not None
    totals = search.rewards[best]
    stderr = float(np.std(totals, ddof=1) / math.sqrt(len(totals))) if len(totals) > 1 else 0.0
    return TuneResult(
        scenario=name,
        policy=policy,
        params=space.params(best),
        mean_reward=search.value(best),
        stderr=stderr,
        rewards=totals,
        seeds=seeds,
        history=search.history,
        settings={
            "method": METHOD,
            "budget": budget,
            "evaluations": len(search.cache),
            "episodes": len(search.cache) * len(seeds),
            "seed": seed,
            "workers": workers,
            "executor": executor,
            "nodes": nodes,
            "scenario_source": source,
            "search_space": space.describe(),
            "wall_seconds": round(time.perf_counter() - started, 3),
        },
    )


def _tune_covers_in_stages(
    scenario: str | Path,
    policy: str,
    seeds: Sequence[int],
    space: SearchSpace,
    budget: int,
    progress: bool,
    seed: int,
    workers: int | None,
    executor: str,
) -> TuneResult:
    """A cover per DC, coarse to fine: 3/8 of the budget on one cover shared by every DC (with
    the other dimensions), the rest on a cover per DC starting from the first stage's best.

    On retail this finds better covers than one search over every dimension for the same
    budget: the reward is flat in the regional covers, so a Latin hypercube over all of them
    mostly samples noise.
    """
    covers = [d for d in space.dimensions if d.key == "cover"]
    others = [d for d in space.dimensions if d.key != "cover"]
    shared = SearchSpace((replace(covers[0], name="cover"), *others), space.fixed)
    first_budget = max(1, budget * 3 // 8)
    options = dict(progress=progress, seed=seed, workers=workers, executor=executor)
    first = tune(scenario, policy, seeds, budget=first_budget, search_space=shared, **options)
    if budget - first_budget < 1:
        return first
    best = dict(zip([d.name for d in shared.dimensions], _grid_values(first.params, shared), strict=True))
    refined = SearchSpace(
        tuple(replace(d, start=best["cover" if d.key == "cover" else d.name]) for d in space.dimensions), space.fixed
    )
    second = tune(scenario, policy, seeds, budget=budget - first_budget, search_space=refined, **options)
    result = second if second.mean_reward >= first.mean_reward else first
    result.history = first.history + second.history
    result.settings.update(
        budget=budget,
        evaluations=first.settings["evaluations"] + second.settings["evaluations"],
        episodes=first.settings["episodes"] + second.settings["episodes"],
        wall_seconds=round(first.settings["wall_seconds"] + second.settings["wall_seconds"], 3),
        nodes=sorted(set(first.settings["nodes"]) | set(second.settings["nodes"])),
        method=METHOD + "; a cover per DC in two stages (one shared cover, then one per DC from it)",
        search_space=space.describe(),
    )
    return result


def _grid_values(params: Mapping[str, str], space: SearchSpace) -> list[float]:
    """The value of each dimension of ``space`` behind ``params`` (``plus`` offsets not undone)."""
    parts = {key: str(value).split(",") for key, value in params.items()}
    used: dict[str, int] = {}
    values = []
    for d in space.dimensions:
        i = used.get(d.key, 0)
        used[d.key] = i + 1
        text = parts[d.key][i]
        values.append(float(text[4:] or 0) if text.startswith("auto") else float(text))
    return values


# --------------------------------------------------------------------------- seeds and files
#: Most training seeds ``--seeds`` may name, and the largest seed.
MAX_SEEDS = 100_000
MAX_SEED = 2**62


def parse_seeds(text: str) -> list[int]:
    """``"0-49"``, ``"0-9,20,30-31"`` → list of seeds (the ``--seeds`` syntax).

    >>> parse_seeds("0-2,7")
    [0, 1, 2, 7]
    """
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                cut = part.index("-", 1)
                low, high = int(part[:cut]), int(part[cut + 1 :])
            else:
                low = high = int(part)
            if high < low or low < 0:
                raise ValueError
        except ValueError:
            raise PolicyError(f"--seeds {text}: expected seeds ≥ 0 like 0-49 or 1,2,5-9") from None
        if high > MAX_SEED or len(seeds) + high - low + 1 > MAX_SEEDS:
            raise PolicyError(f"--seeds {text}: at most {MAX_SEEDS:,} seeds, each at most {MAX_SEED:,}")
        seeds.extend(range(low, high + 1))
    if not seeds:
        raise PolicyError(f"--seeds {text}: no seed given")
    return seeds


def format_seeds(seeds: Sequence[int]) -> str:
    """Compact text of a seed list, the inverse of :func:`parse_seeds`.

    >>> format_seeds([0, 1, 2, 7])
    '0-2,7'
    """
    parts: list[str] = []
    seeds = list(seeds)
    i = 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)


def save_params(result: TuneResult, path: str | Path) -> Path:
    """Write the tuned parameters as YAML (atomically: a temporary file, then ``os.replace``).

    The file holds ``policy``, ``scenario``, ``params`` (the ``--param`` strings),
    ``training`` (seeds, episodes, mean_reward, stderr, budget, evaluations, method),
    ``tuned_at`` (UTC, ISO 8601) and ``invalloc_version``.
    """
    from invalloc import __version__

    path = Path(path)
    document = {
        "policy": result.policy,
        "scenario": result.scenario,
        "params": dict(result.params),
        "training": {
            "seeds": format_seeds(result.seeds),
            "episodes": len(result.seeds),
            "mean_reward": round(float(result.mean_reward), 6),
            "stderr": round(float(result.stderr), 6),
            "budget": result.settings.get("budget"),
            "evaluations": result.settings.get("evaluations"),
            "method": result.settings.get("method"),
        },
        "tuned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "invalloc_version": __version__,
    }
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


#: The name that stands for the shipped tuned parameters (``--params tuned``, ``base_stock@tuned``).
TUNED = "tuned"


def _tuned_path(policy: str | None, scenario: str | None) -> Path:
    from invalloc.config.shipped import shipped_folder, tuned_file

    if policy is None or scenario is None:
        raise PolicyError("tuned: the shipped tuned parameters need a policy name and a scenario")
    found = tuned_file(scenario, policy)
    if found is None:
        tuned = sorted(p.stem for p in (shipped_folder("tuned") / scenario).glob("*.yaml"))
        have = f"tuned for {scenario}: {', '.join(tuned)}" if tuned else f"no policy is tuned for {scenario}"
        raise PolicyError(
            f"tuned: no tuned parameters for {policy} on {scenario} ({have}); run invalloc tune "
            f"--scenario {scenario} --policy {policy} --out configs/tuned/{scenario}/{policy}.yaml"
        )
    return found


def load_params(path: str | Path, policy: str | None = None, scenario: str | None = None) -> tuple[str, dict[str, str]]:
    """Read a file written by :func:`save_params`: ``(policy, params)``.

    :param path: the file, or :data:`TUNED` (``tuned``, when no file of that name exists): the
        parameters tuned for ``policy`` on ``scenario`` that the project or the package ships
        (:func:`invalloc.config.shipped.tuned_file`).
    :param policy: if given, the file must be for this policy.
    :param scenario: if given, the file must have been tuned on the scenario of this *name*.
    :raises PolicyError: one line naming the file — missing, unreadable, not YAML, missing
        keys, a mismatch, or parameters make_policy rejects.
    """
    from invalloc.config.loader import ConfigFileError, read_config_text, read_yaml

    path = Path(path)
    if str(path) == TUNED and not path.exists():
        path = _tuned_path(policy, scenario)
    if not path.exists():
        raise PolicyError(f"{path}: params file not found")
    try:
        text = read_config_text(path)
    except ConfigFileError as error:
        raise PolicyError(_one_line(error.lines()[0])) from None
    try:
        data, duplicates = read_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise PolicyError(_one_line(f"{path}: not valid YAML ({where}{problem})")) from None
    if duplicates:
        raise PolicyError(_one_line(f"{path}: {duplicates[0]}"))
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: expected a mapping with keys policy, scenario and params")
    missing = [key for key in ("policy", "scenario", "params") if key not in data]
    if missing:
        raise PolicyError(f"{path}: missing key(s) {', '.join(missing)}")
    found = data["policy"]
    if not isinstance(found, str):
        raise PolicyError(f"{path}: policy must be a name, got {_one_line(found)!r}")
    if policy is not None and found != policy:
        raise PolicyError(f"{path}: parameters were tuned for policy '{found}', not '{policy}'")
    if scenario is not None and str(data["scenario"]) != scenario:
        raise PolicyError(f"{path}: parameters were tuned on scenario '{data['scenario']}', not '{scenario}'")
    raw = data["params"]
    if not isinstance(raw, dict) or not raw:
        raise PolicyError(f"{path}: params must be a non-empty mapping of parameter: value")
    params: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise PolicyError(f"{path}: params.{key} must be a number or text like 60,150,300")
        params[str(key)] = str(value)
    try:
        make_policy(found, params)
    except PolicyError as error:
        raise PolicyError(_one_line(f"{path}: {error}")) from None
    return found, params


__all__ = [
    "DEFAULT_BUDGET",
    "Candidate",
    "Dimension",
    "SearchSpace",
    "TuneResult",
    "default_search_space",
    "evaluate",
    "format_seeds",
    "load_params",
    "parse_seeds",
    "save_params",
    "tune",
]
