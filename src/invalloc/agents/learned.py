"""A trained SB3 agent as a :class:`~invalloc.sim.policy.Policy`.

The agent sees exactly what it saw in training: the environment's observation
(:class:`~invalloc.env.observations.ObservationBuilder`), normalised with the VecNormalize
statistics frozen at the end of training, and its deterministic action is turned into
requested quantities by the environment's :class:`~invalloc.env.actions.ActionMapper`. So a
learned policy runs in ``simulate``/``compare`` through the same feasibility layer as every
baseline, and on the simulator directly (no Gymnasium wrapper in between).

Loading never executes code from a file. A saved policy folder is read from JSON and numpy
only: ``policy.json`` (algorithm, scenario digest, action and observation kinds, and the
network: SB3 policy class arguments and the spaces), ``policy_weights.npz`` (the policy's
``state_dict``, read with ``allow_pickle=False``) and ``observation_stats.npz``. The network
is rebuilt from the JSON and the weights loaded into it; ``model.zip`` (SB3's own format,
whose ``data`` entry holds cloudpickled objects) is written for SB3 users but never read here.
:func:`load_learned_policy` also checks every file against the sha256 the training run
recorded in the tracking store (:mod:`invalloc.agents.integrity`) before reading any.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from invalloc.env.actions import ActionMapper
from invalloc.env.features import FEATURE_SET_VERSION
from invalloc.env.observations import FeatureObservation, ObservationBuilder, observation_source
from invalloc.sim.policy import PolicyError

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.policies import BasePolicy

    from invalloc.sim.network import Network
    from invalloc.sim.simulator import Simulator

#: File names inside a saved policy folder (a run's ``best/`` or ``final/`` artifacts).
MODEL_FILE = "model.zip"
OBSERVATION_STATS_FILE = "observation_stats.npz"
VEC_NORMALIZE_FILE = "vecnormalize.npz"
POLICY_META_FILE = "policy.json"
WEIGHTS_FILE = "policy_weights.npz"
#: Name of the MLflow pyfunc model's artifact that holds the saved policy folder
#: (:mod:`invalloc.agents.pyfunc` logs it; :func:`load_learned_policy` reads it back).
POLICY_ARTIFACT = "policy"
#: Activation functions a saved network may name (torch.nn classes, no arguments).
ACTIVATIONS = ("Tanh", "ReLU", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid")
#: Constructor arguments of SB3 policies rebuilt from code or defaults, never from the file.
_REBUILT = ("observation_space", "action_space", "lr_schedule", "optimizer_class", "optimizer_kwargs",
            "features_extractor_class", "features_extractor_kwargs", "activation_fn")  # fmt: skip


@dataclass(frozen=True)
class ObservationStats:
    """VecNormalize's observation statistics, frozen: ``clip((obs − mean) / sqrt(var + eps))``."""

    mean: np.ndarray
    var: np.ndarray
    clip: float
    epsilon: float

    def normalise(self, observations: np.ndarray) -> np.ndarray:
        scaled = (observations - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def save(self, path: Path) -> None:
        np.savez(path, mean=self.mean, var=self.var, clip=self.clip, epsilon=self.epsilon)

    @classmethod
    def load(cls, path: Path) -> ObservationStats:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["mean"], data["var"], float(data["clip"]), float(data["epsilon"]))

    @classmethod
    def from_vec_normalize(cls, vec_normalize: Any) -> ObservationStats | None:
        if vec_normalize is None or not getattr(vec_normalize, "norm_obs", False):
            return None
        rms = vec_normalize.obs_rms
        return cls(rms.mean.copy(), rms.var.copy(), float(vec_normalize.clip_obs), float(vec_normalize.epsilon))


def _describe_space(space: Any) -> dict:
    from gymnasium import spaces

    if not isinstance(space, spaces.Box):
        raise PolicyError(f"cannot save a policy for a {type(space).__name__} space (Box only)")
    return {
        "type": "Box",
        "shape": list(space.shape),
        "dtype": str(space.dtype),
        "low": space.low.tolist(),
        "high": space.high.tolist(),
    }


def _build_space(description: Any, where: str) -> Any:
    from gymnasium import spaces

    try:
        if description["type"] != "Box" or description["dtype"] not in ("float32", "float64"):
            raise ValueError(f"unsupported space {description['type']}/{description['dtype']}")
        shape = tuple(int(n) for n in description["shape"])
        low = np.asarray(description["low"], dtype=description["dtype"]).reshape(shape)
        high = np.asarray(description["high"], dtype=description["dtype"]).reshape(shape)
        return spaces.Box(low, high, shape, dtype=np.dtype(description["dtype"]))
    except (KeyError, TypeError, ValueError) as error:
        raise PolicyError(f"{where}: malformed space ({error})") from None


def describe_policy_network(policy: Any) -> dict:
    """The JSON description of an SB3 policy that :func:`build_policy_network` rebuilds it from:
    its class name, observation and action spaces and constructor arguments (activation by name)."""
    from stable_baselines3.common.torch_layers import FlattenExtractor

    parameters = policy._get_constructor_parameters()
    if parameters.get("features_extractor_class", FlattenExtractor) is not FlattenExtractor or parameters.get(
        "features_extractor_kwargs"
    ):
        raise PolicyError("cannot describe a policy with a custom features extractor")
    activation = parameters.get("activation_fn")
    kwargs = {key: value for key, value in parameters.items() if key not in _REBUILT}
    json.dumps(kwargs)  # plain values only: a TypeError here is a programming error
    return {
        "policy_class": type(policy).__name__,
        "observation_space": _describe_space(policy.observation_space),
        "action_space": _describe_space(policy.action_space),
        "activation": None if activation is None else activation.__name__,
        "kwargs": kwargs,
    }


def build_policy_network(algorithm: str, network: dict, weights_path: Path) -> Any:
    """Rebuild the SB3 policy ``network`` describes and load its weights from ``weights_path``.

    Only names from fixed lists are turned into classes (the algorithm's ``MlpPolicy`` and
    :data:`ACTIVATIONS`); the weights are read with ``numpy.load(allow_pickle=False)``.

    :raises PolicyError: one line naming the file that does not fit.
    """
    import torch

    from invalloc.agents.algorithms import ALGORITHMS, algorithm_class

    where = f"{weights_path.parent / POLICY_META_FILE}"
    if algorithm not in ALGORITHMS:
        raise PolicyError(f"{where}: unknown algorithm {algorithm!r} (choose from {', '.join(ALGORITHMS)})")
    policy_class = algorithm_class(algorithm).policy_aliases["MlpPolicy"]
    if network.get("policy_class") != policy_class.__name__:
        raise PolicyError(f"{where}: policy class {network.get('policy_class')!r} is not {algorithm}'s MlpPolicy")
    activation = network.get("activation")
    kwargs = network.get("kwargs")
    if activation is not None and activation not in ACTIVATIONS:
        raise PolicyError(f"{where}: activation {activation!r} (choose from {', '.join(ACTIVATIONS)})")
    if not isinstance(kwargs, dict):
        raise PolicyError(f"{where}: network kwargs must be a JSON object")
    rebuilt = sorted(set(kwargs) & set(_REBUILT))
    if rebuilt:
        raise PolicyError(f"{where}: network kwargs may not set {', '.join(rebuilt)} (rebuilt from code)")
    if activation is not None:
        kwargs = {**kwargs, "activation_fn": getattr(torch.nn, activation)}
    observation_space = _build_space(network.get("observation_space"), where)
    action_space = _build_space(network.get("action_space"), where)
    # ARS policies take no learning-rate schedule (they are not trained by gradient descent).
    schedule = () if algorithm == "ARS" else (lambda _: 0.0,)
    try:
        policy = policy_class(observation_space, action_space, *schedule, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as error:
        raise PolicyError(f"{where}: network cannot be built ({' '.join(str(error).split())[:200]})") from None
    if not weights_path.is_file():
        raise PolicyError(f"{weights_path}: missing (the policy's weights)")
    try:
        with np.load(weights_path, allow_pickle=False) as data:
            state = {key: torch.from_numpy(np.array(data[key])) for key in data.files}
        policy.load_state_dict(state, strict=True)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        detail = " ".join(str(error).split())[:200]
        raise PolicyError(f"{weights_path}: weights do not fit the network ({detail})") from None
    policy.set_training_mode(False)
    return policy


def save_vec_normalize(vec_normalize: Any, path: Path) -> None:
    """VecNormalize's running statistics and settings as ``.npz`` (instead of SB3's pickle)."""
    np.savez(
        path,
        obs_mean=vec_normalize.obs_rms.mean, obs_var=vec_normalize.obs_rms.var, obs_count=vec_normalize.obs_rms.count,
        ret_mean=vec_normalize.ret_rms.mean, ret_var=vec_normalize.ret_rms.var, ret_count=vec_normalize.ret_rms.count,
        clip_obs=vec_normalize.clip_obs, clip_reward=vec_normalize.clip_reward, gamma=vec_normalize.gamma,
        epsilon=vec_normalize.epsilon, norm_obs=vec_normalize.norm_obs, norm_reward=vec_normalize.norm_reward,
    )  # fmt: skip


def load_vec_normalize(path: Path, venv: Any) -> Any:
    """A VecNormalize around ``venv`` with the statistics :func:`save_vec_normalize` wrote (training mode)."""
    from stable_baselines3.common.vec_env import VecNormalize

    with np.load(path, allow_pickle=False) as data:
        vec = VecNormalize(
            venv,
            training=True,
            norm_obs=bool(data["norm_obs"]),
            norm_reward=bool(data["norm_reward"]),
            clip_obs=float(data["clip_obs"]),
            clip_reward=float(data["clip_reward"]),
            gamma=float(data["gamma"]),
            epsilon=float(data["epsilon"]),
        )
        if vec.obs_rms.mean.shape != data["obs_mean"].shape:
            raise ValueError(
                f"{path}: statistics for observations {data['obs_mean'].shape}, the env has {vec.obs_rms.mean.shape}"
            )
        vec.obs_rms.mean, vec.obs_rms.var = np.array(data["obs_mean"]), np.array(data["obs_var"])
        vec.obs_rms.count = float(data["obs_count"])
        vec.ret_rms.mean, vec.ret_rms.var = np.array(data["ret_mean"]), np.array(data["ret_var"])
        vec.ret_rms.count = float(data["ret_count"])
    return vec


class LearnedPolicy:
    """A trained agent acting on the simulator; deterministic.

    :param model: an SB3 algorithm, or an SB3 policy rebuilt by :meth:`load` (its ``predict`` is
        called with ``deterministic=True``).
    :param scenario_digest: sha256 of the scenario it was trained on (``LoadedScenario.digest``).
    :param observation_stats: frozen VecNormalize statistics, or None if training did not normalise.
    :param action_mode: the environment's action mode in training (``compact`` or ``raw``).
    :param observation: the environment's observation in training (``full`` or ``features``).
    :param feature_set_version: with ``features``, the feature set version it was trained on.
    :param anchor: with ``anchored`` actions, the resolved rule they correct
        (:func:`invalloc.agents.anchor.resolve_anchor`), saved with the policy.
    """

    def __init__(
        self,
        model: BaseAlgorithm | BasePolicy,
        scenario_digest: str,
        observation_stats: ObservationStats | None = None,
        action_mode: str = "compact",
        name: str = "learned",
        run_id: str | None = None,
        model_uri: str | None = None,
        observation: str = "full",
        feature_set_version: str = FEATURE_SET_VERSION,
        anchor: dict[str, Any] | None = None,
        features: list[str] | None = None,
        time_basis: int = 0,
    ) -> None:
        self.features = list(features) if features is not None else None
        self.time_basis = time_basis
        if (action_mode == "anchored") != (anchor is not None):
            raise PolicyError(f"policy {name}: action_mode {action_mode!r} with anchor {anchor!r} (anchored needs one)")
        self.anchor = anchor
        self.model = model
        self.scenario_digest = scenario_digest
        self.observation_stats = observation_stats
        self.action_mode = action_mode
        self.observation_kind = observation
        self.feature_set_version = feature_set_version
        self.name = name
        self.run_id = run_id
        self.model_uri = model_uri
        self._simulator: Simulator | None = None
        self._observations: ObservationBuilder | FeatureObservation | None = None
        self._mapper: ActionMapper | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_model(
        cls,
        model: BaseAlgorithm,
        scenario: str,
        obs_rms: Any = None,
        action_mode: str = "compact",
        config_overrides: dict | None = None,
        name: str = "learned",
        observation: str = "full",
        anchor: dict[str, Any] | None = None,
        features: list[str] | None = None,
        time_basis: int = 0,
    ) -> LearnedPolicy:
        """Wrap an in-memory SB3 model trained on ``scenario``.

        :param obs_rms: a ``VecNormalize`` (its observation statistics are frozen here) or
            :class:`ObservationStats` or None.
        """
        from invalloc.config.loader import load_scenario

        if obs_rms is None or isinstance(obs_rms, ObservationStats):
            stats = obs_rms
        else:
            stats = ObservationStats.from_vec_normalize(obs_rms)
        digest = load_scenario(scenario, config_overrides).digest
        return cls(
            model,
            digest,
            stats,
            action_mode,
            name=name,
            observation=observation,
            anchor=anchor,
            features=features,
            time_basis=time_basis,
        )

    @classmethod
    def load(cls, folder: Path, name: str = "learned", run_id: str | None = None, model_uri: str | None = None):
        """Load a saved policy folder from ``policy.json`` and the ``.npz`` files (nothing is unpickled).

        :raises PolicyError: one line naming the file that is missing or malformed.
        """
        folder = Path(folder)
        meta_path = folder / POLICY_META_FILE
        if not meta_path.is_file():
            raise PolicyError(f"{meta_path}: missing (not a saved invalloc policy)")
        try:
            meta = json.loads(meta_path.read_text())
            algorithm, digest, action_mode = meta["algorithm"], meta["scenario_digest"], meta["action_mode"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise PolicyError(f"{meta_path}: not a saved invalloc policy ({error})") from None
        if not isinstance(meta.get("network"), dict):
            raise PolicyError(
                f"{meta_path}: no network description (saved by an older invalloc, whose policies load only "
                f"by unpickling); train the policy again"
            )
        stats_path = folder / OBSERVATION_STATS_FILE
        try:
            stats = ObservationStats.load(stats_path) if stats_path.is_file() else None
        except (OSError, ValueError, KeyError) as error:
            raise PolicyError(f"{stats_path}: cannot be read ({error})") from None
        model = build_policy_network(algorithm, meta["network"], folder / WEIGHTS_FILE)
        # Policies saved before the feature observation existed saw the full observation.
        observation = meta.get("observation", "full")
        version = meta.get("feature_set_version", FEATURE_SET_VERSION)
        anchor = meta.get("anchor")
        if action_mode == "anchored":
            from invalloc.agents.anchor import build_anchor

            try:
                build_anchor(anchor if isinstance(anchor, dict) else {})
            except PolicyError as error:
                raise PolicyError(f"{meta_path}: {error}") from None
        features = meta.get("features")
        if features is not None and (
            not isinstance(features, list) or not all(isinstance(name, str) for name in features)
        ):
            raise PolicyError(f"{meta_path}: features must be a list of feature names")
        time_basis = meta.get("time_basis", 0)
        if isinstance(time_basis, bool) or not isinstance(time_basis, int) or not 0 <= time_basis <= 64:
            raise PolicyError(f"{meta_path}: time_basis must be a whole number from 0 to 64")
        return cls(
            model,
            digest,
            stats,
            action_mode,
            name,
            run_id,
            model_uri,
            observation,
            version,
            anchor,
            features,
            time_basis,
        )

    def save(self, folder: Path, algorithm: str) -> None:
        """Write ``policy.json``, ``policy_weights.npz``, the observation statistics and (for SB3
        users; invalloc never reads it) ``model.zip`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        policy = getattr(self.model, "policy", self.model)  # an SB3 algorithm or a rebuilt policy
        if hasattr(self.model, "policy"):
            self.model.save(folder / MODEL_FILE)
        weights = {key: value.detach().cpu().numpy() for key, value in policy.state_dict().items()}
        np.savez(folder / WEIGHTS_FILE, **weights)
        meta = {
            "algorithm": algorithm,
            "scenario_digest": self.scenario_digest,
            "action_mode": self.action_mode,
            "observation": self.observation_kind,
            "network": describe_policy_network(policy),
        }
        if self.observation_kind == "features":
            meta["feature_set_version"] = self.feature_set_version
        if self.anchor is not None:
            meta["anchor"] = self.anchor
        if self.features is not None:
            meta["features"] = self.features
        if self.time_basis:
            meta["time_basis"] = self.time_basis
        (folder / POLICY_META_FILE).write_text(json.dumps(meta, indent=2))
        if self.observation_stats is not None:
            self.observation_stats.save(folder / OBSERVATION_STATS_FILE)

    # ------------------------------------------------------------------ acting
    def reset(self, network: Network, seed: int | None = None) -> None:
        if self._observations is not None:
            self._observations.reset()

    def _bind(self, simulator: Simulator) -> ObservationBuilder | FeatureObservation:
        """Observation builder and action mapper for ``simulator`` (built once per simulator)."""
        if simulator is not self._simulator:
            self._simulator = simulator
            try:
                self._observations = observation_source(
                    simulator, self.observation_kind, self.feature_set_version, self.features, self.time_basis
                )
            except ValueError as error:
                raise PolicyError(f"policy {self.name}: {error}") from None
            self._mapper = ActionMapper(simulator, self.action_mode, self._anchor_policy())
            expected = self.model.observation_space.shape
            if (self._observations.size,) != expected or (self._mapper.size,) != self.model.action_space.shape:
                raise PolicyError(
                    f"policy {self.name}: trained for observations {expected} and actions "
                    f"{self.model.action_space.shape}, but scenario {simulator.network.scenario.name} gives "
                    f"({self._observations.size},) and ({self._mapper.size},)"
                )
        assert self._observations is not None
        if simulator.period == 0:
            self._observations.reset()
        self._observations.catch_up()
        return self._observations

    def _anchor_policy(self) -> Any:
        if self.anchor is None:
            return None
        from invalloc.agents.anchor import build_anchor

        return build_anchor(self.anchor)

    def observation(self, simulator: Simulator) -> np.ndarray:
        """The environment's observation (float32, before normalisation) at this decision point."""
        return self._bind(simulator).observe()

    def actions(self, observations: np.ndarray) -> np.ndarray:
        """Deterministic actions (N, n_actions) in [-1, 1] for raw observations (N, n_features)."""
        batch = np.asarray(observations, dtype=np.float32)
        if self.observation_stats is not None:
            batch = self.observation_stats.normalise(batch)
        action, _ = self.model.predict(batch, deterministic=True)
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)

    def action(self, simulator: Simulator) -> np.ndarray:
        """Deterministic action (n_actions,) in [-1, 1] at this decision point."""
        return self.actions(self.observation(simulator)[None, :])[0]

    def act(self, simulator: Simulator) -> np.ndarray:
        action = self.action(simulator)
        assert self._mapper is not None
        return self._mapper.requests(action.astype(np.float64))


def load_learned_policy(spec: str, tracking_uri: str | None = None) -> LearnedPolicy:
    """A policy from ``run:RUN_ID`` (the run's best model) or an MLflow model URI
    (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/MODEL_ID``, ``runs:/RUN_ID/policy``).

    Every downloaded file is checked against the sha256 its training run recorded in the
    tracking store (:mod:`invalloc.agents.integrity`) before any is read; the run is looked up
    in the tracking store (the model version's or logged model's source run), never taken from
    the downloaded files.

    :raises PolicyError: one line naming the run or model that cannot be loaded, or the file
        that does not match its recorded sha256.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from invalloc.agents.integrity import ArtifactIntegrityError, verify_hashes
    from invalloc.console import first_line
    from invalloc.processes import temporary_folder
    from invalloc.tracking import TrackingError, configure_tracking

    try:
        uri = configure_tracking(tracking_uri, must_exist=True)
    except TrackingError as error:
        raise PolicyError(str(error)) from None
    # Downloads go to a folder removed once the policy is in memory (MLflow's own would stay).
    cleanup = ExitStack()
    download = str(cleanup.enter_context(temporary_folder("policy")))
    try:
        client = mlflow.MlflowClient(uri)
        if spec.startswith("run:"):
            run_id = spec.removeprefix("run:")
            run = client.get_run(run_id)
            name = run.data.tags.get("mlflow.runName", run_id[:8])
            folder = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="best", tracking_uri=uri, dst_path=download
                )
            )
            verify_hashes(run, "best", folder)
            return LearnedPolicy.load(folder, name=name, run_id=run_id)
        if spec.startswith(("models:/", "runs:/")):
            run, resolved = _source_run(client, spec)
            folder = Path(
                mlflow.artifacts.download_artifacts(artifact_uri=resolved, tracking_uri=uri, dst_path=download)
            )
            flavor = mlflow.models.Model.load(folder).flavors.get("python_function", {})
            relative = flavor.get("artifacts", {}).get(POLICY_ARTIFACT, {}).get("path")
            if relative is None:
                raise PolicyError(f"{spec}: not an invalloc policy model (no '{POLICY_ARTIFACT}' artifact)")
            policy_folder = (folder / relative).resolve()
            if not policy_folder.is_relative_to(folder.resolve()):
                raise PolicyError(f"{spec}: policy artifact path {relative!r} leaves the model folder")
            verify_hashes(run, POLICY_ARTIFACT, policy_folder)
            return LearnedPolicy.load(policy_folder, name=spec.split("/", 1)[1], model_uri=spec)
    except ArtifactIntegrityError as error:
        raise PolicyError(f"{spec}: {error}") from None
    except MlflowException as error:
        raise PolicyError(f"{spec}: cannot be loaded from {uri} ({first_line(error)})") from None
    except OSError as error:
        raise PolicyError(f"{spec}: cannot be loaded from {uri} ({error})") from None
    finally:
        cleanup.close()
    raise PolicyError(f"{spec}: expected run:RUN_ID or models:/NAME@ALIAS")


def _source_run(client: Any, spec: str) -> tuple[Any, str]:
    """The run that logged the model ``spec`` names (from the tracking store) and a URI that
    pins the version resolved (an alias cannot move between the check and the download)."""
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    if spec.startswith("runs:/"):
        return client.get_run(spec.removeprefix("runs:/").split("/", 1)[0]), spec
    resolved = get_model_name_and_version(client, spec)
    if len(resolved) == 1:  # models:/MODEL_ID, a logged model
        model = client.get_logged_model(resolved[0])
        return client.get_run(model.source_run_id), spec
    name, version = resolved
    model_version = client.get_model_version(name, version)
    if not model_version.run_id:
        raise PolicyError(f"{spec}: model version {name}/{version} names no run; its artifacts cannot be checked")
    return client.get_run(model_version.run_id), f"models:/{name}/{version}"
