"""Models-from-code entry point of the rule table pyfunc (MLflow logs this file, not a pickle)."""

import mlflow.models

from invalloc.rules.pyfunc import RuleTableModel

mlflow.models.set_model(RuleTableModel())
