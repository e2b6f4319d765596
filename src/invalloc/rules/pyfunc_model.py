"""Models-from-code entry point of the rule table pyfunc (MLflow logs this file, not a pickle)."""

import mlflow.models

import invalloc
from invalloc.rules.pyfunc import RuleTableModel

invalloc._drop_shadowing_copies()  # the host's invalloc, if it had one, stays the only one on sys.path

mlflow.models.set_model(RuleTableModel())
