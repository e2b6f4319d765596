"""``invalloc compare``: the typer command (registered in :mod:`invalloc.cli`).

Bad input — an unknown policy, a run or model that cannot be loaded, a model trained on
another scenario, a malformed scenario, an unusable ``--out`` folder or tracking store —
prints one ``error:`` line on standard error and exits with code 2, before any episode runs
and without touching ``--out``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from invalloc.cluster import ADDRESS_HELP, EXECUTOR_HELP, ray_line
from invalloc.console import error_console, fail

DEFAULT_EPISODES = 20
#: Held out from ``invalloc tune``'s default training seeds (0–49), as the README's evaluations are.
DEFAULT_SEED = 10_000
#: Most episodes one comparison runs, and most worker processes.
MAX_EPISODES = 1_000_000
MAX_PROCESSES = 256


def _fail(lines: list[str], code: int = 2) -> NoReturn:
    fail(lines, code)


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
    episodes: Annotated[int, typer.Option("--episodes", help="Episodes; episode i uses seed+i for every policy.")] = (
        DEFAULT_EPISODES
    ),
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
    executor: Annotated[str, typer.Option("--executor", help=EXECUTOR_HELP)] = "local",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=ADDRESS_HELP)] = None,
) -> None:
    """Compare policies on identical demand: KPIs with 95% CIs, paired differences, plots, an HTML report.

    Episode i runs on seed+i for every policy, so all meet the same demand.

    --out gets report.html, its PNG plots and the tables as CSV; MLflow gets one run.
    """
    from invalloc.cluster import ClusterError, check_executor
    from invalloc.config.loader import ScenarioError, load_scenario
    from invalloc.evaluation.compare import ComparisonError, run_comparison
    from invalloc.evaluation.report import check_out_dir, print_tables, write_report
    from invalloc.sim.policy import PolicyError
    from invalloc.sim.simulator import InvariantError
    from invalloc.tracking import TrackingError

    if not policy:
        _fail(["--policy: give at least two policy specs to compare (e.g. --policy base_stock --policy priority)"])
    if not 1 <= episodes <= MAX_EPISODES:
        _fail([f"--episodes {episodes}: must be from 1 to {MAX_EPISODES:,}"])
    if processes is not None and not 1 <= processes <= MAX_PROCESSES:
        _fail([f"--processes {processes}: must be from 1 to {MAX_PROCESSES}"])
    try:
        check_executor(executor, ray_address)
    except ClusterError as error:
        _fail([str(error)])
    try:
        name = load_scenario(scenario).scenario.name
    except ScenarioError as error:
        _fail(error.lines())
    folder = out if out is not None else Path(f"comparison_{name}")
    try:
        check_out_dir(folder)
        comparison = run_comparison(
            scenario,
            list(policy),
            episodes,
            seed,
            reference=reference,
            tracking_uri=tracking_uri,
            processes=processes,
            progress=True,
            check_invariants=check_invariants,
            executor=executor,
            ray_address=ray_address,
        )
        report = write_report(comparison, folder)
    except ScenarioError as error:
        _fail(error.lines())
    except (PolicyError, ComparisonError, TrackingError, ClusterError) as error:
        _fail([str(error)], getattr(error, "exit_code", 2))
    except InvariantError as error:  # not bad input: exit 1
        _fail([f"invariant broken (a simulator bug, please report): {error}"], 1)
    except OSError as error:
        _fail([f"--out {folder}: cannot write the report ({error.strerror or error})"])
    if comparison.nodes:
        error_console.print(ray_line(comparison.processes, comparison.nodes), markup=False)
    if as_json:
        print(json.dumps({**comparison.to_dict(), "report": str(report)}, allow_nan=False))
        return
    from rich.console import Console

    console = Console(emoji=False)
    print_tables(comparison, console)
    console.print(f"report: {report}", markup=False)
    if comparison.mlflow_run_id:
        console.print(f"MLflow run {comparison.mlflow_run_id} in {comparison.tracking_uri}", markup=False)
