"""The ``invalloc`` command line.

Bad input (a malformed scenario, an unknown policy, a missing file) is reported as one
line per problem on standard error with exit code 2 — never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

try:  # typer ≥ 0.20 vendors click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError

from invalloc.cluster import ADDRESS_HELP, EXECUTOR_HELP, ClusterError, check_executor, ray_line
from invalloc.config.loader import ScenarioError, load_scenario
from invalloc.config.schema import MAX_PERIODS
from invalloc.console import error_console, fail, output_file_problems

#: Largest ``--seed`` (seeds are 63-bit) and most ``--episodes`` of one command.
MAX_SEED = 2**62
MAX_EPISODES = 1_000_000


class _Commands(TyperGroup):
    """The command group; a usage error (bad option value, unknown option) prints as one
    ``error:`` line with exit code 2, like every other bad input."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: ANN001
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as error:
            from typer import rich_utils

            rich_utils.rich_format_error(error)
            sys.exit(error.exit_code)
        except ClickException as error:
            context = getattr(error, "ctx", None)
            where = f"{context.command_path}: " if context is not None else ""
            error_console.print(f"error: {where}{' '.join(error.format_message().split())}", markup=False)
            sys.exit(2 if error.exit_code in (1, 2) else error.exit_code)
        except typer.Abort:
            error_console.print("Aborted!", markup=False)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    help="Learn, compare and govern inventory allocation policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Commands,
)
scenario_app = typer.Typer(help="Validate and inspect scenario files.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")

console = Console()


def _print_version(value: bool) -> None:
    if value:
        from invalloc import __version__

        print(f"invalloc {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Options before the command."""


def _fail(lines: list[str], code: int = 2) -> NoReturn:
    fail(lines, code)


def _check_executor(executor: str, address: str | None) -> None:
    try:
        check_executor(executor, address)
    except ClusterError as error:
        _fail([str(error)])


def _load(path: str, overrides: dict | None = None):
    try:
        return load_scenario(path, overrides)
    except ScenarioError as error:
        _fail(error.lines())


@scenario_app.command("validate")
def scenario_validate(path: Annotated[str, typer.Argument(help="Scenario YAML path or shipped name.")]) -> None:
    """Check a scenario; print every problem with its YAML path (exit 2) or a one-line summary."""
    from invalloc.sim.network import compile_network

    loaded = _load(path)
    network = compile_network(loaded)
    sc = loaded.scenario
    print(
        f"{loaded.source}: valid — {len(sc.products)} SKUs, {len(sc.suppliers)} suppliers, "
        f"{len(sc.locations)} locations, {len(sc.channels)} channels, {len(network.tiers)} tiers, "
        f"{len(sc.lanes)} lanes, {network.n_decisions} decisions, horizon {sc.episode.horizon}"
    )


@scenario_app.command("show")
def scenario_show(
    path: Annotated[str, typer.Argument(help="Scenario YAML path or shipped name.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print SKUs, channels, locations and decisions as JSON.")
    ] = False,
) -> None:
    """Print the network: nodes, lanes, tiers and decision variables."""
    from invalloc.sim.network import compile_network

    loaded = _load(path)
    network = compile_network(loaded)
    sc = loaded.scenario
    if as_json:
        print(
            json.dumps(
                {
                    "skus": network.skus,
                    "channels": network.channels,
                    "locations": network.locations,
                    "suppliers": network.suppliers,
                    "tiers": network.tiers,
                    "decisions": network.decision_names,
                }
            )
        )
        return
    console.print(f"[bold]{sc.name}[/bold] — {sc.description}")
    lanes = Table(title="Lanes")
    for column in ("from", "to", "kind", "lead time", "cost/unit", "capacity/period"):
        lanes.add_column(column)
    for lane in sc.lanes:
        kind = (
            "purchase"
            if lane.source in network.suppliers
            else ("transfer" if lane.destination in network.locations else "sales")
        )
        lead = lane.lead_time if isinstance(lane.lead_time, int) else lane.lead_time.model_dump()
        lanes.add_row(
            lane.source,
            lane.destination,
            kind,
            str(lead),
            f"{lane.cost_per_unit:g}",
            "∞" if lane.capacity_per_period is None else f"{lane.capacity_per_period:g}",
        )
    console.print(lanes)
    tiers = Table(title="Channels and tiers")
    for column in ("channel", "tier", "priority", "demand share", "min fill rate", "penalty/unit"):
        tiers.add_column(column)
    for channel in sc.channels:
        for tier in channel.tiers:
            tiers.add_row(
                channel.id,
                tier.id,
                str(tier.priority),
                f"{tier.demand_share:g}",
                f"{tier.min_fill_rate:g}",
                f"{tier.penalty_per_unit_short:g}",
            )
    console.print(tiers)
    console.print(f"{len(network.skus)} SKUs: {', '.join(network.skus[:12])}{' …' if len(network.skus) > 12 else ''}")
    console.print(f"{network.n_decisions} decisions, e.g. {', '.join(network.decision_names[:3])}")


@scenario_app.command("build")
def scenario_build(
    products: Annotated[Path, typer.Option(help="products.csv: sku, unit_cost, price / price_<channel>, …")],
    locations: Annotated[Path, typer.Option(help="locations.csv: location, capacity.")],
    lanes: Annotated[Path, typer.Option(help="lanes.csv: from, to, lead_time, lead_time_max, cost_per_unit, …")],
    channels: Annotated[
        Path, typer.Option(help="channels.csv: channel, tier, priority, demand_share, min_fill_rate, …")
    ],
    history: Annotated[Path, typer.Option(help="Sales history CSV: date|period, channel, sku, quantity[, stockout].")],
    out: Annotated[Path, typer.Option(help="Scenario YAML to write (holdout.csv and fitted files go next to it).")],
    suppliers: Annotated[
        Path | None, typer.Option(help="suppliers.csv: supplier, sku, unit_cost, minimum_order_quantity, …")
    ] = None,
    stock: Annotated[Path | None, typer.Option(help="Opening stock CSV: location, sku, quantity.")] = None,
    rules: Annotated[
        Path | None, typer.Option(help="YAML with rules:, finance:, episode:, currency:, description: sections.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Scenario name (default: the --out file's stem).")] = None,
    holdout_periods: Annotated[
        int, typer.Option(help="Keep the last N periods out of the fit and write them as holdout.csv.")
    ] = 0,
    horizon: Annotated[
        int | None, typer.Option(help="Episode length in periods (default: the hold-out length).")
    ] = None,
    method: Annotated[
        str, typer.Option(help="model: fit the demand models; bootstrap: resample the history.")
    ] = "model",
    fit_report: Annotated[Path | None, typer.Option(help="Folder for the fit report (HTML + JSON).")] = None,
    period_days: Annotated[
        int | None, typer.Option(help="Days per period of a history numbered by period (default 7).")
    ] = None,
) -> None:
    """Build a validated scenario from master-data tables and a sales history (demand fitted)."""
    from invalloc.history.build import BuildError, build_scenario
    from invalloc.history.tables import TablePaths

    paths = TablePaths(products, locations, lanes, channels, suppliers, stock)
    try:
        result = build_scenario(
            paths,
            history,
            out,
            rules_path=rules,
            name=name,
            holdout_periods=holdout_periods,
            horizon=horizon,
            method=method,
            fit_report=fit_report,
            period_days=period_days,
        )
    except BuildError as error:
        _fail(error.problems)
    models = ", ".join(f"{count} {model}" for model, count in sorted(result.streams_by_model.items()))
    print(
        f"{result.scenario}: {result.skus} SKUs × {result.channels} channels; demand fitted on "
        f"{result.fitted_periods[0]} … {result.fitted_periods[1]}: {models} series; horizon {result.horizon}"
    )
    if result.holdout_periods:
        censored = (
            f" ({result.censored_in_holdout} rows flagged stockout: their sales replay as demand)"
            if result.censored_in_holdout
            else ""
        )
        print(f"hold-out: last {result.holdout_periods} periods → holdout.csv{censored}")
    for note in result.notes:
        print(f"note: {note}")
    for path in result.files:
        print(f"wrote {path}")


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        if "=" not in pair:
            _fail([f"--param {pair}: expected KEY=VALUE"])
        key, value = pair.split("=", 1)
        params[key.strip()] = value.strip()
    return params


@app.command()
def simulate(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario YAML path or shipped name.")] = "retail",
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="fixed, base_stock, s_S, proportional, priority, fixed_split, replay, oracle; "
            "run:RUN_ID or models:/NAME@ALIAS (a trained agent); rules:DIR (an exported rule table).",
        ),
    ] = "base_stock",
    param: Annotated[list[str] | None, typer.Option("--param", help="Policy parameter KEY=VALUE (repeatable).")] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params", help="Parameters YAML written by `invalloc tune` (--param overrides).")
    ] = None,
    actions: Annotated[Path | None, typer.Option("--actions", help="Actions CSV for --policy replay.")] = None,
    demand_trace: Annotated[
        Path | None, typer.Option("--demand-trace", help="CSV period,channel,sku,quantity to replay.")
    ] = None,
    episodes: Annotated[
        int, typer.Option("--episodes", min=1, max=MAX_EPISODES, help="Number of episodes (seeds seed … seed+N−1).")
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of the first episode.")] = 0,
    periods: Annotated[
        int | None,
        typer.Option("--periods", min=1, max=MAX_PERIODS, help="Episode length (default: the scenario's horizon)."),
    ] = None,
    audit_log: Annotated[
        Path | None, typer.Option("--audit-log", help="Write the audit log (.csv or .parquet).")
    ] = None,
    decision_log: Annotated[
        Path | None,
        typer.Option(
            "--decision-log",
            help="With --policy rules:DIR: write per period the features, the rule that fired, its outputs and the "
            "period's KPIs (.csv or .parquet; what `invalloc rules monitor` reads).",
        ),
    ] = None,
    check_invariants: Annotated[
        bool, typer.Option("--check-invariants/--no-check-invariants", help="Check the books every period.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print episodes and summary as one JSON object.")] = False,
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow store of run:/models:/ policies (default: local).")
    ] = None,
    executor: Annotated[str, typer.Option("--executor", help=EXECUTOR_HELP)] = "local",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=ADDRESS_HELP)] = None,
    statements: Annotated[
        Path | None,
        typer.Option(
            "--statements",
            help="Write each episode's income statement, balance sheet, cash flow and inventory "
            "roll-forward (CSV, xlsx, JSON with the reconciliation) into this folder.",
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Draw the first episode's trajectories (PNG + CSV) into this folder."),
    ] = None,
    plot_skus: Annotated[
        list[str] | None,
        typer.Option("--plot-skus", help="SKUs to draw with --plot, comma-separated (default: top 3 by revenue)."),
    ] = None,
    plot_dcs: Annotated[
        list[str] | None,
        typer.Option("--plot-dcs", help="DCs to draw with --plot, comma-separated (default: every DC)."),
    ] = None,
) -> None:
    """Simulate a scenario with a policy (baseline, run:RUN_ID, models:/NAME@ALIAS, rules:DIR); KPIs ± 95% CI."""
    from invalloc.baselines import PolicyError
    from invalloc.evaluation.simulation import SimulationError, run_simulation
    from invalloc.sim.audit import write_table
    from invalloc.sim.demand import DemandTraceError
    from invalloc.sim.simulator import InvariantError

    if audit_log is not None:
        problems = output_file_problems(audit_log, "--audit-log", (".csv", ".parquet"))
        if problems:
            _fail(problems)
    if decision_log is not None:
        problems = output_file_problems(decision_log, "--decision-log", (".csv", ".parquet"))
        if not policy.startswith(("rules:", "models:/")):
            problems.append(
                f"--decision-log {decision_log}: logs the decisions of a rule table (--policy rules:DIR or "
                f"models:/NAME@ALIAS of a registered table), not of {policy}"
            )
        if audit_log is not None and decision_log.resolve() == audit_log.resolve():
            problems.append(f"--decision-log {decision_log}: is also the --audit-log; give two files")
        if problems:
            _fail(problems)
    if actions is not None and policy != "replay":
        _fail([f"--actions {actions}: only --policy replay replays an actions CSV (the policy is {policy})"])
    _check_executor(executor, ray_address)
    loaded = _load(scenario)
    from invalloc.sim.network import compile_network

    reporting = _reporting_options(compile_network(loaded), statements, plot, plot_skus, plot_dcs)
    from rich.progress import Progress

    try:
        with Progress(console=error_console, transient=True, disable=episodes < 3) as progress:
            task = progress.add_task("simulating", total=episodes)
            result = run_simulation(
                loaded,
                policy,
                params=_parse_params(param or []),
                params_file=params_file,
                actions=actions,
                demand_trace=demand_trace,
                episodes=episodes,
                seed=seed,
                periods=periods,
                check_invariants=check_invariants,
                audit=audit_log is not None,
                decision_log=decision_log,
                reporting=reporting,
                tracking_uri=tracking_uri,
                executor=executor,
                ray_address=ray_address,
                advance=lambda: progress.advance(task),
            )
    except DemandTraceError as error:
        _fail(error.lines())
    except PolicyError as error:
        _fail([str(error)], error.exit_code)
    except SimulationError as error:
        _fail([str(error)])
    except ClusterError as error:  # a lost worker (WorkerLostError) is not bad input: exit 1
        _fail([str(error)], getattr(error, "exit_code", 2))
    except InvariantError as error:  # not bad input: exit 1
        _fail([f"invariant broken (a simulator bug, please report): {error}"], 1)
    results, chosen = result.episodes, result.policy
    if result.nodes:
        error_console.print(ray_line(result.workers, result.nodes), markup=False)
    if audit_log is not None:
        import pandas as pd

        try:
            write_table(pd.concat(result.audit, ignore_index=True), audit_log)
        except OSError as error:
            _fail([f"--audit-log {audit_log}: cannot be written ({error.strerror or error})"])
    if decision_log is not None:
        try:
            write_table(chosen.frame(), decision_log)
        except OSError as error:
            _fail([f"--decision-log {decision_log}: cannot be written ({error.strerror or error})"])
    written = _write_reports(reporting, getattr(chosen, "name", None), policy) if reporting else []
    summary = result.summary
    if as_json:
        extra = {"statements_reconciled": reporting.reconciled} if statements is not None else {}
        out = {"scenario": loaded.scenario.name, "policy": policy, "episodes": results, "summary": summary, **extra}
        print(json.dumps(out))
        return
    table = Table(title=f"{loaded.scenario.name} · {policy} · {episodes} episode(s) from seed {seed}")
    table.add_column("KPI")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    for key, item in summary.items():
        table.add_row(key, f"{item['mean']:,.4g}", f"[{item['ci_low']:,.4g}, {item['ci_high']:,.4g}]")
    console.print(table)
    if audit_log is not None:
        console.print(f"audit log written to {audit_log}", markup=False)
    if decision_log is not None:
        console.print(f"decision log written to {decision_log} (one row per period)", markup=False)
    for line in written:
        console.print(line, markup=False)


def _reporting_options(network, statements: Path | None, plot: Path | None, skus, dcs):  # noqa: ANN001, ANN202
    """Check ``--statements``/``--plot`` options before any episode runs; None when neither is given."""
    if statements is None and plot is None:
        for option, value in (("--plot-skus", skus), ("--plot-dcs", dcs)):
            if value:
                _fail([f"{option}: draws only with --plot DIR"])
        return None
    from invalloc.evaluation.episode_reports import EpisodeReports, ReportingError

    try:
        return EpisodeReports.checked(network, statements, plot, skus, dcs)
    except ReportingError as error:
        _fail([str(error)])


def _write_reports(reporting, name: str | None, policy: str) -> list[str]:  # noqa: ANN001
    from invalloc.evaluation.episode_reports import ReportingError

    try:
        return reporting.write(name, policy)
    except ReportingError as error:
        _fail([str(error)])


@app.command()
def tune(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario YAML path or shipped name.")] = "retail",
    policy: Annotated[str, typer.Option("--policy", help="base_stock, s_S, proportional, priority, fixed_split.")] = (
        "base_stock"
    ),
    seeds: Annotated[str, typer.Option("--seeds", help="Training seeds, e.g. 0-49 or 0-9,20.")] = "0-49",
    budget: Annotated[int | None, typer.Option("--budget", min=1, help="Most candidates to evaluate.")] = None,
    search_seed: Annotated[
        int, typer.Option("--search-seed", min=0, max=MAX_SEED, help="Seed of the search itself.")
    ] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the parameters YAML.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    executor: Annotated[str, typer.Option("--executor", help=EXECUTOR_HELP)] = "local",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=ADDRESS_HELP)] = None,
) -> None:
    """Find a rule-based policy's best parameters on training seeds (common random numbers).

    Writes them to a YAML file that `invalloc simulate --policy NAME --params FILE` reads.
    """
    from invalloc.baselines import PolicyError
    from invalloc.baselines.tuning import DEFAULT_BUDGET, parse_seeds, save_params
    from invalloc.baselines.tuning import tune as run_tune

    _check_executor(executor, ray_address)
    loaded = _load(scenario)
    path = out or Path(f"{loaded.scenario.name}_{policy}_tuned.yaml")
    problems = output_file_problems(path, "--out", (".yaml", ".yml"))
    if problems:
        _fail(problems)
    try:
        training = parse_seeds(seeds)
        result = run_tune(
            scenario,
            policy,
            training,
            budget=budget or DEFAULT_BUDGET,
            seed=search_seed,
            executor=executor,
            ray_address=ray_address,
        )
    except (PolicyError, ValueError) as error:  # ClusterError too; a lost Ray worker exits 1
        _fail([str(error)], getattr(error, "exit_code", 2))
    if result.settings.get("nodes"):
        error_console.print(ray_line(result.settings["workers"], result.settings["nodes"]), markup=False)
    try:
        save_params(result, path)
    except OSError as error:
        _fail([f"--out {path}: cannot be written ({error.strerror or error})"])
    summary = {
        "scenario": loaded.scenario.name,
        "policy": policy,
        "params": result.params,
        "training_mean_reward": result.mean_reward,
        "training_seeds": seeds,
        "evaluations": len(result.history),
        "file": str(path),
    }
    if as_json:
        print(json.dumps(summary))
        return
    params_text = " ".join(f"--param {k}={v}" for k, v in result.params.items())
    console.print(
        f"best {policy} on {loaded.scenario.name}: {params_text} — mean reward {result.mean_reward:,.2f} "
        f"on {len(training)} training seeds ({len(result.history)} candidates)",
        markup=False,
    )
    console.print(f"written to {path}; use: invalloc simulate --scenario {scenario} --policy {policy} --params {path}")


from invalloc.agents.command import runs_clean, train  # noqa: E402 - commands of later layers, registered last

app.command("train")(train)
from invalloc.agents.sweep_command import sweep  # noqa: E402 - Ray is imported only when a sweep runs

app.command("sweep")(sweep)
runs_app = typer.Typer(help="Housekeeping of tracked runs.", no_args_is_help=True)
runs_app.command("clean")(runs_clean)
app.add_typer(runs_app, name="runs")

from invalloc.quickstart import quickstart  # noqa: E402

app.command("quickstart")(quickstart)


from invalloc.evaluation.command import compare  # noqa: E402 - registered after the commands it builds on

app.command("compare")(compare)


from invalloc.export.command import approve, export  # noqa: E402 - rule export and review (lazy heavy imports)
from invalloc.governance.production import challenge, monitor  # noqa: E402 - monitoring and the challenger loop
from invalloc.rules.command import rules_app  # noqa: E402

rules_app.command("approve")(approve)
rules_app.command("monitor")(monitor)
rules_app.command("challenge")(challenge)
app.add_typer(rules_app, name="rules")
app.command("export")(export)


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
