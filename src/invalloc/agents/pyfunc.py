"""The trained policy as an MLflow pyfunc model: observations in, actions out.

``mlflow.pyfunc.load_model("models:/NAME@ALIAS").predict(frame)`` takes a DataFrame whose
columns are the environment's ``feature_names`` (raw, unnormalised observations, one row per
state) and returns the deterministic actions (rows × action dimensions, in [-1, 1]); the
VecNormalize statistics frozen at training time are applied inside.
"""

from importlib.metadata import PackageNotFoundError
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


#: Required whatever invalloc's installed metadata says (it may predate a dependency, or be
#: missing when running from a source tree): what loading and running a policy needs.
CORE_REQUIREMENTS = ("stable-baselines3", "sb3-contrib", "torch", "numpy", "gymnasium", "mlflow")


def pip_requirements() -> list[str]:
    """The model's requirements: invalloc's own dependencies, each pinned to the installed
    version as a package index publishes it (``torch==2.13.0``, never ``+cpu``).

    invalloc itself is not among them: no index serves it, so its code ships with the model
    (:func:`code_paths`). Given explicitly: MLflow's inference would load the model.
    """
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    from invalloc.tracking import installable_requirement

    try:
        declared = [Requirement(line) for line in requires("invalloc") or ()]
        names = [r.name for r in declared if r.marker is None or "extra" not in str(r.marker)]
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        names = []
    unique = {name.lower().replace("_", "-"): name for name in (*names, *CORE_REQUIREMENTS)}
    return [installable_requirement(name) for name in unique.values()]


def code_paths(into: Path) -> list[str]:
    """The invalloc package copied into ``into`` for the model's ``code_paths``."""
    from invalloc.tracking import copy_package_code

    return [str(copy_package_code(into))]
