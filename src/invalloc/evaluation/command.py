"""``invalloc compare``: the typer command (registered in :mod:`invalloc.cli`).

Bad input — an unknown policy, a run or model that cannot be loaded, a model trained on
another scenario, a malformed scenario, an unusable ``--out`` folder or tracking store —
prints one ``error:`` line on standard error and exits with code 2, before any episode runs
and without touching ``--out``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from invalloc.cluster import ADDRESS_HELP, EXECUTOR_HELP, ray_line
from invalloc.console import error_console, fail

if TYPE_CHECKING:
    from invalloc.evaluation.results import Comparison

DEFAULT_EPISODES = 20
#: Held out from ``invalloc tune``'s default training seeds (0–49), as the README's evaluations are.
DEFAULT_SEED = 10_000
#: Most episodes one comparison runs, and most worker processes.
MAX_EPISODES = 1_000_000
MAX_PROCESSES = 256


def _fail(lines: list[str], code: int = 2) -> NoReturn:
    fail(lines, code)


def compare_to_folder(
    scenario: str | Path,
    policies: list[str],
    *,
    episodes: int | None = None,
    seed: int = DEFAULT_SEED,
    reference: str | None = None,
    out: str | Path | None = None,
    demand_trace: str | Path | None = None,
    tracking_uri: str | None = None,
    processes: int | None = None,
    progress: bool = False,
    check_invariants: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
) -> tuple[Comparison, Path]:
    """Run a comparison and write its report folder: ``invalloc compare`` before it prints.

    :param episodes: None: :data:`DEFAULT_EPISODES`, or 1 with ``demand_trace`` (a backtest).
    :param out: the report folder (None: ``comparison_<scenario name>``); an earlier report in it
        is replaced, any other content refuses.
    :returns: the comparison and the path of its ``report.html``.
    :raises ComparisonError: a bad number, an unusable ``out`` (also when writing fails).
        Also ``ScenarioError``, ``DemandTraceError`` (one line per problem), ``PolicyError``,
        ``TrackingError``, ``ClusterError``; see :func:`~invalloc.evaluation.compare.run_comparison`.
    """
    from invalloc.cluster import check_executor
    from invalloc.config.loader import load_scenario
    from invalloc.evaluation.compare import ComparisonError, run_comparison
    from invalloc.evaluation.report import check_out_dir, write_report

    if episodes is None:
        episodes = 1 if demand_trace is not None else DEFAULT_EPISODES
    if not 1 <= episodes <= MAX_EPISODES:
        raise ComparisonError(f"--episodes {episodes}: must be from 1 to {MAX_EPISODES:,}")
    if processes is not None and not 1 <= processes <= MAX_PROCESSES:
        raise ComparisonError(f"--processes {processes}: must be from 1 to {MAX_PROCESSES}")
    check_executor(executor, ray_address)
    name = load_scenario(scenario).scenario.name
    folder = Path(out) if out is not None else Path(f"comparison_{name}")
    # The report is drawn once, for the MLflow run, and copied into ``folder``.
    rendered = Path(tempfile.mkdtemp(prefix="invalloc-report-"))
    try:
        check_out_dir(folder)
        comparison = run_comparison(
            str(scenario),
            list(policies),
            episodes,
            seed,
            reference=reference,
            tracking_uri=tracking_uri,
            processes=processes,
            progress=progress,
            check_invariants=check_invariants,
            executor=executor,
            ray_address=ray_address,
            demand_trace=str(demand_trace) if demand_trace is not None else None,
            rendered_report=rendered,
        )
        report = write_report(comparison, folder, rendered)
    except OSError as error:
        raise ComparisonError(f"--out {folder}: cannot write the report ({error.strerror or error})") from None
    finally:
        shutil.rmtree(rendered, ignore_errors=True)
    return comparison, report


def compare(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario YAML path or shipped name.")] = "retail",
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help="Policy spec (repeat): a baseline NAME\\[@PARAMS.yaml]\\[:KEY=VALUE…] such as base_stock, "
            "base_stock@tuned.yaml or base_stock:cover=2.5; oracle; run:RUN_ID; models:/NAME@ALIAS; rules:DIR.",
        ),
    ] = None,
    episodes: Annotated[
        int | None,
        typer.Option(
            "--episodes",
            help=f"Episodes, seed+i for episode i (default {DEFAULT_EPISODES}; 1 with --demand-trace).",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=2**62, help="Seed of the first episode (default: held out from tune).")
    ] = (DEFAULT_SEED),
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="Spec the others are measured against (default: the best baseline)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: comparison_<scenario>); replaced if a report.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tables as one JSON object.")] = False,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or ./mlflow.db).")
    ] = None,
    processes: Annotated[
        int | None, typer.Option("--processes", help="Worker processes (default: decided from the first episode).")
    ] = None,
    check_invariants: Annotated[
        bool, typer.Option("--check-invariants/--no-check-invariants", help="Check the books every period.")
    ] = True,
    demand_trace: Annotated[
        Path | None,
        typer.Option(
            "--demand-trace",
            help="Backtest: every episode replays this CSV period,channel,sku,quantity (e.g. held-out history) "
            "instead of random demand.",
        ),
    ] = None,
    executor: Annotated[str, typer.Option("--executor", help=EXECUTOR_HELP)] = "local",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=ADDRESS_HELP)] = None,
) -> None:
    """Compare policies on identical demand: KPIs with 95% CIs, paired differences, plots, an HTML report.

    Episode i runs on seed+i for every policy, so all meet the same demand. With --demand-trace every
    episode replays the trace (a backtest; one episode unless --episodes says more).

    --out gets report.html, its PNG plots and the tables as CSV; MLflow gets one run.
    """
    from invalloc.cluster import ClusterError
    from invalloc.config.loader import ScenarioError
    from invalloc.evaluation.compare import ComparisonError
    from invalloc.sim.demand import DemandTraceError
    from invalloc.sim.policy import PolicyError
    from invalloc.sim.simulator import InvariantError
    from invalloc.tracking import TrackingError

    if not policy:
        _fail(["--policy: give at least two policy specs to compare (e.g. --policy base_stock --policy priority)"])
    try:
        comparison, report = compare_to_folder(
            scenario,
            list(policy),
            episodes=episodes,
            seed=seed,
            reference=reference,
            out=out,
            demand_trace=demand_trace,
            tracking_uri=tracking_uri,
            processes=processes,
            progress=True,
            check_invariants=check_invariants,
            executor=executor,
            ray_address=ray_address,
        )
    except ScenarioError as error:
        _fail(error.lines())
    except DemandTraceError as error:
        _fail(error.lines())
    except (PolicyError, ComparisonError, TrackingError, ClusterError) as error:
        _fail([str(error)], getattr(error, "exit_code", 2))
    except InvariantError as error:  # not bad input: exit 1
        _fail([f"invariant broken (a simulator bug, please report): {error}"], 1)
    if comparison.nodes:
        error_console.print(ray_line(comparison.processes, comparison.nodes), markup=False)
    if as_json:
        print(json.dumps({**comparison.to_dict(), "report": str(report)}, allow_nan=False))
        return
    from rich.console import Console

    from invalloc.evaluation.report import print_tables

    console = Console(emoji=False)
    print_tables(comparison, console)
    console.print(f"report: {report}", markup=False)
    if comparison.mlflow_run_id:
        console.print(f"MLflow run {comparison.mlflow_run_id} in {comparison.tracking_uri}", markup=False)
