"""``invalloc train``: train an experiment, tracked in MLflow; ``invalloc runs clean``: end
runs whose training process died.

Exit codes of ``train``: 0 trained; 2 bad input (experiment, store, a run that cannot be
resumed or is still being trained); 1 training itself failed (one ``error: training failed:``
line; the run is FAILED and holds the traceback); 130 stopped by Ctrl-C / SIGTERM (resumable).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from invalloc.console import console, error_console, fail


def train(
    experiment: Annotated[
        str | None, typer.Argument(help="Experiment YAML path or name (./experiments/NAME.yaml, else shipped).")
    ] = None,
    timesteps: Annotated[
        int | None, typer.Option("--timesteps", min=1, max=10**10, help="Override the experiment's.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, max=2**32 - 1, help="Override the experiment's seed.")
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."),
    ] = None,
    run_name: Annotated[
        str | None, typer.Option("--run-name", help="MLflow run name (default: EXPERIMENT-SCENARIO-sSEED).")
    ] = None,
    register: Annotated[
        str | None, typer.Option("--register", help="Register the trained policy as this MLflow model.")
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue this interrupted run from its last checkpoint.")
    ] = None,
) -> None:
    """Train an SB3 agent on an experiment; prints the MLflow run id and the best evaluation."""
    from invalloc.agents.experiment import ExperimentError
    from invalloc.agents.training import ResumeError, TrainingFailed, TrainingStopped
    from invalloc.agents.training import train as run_training
    from invalloc.tracking import TrackingError

    if (experiment is None) == (resume is None):
        fail(["give an EXPERIMENT to train, or --resume RUN_ID (not both)"])
    if resume is not None and (seed is not None or run_name is not None):
        fail(["--resume continues a run as it was: --seed and --run-name cannot change it"])

    def started(run_id: str) -> None:
        # On stdout and flushed at once: scripts (and the resume test) read the id while training runs.
        print(f"MLflow run: {run_id}", flush=True)

    try:
        result = run_training(
            experiment,
            timesteps=timesteps,
            seed=seed,
            tracking_uri=tracking_uri,
            run_name=run_name,
            register=register,
            resume=resume,
            on_run_started=started,
            on_stale_run=_report_stale,
        )
    except (TrackingError, ResumeError) as error:
        fail([str(error)])
    except TrainingFailed as error:
        fail([f"training failed: {error}"], code=1)
    except ExperimentError as error:
        fail(error.lines())
    except TrainingStopped as error:
        error_console.print(str(error), markup=False)
        raise typer.Exit(code=130) from None
    except KeyboardInterrupt:
        raise typer.Exit(code=130) from None
    console.print(
        f"best evaluation reward {result.best_reward:,.2f} at {result.best_at:,} steps "
        f"({result.timesteps:,} trained); model {result.model_uri}"
        + (f", registered as {register} version {result.registered_version}" if register else ""),
        markup=False,
    )
    console.print(f"artifacts: {result.artifact_uri}", markup=False)
    if not (tracking_uri or "").startswith("http"):
        from invalloc.tracking import resolve_tracking_uri

        console.print(f"open the MLflow UI: mlflow ui --backend-store-uri {resolve_tracking_uri(tracking_uri)}")
    sys.stdout.flush()


def _report_stale(run_id: str, reason: str) -> None:
    error_console.print(f"marked run {run_id} KILLED: {reason}", markup=False)


def runs_clean(
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."),
    ] = None,
) -> None:
    """Mark runs whose training process died KILLED; remove dead processes' temporary folders.

    A run's trainer is gone when it was a process of this host that no longer runs (or whose pid now belongs
    to another process), or, on another host, when its heartbeat lease expired. One line per run it ends.
    """
    import mlflow

    from invalloc.console import first_line
    from invalloc.processes import remove_stale_temporary_folders
    from invalloc.tracking import TrackingError, clean_stale_runs, configure_tracking, resolve_tracking_uri

    remove_stale_temporary_folders()
    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).expanduser().is_file():
        console.print(f"no tracking store at {uri}: nothing to clean", markup=False)
        return
    try:
        uri = configure_tracking(uri)
        cleaned = clean_stale_runs(mlflow.MlflowClient(uri))
    except TrackingError as error:
        fail([str(error)])
    except Exception as error:  # MLflow's own errors (no common base without importing it first)
        if type(error).__module__.startswith("mlflow"):
            fail([f"tracking: {first_line(error)}"])
        raise
    for run_id, reason in cleaned:
        console.print(f"{run_id}: KILLED ({reason})", markup=False)
    console.print(f"{len(cleaned)} run(s) marked KILLED in {uri}", markup=False)
