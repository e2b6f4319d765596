"""A rule table as an MLflow pyfunc model: feature values in, decisions out (numpy only).

>>> import mlflow                                                          # doctest: +SKIP
>>> model = mlflow.pyfunc.load_model("models:/invalloc-rules-retail@champion")  # doctest: +SKIP
>>> model.predict(states)   # doctest: +SKIP
... # one row per state: rule_id, then one column per output (same as `invalloc rules decide`)

``states`` is a DataFrame with one column per feature of the table (its ``feature_names``,
extra columns are ignored), one row per state. The decisions are those of
``invalloc rules decide`` on the same rows: the same code decides (:func:`decide_frame`).

What the model holds (:func:`save_rule_model`):

- ``artifacts/rule_table/``: the rule table directory as exported (files, manifest, audit log);
- ``code/invalloc/``: the invalloc modules that read and evaluate it (:data:`CODE_PARTS`), so
  the model needs no invalloc installation;
- ``pyfunc_model.py``: the entry point, logged as code (MLflow's models from code) — nothing is
  pickled, and loading it imports numpy, pandas and MLflow, never torch or SB3;
- requirements (:data:`REQUIREMENTS`) pinned to versions a package index serves;
- metadata ``invalloc_kind: rule_table`` and the table's ``content_sha256``, which tell a rule
  table from a trained agent (``simulate --policy models:/…``) and anchor its content.

Loading verifies the table directory completely (:func:`~invalloc.rules.manifest.load_rule_table`:
every file's sha256, no extra file, the audit log and the content digest it recorded) and its
content digest must equal the one recorded in the model when it was logged: a tampered file is
refused with a :class:`~invalloc.rules.table.RuleTableError` naming it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from invalloc.rules.manifest import AUDIT_LOG_FILE, MANIFEST_FILE, TABLE_FILES, content_digest, load_rule_table
from invalloc.rules.table import RuleTable, RuleTableError, _point_in

#: Name of the table directory among the model's artifacts (``artifacts/rule_table``).
RULE_TABLE_ARTIFACT = "rule_table"
#: ``invalloc_kind`` of the model's metadata (and tag of its registered version and export run).
MODEL_KIND = "rule_table"
#: The models-from-code file MLflow logs instead of a pickled Python object.
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
#: The parts of the invalloc package the model ships (``code_paths``): what ``import invalloc.rules``
#: loads. A load in a fresh interpreter that finds only these proves the list complete (tests).
CODE_PARTS = (
    "__init__.py",
    "digests.py",
    "env/__init__.py",
    "env/feature_definitions.py",
    "sim/__init__.py",
    "sim/policy.py",
    "rules",
)
#: What the model needs installed: the evaluator is numpy; MLflow's pyfunc passes DataFrames.
REQUIREMENTS = ("mlflow", "numpy", "pandas")
#: Rows of the input example logged with the model (a point inside each of the first rules).
EXAMPLE_ROWS = 3


def decide_frame(table: RuleTable, frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """The decisions for each row of ``frame``: ``rule_id``, then one column per output.

    :param frame: one column per feature (``table.feature_names``; other columns are ignored),
        one row per state; values finite numbers.
    :param source: names the input in error messages.
    :raises RuleTableError: a missing column, no rows, or a value that is not a finite number
        (the row and feature named).
    """
    missing = [name for name in table.feature_names if name not in frame.columns]
    if missing:
        raise RuleTableError(f"{source}: missing feature column(s) {', '.join(missing[:5])}")
    if frame.empty:
        raise RuleTableError(f"{source}: no rows (one row per state to decide)")
    try:
        values = frame[table.feature_names].astype(float).to_numpy()
    except (TypeError, ValueError) as error:
        raise RuleTableError(f"{source}: {' '.join(str(error).split())}") from None
    infinite = np.isinf(values)
    if infinite.any():
        row, column = (int(i) for i in np.argwhere(infinite)[0])
        raise RuleTableError(
            f"{source}: row {row + 1}: feature {table.feature_names[column]} is {values[row, column]} "
            "(features are finite numbers)"
        )
    try:
        rules, outputs = table.decide_values(values)
    except ValueError as error:
        raise RuleTableError(f"{source}: {error}") from None
    result = pd.DataFrame(outputs, columns=table.output_names)
    result.insert(0, "rule_id", [table.rule_ids[r] for r in rules])
    return result


def load_model_table(directory: Path, expected_digest: str | None) -> tuple[RuleTable, dict]:
    """The verified table of a model's ``rule_table`` artifact; its content digest must be
    ``expected_digest`` (recorded in the model when logged).

    :raises RuleTableError: a missing, extra or tampered file, a broken audit log, or other content.
    """
    table, manifest = load_rule_table(Path(directory))
    digest = content_digest(manifest)
    if not expected_digest:
        raise RuleTableError(f"{directory}: the model records no content_sha256 for its rule table")
    if digest != expected_digest:
        raise RuleTableError(
            f"{Path(directory) / MANIFEST_FILE}: content sha256 {digest[:12]}… differs from the "
            f"{str(expected_digest)[:12]}… the model recorded when it was logged (the table was replaced)"
        )
    return table, manifest


class RuleTableModel(mlflow.pyfunc.PythonModel):
    """Loads and verifies the model's rule table; predicts the decisions of feature values."""

    def load_context(self, context: Any) -> None:
        config = context.model_config or {}
        self.table, self.manifest = load_model_table(
            Path(context.artifacts[RULE_TABLE_ARTIFACT]), config.get("content_sha256")
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """``rule_id`` and the outputs (rows, 1 + outputs) for states (rows, features) named like ``feature_names``."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return decide_frame(self.table, frame)


def example_states(table: RuleTable, rows: int = EXAMPLE_ROWS) -> pd.DataFrame:
    """One state inside each of the first ``rows`` rules, as a DataFrame (the model's input example)."""
    count = min(rows, len(table))
    points = [
        [_point_in(table.lower[r, j], table.upper[r, j]) for j in range(len(table.features))] for r in range(count)
    ]
    return pd.DataFrame(np.asarray(points, dtype=float), columns=table.feature_names)


def pip_requirements() -> list[str]:
    """The model's requirements, pinned to the installed versions as a package index serves them."""
    from invalloc.tracking import installable_requirement

    return [installable_requirement(package) for package in REQUIREMENTS]


def save_rule_model(directory: Path, path: Path) -> dict:
    """Save the verified rule table in ``directory`` as a pyfunc model at ``path`` (must not exist).

    :returns: the model's metadata (``invalloc_kind``, ``content_sha256``, scenario, rules).
    :raises RuleTableError: the directory does not verify.
    """
    from mlflow.models import infer_signature

    from invalloc.tracking import copy_package_code

    directory = Path(directory)
    table, manifest = load_rule_table(directory)
    digest = content_digest(manifest)
    metadata = {
        "invalloc_kind": MODEL_KIND,
        "content_sha256": digest,
        "scenario": (manifest.get("scenario") or {}).get("name"),
        "scenario_digest": (manifest.get("scenario") or {}).get("digest"),
        "rules": len(table),
        "feature_set_version": (manifest.get("feature_set") or {}).get("version"),
    }
    with tempfile.TemporaryDirectory(prefix="invalloc-rule-model-") as scratch:
        staged = Path(scratch) / RULE_TABLE_ARTIFACT
        staged.mkdir()
        for name in (*TABLE_FILES, MANIFEST_FILE, AUDIT_LOG_FILE):
            shutil.copy2(directory / name, staged / name)
        code = copy_package_code(Path(scratch) / "code", CODE_PARTS)
        example = example_states(table)
        mlflow.pyfunc.save_model(
            str(path),
            python_model=str(MODEL_CODE),
            artifacts={RULE_TABLE_ARTIFACT: str(staged)},
            code_paths=[str(code)],
            pip_requirements=pip_requirements(),
            signature=infer_signature(example, decide_frame(table, example)),
            input_example=example,
            model_config={"content_sha256": digest},
            metadata=metadata,
        )
    return metadata


def table_directory(model_folder: Path) -> Path:
    """The rule table directory inside a downloaded model folder (``artifacts/rule_table``).

    A version registered before rule tables were models holds the directory itself.

    :raises RuleTableError: the folder holds neither, or its artifact path leaves the folder.
    """
    model_folder = Path(model_folder)
    if not (model_folder / "MLmodel").is_file():
        if (model_folder / MANIFEST_FILE).is_file():
            return model_folder
        raise RuleTableError(f"{model_folder}: neither a rule table model (no MLmodel) nor a rule table directory")
    from mlflow.models import Model

    flavor = Model.load(str(model_folder)).flavors.get("python_function", {})
    relative = flavor.get("artifacts", {}).get(RULE_TABLE_ARTIFACT, {}).get("path")
    if relative is None:
        raise RuleTableError(f"{model_folder}: not a rule table model (no '{RULE_TABLE_ARTIFACT}' artifact)")
    folder = (model_folder / relative).resolve()
    if not folder.is_relative_to(model_folder.resolve()):
        raise RuleTableError(f"{model_folder}: rule table artifact path {relative!r} leaves the model folder")
    return folder


def model_digest(model_folder: Path) -> str | None:
    """The content digest a downloaded rule table model recorded when logged (None: a directory)."""
    if not (Path(model_folder) / "MLmodel").is_file():
        return None
    from mlflow.models import Model

    model = Model.load(str(model_folder))
    config = model.flavors.get("python_function", {}).get("config") or {}
    return (model.metadata or {}).get("content_sha256") or config.get("content_sha256")
