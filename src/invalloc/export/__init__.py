"""Export a trained policy as a rule table: extraction, fidelity, KPI retention, manifest, registry.

Depends on scikit-learn and, for the teacher and the registry, on SB3/torch and MLflow; the
tables it writes are read by the torch-free :mod:`invalloc.rules`.

>>> from invalloc.export import export_rule_table          # doctest: +SKIP
>>> manifest = export_rule_table(run_id, out_dir="rules/retail")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invalloc.rules.table import DEFAULT_MAX_RULES


def export_rule_table(
    run_id: str,
    out_dir: str | Path,
    tracking_uri: str | None = None,
    console: Any = None,
    max_rules: int = DEFAULT_MAX_RULES,
    settings: Any = None,
    scenario: str | None = None,
    register: str | None = "",
) -> dict:
    """Export the best policy of MLflow run ``run_id`` as a verified rule table in ``out_dir``.

    :param tracking_uri: the store (None: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    :param console: a rich console for a one-line summary (None: silent).
    :param settings: :class:`~invalloc.export.extraction.ExtractionSettings` (``max_rules`` is
        used when None).
    :param scenario: scenario file or name (None: the one logged with the run).
    :param register: registered model name; ``""`` for ``invalloc-rules-<scenario>``, None
        not to register.
    :returns: the manifest.
    :raises ExportError, RuleTableError, PolicyError, TrackingError: one-line messages.
    """
    from invalloc.agents.learned import load_learned_policy
    from invalloc.config.loader import load_scenario
    from invalloc.export.exporter import export_rule_table as export_teacher
    from invalloc.export.extraction import ExtractionSettings
    from invalloc.processes import exit_on_sigterm, temporary_folder
    from invalloc.tracking import configure_tracking

    uri = configure_tracking(tracking_uri, must_exist=True)
    teacher = load_learned_policy(f"run:{run_id}", uri)
    # The run's logged scenario (and the files it references) live in a temporary folder that
    # is removed however the export ends; the simulator reads a demand trace from it throughout.
    with exit_on_sigterm(), temporary_folder("export") as folder:
        loaded = load_scenario(scenario) if scenario else scenario_of_run(run_id, uri, folder)
        source = {
            "run_id": run_id,
            "model_uri": f"runs:/{run_id}/best",
            "model_version": model_version_of_run(run_id, uri),
            "teacher": teacher.name,
        }
        name = None if register is None else (register or f"invalloc-rules-{loaded.scenario.name}")
        manifest = export_teacher(
            teacher, loaded, Path(out_dir), settings or ExtractionSettings(max_rules=max_rules), source, uri, name
        )
    if console is not None:
        console.print(summary_line(Path(out_dir), manifest), markup=False)
    return manifest


def scenario_of_run(run_id: str, tracking_uri: str, folder: Path):
    """The scenario a run trained on, from its logged ``config/``, restored into ``folder``
    with the files it references (``folder`` must outlive the scenario's use)."""
    import mlflow

    from invalloc.agents.run_files import RunFilesError, restore_scenario
    from invalloc.export.exporter import ExportError

    try:
        return restore_scenario(mlflow.MlflowClient(tracking_uri), run_id, folder)
    except RunFilesError as error:
        raise ExportError(str(error)) from None


def model_version_of_run(run_id: str, tracking_uri: str) -> str | None:
    """The registered model version (``NAME/VERSION``) created from ``run_id``, if any."""
    import mlflow

    versions = mlflow.MlflowClient(tracking_uri).search_model_versions(f"run_id='{run_id}'")
    return f"{versions[0].name}/{versions[0].version}" if versions else None


def summary_line(out: Path, manifest: dict) -> str:
    """One line: rules (and the rule they correct), fidelity, profit retention, interventions, registry."""
    from invalloc.rules.table import anchor_label

    fidelity, retention = manifest["fidelity"], manifest["kpi_retention"]["profit_retention"]
    registry = manifest.get("registry")
    anchored = f" correcting {anchor_label(manifest['anchor'])}" if manifest.get("action_mode") == "anchored" else ""
    return (
        f"{out}: {manifest['rules']} rules{anchored}; fidelity {fidelity['on_table_states']:.1%} on the table's "
        f"states, {fidelity['on_teacher_states']:.1%} on the teacher's (tolerance {fidelity['tolerance']}); profit "
        f"retention {'n/a' if retention is None else f'{retention:.1%}'}; feasibility layer intervened in "
        f"{manifest['intervention_rate']:.0%} of periods"
        + (
            f", changing {changed['rules']:.1%} of decision variables (teacher {changed['teacher']:.1%})"
            if (changed := manifest.get("decision_variables_changed"))
            else ""
        )
        + (f"; registered as {registry['model_name']} v{registry['version']}" if registry else "")
        + (f" @{registry['alias']}" if registry and registry.get("alias") else "")
    )
