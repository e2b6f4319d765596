"""``invalloc sweep``: train an experiment over settings × seeds as Ray Tune trials.

Exit codes: 0 every trial finished; 1 a trial failed or was lost (the results of the others are
printed and logged all the same); 2 bad input (a bad ``--set`` key or value, option, store or
cluster: nothing started); 130 interrupted by Ctrl-C (running trials KILLED).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from invalloc.console import console, error_console, fail

_SET_HELP = (
    "An experiment setting and the values to sweep, KEY=V1,V2,… (a dotted key of the experiment file, "
    "e.g. hyperparameters.learning_rate=1e-4,3e-4); repeat for a grid."
)


def sweep(
    experiment: Annotated[str, typer.Argument(help="Experiment YAML path or name (as for train).")],
    settings: Annotated[list[str] | None, typer.Option("--set", help=_SET_HELP)] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Training seeds of every configuration, e.g. 0-4 (default: its seed).")
    ] = None,
    search: Annotated[
        str, typer.Option("--search", help="grid (every configuration), random or optuna (--samples of them).")
    ] = "grid",
    samples: Annotated[
        int | None, typer.Option("--samples", min=1, max=100_000, help="Configurations to try (random, optuna).")
    ] = None,
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray head HOST:PORT or auto (default: $RAY_ADDRESS, else a local cluster)."),
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option("--max-concurrent", min=1, max=100_000, help="Most trials at once (default: CPUs).")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow store every node reaches; an MLflow server on a multi-node cluster "
            "(default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).",
        ),
    ] = None,
    register: Annotated[
        str | None, typer.Option("--register", help="Register the best trial's policy as this MLflow model.")
    ] = None,
) -> None:
    """Train EXPERIMENT once per configuration and seed on Ray Tune; print mean ± 95% CI per configuration."""
    from invalloc.agents.experiment import ExperimentError
    from invalloc.agents.sweep_space import SweepError, check_space, parse_settings
    from invalloc.baselines import PolicyError
    from invalloc.baselines.tuning import parse_seeds
    from invalloc.cluster import ClusterError, check_reachable, resolve_address
    from invalloc.tracking import TrackingError, check_tracking_uri, resolve_tracking_uri

    parsed, problems = parse_settings(settings or [])
    seed_list = None
    if seeds is not None:
        try:
            seed_list = parse_seeds(seeds)
        except PolicyError as error:
            problems.append(str(error))
    if register is not None and not register.strip():
        problems.append("--register: give the model name to register the best trial's policy as")
    if problems:
        fail(problems)
    try:
        base, space = check_space(experiment, parsed, seed_list, search, samples)
    except SweepError as error:
        fail(error.problems)
    except ExperimentError as error:
        fail(error.lines())
    from invalloc.agents.sweep import absolute_store

    uri = absolute_store(resolve_tracking_uri(tracking_uri))
    try:
        check_tracking_uri(uri)
        chosen, source = resolve_address(address, option="--address")
        if chosen is not None:
            check_reachable(chosen, source)  # before Ray is imported, which retries for a minute
    except TrackingError as error:
        fail([str(error)])
    except ClusterError as error:
        fail([str(error)])
    missing = [name for name in ("ray", "optuna") if name == "ray" or search == "optuna"]
    missing = [name for name in missing if importlib.util.find_spec(name) is None]
    if missing:
        fail([f"invalloc sweep needs {' and '.join(missing)}: pip install 'invalloc[ray]'"])
    _run(base, space, uri, address, max_concurrent, register)


def _run(base, space, uri: str, address: str | None, max_concurrent: int | None, register: str | None) -> None:  # noqa: ANN001
    from invalloc.agents.sweep import SweepInterrupted, run_sweep
    from invalloc.agents.sweep_results import results_table
    from invalloc.cluster import ClusterError, check_shared_tracking, ray_cluster
    from invalloc.processes import exit_on_sigterm
    from invalloc.tracking import TrackingError, configure_tracking

    try:
        with ray_cluster(address, option="--address") as cluster:
            check_shared_tracking(uri, cluster.nodes)
            if cluster.cpus < 1:
                fail(["the Ray cluster has no CPUs for trials (add a node with `ray start --address …`)"])
            configure_tracking(uri)
            error_console.print(
                f"sweep: {space.trials()} trial(s) of {base.experiment.name} on {cluster.nodes} Ray node(s), "
                f"{cluster.cpus} CPU(s)",
                markup=False,
            )
            with exit_on_sigterm(), _progress() as progress:
                result = run_sweep(
                    base,
                    space,
                    tracking_uri=uri,
                    nodes=cluster.nodes,
                    max_concurrent=max_concurrent,
                    register=register,
                    on_parent_started=lambda run_id: print(f"MLflow sweep run: {run_id}", flush=True),
                    progress=progress,
                )
    except ClusterError as error:
        fail([str(error)])
    except TrackingError as error:
        fail([str(error)])
    except SweepInterrupted as stopped:
        _report(stopped.result, results_table)
        error_console.print(str(stopped), markup=False)
        raise typer.Exit(code=130) from None
    except KeyboardInterrupt:
        raise typer.Exit(code=130) from None
    _report(result, results_table)
    sys.stdout.flush()
    if result.status != "FINISHED":
        raise typer.Exit(code=1)


def _report(result, results_table) -> None:  # noqa: ANN001
    console.print(results_table(result.rows, f"sweep {result.parent_run_id}: final evaluation reward across seeds"))
    for outcome in result.failed():
        error_console.print(
            f"failed: trial {outcome.trial_id} (seed {outcome.seed}, run {outcome.run_id or 'none'}): {outcome.reason}",
            markup=False,
        )
    for outcome in result.lost():
        error_console.print(
            f"lost: trial {outcome.trial_id} (seed {outcome.seed}, run {outcome.run_id or 'none'}, KILLED): "
            f"{outcome.reason}",
            markup=False,
        )
    finished = len(result.outcomes) - len(result.failed()) - len(result.lost())
    unstarted = result.planned - len(result.outcomes)
    console.print(
        f"{finished} trial(s) finished, {len(result.failed())} failed, {len(result.lost())} lost"
        + (f", {unstarted} not started" if unstarted > 0 else "")
        + f" on {len(result.nodes)} node(s); sweep run {result.parent_run_id} {result.status}",
        markup=False,
    )
    if result.best is not None:
        console.print(f"best trial: run {result.best.run_id} (seed {result.best.seed})", markup=False)
    if result.registered_version:
        console.print(f"registered the best trial's policy as version {result.registered_version}", markup=False)


class _progress:
    """A progress bar of trials on standard error (started, finished)."""

    def __enter__(self) -> Callable[[int], Callable[[str], None]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("trials {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=error_console,
            transient=False,
        )
        self.bar.__enter__()
        return self._start

    def _start(self, total: int) -> Callable[[str], None]:
        task = self.bar.add_task("(0 running)", total=total)
        state = {"started": 0, "ended": 0}

        def advance(trial_id: str) -> None:
            state["ended" if trial_id else "started"] += 1
            running = state["started"] - state["ended"]
            self.bar.update(task, completed=state["ended"], description=f"({running} running)")

        return advance

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)
