"""Train an SB3 agent on an experiment, tracked in one MLflow run that can be resumed.

The run records:

- params: the flattened experiment and scenario;
- metrics (batched, see :class:`~invalloc.agents.tracking_io.MetricBuffer`): SB3's training
  metrics, per-rule constraint interventions in the training envs, and the deterministic
  evaluation on held-out seeds (reward, profit, fill rate overall and per tier, breaches);
- artifacts: ``config/`` (experiment and scenario YAML), ``checkpoint/`` (model, VecNormalize
  statistics as ``.npz``, trainer state: the resume point), ``best/`` (the best evaluated policy:
  JSON and ``.npz``, :class:`~invalloc.agents.learned.LearnedPolicy`), ``evaluation.csv``,
  ``evaluation_episodes.csv`` (the best policy per held-out episode), ``learning_curve.png``;
  and the MLflow model ``policy`` (pyfunc: observations in, actions out);
- tags: git commit, package version, scenario hash, and ``invalloc.sha256.<artifact>``: the
  sha256 of every file of every artifact invalloc reads back (:mod:`invalloc.agents.integrity`),
  checked before ``--resume`` or a ``run:``/``models:/`` policy reads anything.

Ctrl-C / SIGTERM stop training at the end of the current rollout: a checkpoint is written
there and the run is marked KILLED; ``resume`` continues it from that step. An exception marks it
FAILED, logs the traceback as ``error/traceback.txt`` and raises :class:`TrainingFailed`.

The process that trains a run owns it (:class:`~invalloc.tracking.RunLease`: owner tags, a
heartbeat, a lock file beside a local store). A run whose owner died without ending it
(``kill -9``) is marked KILLED by the next training against the store, by ``--resume`` and by
``invalloc runs clean``; a ``--resume`` of a run that a live process still trains is refused.
The trainer's temporary folder is removed on every exit, and one left by a killed trainer is
removed by the next training or ``runs clean``.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from invalloc.agents.algorithms import algorithm_class, has_noise_scale
from invalloc.agents.anchor import build_anchor
from invalloc.agents.experiment import LoadedExperiment, load_experiment
from invalloc.agents.integrity import ArtifactIntegrityError, hashes, log_with_hashes, tag_key, verify_hashes
from invalloc.agents.learned import (
    VEC_NORMALIZE_FILE,
    LearnedPolicy,
    ObservationStats,
    load_vec_normalize,
    save_vec_normalize,
)
from invalloc.agents.run_files import RunFilesError, restore_config, write_config
from invalloc.agents.tracking_io import MetricBuffer, MLflowOutputFormat, log_params
from invalloc.processes import exit_on_sigterm, remove_stale_temporary_folders, temporary_folder
from invalloc.sim.feasibility import RULES
from invalloc.sim.kpis import episode_kpis, mean_confidence_interval
from invalloc.sim.network import Network, compile_network
from invalloc.sim.simulator import Simulator, run_episodes
from invalloc.tracking import (
    RunBusy,
    RunLease,
    clean_stale_runs,
    configure_tracking,
    create_run,
    experiment_id,
    mark_killed,
    quiet_mlflow,
    standard_tags,
)

#: The MLflow experiment every training run goes to (one per invalloc experiment name).
EXPERIMENT_PREFIX = "invalloc-train"
_STATE_FILE = "trainer_state.json"
#: Artifact holding the traceback of a run that failed.
TRACEBACK_ARTIFACT = "error/traceback.txt"


class TrainingStopped(Exception):
    """Training was interrupted by Ctrl-C or SIGTERM; a checkpoint was written."""

    def __init__(self, run_id: str, timesteps: int):
        self.run_id = run_id
        self.timesteps = timesteps
        super().__init__(f"run {run_id} stopped at {timesteps} timesteps (KILLED); resume with --resume {run_id}")


class _StopRequested(Exception):
    """Raised by the training callback at a rollout boundary after Ctrl-C / SIGTERM."""


class ResumeError(ValueError):
    """A run that cannot be resumed (missing, finished, no checkpoint, or being trained by
    another live process); the message is one line."""


class TrainingFailed(RuntimeError):
    """Training raised; the run is FAILED and holds the traceback (``error/traceback.txt``).

    The exception that ended training is ``__cause__``; the message is one line.
    """

    def __init__(self, run_id: str, error: BaseException):
        self.run_id = run_id
        text = str(error).strip()
        reason = f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
        super().__init__(f"{reason} (run {run_id} is FAILED; traceback in its artifact {TRACEBACK_ARTIFACT})")


@dataclass
class TrainResult:
    run_id: str
    timesteps: int
    best_reward: float
    best_at: int
    model_uri: str
    registered_version: str | None
    evaluations: list[dict[str, float]]
    artifact_uri: str

    @property
    def spec(self) -> str:
        """The trained policy as a ``--policy`` spec: ``run:RUN_ID`` (its best model)."""
        return f"run:{self.run_id}"


@dataclass
class _State:
    """What the trainer needs besides the model to continue where it stopped."""

    next_evaluation: int
    next_checkpoint: int
    best_reward: float = -np.inf
    best_at: int = -1
    evaluations: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> str:
        data = self.__dict__.copy()
        data["best_reward"] = None if not np.isfinite(self.best_reward) else self.best_reward
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> _State:
        data = json.loads(text)
        data["best_reward"] = -np.inf if data["best_reward"] is None else data["best_reward"]
        return cls(**data)


# ---------------------------------------------------------------------------------------------
# Environments and model
# ---------------------------------------------------------------------------------------------


def _make_env(loaded: LoadedExperiment):
    import multiprocessing

    from invalloc.env import AllocationEnv

    if multiprocessing.parent_process() is not None:
        # A SubprocVecEnv worker: Ctrl-C reaches the whole process group, but only the trainer
        # may act on it (stop at the end of the rollout); a worker killed mid-step would fail the run.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    env = loaded.experiment.env
    return AllocationEnv(
        scenario=loaded.scenario_location,
        config_overrides=loaded.experiment.scenario_overrides or None,
        action_mode=env.action_mode,
        anchor=build_anchor(loaded.anchor) if loaded.anchor is not None else None,
        observation=env.observation,
        features=env.features,
        time_basis=env.time_basis,
        # ARS has no discount factor: its return is the episode's, on the scenario's objective.
        discount_rewards=loaded.experiment.algorithm == "ARS",
        projection_penalty=env.projection_penalty,
        reward_scale=env.reward_scale,
        # Training reads only ``constraint_cost`` from a step's info (the callback's per-rule
        # interventions); the full info would be built and deep-copied every step for nothing.
        info="lean",
    )


def make_vec_env(
    loaded: LoadedExperiment,
    seed: int,
    normalisation_path: Path | None = None,
    make_env: Callable[[], Any] | None = None,
):
    """The training VecEnv: n envs (Dummy or Subproc), VecMonitor, VecNormalize if enabled.

    ``make_env`` builds each env in place of the experiment's (a benchmark's stand-in with the
    same spaces, wrapped exactly as training wraps the real one).
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor, VecNormalize

    settings = loaded.experiment.env
    factories = [make_env or partial(_make_env, loaded) for _ in range(settings.n_envs)]
    vec = SubprocVecEnv(factories) if settings.vec_env == "subproc" else DummyVecEnv(factories)
    vec = VecMonitor(vec)
    if loaded.experiment.algorithm == "ARS":
        from invalloc.agents.ars import CommonRandomNumbers

        vec = CommonRandomNumbers(vec)  # an update's candidates all see the same demand
    vec.seed(seed)
    normalisation = loaded.experiment.vec_normalize
    if normalisation_path is not None:
        vec = load_vec_normalize(normalisation_path, vec)
    elif normalisation.enabled:
        gamma = float(loaded.experiment.hyperparameters.get("gamma", 0.99))
        vec = VecNormalize(
            vec, norm_obs=True, norm_reward=normalisation.norm_reward, clip_obs=normalisation.clip_obs, gamma=gamma
        )
    return vec


def build_model(loaded: LoadedExperiment, vec_env: Any):
    import torch

    experiment = loaded.experiment
    cls = algorithm_class(experiment.algorithm)
    policy_kwargs: dict[str, Any] = {
        "net_arch": list(experiment.policy.net_arch),
        "activation_fn": torch.nn.Tanh if experiment.policy.activation == "tanh" else torch.nn.ReLU,
    }
    if experiment.policy.log_std_init is not None and has_noise_scale(experiment.algorithm):
        policy_kwargs["log_std_init"] = experiment.policy.log_std_init
    return cls(
        "MlpPolicy",
        vec_env,
        seed=experiment.seed,
        device="cpu",
        verbose=0,
        policy_kwargs=policy_kwargs,
        **experiment.hyperparameters,
    )


# ---------------------------------------------------------------------------------------------
# Evaluation on held-out seeds
# ---------------------------------------------------------------------------------------------


def evaluate(policy: Any, network: Network, seeds: list[int]) -> list[dict]:
    """KPIs (``episode_kpis``) of ``policy`` on each seed; deterministic, common random numbers."""
    simulator = Simulator(network)
    episodes = run_episodes(simulator, policy, seeds)
    return [{"seed": seed, **episode_kpis(reports, network)} for seed, reports in zip(seeds, episodes, strict=True)]


def evaluation_metrics(episodes: list[dict]) -> dict[str, float]:
    """Means over episodes of the KPIs a learning curve shows (``eval/…`` metric names)."""
    rewards = [e["total_reward"] for e in episodes]
    mean, low, high = mean_confidence_interval(rewards)
    metrics = {"eval/total_reward": mean, "eval/total_reward_ci_low": low, "eval/total_reward_ci_high": high}
    for key in ("profit", "fill_rate", "contract_breaches", "rule_interventions", "intervention_volume",
                "average_inventory_value", "minimum_cash", "write_downs"):  # fmt: skip
        metrics[f"eval/{key}"] = float(np.mean([e[key] for e in episodes]))
    for tier in episodes[0]["fill_rate_by_tier"]:
        metrics[f"eval/fill_rate/{tier}"] = float(np.mean([e["fill_rate_by_tier"][tier] for e in episodes]))
    return metrics


def episodes_frame(episodes: list[dict]):
    import pandas as pd

    rows = []
    for episode in episodes:
        row = {k: v for k, v in episode.items() if not isinstance(v, dict | list)}
        row.update({f"fill_rate/{tier}": rate for tier, rate in episode["fill_rate_by_tier"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------


@contextmanager
def _stop_on_signals(flag: dict[str, bool]) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``flag["stop"]``; the training callback stops at the next step.

    Only the main thread may install signal handlers: off it (a Ray Tune trial runs its
    trainable in a thread) the block runs without them, and whoever runs the thread stops it.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        flag["stop"] = True

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Trainer:
    def __init__(self, loaded: LoadedExperiment, client: Any, run_id: str, work_dir: Path):
        self.loaded = loaded
        self.experiment = loaded.experiment
        self.client = client
        self.run_id = run_id
        self.work_dir = work_dir
        self.metrics = MetricBuffer()
        self.network = compile_network(loaded.scenario)
        evaluation = self.experiment.evaluation
        self.eval_seeds = list(range(evaluation.first_seed, evaluation.first_seed + evaluation.episodes))
        self.stop_flag = {"stop": False}

    # -- policy snapshots -------------------------------------------------------------------
    def snapshot(self, model: Any, vec_env: Any) -> LearnedPolicy:
        from stable_baselines3.common.vec_env import VecNormalize

        stats = ObservationStats.from_vec_normalize(vec_env) if isinstance(vec_env, VecNormalize) else None
        env = self.experiment.env
        return LearnedPolicy(
            model,
            self.loaded.scenario.digest,
            stats,
            env.action_mode,
            name=self.experiment.name,
            observation=env.observation,
            anchor=self.loaded.anchor,
            features=env.features,
            time_basis=env.time_basis,
        )

    def save_policy(self, model: Any, vec_env: Any, folder: Path) -> None:
        if folder.exists():
            shutil.rmtree(folder)
        self.snapshot(model, vec_env).save(folder, self.experiment.algorithm)

    # -- schedule ---------------------------------------------------------------------------
    def evaluate(self, model: Any, vec_env: Any, state: _State, timesteps: int) -> None:
        episodes = evaluate(self.snapshot(model, vec_env), self.network, self.eval_seeds)
        metrics = evaluation_metrics(episodes)
        self.metrics.add_many(metrics, timesteps)
        state.evaluations.append({"timesteps": timesteps, **metrics})
        if metrics["eval/total_reward"] > state.best_reward:
            state.best_reward = metrics["eval/total_reward"]
            state.best_at = timesteps
            best = self.work_dir / "best"
            self.save_policy(model, vec_env, best)
            episodes_frame(episodes).to_csv(best.parent / "evaluation_episodes.csv", index=False)

    def checkpoint(self, model: Any, vec_env: Any, state: _State) -> None:
        """Write model, VecNormalize and trainer state to the run, then the metrics up to here."""
        from stable_baselines3.common.vec_env import VecNormalize

        folder = self.work_dir / "checkpoint"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        model.save(folder / "model.zip")
        if isinstance(vec_env, VecNormalize):
            save_vec_normalize(vec_env, folder / VEC_NORMALIZE_FILE)
        (folder / _STATE_FILE).write_text(json.dumps({"timesteps": int(model.num_timesteps)}))
        (folder / "schedule.json").write_text(state.to_json())
        # The best policy first, so a checkpoint never points at a best model the store lacks.
        best = self.work_dir / "best"
        if best.exists():
            log_with_hashes(self.client, self.run_id, best, "best")
            log_with_hashes(self.client, self.run_id, self.work_dir / "evaluation_episodes.csv")
        log_with_hashes(self.client, self.run_id, folder, "checkpoint")
        self.metrics.flush(self.client, self.run_id)

    def callback(self, vec_env: Any, state: _State, bar: Callable[[int], None]):
        from stable_baselines3.common.callbacks import BaseCallback

        trainer = self

        class _Schedule(BaseCallback):
            """Progress, evaluation, checkpoints, per-rule interventions, and stopping on signals."""

            def _on_training_start(self) -> None:
                self._constraint_cost = None
                self._steps = 0

            def _on_step(self) -> bool:
                infos = self.locals.get("infos") or []
                for info in infos:
                    cost = info.get("constraint_cost")
                    if cost is not None:
                        self._constraint_cost = cost if self._constraint_cost is None else self._constraint_cost + cost
                        self._steps += 1
                timesteps = int(self.num_timesteps)
                bar(timesteps)
                if timesteps >= state.next_evaluation:
                    trainer.evaluate(self.model, vec_env, state, timesteps)
                    every = trainer.experiment.evaluation.every_timesteps
                    state.next_evaluation = (timesteps // every + 1) * every
                if timesteps >= state.next_checkpoint:
                    every = trainer.experiment.checkpoint_every_timesteps
                    state.next_checkpoint = (timesteps // every + 1) * every
                    trainer.checkpoint(self.model, vec_env, state)
                return True

            def _on_rollout_start(self) -> None:
                # Stop between rollouts, never inside one: the model has trained on every step it
                # counts, so a resumed run continues at exactly this step count.
                if trainer.stop_flag["stop"]:
                    raise _StopRequested

            def _on_rollout_end(self) -> None:
                if self._constraint_cost is None or not self._steps:
                    return
                # info["constraint_cost"] is in the feasibility layer's rule order (env.rule_names).
                for name, units in zip(RULES, self._constraint_cost / self._steps, strict=True):
                    self.logger.record(f"constraints/{name}_units_per_step", float(units))
                self._constraint_cost = None
                self._steps = 0

        return _Schedule()

    # -- artifacts at the end ---------------------------------------------------------------
    def finish(self, model: Any, vec_env: Any, state: _State, register: str | None) -> tuple[str, str | None]:
        import pandas as pd

        self.checkpoint(model, vec_env, state)
        table = pd.DataFrame(state.evaluations)
        table.to_csv(self.work_dir / "evaluation.csv", index=False)
        log_with_hashes(self.client, self.run_id, self.work_dir / "evaluation.csv")
        figure = learning_curve(table, self.experiment.name)
        figure.savefig(self.work_dir / "learning_curve.png")
        log_with_hashes(self.client, self.run_id, self.work_dir / "learning_curve.png")
        import matplotlib.pyplot as plt

        plt.close(figure)
        return log_policy_model(self.work_dir / "best", self.network, register)


def learning_curve(table: Any, title: str):
    """Evaluation reward (mean and 95% CI over held-out seeds) and fill rate against timesteps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (reward_axis, fill_axis) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    steps = table["timesteps"]
    reward_axis.plot(steps, table["eval/total_reward"], marker="o", label="mean over held-out seeds")
    reward_axis.fill_between(
        steps, table["eval/total_reward_ci_low"], table["eval/total_reward_ci_high"], alpha=0.25, label="95% CI"
    )
    reward_axis.set(xlabel="environment steps", ylabel="episode reward (discounted)", title=f"{title}: reward")
    reward_axis.legend(loc="lower right")
    for column in [c for c in table.columns if c.startswith("eval/fill_rate/")]:
        fill_axis.plot(steps, table[column], label=column.removeprefix("eval/fill_rate/"))
    fill_axis.plot(steps, table["eval/fill_rate"], color="black", linewidth=2, label="overall")
    fill_axis.set(xlabel="environment steps", ylabel="fill rate", title="fill rate per tier", ylim=(0, 1.02))
    fill_axis.legend(fontsize="x-small", ncol=2, loc="lower right")
    return figure


def log_policy_model(best: Path, network: Network, register: str | None) -> tuple[str, str | None]:
    """Log the best policy as the MLflow pyfunc model ``policy``; register it as ``register``."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from invalloc.agents.pyfunc import MODEL_CODE, POLICY_ARTIFACT, code_paths, pip_requirements
    from invalloc.env.observations import observation_source

    policy = LearnedPolicy.load(best)
    simulator = Simulator(network)
    simulator.reset(seed=0)
    observations = observation_source(
        simulator, policy.observation_kind, policy.feature_set_version, policy.features, policy.time_basis
    )
    example = observations.observe()[None, :]
    frame = pd.DataFrame(example, columns=observations.feature_names)
    signature = infer_signature(frame, policy.actions(example))
    with tempfile.TemporaryDirectory(prefix="invalloc-model-code-") as scratch, quiet_mlflow():
        info = mlflow.pyfunc.log_model(
            name="policy",
            python_model=str(MODEL_CODE),
            artifacts={POLICY_ARTIFACT: str(best)},
            code_paths=code_paths(Path(scratch)),
            signature=signature,
            input_example=frame,
            pip_requirements=pip_requirements(),
            registered_model_name=register,
        )
    # The pyfunc model's copy of the policy folder: checked when loaded as models:/NAME@ALIAS.
    mlflow.set_tag(tag_key(POLICY_ARTIFACT), json.dumps(hashes(best), sort_keys=True, separators=(",", ":")))
    version = str(info.registered_model_version) if register and info.registered_model_version else None
    return info.model_uri, version


def _verify_resume_artifacts(run: Any, downloads: dict[str, Path]) -> None:
    """Every downloaded resume artifact must match the sha256 recorded when it was logged."""
    for artifact_path, local in downloads.items():
        try:
            verify_hashes(run, artifact_path, local)
        except ArtifactIntegrityError as error:
            raise ResumeError(str(error)) from None


def load_checkpoint_model(loaded: LoadedExperiment, path: Path, vec_env: Any):
    """The SB3 model of a checkpoint, without unpickling anything.

    SB3's ``model.zip`` keeps plain settings as JSON in its ``data`` entry but cloudpickles
    objects (spaces, schedules, policy class and kwargs, ...) into ``:serialized:`` fields, which
    its ``load`` would unpickle. Every such field is replaced here (``custom_objects``) by the
    value of a model built afresh from the experiment, so only JSON and the ``.pth`` state
    dicts (read by SB3 with ``torch.load(weights_only=True)``) come from the file.

    :raises ResumeError: the file is not an SB3 checkpoint of this experiment.
    """
    import zipfile

    fresh = build_model(loaded, vec_env)
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode())
    except (OSError, KeyError, UnicodeDecodeError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ResumeError(f"{path.name}: not an SB3 checkpoint ({error})") from None
    if not isinstance(data, dict):
        raise ResumeError(f"{path.name}: not an SB3 checkpoint (its data entry is not a JSON object)")
    custom_objects = {}
    for key, item in data.items():
        if isinstance(item, dict) and ":serialized:" in item:
            if not hasattr(fresh, key):
                raise ResumeError(f"{path.name}: holds a serialized {key!r}, which {type(fresh).__name__} has not")
            custom_objects[key] = getattr(fresh, key)
    try:
        return algorithm_class(loaded.experiment.algorithm).load(
            path, env=vec_env, device="cpu", custom_objects=custom_objects
        )
    except (ValueError, KeyError, RuntimeError) as error:
        raise ResumeError(f"{path.name}: cannot be resumed ({' '.join(str(error).split())[:200]})") from None


def default_run_name(loaded: LoadedExperiment) -> str:
    """The run name when none is given: experiment, scenario and seed, e.g. ``retail_ars-retail-s0``."""
    return f"{loaded.experiment.name}-{loaded.scenario.scenario.name}-s{loaded.experiment.seed}"


def train(
    experiment: str | Path | LoadedExperiment | None = None,
    *,
    timesteps: int | None = None,
    seed: int | None = None,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    register: str | None = None,
    resume: str | None = None,
    progress: bool = True,
    on_run_started: Callable[[str], None] | None = None,
    on_stale_run: Callable[[str, str], None] | None = None,
    tags: Mapping[str, str] | None = None,
) -> TrainResult:
    """Train (or, with ``resume=RUN_ID``, continue) an experiment; returns the run's summary.

    Before anything starts, runs of the store whose owner process is gone are marked KILLED
    (``on_stale_run(run_id, reason)`` is told of each) and temporary folders of dead invalloc
    processes are removed. ``tags`` are set on a new run besides the standard ones (a sweep
    nests its trials with ``mlflow.parentRunId``).

    :raises TrackingError: the tracking store is unreachable (before anything starts).
    :raises ExperimentError: the experiment or its scenario is invalid.
    :raises ResumeError: the run to resume does not exist, has no checkpoint, or is being
        trained by another live process.
    :raises TrainingStopped: Ctrl-C / SIGTERM (the run is KILLED, a checkpoint written).
    :raises TrainingFailed: training raised (the run is FAILED, the traceback logged with it).
    """
    import mlflow
    import torch
    from mlflow.exceptions import MlflowException

    if resume is None and not isinstance(experiment, LoadedExperiment):
        # Validated before the store is touched: a bad experiment leaves no run and no store behind.
        experiment = load_experiment(experiment, timesteps=timesteps, seed=seed)
    uri = configure_tracking(tracking_uri, must_exist=resume is not None)
    client = mlflow.MlflowClient(uri)
    for run_id, reason in clean_stale(client):
        if on_stale_run is not None:
            on_stale_run(run_id, reason)
    lease = RunLease(client, uri)
    cleanup = ExitStack()  # undone in reverse: lease, folder, SIGTERM handler
    cleanup.enter_context(exit_on_sigterm())
    work_dir = cleanup.enter_context(temporary_folder("train"))
    cleanup.callback(lease.release)
    try:
        if resume is not None:
            try:
                run = client.get_run(resume)
            except MlflowException:
                raise ResumeError(f"run {resume} not found in {uri}") from None
            if run.info.status == "FINISHED":
                raise ResumeError(f"run {resume} already finished; nothing to resume")
            try:
                lease.acquire(resume)  # marks the run KILLED if its owner is gone
            except RunBusy as error:
                raise ResumeError(str(error)) from None
            try:
                config = restore_config(client, resume, work_dir)
                saved = Path(client.download_artifacts(resume, "checkpoint", str(work_dir)))
            except RunFilesError as error:
                raise ResumeError(str(error)) from None
            except (MlflowException, OSError):
                raise ResumeError(f"run {resume} has no checkpoint to resume from") from None
            _verify_resume_artifacts(run, {"checkpoint": saved})
            loaded = load_experiment(config, timesteps=timesteps)
            if loaded.scenario.digest != run.data.tags.get("invalloc.scenario_hash"):
                raise ResumeError(f"run {resume}: logged scenario does not match its scenario hash")
            state = _State.from_json((saved / "schedule.json").read_text())
            try:  # a run stopped before its first evaluation has no best policy yet
                client.download_artifacts(resume, "best", str(work_dir))
                client.download_artifacts(resume, "evaluation_episodes.csv", str(work_dir))
            except (MlflowException, OSError):
                shutil.rmtree(work_dir / "best", ignore_errors=True)
            else:
                _verify_resume_artifacts(
                    run, {"best": work_dir / "best", "evaluation_episodes.csv": work_dir / "evaluation_episodes.csv"}
                )
            run_id = resume
        else:
            loaded = (
                experiment
                if isinstance(experiment, LoadedExperiment)
                else load_experiment(experiment, timesteps=timesteps, seed=seed)
            )
            evaluation = loaded.experiment.evaluation
            state = _State(next_evaluation=evaluation.every_timesteps,
                           next_checkpoint=loaded.experiment.checkpoint_every_timesteps)  # fmt: skip
            exp_id = experiment_id(f"{EXPERIMENT_PREFIX}/{loaded.experiment.name}", uri)
            name = run_name or default_run_name(loaded)
            run = create_run(client, exp_id, name, {**standard_tags(loaded.scenario.digest), **(tags or {})})
            run_id = run.info.run_id
            try:
                lease.acquire(run_id)
                log_params(client, run_id, loaded.flat_params())
                write_config(loaded, work_dir / "config")
                log_with_hashes(client, run_id, work_dir / "config", "config")
            except (KeyboardInterrupt, SystemExit):
                mark_killed(client, run_id, "interrupted while starting")
                raise
            except BaseException as error:
                _end_failed(client, run_id)
                raise TrainingFailed(run_id, error) from error
        if on_run_started is not None:
            on_run_started(run_id)
        torch.set_num_threads(loaded.experiment.torch_threads)
        return _run(loaded, client, run_id, work_dir, state, resume is not None, register, progress)
    finally:
        cleanup.close()


def clean_stale(client: Any) -> list[tuple[str, str]]:
    """Mark runs of dead owners KILLED and remove dead processes' temporary folders.

    Housekeeping: a store that refuses it (read-only, say) is left for the command to report.
    :returns: the ``(run_id, reason)`` of each run marked KILLED.
    """
    remove_stale_temporary_folders()
    try:
        return clean_stale_runs(client)
    except Exception as error:  # noqa: BLE001 - MLflow's errors share no base without importing it
        if type(error).__module__.startswith("mlflow"):
            return []
        raise


def _end_failed(client: Any, run_id: str) -> None:
    """Log the traceback being handled with the run and end it FAILED (each step best effort)."""
    try:
        client.log_text(run_id, traceback.format_exc(), TRACEBACK_ARTIFACT)
    except Exception:  # noqa: BLE001 - the store may be what failed; the status matters more
        pass
    client.set_terminated(run_id, "FAILED")


def _run(
    loaded: LoadedExperiment,
    client: Any,
    run_id: str,
    work_dir: Path,
    state: _State,
    resuming: bool,
    register: str | None,
    progress: bool,
) -> TrainResult:
    import mlflow
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from stable_baselines3.common.logger import Logger

    trainer = _Trainer(loaded, client, run_id, work_dir)
    experiment = loaded.experiment
    total = experiment.timesteps
    with mlflow.start_run(run_id=run_id), _stop_on_signals(trainer.stop_flag):
        try:
            if resuming:
                saved = work_dir / "checkpoint"
                done = json.loads((saved / _STATE_FILE).read_text())["timesteps"]
                normalisation = saved / VEC_NORMALIZE_FILE
                # Fresh episodes after a resume: seed the envs from where training stopped.
                statistics = normalisation if normalisation.exists() else None
                try:
                    vec_env = make_vec_env(loaded, experiment.seed + done, statistics)
                except (OSError, ValueError, KeyError) as error:
                    raise ResumeError(f"{VEC_NORMALIZE_FILE}: cannot be resumed ({error})") from None
                model = load_checkpoint_model(loaded, saved / "model.zip", vec_env)
            else:
                done = 0
                vec_env = make_vec_env(loaded, experiment.seed)
                model = build_model(loaded, vec_env)
            model.set_logger(Logger(folder=None, output_formats=[MLflowOutputFormat(trainer.metrics)]))
            columns = (TextColumn("training {task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn())  # fmt: skip
            with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=False) as bar:
                task = bar.add_task(experiment.name, total=total, completed=done)
                callback = trainer.callback(vec_env, state, lambda steps: bar.update(task, completed=min(steps, total)))
                if total > done:
                    try:
                        model.learn(total_timesteps=total - done, callback=callback, reset_num_timesteps=not resuming)
                    except _StopRequested:
                        pass
            if trainer.stop_flag["stop"]:
                trainer.checkpoint(model, vec_env, state)
                mlflow.end_run(status="KILLED")
                raise TrainingStopped(run_id, int(model.num_timesteps))
            if not state.evaluations or state.evaluations[-1]["timesteps"] != model.num_timesteps:
                trainer.evaluate(model, vec_env, state, int(model.num_timesteps))
            model_uri, version = trainer.finish(model, vec_env, state, register)
            vec_env.close()
        except TrainingStopped:
            raise
        except (KeyboardInterrupt, SystemExit):
            mlflow.end_run(status="KILLED")
            raise
        except BaseException as error:
            _end_failed(client, run_id)
            mlflow.end_run(status="FAILED")
            raise TrainingFailed(run_id, error) from error
    run = client.get_run(run_id)
    return TrainResult(
        run_id=run_id,
        timesteps=int(model.num_timesteps),
        best_reward=float(state.best_reward),
        best_at=state.best_at,
        model_uri=model_uri,
        registered_version=version,
        evaluations=state.evaluations,
        artifact_uri=run.info.artifact_uri,
    )
