"""``invalloc sweep``: many trainings of one experiment (settings × seeds) as Ray Tune trials.

Each trial is one full training (:func:`invalloc.agents.training.train`, the code path of
``invalloc train``) run in-process by a Ray worker of one CPU, so a trial's run equals a serial
``invalloc train`` with the same settings and seed. The sweep is tracked in MLflow:

- the driver (this process) checks everything first (:mod:`~invalloc.agents.sweep_space`), then
  creates the MLflow experiment ``invalloc-train/NAME`` (and so the store's tables: trials never
  race to migrate a fresh store) and a *parent* run that logs the experiment's configuration
  (``config/``, as ``train`` logs it) and the sweep's settings;
- every trial restores that configuration from the parent run (so nodes need only the tracking
  server, not the driver's files), applies its overrides and seed, and trains in a run nested
  under the parent (``mlflow.parentRunId``) and tagged with its overrides, seed, Tune trial id
  and Ray node;
- at the end, a trial whose training raised is FAILED (its run holds the traceback; the sweep
  goes on); a trial that Tune stopped, or that was lost with its worker or node, is KILLED
  (the driver ends its run, which its worker could not); the parent holds the results
  (``sweep/results.csv``, ``sweep/trials.csv``, ``sweep/results.json``) and ends FINISHED when
  every trial finished, FAILED otherwise (KILLED when the sweep was interrupted).

Ray Tune's own MLflow helpers (``setup_mlflow``) are not used: they would open runs of their own
beside the ones training manages.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invalloc.agents.experiment import LoadedExperiment, load_experiment
from invalloc.agents.sweep_results import (
    FAILED,
    FINISHED,
    KILLED,
    ConfigurationResult,
    TrialOutcome,
    best_trial,
    summarise_configurations,
    write_results,
)
from invalloc.agents.sweep_space import Overrides, SweepSpace, configuration_key, configuration_label

#: Tags of a trial's run (besides ``mlflow.parentRunId``) and of the parent.
TRIAL_TAG = "invalloc.sweep.trial_id"
OVERRIDES_TAG = "invalloc.sweep.overrides"
SEED_TAG = "invalloc.sweep.seed"
NODE_TAG = "invalloc.sweep.node"
PARENT_TAG = "invalloc.sweep"
PARENT_TAG_KEY = "mlflow.parentRunId"
#: The metric trials report to Tune (and Optuna maximises, averaged over seeds).
METRIC = "final_reward"
#: Artifact folder of the parent's results.
RESULTS_ARTIFACT = "sweep"


class SweepInterrupted(Exception):
    """Ctrl-C stopped the sweep; trials that were running are KILLED. ``result`` holds what finished."""

    def __init__(self, result: SweepResult):
        self.result = result
        super().__init__(f"sweep {result.parent_run_id} interrupted (KILLED)")


@dataclass
class SweepResult:
    """What a sweep did: its parent run, every trial's outcome and the configurations' results."""

    parent_run_id: str
    status: str
    outcomes: list[TrialOutcome]
    rows: list[ConfigurationResult]
    best: TrialOutcome | None = None
    registered_version: str | None = None
    nodes: list[str] = field(default_factory=list)
    tracking_uri: str = ""
    #: trials the sweep meant to run (more than ``outcomes`` when it was interrupted first)
    planned: int = 0

    def lost(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status == KILLED]

    def failed(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status == FAILED]


@dataclass(frozen=True)
class TrialSpec:
    """Everything a trial needs, sent to the workers with the trainable (small and picklable)."""

    tracking_uri: str
    parent_run_id: str
    space: SweepSpace
    configurations: tuple[Overrides, ...]

    def point(self, config: dict[str, Any]) -> tuple[Overrides, int]:
        """The overrides and seed of the trial Tune gave ``config``."""
        if "point" in config:
            point = config["point"]
            return dict(self.configurations[point["configuration"]]), int(point["seed"])
        return self.space.overrides_of(config), self.space.seeds[int(config.get("__trial_index__", 0))]


# ---------------------------------------------------------------------------------------------
# The trial (runs on a Ray worker)
# ---------------------------------------------------------------------------------------------


def run_trial(config: dict[str, Any], spec: TrialSpec) -> None:
    """Tune's function trainable: one ``invalloc train`` of the trial's overrides and seed.

    Reports :data:`METRIC` (the final evaluation's mean reward) with the run id once training
    ends. A training that raises ends its run FAILED and raises here (Tune marks the trial ERROR).
    """
    import mlflow
    import ray
    from ray import tune

    from invalloc.agents.run_files import restore_config
    from invalloc.agents.training import train
    from invalloc.processes import temporary_folder
    from invalloc.tracking import configure_tracking

    overrides, seed = spec.point(config)
    node = ray.get_runtime_context().get_node_id()
    tags = {
        PARENT_TAG_KEY: spec.parent_run_id,
        TRIAL_TAG: tune.get_context().get_trial_id(),
        OVERRIDES_TAG: json.dumps(overrides, sort_keys=True),
        SEED_TAG: str(seed),
        NODE_TAG: node,
    }
    with temporary_folder("sweep-trial") as work:
        uri = configure_tracking(spec.tracking_uri)
        path = restore_config(mlflow.MlflowClient(uri), spec.parent_run_id, work)
        loaded = load_experiment(path, seed=seed, overrides=overrides)
        name = f"{configuration_label(overrides)} seed={seed}"[:240]
        result = train(loaded, tracking_uri=uri, run_name=name, progress=False, tags=tags)
    final = result.evaluations[-1] if result.evaluations else {}
    tune.report(
        {
            METRIC: float(final.get("eval/total_reward", float("nan"))),
            "run_id": result.run_id,
            "model_uri": result.model_uri,
            "best_reward": float(result.best_reward),
            "node": node,
            "final_json": json.dumps({k: v for k, v in final.items() if k.startswith("eval/")}),
        }
    )


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------


def absolute_store(tracking_uri: str) -> str:
    """A local store's URI with an absolute path: workers run in folders of their own."""
    if tracking_uri.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(tracking_uri.removeprefix("sqlite:///")).expanduser().resolve())
    if "://" not in tracking_uri:
        return str(Path(tracking_uri).expanduser().resolve())
    if tracking_uri.startswith("file://"):
        return Path(tracking_uri.removeprefix("file://")).expanduser().resolve().as_uri()
    return tracking_uri


class _Trials:
    """A Tune callback (built by :func:`_callback`) that records trials and advances the progress bar."""

    def __init__(self, advance: Callable[[str], None]):
        self.advance = advance
        self.started: dict[str, Any] = {}
        self.results: dict[str, dict[str, Any]] = {}
        #: trial id → (lost with its worker or node, the error's last line)
        self.errors: dict[str, tuple[bool, str]] = {}
        self.ended: set[str] = set()

    def __reduce__(self) -> tuple[Any, ...]:
        # Tune pickles its run config (callbacks included) into its experiment state: the copy
        # records nothing; only this process's instance, the live one, matters.
        return _Trials, (_ignore,)


def _ignore(_: str) -> None:
    """A progress function that shows nothing."""


def _callback(record: _Trials):
    from ray.tune import Callback

    class Recorder(Callback):
        # Tune calls these with keyword arguments: iteration, trials, trial (and result).
        def on_trial_start(self, iteration, trials, trial, **info):  # noqa: ANN001
            record.started[trial.trial_id] = trial
            record.advance("")

        def on_trial_result(self, iteration, trials, trial, result, **info):  # noqa: ANN001
            record.results[trial.trial_id] = dict(result)

        def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ANN001
            record.started[trial.trial_id] = trial
            record.ended.add(trial.trial_id)
            record.advance(trial.trial_id)

        def on_trial_error(self, iteration, trials, trial, **info):  # noqa: ANN001
            record.started[trial.trial_id] = trial
            record.ended.add(trial.trial_id)
            record.errors[trial.trial_id] = _trial_error(trial)
            record.advance(trial.trial_id)

    return Recorder()


def _trial_error(trial: Any) -> tuple[bool, str]:
    """Whether a trial that errored was lost (its worker or node died, rather than its code
    raising: Ray wraps what the code raises in ``RayTaskError``), and the error's last line."""
    from ray.exceptions import RayTaskError

    error = None
    try:
        error = trial.get_pickled_error() or trial.get_error()
    except Exception:  # noqa: BLE001 - the error file may be unreadable; the trial failed all the same
        pass
    text = str(error or "").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else type(error).__name__ if error is not None else "trial failed"
    return not isinstance(error, RayTaskError), " ".join(line.split())[:300]


def _tuner(spec: TrialSpec, trials: _Trials, storage: Path, max_concurrent: int | None):
    from ray import tune

    space = spec.space
    trainable = tune.with_resources(tune.with_parameters(run_trial, spec=spec), {"cpu": 1})
    if space.search == "optuna":
        import optuna
        from ray.tune.search import Repeater
        from ray.tune.search.optuna import OptunaSearch

        from invalloc.agents.sweep_space import SEARCH_SEED

        optuna.logging.set_verbosity(optuna.logging.WARNING)

        param_space = {f"s{i}": tune.choice(list(range(len(s.values)))) for i, s in enumerate(space.settings)}
        search_alg = Repeater(OptunaSearch(seed=SEARCH_SEED), repeat=len(space.seeds), set_index=True)
        tune_config = tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=search_alg,
            num_samples=space.trials(),
            max_concurrent_trials=max_concurrent,
            trial_dirname_creator=lambda trial: trial.trial_id,
        )
    else:
        points = [
            {"configuration": index, "seed": seed} for index in range(len(spec.configurations)) for seed in space.seeds
        ]
        param_space = {"point": tune.grid_search(points)}
        tune_config = tune.TuneConfig(
            max_concurrent_trials=max_concurrent, trial_dirname_creator=lambda trial: trial.trial_id
        )
    run_config = tune.RunConfig(
        name="sweep",
        storage_path=str(storage),
        verbose=0,
        callbacks=[_callback(trials)],
        failure_config=tune.FailureConfig(max_failures=0),
    )
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config)


def _quiet_tune() -> None:
    """No Tune result files beyond its experiment state, and no Tune chatter on the terminal."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000000")
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_sweep(
    base: LoadedExperiment,
    space: SweepSpace,
    *,
    tracking_uri: str,
    nodes: int,
    max_concurrent: int | None = None,
    register: str | None = None,
    on_parent_started: Callable[[str], None] | None = None,
    progress: Callable[[int], Callable[[str], None]] | None = None,
) -> SweepResult:
    """Run the sweep on the connected Ray cluster (inside :func:`invalloc.cluster.ray_cluster`).

    :param tracking_uri: the checked store (an absolute local path or a server every node reaches).
    :param nodes: nodes of the cluster (logged with the parent).
    :param progress: given the number of trials, returns the function each trial's start ("")
        and end (its id) is reported to.
    :raises SweepInterrupted: Ctrl-C; running trials ended KILLED, the parent KILLED.
    """
    import mlflow

    from invalloc.agents.integrity import log_with_hashes
    from invalloc.agents.run_files import write_config
    from invalloc.agents.training import EXPERIMENT_PREFIX
    from invalloc.processes import temporary_folder
    from invalloc.tracking import RunLease, create_run, experiment_id, standard_tags

    client = mlflow.MlflowClient(tracking_uri)
    # Created here, before any trial: concurrent first use of a fresh sqlite store corrupts it.
    exp_id = experiment_id(f"{EXPERIMENT_PREFIX}/{base.experiment.name}", tracking_uri)
    configurations = tuple(space.configurations()) if space.search != "optuna" else ()
    parent = create_run(
        client,
        exp_id,
        f"sweep-{base.experiment.name}-{base.scenario.scenario.name}",
        {**standard_tags(base.scenario.digest), PARENT_TAG: "parent"},
    )
    parent_id = parent.info.run_id
    lease = RunLease(client, tracking_uri)
    status = "FAILED"
    try:
        lease.acquire(parent_id)
        if on_parent_started is not None:
            on_parent_started(parent_id)
        with temporary_folder("sweep") as work:
            write_config(base, work / "config")
            log_with_hashes(client, parent_id, work / "config", "config")
            _log_sweep_params(client, parent_id, space, nodes, max_concurrent)
            spec = TrialSpec(tracking_uri, parent_id, space, configurations)
            trials = _Trials(progress(space.trials()) if progress is not None else _ignore)
            _quiet_tune()
            tuner = _tuner(spec, trials, work / "tune", max_concurrent)
            interrupted = False
            try:
                tuner.fit()
            except KeyboardInterrupt:
                interrupted = True
            except BaseException:
                # Tune itself failed: its trials' workers are gone, so are the owners of their runs.
                _end_orphans(client, exp_id, parent_id, "the sweep's Tune driver failed")
                raise
            outcomes = _outcomes(client, exp_id, spec, trials)
            interrupted = interrupted or len(trials.ended) < space.trials()
            rows = summarise_configurations(outcomes)
            write_results(outcomes, rows, work / RESULTS_ARTIFACT)
            client.log_artifacts(parent_id, str(work / RESULTS_ARTIFACT), RESULTS_ARTIFACT)
        best = best_trial(outcomes, rows)
        version = _register(best, register) if register and best is not None and not interrupted else None
        _log_summary(client, parent_id, outcomes, rows, best, register, version)
        status = "KILLED" if interrupted else FINISHED if all(o.status == FINISHED for o in outcomes) else FAILED
        result = SweepResult(
            parent_id,
            status,
            outcomes,
            rows,
            best,
            version,
            sorted({o.node for o in outcomes if o.node}),
            tracking_uri,
            space.trials(),
        )
        if interrupted:
            raise SweepInterrupted(result)
        return result
    except (KeyboardInterrupt, SystemExit):  # a second Ctrl-C, SIGTERM (see exit_on_sigterm)
        status = "KILLED"
        raise
    finally:
        try:
            client.set_terminated(parent_id, status)
        finally:
            lease.release()


def _outcomes(client: Any, exp_id: str, spec: TrialSpec, trials: _Trials) -> list[TrialOutcome]:
    """Every trial's outcome; a trial's run still RUNNING (its worker is gone) is marked KILLED."""
    from mlflow.entities import ViewType

    from invalloc.tracking import mark_killed

    runs = client.search_runs(
        [exp_id],
        filter_string=f"tags.`{PARENT_TAG_KEY}` = '{spec.parent_run_id}'",
        run_view_type=ViewType.ALL,
        max_results=10_000,
    )
    by_trial = {run.data.tags.get(TRIAL_TAG): run for run in runs}
    outcomes = []
    for trial_id, trial in trials.started.items():
        overrides, seed = spec.point(trial.config)
        run = by_trial.pop(trial_id, None)
        reported = trials.results.get(trial_id, {})
        outcome = TrialOutcome(trial_id, overrides, seed, KILLED, run.info.run_id if run else None)
        outcome.node = run.data.tags.get(NODE_TAG, "") if run else str(reported.get("node", ""))
        status = run.info.status if run else None
        if trial_id not in trials.ended:
            outcome.reason = "stopped by Tune (the sweep was interrupted)"
        elif trial_id in trials.errors:
            lost, outcome.reason = trials.errors[trial_id]
            if status == FAILED or (run is None and not lost):
                outcome.status = FAILED
            elif lost:
                outcome.reason = f"lost with its worker ({outcome.reason})"
        elif status == FINISHED and METRIC in reported:
            outcome.status = FINISHED
            outcome.final = json.loads(reported.get("final_json", "{}"))
            outcome.best_reward = reported.get("best_reward")
            outcome.model_uri = reported.get("model_uri")
        else:
            outcome.reason = f"ended without a result (run {status or 'missing'})"
        if run is not None and status == "RUNNING":
            # Its worker died with it (a lost node, a killed actor): nobody else will end the run.
            mark_killed(client, run.info.run_id, f"sweep trial {trial_id} lost: {outcome.reason or 'stopped'}")
            outcome.status = KILLED
        outcomes.append(outcome)
    for run in by_trial.values():  # runs of trials Tune never reported back (should not happen)
        if run.info.status == "RUNNING":
            mark_killed(client, run.info.run_id, "sweep trial lost")
    return sorted(outcomes, key=lambda o: (configuration_key(o.overrides), o.seed, o.trial_id))


def _end_orphans(client: Any, exp_id: str, parent_id: str, reason: str) -> None:
    """Mark the parent's trial runs still RUNNING KILLED (best effort: the sweep is failing already)."""
    from invalloc.tracking import mark_killed

    try:
        for run in client.search_runs(
            [exp_id],
            filter_string=f"tags.`{PARENT_TAG_KEY}` = '{parent_id}' and attributes.status = 'RUNNING'",
            max_results=10_000,
        ):
            mark_killed(client, run.info.run_id, reason)
    except Exception:  # noqa: BLE001 - the store may be what failed; the lease then ends the runs
        pass


def _log_sweep_params(client: Any, run_id: str, space: SweepSpace, nodes: int, max_concurrent: int | None) -> None:
    from invalloc.baselines.tuning import format_seeds

    params = {
        "sweep.search": space.search,
        "sweep.seeds": format_seeds(space.seeds),
        "sweep.trials": str(space.trials()),
        "sweep.ray_nodes": str(nodes),
        "sweep.max_concurrent": str(max_concurrent or "cluster CPUs"),
    }
    if space.samples is not None:
        params["sweep.samples"] = str(space.samples)
    for setting in space.settings:
        params[f"sweep.set.{setting.key}"] = ",".join(setting.texts)[:6000]
    for key, value in params.items():
        client.log_param(run_id, key, value)


def _log_summary(
    client: Any,
    run_id: str,
    outcomes: list[TrialOutcome],
    rows: list[ConfigurationResult],
    best: TrialOutcome | None,
    register: str | None,
    version: str | None,
) -> None:
    counts = {status: sum(o.status == status for o in outcomes) for status in (FINISHED, FAILED, KILLED)}
    for status, count in counts.items():
        client.log_metric(run_id, f"sweep/trials_{status.lower()}", count)
    lost = [o.trial_id for o in outcomes if o.status == KILLED]
    failed = [o.trial_id for o in outcomes if o.status == FAILED]
    client.set_tag(run_id, "invalloc.sweep.lost_trials", ",".join(lost) or "none")
    client.set_tag(run_id, "invalloc.sweep.failed_trials", ",".join(failed) or "none")
    if rows and rows[0].mean is not None:
        client.log_metric(run_id, "sweep/best_final_reward_mean", rows[0].mean)
        client.set_tag(run_id, "invalloc.sweep.best_configuration", rows[0].configuration[:5000])
    if best is not None and best.run_id:
        client.set_tag(run_id, "invalloc.sweep.best_run", best.run_id)
    if register and version:
        client.set_tag(run_id, "invalloc.sweep.registered", f"{register} version {version}")


def _register(best: TrialOutcome, name: str) -> str | None:
    """Register the best trial's logged policy model as ``name``; returns the new version."""
    import mlflow

    if not best.model_uri:
        return None
    version = mlflow.register_model(best.model_uri, name)
    return str(version.version)
