"""``invalloc train``: train an experiment, tracked in MLflow."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from invalloc.console import console, error_console, fail


def train(
    experiment: Annotated[
        str | None, typer.Argument(help="Experiment YAML path or shipped name (experiments/NAME.yaml).")
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
    run_name: Annotated[str | None, typer.Option("--run-name", help="MLflow run name.")] = None,
    register: Annotated[
        str | None, typer.Option("--register", help="Register the trained policy as this MLflow model.")
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue this interrupted run from its last checkpoint.")
    ] = None,
) -> None:
    """Train an SB3 agent on an experiment; prints the MLflow run id and the best evaluation."""
    from invalloc.agents.experiment import ExperimentError
    from invalloc.agents.training import ResumeError, TrainingStopped
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
        )
    except (TrackingError, ResumeError) as error:
        fail([str(error)])
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
