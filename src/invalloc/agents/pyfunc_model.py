"""Models-from-code entry point of the policy pyfunc (MLflow logs this file, not a pickle)."""

import mlflow.models

from invalloc.agents.pyfunc import PolicyModel

mlflow.models.set_model(PolicyModel())
