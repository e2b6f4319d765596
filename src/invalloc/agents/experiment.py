"""Training experiments (shipped in ``invalloc/experiments/*.yaml``), validated like scenarios.

An experiment names a scenario, an algorithm and its hyper-parameters, the vectorised
environment, VecNormalize, the training budget and seed, the evaluation schedule on held-out
seeds and the checkpoint interval. Unknown keys, wrong types, a hyper-parameter the
algorithm does not take, or a scenario that fails validation are all reported at once, one
``yaml.path: message`` line each.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from invalloc.agents.algorithms import ALGORITHMS, accepted_hyperparameters
from invalloc.config.loader import (
    ConfigFileError,
    LoadedScenario,
    ScenarioError,
    load_scenario,
    read_yaml,
    validation_problems,
)
from invalloc.config.shipped import not_found, resolve, shipped_folder

#: Folder of the experiments shipped with invalloc (package data: ``src/invalloc/experiments``).
EXPERIMENTS_DIR = shipped_folder("experiments")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyNetwork(_Strict):
    """The actor-critic network: hidden layer sizes and activation."""

    net_arch: list[int] = Field(default_factory=lambda: [64, 64], min_length=1)
    activation: Literal["tanh", "relu"] = "tanh"
    log_std_init: float | None = Field(default=None, description="Initial log std of Gaussian actions (PPO/A2C/SAC).")


class VectorEnv(_Strict):
    n_envs: int = Field(default=4, ge=1, le=64)
    vec_env: Literal["dummy", "subproc"] = "dummy"
    action_mode: Literal["compact", "raw"] = "compact"
    observation: Literal["full", "features"] = Field(
        default="full",
        description="What the agent sees: 'full' (every SKU's stock, pipeline, demand, money; scaled) or "
        "'features' (the rule table's named features, in business units: needs vec_normalize).",
    )
    projection_penalty: float = Field(default=0.0, ge=0)
    reward_scale: float | None = Field(default=None, gt=0, description="Money per reward unit (default: env's).")


class Normalisation(_Strict):
    enabled: bool = True
    norm_reward: bool = True
    clip_obs: float = Field(default=10.0, gt=0)


class Evaluation(_Strict):
    every_timesteps: int = Field(default=10_000, ge=1, description="Evaluate after every so many env steps.")
    episodes: int = Field(default=10, ge=1)
    first_seed: int = Field(
        default=1_000_000,
        ge=0,
        description="Held-out simulator seeds first_seed … first_seed+episodes−1. Training episodes draw "
        "63-bit seeds from the experiment seed, so they do not meet these.",
    )


class Experiment(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    scenario: str = Field(min_length=1, description="Shipped scenario name or YAML path (relative to this file).")
    scenario_overrides: dict[str, Any] = Field(default_factory=dict)
    algorithm: Literal[ALGORITHMS] = "PPO"  # type: ignore[valid-type]
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    policy: PolicyNetwork = Field(default_factory=PolicyNetwork)
    env: VectorEnv = Field(default_factory=VectorEnv)
    vec_normalize: Normalisation = Field(default_factory=Normalisation)
    timesteps: int = Field(default=100_000, ge=1)
    seed: int = Field(default=0, ge=0)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    checkpoint_every_timesteps: int = Field(default=20_000, ge=1)
    torch_threads: int = Field(default=1, ge=1, description="CPU threads for torch (1 is fastest for small nets).")


class ExperimentError(ConfigFileError):
    """An experiment that cannot be used; ``problems`` holds one ``path: message`` line each."""


@dataclass(frozen=True)
class LoadedExperiment:
    experiment: Experiment
    scenario: LoadedScenario
    source: str
    text: str  # the YAML as given, logged as an artifact

    @property
    def scenario_location(self) -> str:
        return self.scenario.source

    def flat_params(self) -> dict[str, str]:
        """Experiment and scenario flattened to ``a.b.c → value`` strings (MLflow params)."""
        flat: dict[str, str] = {}
        _flatten("experiment", self.experiment.model_dump(mode="json"), flat)
        _flatten("scenario", self.scenario.scenario.model_dump(mode="json", by_alias=True), flat)
        return flat

    @property
    def digest(self) -> str:
        payload = json.dumps(self.experiment.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    elif isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        for index, inner in enumerate(value):
            _flatten(f"{prefix}.{index}", inner, out)
    else:
        out[prefix] = json.dumps(value) if not isinstance(value, str) else value


def _hyperparameter_problems(data: dict[str, Any]) -> list[str]:
    """Hyper-parameters the named algorithm does not take (checked even when other fields fail)."""
    algorithm = data.get("algorithm", "PPO")
    hyperparameters = data.get("hyperparameters")
    if algorithm not in ALGORITHMS or not isinstance(hyperparameters, dict):
        return []
    accepted = accepted_hyperparameters(algorithm)
    return [
        f"hyperparameters.{key}: not a hyper-parameter of {algorithm} (it takes {', '.join(accepted)})"
        for key in hyperparameters
        if key not in accepted
    ]


def resolve_experiment_path(name_or_path: str | Path) -> Path:
    """The YAML file of an experiment name (``tiny_smoke``) or path; it may not exist.

    A path is used as given; a name is looked up in ``./experiments/`` and then among the shipped
    experiments (:mod:`invalloc.config.shipped`).
    """
    return resolve(name_or_path, "experiments")


def load_experiment(
    name_or_path: str | Path, timesteps: int | None = None, seed: int | None = None
) -> LoadedExperiment:
    """Load and validate an experiment and its scenario; ``timesteps``/``seed`` override the file.

    :raises ExperimentError: missing file, not YAML, invalid experiment or invalid scenario.
    """
    path = resolve_experiment_path(name_or_path)
    source = str(path)
    if not path.is_file():
        given, problem = not_found(name_or_path, "experiments")
        raise ExperimentError(given, [problem])
    text = path.read_text(encoding="utf-8")
    try:
        data, problems = read_yaml(text)
    except yaml.YAMLError as error:
        raise ExperimentError(source, [f"(file): not valid YAML ({getattr(error, 'problem', error)})"]) from None
    if problems:
        raise ExperimentError(source, problems)
    if not isinstance(data, dict):
        raise ExperimentError(source, ["(file): must be a mapping of experiment settings"])
    if timesteps is not None:
        data["timesteps"] = timesteps
    if seed is not None:
        data["seed"] = seed
    problems = _hyperparameter_problems(data)
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as error:
        raise ExperimentError(source, validation_problems(error, data) + problems) from None
    if problems:
        raise ExperimentError(source, problems)
    scenario_path = Path(experiment.scenario)
    if scenario_path.suffix in (".yaml", ".yml") and not scenario_path.is_absolute():
        scenario_path = path.parent / scenario_path
        location: str = str(scenario_path)
    else:
        location = experiment.scenario
    try:
        scenario = load_scenario(location, experiment.scenario_overrides or None)
    except ScenarioError as error:
        raise ExperimentError(source, [f"scenario: {line}" for line in error.lines()]) from None
    return LoadedExperiment(experiment=experiment, scenario=scenario, source=source, text=text)
