"""Export a trained policy as a verified rule table directory, and move it through review.

:func:`export_rule_table` extracts (:mod:`invalloc.export.extraction`), evaluates
(:mod:`invalloc.export.evaluation`), writes every format into a temporary directory, reads
it back through the torch-free evaluator in all three formats (they must decide alike on
every state seen), and only then moves it into place — so a failed export leaves nothing
half-written. :func:`review` changes the review status, appends to the audit log, re-hashes
and moves the MLflow registry alias.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from invalloc.config.loader import LoadedScenario
from invalloc.export.evaluation import evaluate
from invalloc.export.extraction import Extraction, ExtractionSettings, Teacher, extract
from invalloc.rules.formats import (
    FILE_NAMES,
    SCHEMA_FILE,
    describe_features,
    describe_outputs,
    write_csv,
    write_dmn,
    write_json,
    write_schema,
)
from invalloc.rules.manifest import (
    AUDIT_LOG_FILE,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    STATUSES,
    allowed_transitions,
    append_audit,
    content_digest,
    load_rule_table,
    staged_directory,
    verify_rule_table,
    write_manifest,
)
from invalloc.rules.registry import CONTENT_TAG, check_registered_content
from invalloc.rules.table import RuleTable, RuleTableError, precision_problem, table_precision
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator

#: Artifact folder of a rule table inside its MLflow export run.
ARTIFACT_PATH = "rule_table"
#: Experiment that holds export runs.
EXPORT_EXPERIMENT = "rule-exports"


class ExportError(RuntimeError):
    """An export or review that cannot be done; the message is one line."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_table_files(table: RuleTable, directory: Path) -> None:
    """CSV, JSON, its schema and DMN of ``table`` into ``directory``."""
    write_csv(table, directory / FILE_NAMES["csv"])
    write_json(table, directory / FILE_NAMES["json"])
    write_schema(directory / SCHEMA_FILE)
    write_dmn(table, directory / FILE_NAMES["dmn"])


def _check_round_trip(directory: Path, table: RuleTable, states: np.ndarray) -> None:
    """Every format, read back by the evaluator, must pick the same rule and outputs on ``states``
    and hold no number finer than the precision the manifest states."""
    expected = table.decide(states)
    for fmt in FILE_NAMES:
        loaded, manifest = load_rule_table(directory, fmt)
        problem = precision_problem(loaded, manifest.get("precision"), FILE_NAMES[fmt])
        if problem:
            raise ExportError(problem)
        if loaded.rule_ids != table.rule_ids or not np.array_equal(loaded.decide(states), expected):
            raise ExportError(f"{FILE_NAMES[fmt]} read back decides differently from the extracted table")
        if not np.array_equal(loaded.values, table.values):
            raise ExportError(f"{FILE_NAMES[fmt]} read back has different outputs from the extracted table")


def export_rule_table(
    teacher: Teacher,
    loaded: LoadedScenario,
    out: Path,
    settings: ExtractionSettings | None = None,
    source: dict | None = None,
    tracking_uri: str | None = None,
    register: str | None = None,
) -> dict:
    """Extract, evaluate, write and verify a rule table of ``teacher`` into ``out``.

    :param loaded: the scenario the teacher was trained on (its digest must match).
    :param source: provenance for the manifest: ``run_id``, ``model_uri``, ``model_version``.
    :param tracking_uri: when given with ``register``, the table is logged to an MLflow run
        and registered as model ``register`` with alias ``candidate``.
    :returns: the manifest written.
    :raises ExportError: a scenario mismatch or a table that fails verification.
    """
    settings = settings or ExtractionSettings()
    if loaded.digest != teacher.scenario_digest:
        raise ExportError(
            f"teacher {teacher.name} was trained on scenario {teacher.scenario_digest[:12]}…, "
            f"not on {loaded.scenario.name} ({loaded.digest[:12]}…)"
        )
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).is_file())):
        raise ExportError(f"{out}: exists and is not a rule table directory; choose another --out")
    network = compile_network(loaded)
    simulator = Simulator(network, check_invariants=False)
    name = out.name or "rule_table"
    extraction = extract(simulator, teacher, settings, metadata={"name": name})
    table = extraction.table
    evaluation = evaluate(simulator, teacher, table, settings)
    manifest = _manifest(name, loaded, extraction, evaluation, source or {})
    exported = {"time": _now(), "event": "exported", "status": "draft", "source": source or {}}
    with staged_directory(out) as staging:
        write_table_files(table, staging)
        write_manifest(staging, manifest)
        append_audit(staging, exported, manifest)
        _check_round_trip(staging, table, extraction.data.features)
        if register and tracking_uri:
            manifest["registry"] = register_table(staging, manifest, tracking_uri, register)
            # Record the export again, now bound to the registry block too (the staging log is ours alone).
            (staging / AUDIT_LOG_FILE).unlink()
            append_audit(staging, exported, manifest)
            write_manifest(staging, manifest)
            _log_files(tracking_uri, manifest["registry"]["export_run_id"], staging, [MANIFEST_FILE, AUDIT_LOG_FILE])
    return manifest


def _manifest(name: str, loaded: LoadedScenario, extraction: Extraction, evaluation: dict, source: dict) -> dict:
    table = extraction.table
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "name": name,
        "created": _now(),
        "files": {},
        "source": {
            "run_id": source.get("run_id"),
            "model_uri": source.get("model_uri"),
            "model_version": source.get("model_version"),
            "teacher": source.get("teacher"),
        },
        "scenario": {"name": loaded.scenario.name, "digest": loaded.digest},
        "action_mode": table.metadata["action_mode"],
        "anchor": table.metadata["anchor"],
        "feature_set": {
            "version": table.metadata["feature_set_version"],
            "features": describe_features(table),
        },
        "outputs": describe_outputs(table),
        # Thresholds, outputs and support are written to this precision; the rounding effect
        # compares the fitted tree with its exact split points and the rounded table.
        "precision": {**table_precision(table), "rounding_effect": extraction.rounding},
        "rules": len(table),
        "extraction": extraction.record(),
        "fidelity": evaluation["fidelity"],
        "kpi_retention": evaluation["kpi_retention"],
        "intervention_rate": evaluation["intervention_rate"],
        "decision_variables_changed": evaluation["decision_variables_changed"],
        "evaluation_seeds": evaluation["evaluation_seeds"],
        "review": {"status": "draft", "reviewer": None, "date": None, "comment": None},
        "registry": None,
    }


# ---------------------------------------------------------------------------------- MLflow
def _log_files(tracking_uri: str, run_id: str, directory: Path, names: list[str]) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    for name in names:
        client.log_artifact(run_id, str(directory / name), ARTIFACT_PATH)


def register_table(directory: Path, manifest: dict, tracking_uri: str, model_name: str) -> dict:
    """Log ``directory`` to a new export run and register it as ``model_name`` @ ``candidate``.

    :returns: the manifest's ``registry`` record (model name, version, alias, export run id).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from invalloc.tracking import configure_tracking, experiment_id, owned_run, standard_tags

    uri = configure_tracking(tracking_uri)
    client = mlflow.MlflowClient(uri)
    tags = {
        **standard_tags(manifest["scenario"]["digest"]),
        "invalloc.kind": "rule_table",
        "invalloc.source_run_id": str(manifest["source"].get("run_id")),
    }
    name = f"export-{manifest['name']}"
    with owned_run(client, uri, experiment_id(EXPORT_EXPERIMENT, uri), name, tags) as run:
        run_id = run.info.run_id
        for key, value in manifest["extraction"].items():
            if key != "history":
                client.log_param(run_id, f"extraction.{key}", value)
        metrics = {
            "export/fidelity_on_table_states": manifest["fidelity"]["on_table_states"],
            "export/fidelity_on_teacher_states": manifest["fidelity"]["on_teacher_states"],
            "export/rules": manifest["rules"],
            "export/intervention_rate": manifest["intervention_rate"],
            "export/decision_variables_changed": manifest["decision_variables_changed"]["rules"],
            "export/decision_variables_changed_teacher": manifest["decision_variables_changed"]["teacher"],
        }
        if manifest["kpi_retention"]["profit_retention"] is not None:
            metrics["export/profit_retention"] = manifest["kpi_retention"]["profit_retention"]
        for key, value in metrics.items():
            client.log_metric(run_id, key, float(value))
        client.log_artifacts(run_id, str(directory), ARTIFACT_PATH)
        try:
            client.create_registered_model(model_name, description="invalloc rule tables (deterministic policies)")
        except MlflowException as error:
            if "already exists" not in str(error).lower() and "RESOURCE_ALREADY_EXISTS" not in str(error):
                raise
        source = f"{run.info.artifact_uri}/{ARTIFACT_PATH}"
        version = client.create_model_version(
            model_name,
            source,
            run_id=run_id,
            tags={"invalloc.kind": "rule_table", "review_status": "draft", CONTENT_TAG: content_digest(manifest)},
        )
        client.set_registered_model_alias(model_name, "candidate", version.version)
    return {"model_name": model_name, "version": str(version.version), "alias": "candidate", "export_run_id": run_id}


# ---------------------------------------------------------------------------------- review
def review(
    directory: Path,
    reviewer: str,
    comment: str,
    status: str = "approved",
    tracking_uri: str | None = None,
    register: str | None = None,
) -> dict:
    """Move the table in ``directory`` to ``status``; append the audit log; re-hash.

    Lifecycle: draft → approved → active → retired (one step forward; any status may be
    retired). On approval the registered model version gets the ``champion`` alias (it is
    registered first, as ``register`` @ ``candidate``, if the export did not register it).
    The directory is verified completely first (:func:`~invalloc.rules.manifest.verify_rule_table`:
    hashes, audit log, content digest, every format a complete partition deciding alike), and
    a registered version must carry the table's content digest: a tampered or incomplete table
    is refused before anything changes, on disk or in MLflow. The new audit log line records
    the content digest again (unchanged since the export).
    """
    directory = Path(directory)
    manifest = verify_rule_table(directory)["manifest"]
    current = manifest.get("review", {}).get("status", "draft")
    if status not in STATUSES:
        raise ExportError(f"--status {status}: choose one of {', '.join(STATUSES)}")
    allowed = allowed_transitions(current)
    if status not in allowed:
        options = ", ".join(sorted(allowed)) or "none"
        raise ExportError(f"{directory}: status {current} cannot move to {status} (allowed: {options})")
    if not reviewer.strip():
        raise ExportError("--reviewer must name the reviewer")
    registry = manifest.get("registry")
    if registry and tracking_uri is not None:
        check_registered_content(registry, tracking_uri, content_digest(manifest), directory)
    elif status == "approved" and tracking_uri is not None and not register:
        raise ExportError("the table is not registered; give --register MODEL_NAME")
    date = _now()
    with staged_directory(directory) as staging:
        for path in directory.iterdir():
            shutil.copy2(path, staging / path.name)
        manifest["review"] = {"status": status, "reviewer": reviewer, "date": date, "comment": comment}
        if status == "approved" and tracking_uri is not None:
            if not registry:
                write_manifest(staging, manifest)
                registry = register_table(staging, manifest, tracking_uri, str(register))
            manifest["registry"] = _promote(registry, tracking_uri, status, reviewer, comment)
        elif registry and tracking_uri is not None:
            _tag_version(registry, tracking_uri, status, reviewer, comment)
        entry = {"time": date, "event": "review", "from": current, "status": status, "reviewer": reviewer}
        append_audit(staging, entry | {"comment": comment}, manifest)
        write_manifest(staging, manifest)
        if manifest.get("registry") and tracking_uri is not None:
            _log_files(tracking_uri, manifest["registry"]["export_run_id"], staging, [MANIFEST_FILE, AUDIT_LOG_FILE])
    return manifest


def _client(tracking_uri: str) -> Any:
    import mlflow

    from invalloc.tracking import configure_tracking

    return mlflow.MlflowClient(configure_tracking(tracking_uri))


def _tag_version(registry: dict, tracking_uri: str, status: str, reviewer: str, comment: str) -> None:
    client = _client(tracking_uri)
    for key, value in {"review_status": status, "reviewer": reviewer, "review_comment": comment}.items():
        client.set_model_version_tag(registry["model_name"], registry["version"], key, value)


def _promote(registry: dict, tracking_uri: str, status: str, reviewer: str, comment: str) -> dict:
    """Tag the version with the review and point the ``champion`` alias at it."""
    _tag_version(registry, tracking_uri, status, reviewer, comment)
    _client(tracking_uri).set_registered_model_alias(registry["model_name"], "champion", registry["version"])
    return {**registry, "alias": "champion"}


__all__ = [
    "ExportError",
    "RuleTableError",
    "export_rule_table",
    "register_table",
    "review",
    "write_table_files",
]
