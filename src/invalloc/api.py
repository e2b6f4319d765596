"""The Python API: what the ``invalloc`` commands do, as functions that return Python objects.

``import invalloc`` makes these available as ``invalloc.load_scenario``, ``invalloc.simulate``
and so on; this module (and everything heavy it uses) loads on first use. Each function calls
the same code as its command — the command only adds printing — and raises instead of
exiting: bad input is a ``ValueError`` subclass with a one-line message naming the file, field
or option (:class:`~invalloc.config.loader.ScenarioError`,
:class:`~invalloc.sim.policy.PolicyError`, :class:`~invalloc.sim.demand.DemandTraceError`,
:class:`~invalloc.evaluation.compare.ComparisonError` …; ``error.lines()``, where there is
one, gives one line per problem).

- :func:`build_scenario` (``invalloc scenario build``): a :class:`BuiltScenario` — the scenario
  built from master-data tables and a sales history, its hold-out trace and fit report;
- :func:`load_scenario` (``invalloc scenario validate``): a validated :class:`LoadedScenario`;
- :func:`make_env`: the Gymnasium environment (:class:`~invalloc.env.allocation_env.AllocationEnv`);
- :func:`simulate` (``invalloc simulate``): a :class:`~invalloc.evaluation.simulation.Simulation`
  — KPIs per episode, period records, books and statements;
- :func:`compare` (``invalloc compare``, with ``demand_trace`` a backtest): a
  :class:`ComparisonResult` — the tables as DataFrames and the report folder;
- :func:`tune` (``invalloc tune``): a :class:`TunedBaseline` — the parameters and their file
  (``.spec``: ``NAME@FILE``);
- :func:`train` (``invalloc train``): a :class:`~invalloc.agents.training.TrainResult` — run id,
  evaluations, model URI;
- :func:`export_rules` (``invalloc export``): an :class:`ExportResult` — the rule table and its fidelity.

A session from a shipped scenario to a rule table (each step runs for seconds on ``tiny``)::

    >>> import invalloc
    >>> loaded = invalloc.load_scenario("tiny")
    >>> loaded.scenario.episode.horizon
    20
    >>> run = invalloc.simulate("tiny", "base_stock", episodes=2)
    >>> sorted(run.kpis.columns)[:3]
    ['average_inventory_value', 'backordered_units', 'contract_breaches']
    >>> trained = invalloc.train("tiny_smoke", timesteps=256, tracking_uri=uri)  # doctest: +SKIP
    >>> result = invalloc.compare("tiny", [trained.spec, "base_stock@tuned"], out="report")  # doctest: +SKIP
    >>> rules = invalloc.export_rules(trained.run_id, "rules", tracking_uri=uri)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invalloc.config.loader import LoadedScenario

if TYPE_CHECKING:
    import pandas as pd

    from invalloc.agents.training import TrainResult
    from invalloc.baselines.tuning import TuneResult
    from invalloc.env.allocation_env import AllocationEnv
    from invalloc.evaluation.results import Comparison
    from invalloc.evaluation.simulation import Simulation
    from invalloc.export.extraction import ExtractionSettings
    from invalloc.history.build import BuildResult
    from invalloc.rules.table import RuleTable

__all__ = [
    "BuiltScenario",
    "ComparisonResult",
    "ExportResult",
    "TABLE_FILES",
    "TunedBaseline",
    "LoadedScenario",
    "compare",
    "build_scenario",
    "export_rules",
    "load_scenario",
    "make_env",
    "simulate",
    "train",
    "tune",
]


def load_scenario(scenario: str | Path, overrides: Mapping[str, Any] | None = None) -> LoadedScenario:
    """Load and validate a scenario (``invalloc scenario validate``).

    :param scenario: a shipped name (``"retail"``, ``"tiny"`` …) or a YAML path.
    :param overrides: nested mapping merged over the YAML before validation, e.g.
        ``{"episode": {"horizon": 10}}``.
    :returns: the validated scenario (``.scenario``, a pydantic model), the folder its relative
        paths resolve against (``.base_dir``), its ``.source`` and ``.digest`` (sha256).
    :raises ScenarioError: every problem, one ``error.lines()`` line each with its YAML path.

    >>> import invalloc
    >>> [p.id for p in invalloc.load_scenario("tiny").scenario.products]
    ['widget', 'gadget']
    """
    from invalloc.config.loader import load_scenario as load

    return load(scenario, overrides)


#: File names :func:`build_scenario` looks for in a ``tables`` folder (as ``examples/history/`` names them).
TABLE_FILES = {
    "products": "products.csv",
    "locations": "locations.csv",
    "lanes": "lanes.csv",
    "channels": "channels.csv",
    "suppliers": "suppliers.csv",
    "stock": "stock.csv",
    "rules": "rules.yaml",
    "history": "sales.csv",
}
_REQUIRED_TABLES = ("products", "locations", "lanes", "channels", "history")


@dataclass
class BuiltScenario:
    """What :func:`build_scenario` wrote.

    :param result: :class:`~invalloc.history.build.BuildResult` — the scenario's path, every file
        written, SKUs, channels, series by demand model, the fitted window, the horizon.
    """

    result: BuildResult

    @property
    def path(self) -> Path:
        """The scenario YAML (what every other function takes as ``scenario``)."""
        return Path(self.result.scenario)

    @property
    def holdout(self) -> Path | None:
        """The held-out periods as a demand trace (``demand_trace`` of :func:`compare`), or None."""
        from invalloc.history.build import HOLDOUT_FILE

        return next((Path(p) for p in self.result.files if Path(p).name == HOLDOUT_FILE), None)

    @property
    def fit_report(self) -> dict[str, Any] | None:
        """The fit report's JSON (``fit_report=`` folder), or None when none was written."""
        import json

        path = next((Path(p) for p in self.result.files if Path(p).suffix == ".json"), None)
        return None if path is None else json.loads(path.read_text(encoding="utf-8"))

    @property
    def fit_series(self) -> pd.DataFrame:
        """The fit report's key table: per channel × SKU the chosen ``model`` (``none``: never
        sold), its ``mean``, ``std``, ``trend`` and season ``amplitude``, the hold-out MAE of the
        model and of the naive forecast, the ``verdict``, the periods flagged ``stockout`` and
        the ``total_units`` sold."""
        import pandas as pd

        report = self.fit_report
        if report is None:
            raise ValueError("no fit report was written: build with fit_report=FOLDER")
        rows = []
        for item in report["series"]:
            holdout = item.get("holdout") or {}
            season = item.get("seasonality") or {}
            rows.append(
                {
                    "channel": item["channel"],
                    "sku": item["sku"],
                    "model": item["model"],
                    "candidate": item.get("candidate"),
                    "mean": item.get("mean"),
                    "std": item.get("std"),
                    "trend": item.get("trend"),
                    "amplitude": season.get("amplitude"),
                    "holdout_mae": holdout.get("model_mae"),
                    "naive_mae": holdout.get("naive_mae"),
                    "verdict": item.get("verdict"),
                    "censored_periods": item.get("censored_periods"),
                    "total_units": item.get("total_units"),
                }
            )
        return pd.DataFrame(rows)

    def load(self) -> LoadedScenario:
        """The built scenario, loaded and validated."""
        return load_scenario(self.path)


def build_scenario(
    out: str | Path,
    tables: str | Path | None = None,
    *,
    products: str | Path | None = None,
    locations: str | Path | None = None,
    lanes: str | Path | None = None,
    channels: str | Path | None = None,
    history: str | Path | None = None,
    suppliers: str | Path | None = None,
    stock: str | Path | None = None,
    rules: str | Path | None = None,
    name: str | None = None,
    holdout_periods: int = 0,
    horizon: int | None = None,
    method: str = "model",
    fit_report: str | Path | None = None,
    period_days: int | None = None,
) -> BuiltScenario:
    """Build a validated scenario from master-data tables and a sales history (``invalloc scenario build``).

    :param out: the scenario YAML to write (the hold-out trace and fitted files go next to it).
    :param tables: a folder holding the tables under the names of :data:`TABLE_FILES`
        (``products.csv`` … ``sales.csv``, as ``examples/history/``); a path given by name
        overrides the folder's file, and optional files (suppliers, stock, rules) the folder lacks
        are left out.
    :param holdout_periods: the last periods of the history kept out of the fit and written as
        ``holdout.csv`` for a backtest (:attr:`BuiltScenario.holdout`).
    :param method: ``model`` (fit Poisson, negative binomial, normal with trend and season per
        channel × SKU) or ``bootstrap`` (block-resample the history).
    :param fit_report: folder for the fit report (HTML + JSON; :attr:`BuiltScenario.fit_series`).
    :raises BuildError: every problem of every file (``file:row:column: message``), one line each;
        nothing is written.

    >>> built = invalloc.build_scenario("my/company.yaml", tables="examples/history",
    ...                                 holdout_periods=26, fit_report="my/fit")  # doctest: +SKIP
    >>> built.fit_series.groupby("model").size()  # doctest: +SKIP
    """
    from invalloc.history.build import BuildError
    from invalloc.history.build import build_scenario as build
    from invalloc.history.tables import TablePaths

    given = {
        "products": products,
        "locations": locations,
        "lanes": lanes,
        "channels": channels,
        "history": history,
        "suppliers": suppliers,
        "stock": stock,
        "rules": rules,
    }
    paths: dict[str, Path | None] = {}
    for key, value in given.items():
        found = Path(tables) / TABLE_FILES[key] if tables is not None else None
        paths[key] = Path(value) if value is not None else (found if found is not None and found.is_file() else None)
    missing = [key for key in _REQUIRED_TABLES if paths[key] is None]
    if missing:
        where = f"in {tables}" if tables is not None else "(no tables folder given)"
        raise BuildError(
            [f"--{key}: give {key}=PATH or a tables folder holding {TABLE_FILES[key]} {where}" for key in missing]
        )
    result = build(
        TablePaths(
            paths["products"], paths["locations"], paths["lanes"], paths["channels"], paths["suppliers"], paths["stock"]
        ),
        paths["history"],
        Path(out),
        rules_path=paths["rules"],
        name=name,
        holdout_periods=holdout_periods,
        horizon=horizon,
        method=method,
        fit_report=Path(fit_report) if fit_report is not None else None,
        period_days=period_days,
    )
    return BuiltScenario(result)


def make_env(scenario: str | Path = "retail", **options: Any) -> AllocationEnv:
    """The Gymnasium environment of a scenario, one step a period (``invalloc/Allocation-v0``).

    :param options: the env's arguments (``action_mode``, ``observation``, ``periods``,
        ``discount_rewards`` …): see :class:`~invalloc.env.allocation_env.AllocationEnv`.
    :raises ScenarioError: a bad scenario; ``ValueError`` naming a bad option.

    >>> import invalloc
    >>> env = invalloc.make_env("tiny")
    >>> observation, info = env.reset(seed=0)
    >>> observation.shape == env.observation_space.shape
    True
    """
    from invalloc.env.allocation_env import AllocationEnv

    return AllocationEnv(scenario, **options)


def simulate(
    scenario: str | Path | LoadedScenario = "retail",
    policy: str = "base_stock",
    *,
    params: Mapping[str, Any] | None = None,
    params_file: str | Path | None = None,
    actions: str | Path | None = None,
    demand_trace: str | Path | None = None,
    episodes: int = 1,
    seed: int = 0,
    periods: int | None = None,
    check_invariants: bool = True,
    tracking_uri: str | None = None,
    statements: str | Path | None = None,
    plot: str | Path | None = None,
    plot_skus: Sequence[str] | None = None,
    plot_dcs: Sequence[str] | None = None,
) -> Simulation:
    """Run one policy over episodes ``seed … seed + episodes − 1`` (``invalloc simulate``).

    :param policy: a baseline (``base_stock``, ``s_S``, ``proportional``, ``priority``,
        ``fixed_split``, ``fixed``, ``replay``, ``oracle``), ``run:RUN_ID`` or
        ``models:/NAME@ALIAS`` (a trained agent), ``rules:DIR`` (an exported rule table).
    :param params: baseline parameters (``{"cover": 2.5}``); they override ``params_file``
        (a YAML written by ``invalloc tune``).
    :param demand_trace: CSV ``period,channel,sku,quantity`` replayed instead of random demand.
    :param statements: write each episode's financial statements (CSV, xlsx, JSON) here.
    :param plot: draw the first episode's trajectories (PNG + CSV) here, for ``plot_skus``
        (default: the top 3 by revenue) at ``plot_dcs`` (default: every DC).
    :returns: every episode's KPIs (``.kpis``, a DataFrame; ``.summary``: mean and 95% CI),
        its period records (``.reports``) and books (``.books``; ``.statements(i)``), and the
        files written (``.written``).
    :raises ScenarioError, PolicyError, DemandTraceError, SimulationError, ReportingError:
        bad input; ``InvariantError``: a simulator bug.

    >>> import invalloc
    >>> run = invalloc.simulate("tiny", "base_stock", params={"cover": 2.0}, episodes=2, seed=5)
    >>> [row["seed"] for row in run.episodes], len(run.reports[0]) == len(run.books[0].collected)
    ([5, 6], True)
    >>> bool(run.statements(0).reconciled)
    True
    """
    from invalloc.evaluation.simulation import run_simulation

    loaded = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario)
    reporting = None
    if statements is not None or plot is not None or plot_skus or plot_dcs:
        from invalloc.evaluation.episode_reports import EpisodeReports
        from invalloc.sim.network import compile_network

        reporting = EpisodeReports.checked(
            compile_network(loaded),
            Path(statements) if statements is not None else None,
            Path(plot) if plot is not None else None,
            plot_skus,
            plot_dcs,
        )
    result = run_simulation(
        loaded,
        policy,
        params={str(k): str(v) for k, v in (params or {}).items()},
        params_file=params_file,
        actions=actions,
        demand_trace=demand_trace,
        episodes=episodes,
        seed=seed,
        periods=periods,
        check_invariants=check_invariants,
        keep=True,
        reporting=reporting,
        tracking_uri=tracking_uri,
    )
    if reporting is not None:
        result.written = reporting.write(getattr(result.policy, "name", None), policy)
    return result


@dataclass
class ComparisonResult:
    """What :func:`compare` produced.

    :param comparison: everything (:class:`~invalloc.evaluation.results.Comparison`): specs,
        per-episode results, the long tables, settings.
    :param report: the report's ``report.html``; ``folder`` the folder holding it, its PNG plots,
        the tables as CSV, and ``statements/`` and ``trajectories/`` of episode 0.
    """

    comparison: Comparison
    report: Path

    @property
    def folder(self) -> Path:
        return self.report.parent

    @property
    def labels(self) -> dict[str, str]:
        """Spec → the short label every table and plot shows (a run's name, ``NAME@ALIAS``)."""
        return self.comparison.short_labels

    @property
    def reference(self) -> str:
        """The spec every other policy is measured against."""
        return self.comparison.reference

    @property
    def kpis(self) -> pd.DataFrame:
        """Per policy and KPI: ``mean``, ``ci_low``, ``ci_high`` (95%), ``std``, ``n``; ``label`` first."""
        return self._labelled(self.comparison.kpis)

    @property
    def paired(self) -> pd.DataFrame:
        """Per other policy and KPI: the paired difference from the reference, its CI, p and verdict."""
        return self._labelled(self.comparison.paired)

    @property
    def gap(self) -> pd.DataFrame | None:
        """With the oracle among the policies: the share of the reference-to-bound gap each closes."""
        return None if self.comparison.gap is None else self._labelled(self.comparison.gap)

    @property
    def table(self) -> pd.DataFrame:
        """The report's KPI table: KPI rows × policy columns (short labels), ``mean [95% CI]`` as text."""
        from invalloc.evaluation.report import kpi_wide

        return kpi_wide(self.comparison)

    @property
    def mlflow_run_id(self) -> str | None:
        return self.comparison.mlflow_run_id

    def _labelled(self, frame: pd.DataFrame) -> pd.DataFrame:
        labelled = frame.copy()
        labelled.insert(0, "label", [self.comparison.label(text) for text in frame["policy"]])
        return labelled

    def to_dict(self) -> dict[str, Any]:
        """What ``invalloc compare --json`` prints."""
        return {**self.comparison.to_dict(), "report": str(self.report)}


def compare(
    scenario: str | Path,
    policies: Sequence[str],
    *,
    episodes: int | None = None,
    seed: int | None = None,
    reference: str | None = None,
    out: str | Path | None = None,
    demand_trace: str | Path | None = None,
    tracking_uri: str | None = None,
    processes: int | None = None,
    check_invariants: bool = True,
    progress: bool = False,
) -> ComparisonResult:
    """Compare policies on identical demand and write the HTML report (``invalloc compare``).

    Episode ``i`` runs on seed ``seed + i`` for every policy (common random numbers), so the
    differences are paired; with ``demand_trace`` every episode replays the trace instead (a
    backtest; one episode unless ``episodes`` says more).

    :param policies: policy specs: a baseline ``NAME[@PARAMS.yaml][:KEY=VALUE…]`` (``@tuned``:
        the parameters shipped for the scenario), ``oracle``, ``run:RUN_ID``,
        ``models:/NAME@ALIAS``, ``rules:DIR``.
    :param episodes: None: 20, or 1 with ``demand_trace``.
    :param seed: seed of episode 0 (None: 10,000, away from ``invalloc tune``'s training seeds).
    :param reference: spec the others are measured against (None: the best baseline).
    :param out: the report folder (None: ``comparison_<scenario>``; an earlier report is replaced).
    :param tracking_uri: the MLflow store learned policies load from and the comparison is logged
        to (None: ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``).
    :param processes: worker processes (None: decided from the first episode's cost).
    :raises ComparisonError, PolicyError, ScenarioError, DemandTraceError, TrackingError: bad input.

    >>> import invalloc
    >>> result = invalloc.compare("tiny", ["base_stock", "priority"], episodes=3, out=folder,
    ...                           tracking_uri=uri)  # doctest: +SKIP
    >>> result.paired.query("kpi == 'total_reward'")[["label", "mean_difference", "verdict"]]  # doctest: +SKIP
    """
    from invalloc.evaluation.command import DEFAULT_SEED, compare_to_folder

    comparison, report = compare_to_folder(
        scenario,
        list(policies),
        episodes=episodes,
        seed=DEFAULT_SEED if seed is None else seed,
        reference=reference,
        out=out,
        demand_trace=demand_trace,
        tracking_uri=tracking_uri,
        processes=processes,
        progress=progress,
        check_invariants=check_invariants,
    )
    return ComparisonResult(comparison, report)


def train(
    experiment: str | Path,
    *,
    timesteps: int | None = None,
    seed: int | None = None,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    register: str | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train an experiment's agent, tracked in MLflow (``invalloc train``).

    :param experiment: a shipped experiment name (``tiny_smoke``, ``retail_ars_quick`` …) or a YAML path.
    :param timesteps: override the experiment's training steps (short runs for a first look).
    :param run_name: the MLflow run's name (default ``EXPERIMENT-SCENARIO-sSEED``): the label the
        policy has in comparisons.
    :param register: also register the best policy as this MLflow model (alias-able:
        ``models:/NAME@ALIAS``).
    :returns: ``run_id`` (``spec``: ``run:RUN_ID``, what :func:`simulate` and :func:`compare`
        take), ``best_reward`` and ``best_at`` of the evaluations (``evaluations``), ``model_uri``.
    :raises ExperimentError, TrackingError: bad input, before anything starts; ``TrainingFailed``:
        training raised (the run is FAILED).

    >>> trained = invalloc.train("tiny_smoke", timesteps=256, tracking_uri=uri)  # doctest: +SKIP
    >>> trained.spec  # doctest: +SKIP
    'run:9c1e…'
    """
    from invalloc.agents.training import train as run_training

    return run_training(
        experiment, timesteps=timesteps, seed=seed, tracking_uri=tracking_uri, run_name=run_name,
        register=register, progress=progress,
    )  # fmt: skip


@dataclass
class TunedBaseline:
    """What :func:`tune` produced: the search's result and the parameters file written.

    :param result: :class:`~invalloc.baselines.tuning.TuneResult` — ``params``, ``mean_reward``
        on the training seeds (in-sample), every candidate evaluated.
    :param file: the parameters YAML (what ``invalloc tune --out`` writes).
    """

    result: TuneResult
    file: Path

    @property
    def spec(self) -> str:
        """The tuned policy as a ``--policy`` spec: ``NAME@FILE``."""
        return f"{self.result.policy}@{self.file}"

    @property
    def params(self) -> dict[str, str]:
        return dict(self.result.params)


def tune(
    scenario: str | Path,
    policy: str = "base_stock",
    out: str | Path | None = None,
    *,
    seeds: str | Sequence[int] = "0-49",
    budget: int | None = None,
    search_seed: int = 0,
    progress: bool = False,
) -> TunedBaseline:
    """Find a rule-based policy's best parameters on training seeds and write them (``invalloc tune``).

    :param policy: ``base_stock``, ``s_S``, ``proportional``, ``priority`` or ``fixed_split``.
    :param out: the parameters YAML (None: ``<scenario>_<policy>_tuned.yaml`` here).
    :param seeds: training seeds, ``"0-49"`` or a list (every candidate runs on all of them).
    :param budget: most candidates to evaluate (None: the command's default).
    :returns: the result and the file; ``.spec`` (``NAME@FILE``) is what :func:`compare` takes.
    :raises PolicyError, ScenarioError, ValueError: bad input, before the search.

    >>> tuned = invalloc.tune("tiny", "base_stock", "tuned.yaml", seeds="0-9", budget=20)  # doctest: +SKIP
    >>> tuned.spec  # doctest: +SKIP
    'base_stock@tuned.yaml'
    """
    from invalloc.baselines.tuning import DEFAULT_BUDGET, parse_seeds, save_params
    from invalloc.baselines.tuning import tune as run_tune

    name = load_scenario(scenario).scenario.name
    training = parse_seeds(seeds) if isinstance(seeds, str) else [int(s) for s in seeds]
    result = run_tune(scenario, policy, training, budget=budget or DEFAULT_BUDGET, seed=search_seed, progress=progress)
    return TunedBaseline(result, save_params(result, out or Path(f"{name}_{policy}_tuned.yaml")))


@dataclass
class ExportResult:
    """What :func:`export_rules` produced.

    :param folder: the rule table's folder (``rules.csv``, ``rules.json``, ``rules.dmn``,
        ``manifest.json``, the audit log) — ``spec`` (``rules:DIR``) is what :func:`simulate`
        and :func:`compare` take.
    :param manifest: the manifest: fidelity, KPI retention, provenance, registry entry.
    """

    folder: Path
    manifest: dict[str, Any]

    @property
    def spec(self) -> str:
        return f"rules:{self.folder}"

    @property
    def fidelity(self) -> dict[str, Any]:
        """Share of decisions the table reproduces, on its own states and on the teacher's."""
        return dict(self.manifest["fidelity"])

    @property
    def rules(self) -> pd.DataFrame:
        """The rule table as a reviewer reads it: one row per rule, conditions and outputs (``rules.csv``)."""
        import pandas as pd

        from invalloc.rules.formats import FILE_NAMES

        return pd.read_csv(self.folder / FILE_NAMES["csv"])

    @property
    def table(self) -> RuleTable:
        """The verified table itself (:class:`~invalloc.rules.table.RuleTable`)."""
        from invalloc.rules import load_rule_table

        return load_rule_table(self.folder)[0]

    def summary(self) -> str:
        """The line ``invalloc export`` prints: rules, fidelity, profit retention, registry."""
        from invalloc.export import summary_line

        return summary_line(self.folder, self.manifest)


def export_rules(
    run_id: str,
    out: str | Path,
    *,
    tracking_uri: str | None = None,
    scenario: str | Path | None = None,
    settings: ExtractionSettings | None = None,
    register: str | None = "",
) -> ExportResult:
    """Turn a trained policy into a verified rule table (``invalloc export``).

    :param run_id: the MLflow run of the trained policy (:attr:`TrainResult.run_id`).
    :param out: the table's folder (must be new, empty or an earlier rule table).
    :param scenario: the scenario file or name (None: the one logged with the run).
    :param settings: :class:`~invalloc.export.extraction.ExtractionSettings` (rules, DAgger
        iterations, episodes; None: the command's defaults).
    :param register: registered model name; ``""``: ``invalloc-rules-<scenario>``; None: do not register.
    :raises ExportError, RuleTableError, PolicyError, TrackingError, ScenarioError: bad input or
        a table that fails verification.

    >>> rules = invalloc.export_rules(trained.run_id, "rules/tiny", tracking_uri=uri)  # doctest: +SKIP
    >>> rules.fidelity["on_table_states"]  # doctest: +SKIP
    0.97
    """
    from invalloc.export import export_rule_table

    manifest = export_rule_table(
        run_id, out, tracking_uri, settings=settings, scenario=str(scenario) if scenario else None, register=register
    )
    return ExportResult(Path(out), manifest)
