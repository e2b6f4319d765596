"""A trained SB3 agent as a :class:`~invalloc.sim.policy.Policy`.

The agent sees exactly what it saw in training: the environment's observation
(:class:`~invalloc.env.observations.ObservationBuilder`), normalised with the VecNormalize
statistics frozen at the end of training, and its deterministic action is turned into
requested quantities by the environment's :class:`~invalloc.env.actions.ActionMapper`. So a
learned policy runs in ``simulate``/``compare`` through the same feasibility layer as every
baseline, and on the simulator directly (no Gymnasium wrapper in between).
"""

from __future__ import annotations

import json
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

    from invalloc.sim.network import Network
    from invalloc.sim.simulator import Simulator

#: File names inside a saved policy folder (a run's ``best/`` or ``final/`` artifacts).
MODEL_FILE = "model.zip"
OBSERVATION_STATS_FILE = "observation_stats.npz"
VEC_NORMALIZE_FILE = "vecnormalize.pkl"
POLICY_META_FILE = "policy.json"


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


class LearnedPolicy:
    """A trained agent acting on the simulator; deterministic.

    :param model: an SB3 algorithm (its ``predict`` is called with ``deterministic=True``).
    :param scenario_digest: sha256 of the scenario it was trained on (``LoadedScenario.digest``).
    :param observation_stats: frozen VecNormalize statistics, or None if training did not normalise.
    :param action_mode: the environment's action mode in training (``compact`` or ``raw``).
    :param observation: the environment's observation in training (``full`` or ``features``).
    :param feature_set_version: with ``features``, the feature set version it was trained on.
    """

    def __init__(
        self,
        model: BaseAlgorithm,
        scenario_digest: str,
        observation_stats: ObservationStats | None = None,
        action_mode: str = "compact",
        name: str = "learned",
        run_id: str | None = None,
        model_uri: str | None = None,
        observation: str = "full",
        feature_set_version: str = FEATURE_SET_VERSION,
    ) -> None:
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
        return cls(model, digest, stats, action_mode, name=name, observation=observation)

    @classmethod
    def load(cls, folder: Path, name: str = "learned", run_id: str | None = None, model_uri: str | None = None):
        """Load a saved policy folder (``model.zip``, ``policy.json``, optional observation stats)."""
        from invalloc.agents.algorithms import algorithm_class

        folder = Path(folder)
        meta_path = folder / POLICY_META_FILE
        if not meta_path.is_file():
            raise PolicyError(f"{meta_path}: missing (not a saved invalloc policy)")
        meta = json.loads(meta_path.read_text())
        stats_path = folder / OBSERVATION_STATS_FILE
        stats = ObservationStats.load(stats_path) if stats_path.is_file() else None
        model = algorithm_class(meta["algorithm"]).load(folder / MODEL_FILE, device="cpu")
        # Policies saved before the feature observation existed saw the full observation.
        observation = meta.get("observation", "full")
        version = meta.get("feature_set_version", FEATURE_SET_VERSION)
        return cls(
            model, meta["scenario_digest"], stats, meta["action_mode"], name, run_id, model_uri, observation, version
        )

    def save(self, folder: Path, algorithm: str) -> None:
        """Write ``model.zip``, ``policy.json`` and the observation statistics into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / MODEL_FILE)
        meta = {
            "algorithm": algorithm,
            "scenario_digest": self.scenario_digest,
            "action_mode": self.action_mode,
            "observation": self.observation_kind,
        }
        if self.observation_kind == "features":
            meta["feature_set_version"] = self.feature_set_version
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
            self._observations = observation_source(simulator, self.observation_kind, self.feature_set_version)
            self._mapper = ActionMapper(simulator, self.action_mode)
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
    """A policy from ``run:RUN_ID`` (the run's best model) or an MLflow model URI (``models:/NAME@ALIAS``).

    :raises PolicyError: one line naming the run or model that cannot be loaded.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from invalloc.console import first_line
    from invalloc.tracking import TrackingError, configure_tracking

    try:
        uri = configure_tracking(tracking_uri, must_exist=True)
    except TrackingError as error:
        raise PolicyError(str(error)) from None
    try:
        if spec.startswith("run:"):
            run_id = spec.removeprefix("run:")
            client = mlflow.MlflowClient(uri)
            run = client.get_run(run_id)
            name = run.data.tags.get("mlflow.runName", run_id[:8])
            folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="best", tracking_uri=uri)
            return LearnedPolicy.load(Path(folder), name=name, run_id=run_id)
        if spec.startswith(("models:/", "runs:/")):
            from invalloc.agents.pyfunc import POLICY_ARTIFACT

            folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=spec, tracking_uri=uri))
            flavor = mlflow.models.Model.load(folder).flavors.get("python_function", {})
            relative = flavor.get("artifacts", {}).get(POLICY_ARTIFACT, {}).get("path")
            if relative is None:
                raise PolicyError(f"{spec}: not an invalloc policy model (no '{POLICY_ARTIFACT}' artifact)")
            return LearnedPolicy.load(folder / relative, name=spec.split("/", 1)[1], model_uri=spec)
    except MlflowException as error:
        raise PolicyError(f"{spec}: cannot be loaded from {uri} ({first_line(error)})") from None
    except OSError as error:
        raise PolicyError(f"{spec}: cannot be loaded from {uri} ({error})") from None
    raise PolicyError(f"{spec}: expected run:RUN_ID or models:/NAME@ALIAS")
