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
from invalloc.rules.registry import CANDIDATE, CHAMPION, CONTENT_TAG, STATUS_TAG, check_registered_content
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
    evaluation = evaluate(simulator, teacher, table, settings, seen=extraction.data.features)
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
        # What `rules monitor` compares production's decision log with (ranges seen, hit rates, KPIs).
        "monitoring": evaluation["monitoring"],
        "review": {"status": "draft", "reviewer": None, "date": None, "comment": None},
        "registry": None,
    }


# ---------------------------------------------------------------------------------- MLflow
def _table_artifact_path(client: Any, run_id: str) -> str:
    """Where the table directory lies among an export run's artifacts: inside the pyfunc model
    (``rule_table/artifacts/rule_table``), or ``rule_table`` itself for a version registered
    before rule tables were models."""
    from invalloc.rules.pyfunc import RULE_TABLE_ARTIFACT

    names = {Path(item.path).name for item in client.list_artifacts(run_id, ARTIFACT_PATH)}
    return f"{ARTIFACT_PATH}/artifacts/{RULE_TABLE_ARTIFACT}" if "MLmodel" in names else ARTIFACT_PATH


def _log_files(tracking_uri: str, run_id: str, directory: Path, names: list[str]) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    where = _table_artifact_path(client, run_id)
    for name in names:
        client.log_artifact(run_id, str(directory / name), where)


def register_table(directory: Path, manifest: dict, tracking_uri: str, model_name: str) -> dict:
    """Register the table in ``directory`` as ``model_name`` @ ``candidate``: a pyfunc model
    (:mod:`invalloc.rules.pyfunc`) logged to a new export run — unless a version of
    ``model_name`` already holds this content (same ``content_sha256``), which is reused: the
    same run exported with the same settings registers nothing new.

    A reused version becomes the candidate again while it is still a draft; one already
    reviewed keeps its aliases (``alias`` in the record is then the one it holds, or None).

    :returns: the manifest's ``registry`` record (model name, version, alias, export run id).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from invalloc.rules.registry import find_version
    from invalloc.tracking import configure_tracking

    uri = configure_tracking(tracking_uri)
    client = mlflow.MlflowClient(uri)
    digest = content_digest(manifest)
    try:
        client.create_registered_model(model_name, description="invalloc rule tables (deterministic policies)")
    except MlflowException as error:
        if "already exists" not in str(error).lower() and "RESOURCE_ALREADY_EXISTS" not in str(error):
            raise
    version = find_version(client, model_name, digest)
    if version is None:
        run_id, number = _log_table_model(client, uri, directory, manifest, model_name)
    else:
        run_id, number = version.run_id, str(version.version)
        if version.tags.get(STATUS_TAG, "draft") != "draft":
            aliases = [a for a, v in client.get_registered_model(model_name).aliases.items() if str(v) == number]
            alias = CHAMPION if CHAMPION in aliases else (aliases[0] if aliases else None)
            return {"model_name": model_name, "version": number, "alias": alias, "export_run_id": run_id}
    client.set_registered_model_alias(model_name, CANDIDATE, number)
    return {"model_name": model_name, "version": number, "alias": CANDIDATE, "export_run_id": run_id}


def _log_table_model(client: Any, uri: str, directory: Path, manifest: dict, model_name: str) -> tuple[str, str]:
    """Log the table as a pyfunc model to a new export run and register a version of it."""
    import tempfile

    from invalloc.rules.pyfunc import save_rule_model
    from invalloc.rules.registry import KIND_TAG, RULE_TABLE_KIND, SCENARIO_DIGEST_TAG, SCENARIO_TAG
    from invalloc.tracking import experiment_id, owned_run, quiet_mlflow, standard_tags

    scenario = manifest["scenario"]
    tags = {
        **standard_tags(scenario["digest"]),
        KIND_TAG: RULE_TABLE_KIND,
        "invalloc.source_run_id": str(manifest["source"].get("run_id")),
        SCENARIO_TAG: scenario["name"],
    }
    name = f"export-{manifest['name']}-{scenario['name']}-s{manifest['extraction'].get('seed', 0)}"
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
        with tempfile.TemporaryDirectory(prefix="invalloc-export-") as scratch, quiet_mlflow():
            model = Path(scratch) / ARTIFACT_PATH
            save_rule_model(directory, model)
            client.log_artifacts(run_id, str(model), ARTIFACT_PATH)
        version = client.create_model_version(
            model_name,
            f"{run.info.artifact_uri}/{ARTIFACT_PATH}",
            run_id=run_id,
            tags={
                KIND_TAG: RULE_TABLE_KIND,
                STATUS_TAG: "draft",
                CONTENT_TAG: content_digest(manifest),
                SCENARIO_TAG: scenario["name"],
                SCENARIO_DIGEST_TAG: scenario["digest"],
            },
        )
    return run_id, str(version.version)


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
    retired). The registry's aliases follow the status (:func:`_promote`, :func:`_retire`):

    - approved: the version becomes the ``champion`` (it is registered first, as ``register``,
      if the export did not register it) and stops being the ``candidate``; the champion it
      replaces — of this model, or of any registered rule table model of the same scenario —
      is retired (its version tagged ``review_status = retired`` and, where its files verify,
      its manifest and audit log record the retirement): at most one champion per scenario;
    - active: the version stays the champion;
    - retired: the version loses ``champion`` (and ``candidate``).

    Every version carries the review as tags (``review_status``, ``reviewer``, ``review_comment``).
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
    if status == "approved" and tracking_uri is not None and not registry:
        # Registered as exported (a draft): the model's copy of the manifest and audit log is
        # replaced by the approved ones below.
        registry = register_table(directory, manifest, tracking_uri, str(register))
    date = _now()
    with staged_directory(directory) as staging:
        for path in directory.iterdir():
            shutil.copy2(path, staging / path.name)
        manifest["review"] = {"status": status, "reviewer": reviewer, "date": date, "comment": comment}
        if registry and tracking_uri is not None:
            _tag_version(registry, tracking_uri, status, reviewer, comment)
            if status == "approved":
                manifest["registry"] = _promote(registry, tracking_uri, manifest, reviewer)
            elif status == "retired":
                manifest["registry"] = _retire(registry, tracking_uri)
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
    for key, value in {STATUS_TAG: status, "reviewer": reviewer, "review_comment": comment}.items():
        client.set_model_version_tag(registry["model_name"], str(registry["version"]), key, value)


def _promote(registry: dict, tracking_uri: str, manifest: dict, reviewer: str) -> dict:
    """Point ``champion`` at the version, take ``candidate`` off it, and retire the champions it
    replaces: this model's previous one and those of other rule table models of the scenario."""
    from invalloc.rules.registry import KIND_TAG, RULE_TABLE_KIND, SCENARIO_DIGEST_TAG

    client = _client(tracking_uri)
    name, number = registry["model_name"], str(registry["version"])
    digest = (manifest.get("scenario") or {}).get("digest")
    replaced = []
    for model in _registered_models(client):
        champion = model.aliases.get(CHAMPION)
        if champion is None or (model.name == name and str(champion) == number):
            continue
        if model.name == name:
            replaced.append((name, str(champion)))
            continue
        tags = client.get_model_version(model.name, str(champion)).tags
        if tags.get(KIND_TAG) == RULE_TABLE_KIND and digest and tags.get(SCENARIO_DIGEST_TAG) == digest:
            replaced.append((model.name, str(champion)))
    client.set_registered_model_alias(name, CHAMPION, number)
    if str(client.get_registered_model(name).aliases.get(CANDIDATE)) == number:
        client.delete_registered_model_alias(name, CANDIDATE)
    for old_name, old_number in replaced:
        _supersede(tracking_uri, old_name, old_number, f"superseded by {name} v{number}", reviewer)
    return {**registry, "alias": CHAMPION}


def _registered_models(client: Any) -> list:
    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        models += list(page)
        token = page.token
        if not token:
            return models


def _retire(registry: dict, tracking_uri: str) -> dict:
    """Take ``champion`` and ``candidate`` off the version (where they point at it)."""
    client = _client(tracking_uri)
    name, number = registry["model_name"], str(registry["version"])
    for alias, version in client.get_registered_model(name).aliases.items():
        if alias in (CHAMPION, CANDIDATE) and str(version) == number:
            client.delete_registered_model_alias(name, alias)
    return {**registry, "alias": None}


def _supersede(tracking_uri: str, name: str, number: str, comment: str, reviewer: str) -> None:
    """Retire version ``number`` of ``name``, replaced as champion: its tags, its aliases and —
    where its registered files verify — its manifest and audit log (a review to ``retired``)."""
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException

    from invalloc.rules.pyfunc import table_directory
    from invalloc.tracking import quiet_mlflow

    registry = {"model_name": name, "version": number}
    _tag_version(registry, tracking_uri, "retired", reviewer, comment)
    _retire(registry, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="invalloc-supersede-") as scratch:
        try:
            with quiet_mlflow():
                folder = mlflow.artifacts.download_artifacts(
                    f"models:/{name}/{number}", tracking_uri=tracking_uri, dst_path=scratch
                )
            directory = table_directory(Path(folder))
            if read_status(directory) != "retired":
                review(directory, reviewer, comment, "retired", tracking_uri)
        except (RuleTableError, ExportError, MlflowException, OSError):
            pass  # the registry's tags and aliases say it; files that no longer verify are left as they are


def read_status(directory: Path) -> str:
    """The review status a table directory's manifest claims (not verified)."""
    from invalloc.rules.manifest import read_manifest

    return (read_manifest(directory).get("review") or {}).get("status", "draft")


__all__ = [
    "ExportError",
    "RuleTableError",
    "export_rule_table",
    "register_table",
    "review",
    "write_table_files",
]
