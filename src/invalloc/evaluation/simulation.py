"""One policy over episodes: what ``invalloc simulate`` runs and :func:`invalloc.simulate` returns.

:func:`run_simulation` resolves the policy (a baseline with its parameters, a trained agent, a
rule table: loaded and checked against the scenario), builds the simulator (with a demand trace
and an episode length if given), runs episodes ``seed … seed + episodes − 1`` here or on Ray
actors and returns a :class:`Simulation`: each episode's KPIs, and — when asked — its period
records and books, the audit tables and the decision log. The command adds the option checks
that concern files (``--audit-log``, ``--statements`` …) and the printing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from invalloc.config.loader import LoadedScenario
    from invalloc.evaluation.episode_reports import EpisodeReports
    from invalloc.sim.network import Network
    from invalloc.sim.policy import Policy
    from invalloc.sim.simulator import PeriodReport, Simulator
    from invalloc.sim.statements import EpisodeBooks

#: Spec prefixes of policies loaded from a store or folder (not a baseline by name).
LOADED_PREFIXES = ("run:", "runs:/", "models:/", "rules:")


class SimulationError(ValueError):
    """Options that do not go together (parameters for a trained agent, a decision log of a
    baseline, an episode too large for memory); one line naming the option."""


@dataclass
class Simulation:
    """What :func:`run_simulation` produced.

    :param scenario: the loaded scenario; ``network`` its compiled network.
    :param spec: the policy as given (``base_stock``, ``run:RUN_ID``, ``rules:DIR`` …); ``policy``
        the policy object that ran (wrapped in a decision recorder when the decisions were logged).
    :param episodes: one row per episode: ``episode``, ``seed`` and every KPI of
        :func:`invalloc.sim.kpis.episode_kpis` (money in the scenario currency, quantities in units).
    :param reports: per episode its period records (:class:`~invalloc.sim.simulator.PeriodReport`),
        when kept (``keep=True``); else empty.
    :param books: per episode its books (:class:`~invalloc.sim.statements.EpisodeBooks`), when kept.
    :param audit: per episode its audit table, with ``audit=True``.
    :param nodes: Ray nodes that ran episodes (empty when run here); ``workers`` their actors.
    :param written: one line per folder of statements or plots written.
    """

    scenario: LoadedScenario
    network: Network
    spec: str
    policy: Policy
    episodes: list[dict[str, Any]]
    reports: list[list[PeriodReport]] = field(default_factory=list)
    books: list[EpisodeBooks] = field(default_factory=list)
    audit: list[pd.DataFrame] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    workers: int = 0
    written: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        """KPI → ``mean``, ``ci_low``, ``ci_high`` (95% Student-t over episodes), as ``simulate`` prints."""
        from invalloc.sim.kpis import summarise

        return summarise(self.episodes)

    @property
    def kpis(self) -> pd.DataFrame:
        """One row per episode: ``episode``, ``seed`` and every scalar KPI (per-tier fill rates as
        ``fill_rate_by_tier/<channel>/<tier>``)."""
        import pandas as pd

        from invalloc.sim.kpis import _flatten

        return pd.DataFrame(
            [{"episode": row["episode"], "seed": row["seed"], **_flatten(row)} for row in self.episodes]
        )

    def statements(self, episode: int = 0):  # noqa: ANN201 - Statements (imported on use)
        """Episode ``episode``'s income statement, balance sheet, cash flow and inventory
        roll-forward, reconciled with the ledger (kept books only)."""
        from invalloc.sim.statements import build_statements

        if not self.books:
            raise SimulationError("the books were not kept: run with keep=True (invalloc.simulate keeps them)")
        return build_statements(self.books[episode])


def simulation_policy(
    loaded: LoadedScenario, policy: str, params: dict[str, str], actions: str | None, tracking_uri: str | None
) -> Policy:
    """The policy `simulate` runs: a baseline, or a trained agent or rule table checked against the scenario.

    :raises PolicyError: one line naming the policy.
    """
    if policy.startswith(LOADED_PREFIXES):
        # Trained agents and rule tables resolve like in `compare`: loaded, then checked against the scenario.
        from invalloc.evaluation.specs import build_policy, check_scenario, parse_spec

        spec = parse_spec(policy, scenario_name=loaded.scenario.name)
        chosen = build_policy(spec, tracking_uri)
        check_scenario(spec, chosen, loaded)
        return chosen
    from invalloc.baselines import make_policy

    return make_policy(policy, params, actions)


def simulate_episode(
    simulator: Simulator,
    network: Network,
    chosen: Policy,
    episode: int,
    seed: int,
    on_reports: Callable[[int, int, list], None] | None = None,
    next_seed: int | None = None,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """One episode: its KPI row and its audit table (None without an audit log).

    ``on_reports(episode, seed, reports)`` sees the episode's period reports (the decision log);
    the demand of ``next_seed``, the episode to run next if known, is drawn meanwhile.
    """
    from invalloc.sim.kpis import episode_kpis
    from invalloc.sim.simulator import run_episode

    reports = run_episode(simulator, chosen, seed=seed, next_seed=next_seed)
    if on_reports is not None:
        on_reports(episode, seed, reports)
    kpis = episode_kpis(reports, network)
    bound = getattr(chosen, "bound_of_last_episode", None)
    if bound is not None:
        # The hindsight-optimal LP value: no causal policy can beat it on this demand.
        kpis["oracle_bound"] = float(bound)
    frame = simulator.audit_log.frame(episode) if simulator.audit_log is not None else None
    return {"episode": episode, "seed": seed, **kpis}, frame


def _worker(
    scenario: str,
    policy: str,
    params: dict[str, str],
    actions: str | None,
    demand_trace: str | None,
    periods: int | None,
    check_invariants: bool,
    audit: bool,
    tracking_uri: str | None,
) -> Callable[[int, int], tuple[dict[str, Any], pd.DataFrame | None]]:
    """The episode function of one Ray actor (simulator and policy built once)."""
    from invalloc.config.loader import load_scenario
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    loaded = load_scenario(scenario)
    network = compile_network(loaded)
    chosen = simulation_policy(loaded, policy, params, actions, tracking_uri)
    simulator = Simulator(
        network, check_invariants=check_invariants, audit=audit, demand_trace=demand_trace, periods=periods
    )
    return functools.partial(simulate_episode, simulator, network, chosen)


def _absolute_policy(policy: str) -> str:
    """``rules:DIR`` with an absolute DIR (Ray workers do not share this working directory)."""
    if policy.startswith("rules:"):
        return "rules:" + str(Path(policy.removeprefix("rules:")).expanduser().resolve())
    return policy


def on_ray(
    worker: Callable[[], Callable[..., Any]],
    calls: list[tuple[int, int]],
    policy: str,
    tracking_uri: str | None,
    address: str | None,
    advance: Callable[[], None],
) -> tuple[list[Any], list[str], int]:
    """Run ``calls`` on Ray actors: (results in call order, node ids, workers)."""
    from invalloc.cluster import WorkerPool, check_shared_tracking, ray_cluster

    with ray_cluster(address) as cluster:
        if policy.startswith(("run:", "runs:/", "models:/")):
            from invalloc.tracking import resolve_tracking_uri

            check_shared_tracking(resolve_tracking_uri(tracking_uri), cluster.nodes)
        with WorkerPool(worker, size=len(calls)) as pool:
            results = pool.map(calls, advance, describe=lambda call: f"episode {call[0]} (seed {call[1]})")
            return results, sorted(pool.nodes), pool.size


def run_simulation(
    loaded: LoadedScenario,
    policy: str = "base_stock",
    *,
    params: dict[str, str] | None = None,
    params_file: str | Path | None = None,
    actions: str | Path | None = None,
    demand_trace: str | Path | None = None,
    episodes: int = 1,
    seed: int = 0,
    periods: int | None = None,
    check_invariants: bool = True,
    audit: bool = False,
    decision_log: bool | str | Path | None = None,
    keep: bool = False,
    reporting: EpisodeReports | None = None,
    tracking_uri: str | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    advance: Callable[[], None] | None = None,
) -> Simulation:
    """Run ``policy`` on episodes ``seed … seed + episodes − 1`` of ``loaded``.

    :param params: baseline parameters ``KEY=VALUE`` as strings (they override ``params_file``,
        a YAML written by ``invalloc tune``); a trained agent or rule table takes none.
    :param actions: the actions CSV of the ``replay`` baseline.
    :param demand_trace: CSV ``period,channel,sku,quantity`` replayed instead of random demand.
    :param decision_log: record a rule table's decisions (``result.policy.frame()``); local only.
        A path names the log file in messages (the caller writes it).
    :param keep: keep every episode's period records and books (local only).
    :param reporting: collects statements and plots (:class:`EpisodeReports`); local only.
    :param advance: called after each episode (a progress bar).
    :raises PolicyError, DemandTraceError, SimulationError, ClusterError: bad input, one line
        each (a trace: one per problem). :class:`~invalloc.sim.simulator.InvariantError` is a bug.
    """
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator

    local = executor != "ray"
    if not local and (keep or reporting is not None):
        raise SimulationError(
            "--statements/--plot: with --executor local only (the books are drawn up in this process)"
        )
    network = compile_network(loaded)
    params = dict(params or {})
    if params_file is not None:
        from invalloc.baselines.tuning import load_params

        _, from_file = load_params(Path(params_file), policy=policy, scenario=loaded.scenario.name)
        params = {**from_file, **params}
    if policy.startswith(LOADED_PREFIXES) and (params or actions is not None):
        raise SimulationError(f"--policy {policy}: takes no --param, --params or --actions")
    chosen = simulation_policy(loaded, policy, params, str(actions) if actions else None, tracking_uri)
    if decision_log:
        from invalloc.rules.decision_log import DecisionRecorder

        option = "--decision-log" if isinstance(decision_log, bool) else f"--decision-log {decision_log}"
        if not (hasattr(chosen, "table") and hasattr(chosen, "features")):
            raise SimulationError(f"{option}: {policy} is not a rule table; only rule tables log decisions")
        if not local:
            raise SimulationError(f"{option}: with --executor local only (the log is kept in this process)")
        chosen = DecisionRecorder(chosen)
    booked = keep or reporting is not None
    if booked:
        from invalloc.sim.statements import BookedSimulator as simulator_class
    else:
        simulator_class = Simulator
    try:
        simulator = simulator_class(
            network, check_invariants=check_invariants, audit=audit, demand_trace=demand_trace, periods=periods
        )
    except ValueError as error:
        from invalloc.sim.demand import DemandTraceError

        if isinstance(error, DemandTraceError):
            raise
        # An episode too large for memory.
        raise SimulationError(f"--periods {periods or loaded.scenario.episode.horizon}: {error}") from None
    result = Simulation(loaded, network, policy, chosen, [])
    calls = [(episode, seed + episode) for episode in range(episodes)]
    step = advance or (lambda: None)
    if not local:
        worker = functools.partial(
            _worker,
            str(Path(loaded.source).resolve()),
            _absolute_policy(policy),
            params,
            str(Path(actions).resolve()) if actions else None,
            str(Path(demand_trace).resolve()) if demand_trace else None,
            periods,
            check_invariants,
            audit,
            tracking_uri,
        )
        outcomes, result.nodes, result.workers = on_ray(worker, calls, policy, tracking_uri, ray_address, step)
    else:
        unmet = loaded.scenario.episode.unmet_demand

        def on_reports(episode: int, episode_seed: int, reports: list) -> None:
            if decision_log:
                chosen.end_episode(episode, episode_seed, reports, unmet)  # KPIs join the logged decisions
            if reporting is not None:
                reporting.add(episode, reports, simulator.books)
            if keep:
                result.reports.append(reports)
                result.books.append(simulator.books)

        outcomes = []
        for i, call in enumerate(calls):
            following = calls[i + 1][1] if i + 1 < len(calls) else None
            outcomes.append(
                simulate_episode(simulator, network, chosen, *call, on_reports=on_reports, next_seed=following)
            )
            step()
    result.episodes = [kpis for kpis, _ in outcomes]
    result.audit = [frame for _, frame in outcomes if frame is not None]
    return result


__all__ = ["LOADED_PREFIXES", "Simulation", "SimulationError", "run_simulation", "simulation_policy"]
