"""``invalloc rules monitor`` and ``invalloc rules challenge``: a rule table in production.

``monitor`` checks a decision log against the active table (:mod:`invalloc.rules.monitor`);
``challenge`` compares a challenger table with the champion on common random numbers and
marks the challenger in the registry when it is better (:mod:`invalloc.governance.challenge`).
Heavy imports happen inside the commands. Bad input prints one ``error:`` line and exits
with code 2; a monitor that finds drift beyond a threshold prints one ``alert:`` line and
exits with code 3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from invalloc.console import console, error_console, fail, first_line


def load_active_table(spec: str, tracking_uri: str | None = None):
    """The table and manifest of ``spec``: a rule table directory (``DIR`` or ``rules:DIR``) or a
    registered rule table (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``).

    :raises RuleTableError: one line naming the file or model (as every load, the table is verified;
        a registered one must also hold the content its version was registered with).
    """
    from invalloc.rules.manifest import load_rule_table
    from invalloc.rules.table import RuleTableError

    text = str(spec).strip()
    if text.startswith(("models:/", "runs:/")):
        from invalloc.rules.registry import load_registered_table

        return load_registered_table(text, tracking_uri)
    if text.startswith("run:"):
        raise RuleTableError(f"{text}: a trained agent, not a rule table (give DIR, rules:DIR or models:/NAME@ALIAS)")
    directory = Path(text.removeprefix("rules:"))
    if not directory.is_dir():
        raise RuleTableError(f"{directory}: no such rule table directory")
    return load_rule_table(directory)


def monitor(
    table: Annotated[
        str,
        typer.Argument(help="The active rule table: its directory (DIR or rules:DIR) or models:/NAME@ALIAS."),
    ],
    log: Annotated[
        Path, typer.Option("--log", help="Decision log (.csv or .parquet), e.g. from `simulate --decision-log`.")
    ],
    max_out_of_range: Annotated[
        float,
        typer.Option("--max-out-of-range", help="Alert above this share of states outside the export's ranges."),
    ] = 0.05,
    max_psi: Annotated[
        float, typer.Option("--max-psi", help="Alert above this PSI of the rules' hit rates (when significant).")
    ] = 0.25,
    max_kpi_drift: Annotated[
        float,
        typer.Option("--max-kpi-drift", help="Alert above this relative drift of fill rate or reward per period."),
    ] = 0.10,
    max_overrides: Annotated[
        float, typer.Option("--max-overrides", help="Alert above this share of periods decided otherwise.")
    ] = 0.05,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write monitor.html, monitor.json and the plot into this folder.")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri", help="MLflow store of a models:/ table (default: $MLFLOW_TRACKING_URI, else local)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a decision log against the active table: coverage, hit-rate drift, KPI drift, overrides.

    Exit 0 when every check passes, 3 with one `alert:` line when one does not, 2 on bad input.
    """
    from invalloc.rules.monitor import (
        ALERT_EXIT_CODE,
        MonitorError,
        Thresholds,
        check_report_dir,
        read_decision_log,
        write_report,
    )
    from invalloc.rules.monitor import monitor as run_monitor
    from invalloc.rules.table import RuleTableError

    thresholds = Thresholds(max_out_of_range, max_psi, max_kpi_drift, max_overrides)
    problems = thresholds.problems()
    if report is not None:
        try:
            check_report_dir(report)
        except MonitorError as error:
            problems.append(str(error))
    if problems:
        fail(problems)
    try:
        frame = read_decision_log(log)
        rule_table, manifest = load_active_table(table, tracking_uri)
        result = run_monitor(rule_table, manifest, frame, log, thresholds)
    except (MonitorError, RuleTableError) as error:
        fail([first_line(error)])
    if report is not None:
        try:
            write_report(result, report)
        except (ValueError, OSError) as error:  # MonitorError is a ValueError
            fail([f"--report {report}: cannot be written ({first_line(error)})"])
    if as_json:
        print(json.dumps(result))
    else:
        for check in result["checks"]:
            mark = "ok   " if check["passed"] else "ALERT"
            console.print(f"{mark} {check['name']}: {check['note']}", markup=False)
        if report is not None:
            console.print(f"report written to {report}", markup=False)
    if result["status"] != "pass":
        error_console.print(f"alert: {result['reason']}", markup=False)
        raise typer.Exit(code=ALERT_EXIT_CODE)


def challenge(
    champion: Annotated[
        str, typer.Option("--champion", help="The table in production: rules:DIR or models:/NAME@champion.")
    ],
    challenger: Annotated[
        str,
        typer.Option(
            "--challenger", help="A registered table to try: rules:DIR (exported with registration) or models:/…"
        ),
    ],
    scenario: Annotated[
        str | None,
        typer.Option("--scenario", help="Scenario to compare on (default: the one the tables were exported on)."),
    ] = None,
    demand_trace: Annotated[
        Path | None,
        typer.Option(
            "--demand-trace",
            help="Compare on this demand (CSV period,channel,sku,quantity, e.g. recent sales) instead of the "
            "scenario's random demand.",
        ),
    ] = None,
    episodes: Annotated[int, typer.Option("--episodes", min=2, max=100_000, help="Paired episodes.")] = 30,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**62, help="Seed of the first episode.")] = 10_000,
    processes: Annotated[
        int | None,
        typer.Option("--processes", min=1, help="Worker processes (default: decided from the first episode)."),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compare a challenger table with the champion on common random numbers; alias it `challenger` if better.

    The alias is set only when the challenger's mean total reward beats the champion's with the
    paired 95% CI above 0. Promotion to champion still needs `invalloc rules approve`.
    """
    import math

    from invalloc.config.loader import ScenarioError
    from invalloc.evaluation.compare import ComparisonError
    from invalloc.governance.challenge import CHALLENGER_ALIAS, ChallengeError, run_challenge
    from invalloc.rules.table import RuleTableError
    from invalloc.sim.demand import DemandTraceError
    from invalloc.sim.policy import PolicyError
    from invalloc.sim.simulator import InvariantError
    from invalloc.tracking import TrackingError

    try:
        result = run_challenge(
            champion,
            challenger,
            scenario,
            episodes,
            seed,
            tracking_uri,
            processes,
            progress=not as_json,
            demand_trace=demand_trace,
        )
    except (ScenarioError, DemandTraceError) as error:
        fail(error.lines())
    except PolicyError as error:  # RuleTableError is one; a solver failure has its own exit code
        fail([first_line(error)], getattr(error, "exit_code", 2))
    except (ChallengeError, ComparisonError, RuleTableError, TrackingError, OSError) as error:
        fail([first_line(error)])
    except InvariantError as error:
        fail([f"invariant broken (a simulator bug, please report): {first_line(error)}"], 1)
    except Exception as error:  # MLflow's own errors (no common base without importing it first)
        if type(error).__module__.startswith("mlflow"):
            fail([f"tracking: {first_line(error)}"])
        raise
    if as_json:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
        print(json.dumps(clean))
        return
    console.print(
        f"{result['challenger']} against {result['champion']} on {result['scenario']}, {result['episodes']} paired "
        f"episodes (seeds {result['seeds'][0]}–{result['seeds'][1]}): total reward {result['mean_difference']:+,.2f} "
        f"per episode, 95% CI [{result['ci_low']:+,.2f}, {result['ci_high']:+,.2f}] — {result['verdict']}"
        + (f" (demand from {result['demand_trace']})" if result["demand_trace"] else ""),
        markup=False,
    )
    where = f"{result['model_name']} v{result['version']}"
    if result["alias_set"]:
        console.print(
            f"alias {CHALLENGER_ALIAS} set on {where}; promote it with `invalloc rules approve` after review",
            markup=False,
        )
    else:
        console.print(f"not better with a CI above 0: {where} keeps its aliases (none set)", markup=False)
    console.print(f"comparison logged as MLflow run {result['mlflow_run_id']}", markup=False)
