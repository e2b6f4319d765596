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
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from invalloc.agents.algorithms import ALGORITHMS, accepted_hyperparameters
from invalloc.config.loader import (
    ConfigFileError,
    LoadedScenario,
    ScenarioError,
    load_scenario,
    read_config_text,
    read_yaml,
    validation_problems,
)
from invalloc.config.shipped import not_found, resolve, shipped_folder

#: Folder of the experiments shipped with invalloc (package data: ``src/invalloc/experiments``).
EXPERIMENTS_DIR = shipped_folder("experiments")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: Seeds reach numpy's legacy seeding through SB3, which takes 32-bit seeds.
MAX_TRAIN_SEED = 2**32 - 1
#: Most timesteps one experiment may train (and the longest evaluation/checkpoint interval).
MAX_TIMESTEPS = 10**10


class PolicyNetwork(_Strict):
    """The actor-critic network: hidden layer sizes and activation."""

    net_arch: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [64, 64],
        min_length=0,
        max_length=16,
        description="Hidden layer sizes; [] is a linear policy (ARS's classic form).",
    )
    activation: Literal["tanh", "relu"] = "tanh"
    log_std_init: Annotated[float, Field(ge=-20, le=20)] | None = Field(
        default=None, description="Initial log std of Gaussian actions (PPO/A2C/SAC)."
    )


class VectorEnv(_Strict):
    n_envs: int = Field(default=4, ge=1, le=64)
    vec_env: Literal["dummy", "subproc"] = "dummy"
    action_mode: Literal["compact", "anchored", "raw"] = Field(
        default="compact",
        description="'compact' (covers around a 1.5-period base stock), 'anchored' (a bounded correction "
        "to the rule named by 'anchor'; action 0 is that rule) or 'raw' (one number per decision).",
    )
    anchor: str | None = Field(
        default=None,
        description="With action_mode 'anchored': the rule the agent corrects, a baseline spec such as "
        "'proportional@tuned' (the parameters shipped for the scenario) or 'base_stock:cover=2.5'.",
    )
    observation: Literal["full", "features"] = Field(
        default="full",
        description="What the agent sees: 'full' (every SKU's stock, pipeline, demand, money; scaled) or "
        "'features' (the rule table's named features, in business units: needs vec_normalize).",
    )
    features: list[str] | None = Field(
        default=None,
        min_length=1,
        description="With observation 'features': only these named features, in this order.",
    )
    time_basis: int = Field(
        default=0,
        ge=0,
        le=64,
        description="With observation 'features': append this many horizon-phase features (bumps of "
        "period / horizon) so that a linear policy can act differently early and late in the episode.",
    )
    projection_penalty: float = Field(default=0.0, ge=0, le=1e6)
    reward_scale: float | None = Field(
        default=None, gt=0, le=1e15, description="Money per reward unit (default: env's)."
    )


class Normalisation(_Strict):
    enabled: bool = True
    norm_reward: bool = True
    clip_obs: float = Field(default=10.0, gt=0, le=1e6)


class Evaluation(_Strict):
    every_timesteps: int = Field(
        default=10_000, ge=1, le=MAX_TIMESTEPS, description="Evaluate after every so many env steps."
    )
    episodes: int = Field(default=10, ge=1, le=10_000)
    first_seed: int = Field(
        default=1_000_000,
        ge=0,
        le=2**62,
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
    timesteps: int = Field(default=100_000, ge=1, le=MAX_TIMESTEPS)
    seed: int = Field(default=0, ge=0, le=MAX_TRAIN_SEED)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    checkpoint_every_timesteps: int = Field(default=20_000, ge=1, le=MAX_TIMESTEPS)
    torch_threads: int = Field(
        default=1, ge=1, le=256, description="CPU threads for torch (1 is fastest for small nets)."
    )


class ExperimentError(ConfigFileError):
    """An experiment that cannot be used; ``problems`` holds one ``path: message`` line each."""


@dataclass(frozen=True)
class LoadedExperiment:
    experiment: Experiment
    scenario: LoadedScenario
    source: str
    text: str  # the YAML as given, logged as an artifact
    #: The resolved anchor of an ``anchored`` experiment (:func:`invalloc.agents.anchor.resolve_anchor`).
    anchor: dict[str, Any] | None = None

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


def _whole(low: int, high: int) -> Any:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number (got {_shown(value)})"
        return None if low <= value <= high else f"must be from {low:,} to {high:,} (got {value:,})"

    return check


def _real(low: float, high: float, low_open: bool = False, none: bool = False) -> Any:
    def check(value: Any) -> str | None:
        if value is None and none:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number (got {_shown(value)})"
        if not math.isfinite(value):
            return f"must be a finite number (got {value})"
        below = value <= low if low_open else value < low
        if below or value > high:
            return f"must be {'>' if low_open else '≥'} {low:g} and ≤ {high:g} (got {value:g})"
        return None

    return check


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false (got {_shown(value)})"


def _ent_coef(value: Any) -> str | None:
    if isinstance(value, str) and (value == "auto" or value.startswith("auto_")):
        return None
    return _real(0, 100)(value)


def _target_entropy(value: Any) -> str | None:
    return None if value == "auto" else _real(-1e6, 1e6)(value)


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: Hyper-parameters an experiment file may set, with their ranges. Others that SB3 takes
#: (classes, noise objects) cannot be written in YAML.
HYPERPARAMETER_CHECKS: dict[str, Any] = {
    "learning_rate": _real(0, 10, low_open=True),
    "n_steps": _whole(1, 1_000_000),
    "batch_size": _whole(2, 1_000_000),
    "n_epochs": _whole(1, 1_000),
    "gamma": _real(0, 1),
    "gae_lambda": _real(0, 1),
    "clip_range": _real(0, 10, low_open=True),
    "clip_range_vf": _real(0, 1e6, low_open=True, none=True),
    "ent_coef": _ent_coef,
    "vf_coef": _real(0, 1e6),
    "max_grad_norm": _real(0, 1e6, low_open=True),
    "target_kl": _real(0, 1e6, low_open=True, none=True),
    "normalize_advantage": _flag,
    "use_sde": _flag,
    "use_sde_at_warmup": _flag,
    "sde_sample_freq": _whole(-1, 1_000_000),
    "stats_window_size": _whole(1, 1_000_000),
    "rms_prop_eps": _real(0, 1, low_open=True),
    "use_rms_prop": _flag,
    "buffer_size": _whole(1, 100_000_000),
    "learning_starts": _whole(0, MAX_TIMESTEPS),
    "tau": _real(0, 1, low_open=True),
    "train_freq": _whole(1, 1_000_000),
    "gradient_steps": _whole(-1, 1_000_000),
    "target_update_interval": _whole(1, 1_000_000),
    "target_entropy": _target_entropy,
    "optimize_memory_usage": _flag,
    "policy_delay": _whole(1, 1_000_000),
    "n_delta": _whole(1, 10_000),
    "n_top": _whole(1, 10_000),
    "delta_std": _real(0, 10, low_open=True),
    "zero_policy": _flag,
    "n_eval_episodes": _whole(1, 10_000),
    "alive_bonus_offset": _real(-1e9, 1e9),
    "target_policy_noise": _real(0, 1e6),
    "target_noise_clip": _real(0, 1e6),
}


def _hyperparameter_problems(data: dict[str, Any]) -> list[str]:
    """Hyper-parameters the named algorithm does not take or that are out of range, and
    settings SB3 would only reject once a run exists (checked even when other fields fail)."""
    algorithm = data.get("algorithm", "PPO")
    hyperparameters = data.get("hyperparameters")
    if algorithm not in ALGORITHMS or not isinstance(hyperparameters, dict):
        return []
    accepted = accepted_hyperparameters(algorithm)
    settable = [key for key in accepted if key in HYPERPARAMETER_CHECKS]
    problems = []
    for key, value in hyperparameters.items():
        if key not in accepted:
            problems.append(
                f"hyperparameters.{key}: not a hyper-parameter of {algorithm} (it takes {', '.join(settable)})"
            )
        elif key not in HYPERPARAMETER_CHECKS:
            problems.append(
                f"hyperparameters.{key}: cannot be set from an experiment file (it takes {', '.join(settable)})"
            )
        else:
            check = HYPERPARAMETER_CHECKS[key]
            if key == "ent_coef" and algorithm != "SAC":  # only SAC learns its entropy coefficient ("auto")
                check = _real(0, 100)
            problem = check(value)
            if problem:
                problems.append(f"hyperparameters.{key}: {problem}")
    if not problems and algorithm == "ARS":
        n_delta = hyperparameters.get("n_delta", 8)
        if hyperparameters.get("n_top", n_delta) > n_delta:
            problems.append(f"hyperparameters.n_top: {hyperparameters['n_top']} is more than n_delta ({n_delta})")
    if problems or algorithm not in ("PPO", "A2C"):
        return problems
    env = data.get("env") if isinstance(data.get("env"), dict) else {}
    n_envs = env.get("n_envs", 4)
    n_steps = hyperparameters.get("n_steps", 2048 if algorithm == "PPO" else 5)
    if isinstance(n_envs, int) and not isinstance(n_envs, bool) and 1 <= n_envs <= 64:
        rollout = n_steps * n_envs
        if algorithm == "PPO" and rollout < 2:
            problems.append(
                f"hyperparameters.n_steps: {n_steps} step × {n_envs} env is a rollout of {rollout}; "
                "PPO needs at least 2"
            )
        batch = hyperparameters.get("batch_size", 64)
        if algorithm == "PPO" and batch > rollout:
            problems.append(
                f"hyperparameters.batch_size: {batch} is larger than the rollout "
                f"(n_steps {n_steps} × env.n_envs {n_envs} = {rollout})"
            )
    return problems


def resolve_experiment_path(name_or_path: str | Path) -> Path:
    """The YAML file of an experiment name (``tiny_smoke``) or path; it may not exist.

    A path is used as given; a name is looked up in ``./experiments/`` and then among the shipped
    experiments (:mod:`invalloc.config.shipped`).
    """
    return resolve(name_or_path, "experiments")


def set_dotted(data: dict[str, Any], key: str, value: Any) -> str | None:
    """Set ``data["a"]["b"]["c"] = value`` for ``key`` ``a.b.c`` (missing sections are created).

    :returns: why it cannot be set (a part of the path is not a section), or None once set.
    """
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        inner = node.get(part)
        if inner is None:
            inner = node[part] = {}
        if not isinstance(inner, dict):
            return f"{'.'.join(parts[: depth + 1])} is a value, not a section"
        node = inner
    node[parts[-1]] = value
    return None


def load_experiment(
    name_or_path: str | Path,
    timesteps: int | None = None,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedExperiment:
    """Load and validate an experiment and its scenario; ``timesteps``/``seed`` override the file.

    ``overrides`` sets dotted keys before validation (``{"hyperparameters.learning_rate": 1e-3}``);
    a key that names no setting is reported like an unknown key in the file.

    :raises ExperimentError: missing file, not YAML, invalid experiment or invalid scenario.
    """
    path = resolve_experiment_path(name_or_path)
    source = str(path)
    if not path.exists():
        given, problem = not_found(name_or_path, "experiments")
        raise ExperimentError(given, [problem])
    try:
        text = read_config_text(path)
    except ConfigFileError as error:
        raise ExperimentError(source, error.problems) from None
    try:
        data, problems = read_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ExperimentError(source, [f"{where}: not valid YAML ({getattr(error, 'problem', error)})"]) from None
    if problems:
        raise ExperimentError(source, problems)
    if not isinstance(data, dict):
        raise ExperimentError(source, ["(file): must be a mapping of experiment settings"])
    if timesteps is not None:
        data["timesteps"] = timesteps
    if seed is not None:
        data["seed"] = seed
    problems = [
        f"{key}: {problem}" for key, value in (overrides or {}).items() if (problem := set_dotted(data, key, value))
    ]
    if problems:
        raise ExperimentError(source, problems)
    problems = _hyperparameter_problems(data)
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as error:
        raise ExperimentError(source, validation_problems(error, data, Experiment) + problems) from None
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
    anchor = _anchor(experiment, scenario, source)
    _check_observation(experiment, scenario, source)
    return LoadedExperiment(experiment=experiment, scenario=scenario, source=source, text=text, anchor=anchor)


def _check_observation(experiment: Experiment, scenario: LoadedScenario, source: str) -> None:
    """``env.features`` must name features of the scenario; both need ``observation: features``."""
    env = experiment.env
    problems = []
    if env.observation != "features":
        problems += [
            f"env.{key}: only env.observation 'features' takes it (it is '{env.observation}')"
            for key, value in (("features", env.features), ("time_basis", env.time_basis))
            if value
        ]
    elif env.features is not None:
        from invalloc.env.features import FeatureSet
        from invalloc.sim.network import compile_network

        names = FeatureSet(compile_network(scenario)).names
        unknown = [name for name in env.features if name not in names]
        if unknown:
            problems.append(
                f"env.features: {', '.join(unknown)} not among the scenario's features ({', '.join(names)})"
            )
        if len(set(env.features)) != len(env.features):
            problems.append("env.features: a feature is named twice")
    if problems:
        raise ExperimentError(source, problems)


def _anchor(experiment: Experiment, scenario: LoadedScenario, source: str) -> dict[str, Any] | None:
    """The resolved anchor of an ``anchored`` experiment, None otherwise, or ExperimentError."""
    from invalloc.agents.anchor import resolve_anchor
    from invalloc.sim.policy import PolicyError

    env = experiment.env
    if env.action_mode != "anchored":
        if env.anchor is not None:
            raise ExperimentError(
                source, [f"env.anchor: only env.action_mode 'anchored' takes one (it is '{env.action_mode}')"]
            )
        return None
    if env.anchor is None:
        raise ExperimentError(
            source, ["env.anchor: env.action_mode 'anchored' needs the rule it corrects, e.g. proportional@tuned"]
        )
    try:
        return resolve_anchor(env.anchor, scenario.scenario.name)
    except PolicyError as error:
        raise ExperimentError(source, [f"env.anchor: {error}"]) from None
