"""The trained policy as an MLflow pyfunc model: observations in, actions out.

``mlflow.pyfunc.load_model("models:/NAME@ALIAS").predict(frame)`` takes a DataFrame whose
columns are the environment's ``feature_names`` (raw, unnormalised observations, one row per
state) and returns the deterministic actions (rows × action dimensions, in [-1, 1]); the
VecNormalize statistics frozen at training time are applied inside.
"""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from invalloc.agents.learned import POLICY_ARTIFACT, LearnedPolicy


class PolicyModel(mlflow.pyfunc.PythonModel):
    """Loads a saved :class:`~invalloc.agents.learned.LearnedPolicy` folder and predicts actions."""

    def load_context(self, context: Any) -> None:
        self.policy = LearnedPolicy.load(Path(context.artifacts[POLICY_ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        """Actions (rows, n_actions) for observations (rows, n_features) named like ``feature_names``."""
        observations = np.asarray(model_input.values, dtype=np.float32)
        return self.policy.actions(np.atleast_2d(observations))


#: The models-from-code file MLflow logs instead of a pickled Python object.
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")


def pip_requirements() -> list[str]:
    """Pinned requirements of the model (given explicitly: MLflow's inference would load the model)."""
    pins = []
    for package in ("invalloc", "stable-baselines3", "sb3-contrib", "torch", "numpy", "gymnasium", "mlflow"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:  # pragma: no cover
            pins.append(package)
    return pins
