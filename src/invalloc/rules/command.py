"""``invalloc rules verify|decide|show|diff``: torch-free commands on a rule table directory.

Heavy imports happen inside the commands, so ``invalloc --help`` stays fast. Errors print
one ``error:`` line on standard error and exit with code 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from invalloc.console import console, fail, first_line
from invalloc.rules.table import boundary_grid  # noqa: F401 - part of this module's interface

rules_app = typer.Typer(
    help="Verify, inspect, compare and apply exported rule tables (no ML dependencies).", no_args_is_help=True
)

Directory = Annotated[Path, typer.Argument(help="Rule table directory (written by `invalloc export`).")]
Format = Annotated[str, typer.Option("--format", help="Which file to read: json, csv or dmn.")]


def _load(directory: Path, fmt: str = "json"):
    from invalloc.rules.manifest import load_rule_table
    from invalloc.rules.table import RuleTableError

    try:
        return load_rule_table(directory, fmt)
    except RuleTableError as error:
        fail([str(error)])


@rules_app.command("verify")
def verify(
    directory: Directory,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="Also check that the registered model version carries this table's content digest.",
        ),
    ] = None,
) -> None:
    """Check files, manifest and audit log, and that each format is a complete, non-overlapping table deciding alike."""
    from invalloc.rules.manifest import content_digest, verify_rule_table
    from invalloc.rules.table import RuleTableError

    try:
        result = verify_rule_table(directory)
    except RuleTableError as error:
        fail([str(error)])
    manifest, reference, grid = result["manifest"], result["table"], result["states"]
    status = manifest.get("review", {}).get("status", "draft")
    registered = ""
    if tracking_uri is not None:
        registered = _check_registry(directory, manifest, content_digest(manifest), tracking_uri)
    print(
        f"{directory}: verified — {len(manifest['files'])} files match their sha256; {len(reference)} rules, "
        f"complete and non-overlapping; csv, json and dmn decide alike on {len(grid)} boundary states; status {status}"
        + registered
    )


def _check_registry(directory: Path, manifest: dict, digest: str, tracking_uri: str) -> str:
    """The registered version must carry ``digest`` (its ``content_sha256`` tag); returns a note for the summary."""
    from invalloc.rules.registry import check_registered_content
    from invalloc.rules.table import RuleTableError
    from invalloc.tracking import TrackingError

    registry = manifest.get("registry")
    if not registry:
        fail([f"{directory}: not registered (the manifest has no registry block); nothing to check in {tracking_uri}"])
    try:
        check_registered_content(registry, tracking_uri, digest, directory)
    except (RuleTableError, TrackingError) as error:
        fail([str(error)])
    except Exception as error:  # MLflow's own errors (no common base without importing it first)
        if type(error).__module__.startswith("mlflow"):
            fail([f"tracking: {first_line(error)}"])
        raise
    return f"; registered as {registry['model_name']} v{registry['version']} with this content"


@rules_app.command("decide")
def decide(
    directory: Directory,
    input_csv: Annotated[Path, typer.Option("--input", help="CSV with one column per feature, one row per state.")],
    output: Annotated[Path | None, typer.Option("--output", help="Write the decisions here (default: stdout).")] = None,
    fmt: Format = "json",
) -> None:
    """Decide each row of feature values: the matched rule id and its outputs."""
    import numpy as np
    import pandas as pd

    from invalloc.rules.table import RuleTableError

    if output is not None:
        from invalloc.console import output_file_problems

        problems = output_file_problems(output, "--output")
        if problems:
            fail(problems)
    table, _ = _load(directory, fmt)
    if input_csv.is_dir():
        fail([f"{input_csv}: is a folder, not a CSV file"])
    try:
        frame = pd.read_csv(input_csv)
    except (OSError, ValueError) as error:
        fail([f"{input_csv}: cannot be read ({first_line(error)})"])
    missing = [name for name in table.feature_names if name not in frame.columns]
    if missing:
        fail([f"{input_csv}: missing feature column(s) {', '.join(missing[:5])}"])
    if frame.empty:
        fail([f"{input_csv}: no rows (one row per state to decide)"])
    try:
        values = frame[table.feature_names].astype(float).to_numpy()
        infinite = np.isinf(values)
        if infinite.any():
            row, column = (int(i) for i in np.argwhere(infinite)[0])
            raise ValueError(
                f"row {row + 1}: feature {table.feature_names[column]} is {values[row, column]} "
                "(features are finite numbers)"
            )
        rules, outputs = table.decide_values(values)
    except (ValueError, RuleTableError) as error:
        fail([f"{input_csv}: {error}"])
    result = pd.DataFrame(outputs, columns=table.output_names)
    result.insert(0, "rule_id", [table.rule_ids[r] for r in rules])
    if output is None:
        print(result.to_csv(index=False), end="")
        return
    try:
        result.to_csv(output, index=False)
    except OSError as error:
        fail([f"{output}: cannot be written ({error})"])


@rules_app.command("show")
def show(
    directory: Directory,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest's summary as JSON.")] = False,
) -> None:
    """Print the rules (conditions, support, outputs) and the table's fidelity and review."""
    table, manifest = _load(directory)
    summary = _summary(manifest, len(table))
    if as_json:
        print(json.dumps(summary))
        return
    from invalloc.rules.table import condition_text

    varying = [k for k in range(len(table.outputs)) if len(set(table.values[:, k])) > 1]
    grid = Table(
        title=f"{manifest.get('name')} · {summary['scenario']} · {len(table)} rules · status {summary['status']}",
        show_lines=True,
    )
    grid.add_column("rule", no_wrap=True)
    grid.add_column("support", justify="right")
    grid.add_column("when (all hold)", overflow="fold")
    grid.add_column("then" + (" (outputs that differ between rules)" if len(varying) < len(table.outputs) else ""))
    for r in sorted(range(len(table)), key=lambda r: (-table.support[r], table.rule_ids[r])):
        conditions = [
            f"{feature.name} {condition_text(table.lower[r, j], table.upper[r, j])}"
            for j, feature in enumerate(table.features)
            if table.lower[r, j] > -math.inf or table.upper[r, j] < math.inf
        ]
        grid.add_row(
            table.rule_ids[r],
            f"{table.support[r]:.1%}",
            "\n".join(conditions) or "(always)",
            "\n".join(f"{table.outputs[k].name} = {table.values[r, k]:g}" for k in varying) or "–",
        )
    console.print(grid)
    same = [k for k in range(len(table.outputs)) if k not in varying]
    if same:
        console.print(
            "in every rule: " + ", ".join(f"{table.outputs[k].name} = {table.values[0, k]:g}" for k in same),
            markup=False,
        )
    if summary["action_mode"] == "anchored":
        params = (manifest.get("anchor") or {}).get("params") or {}
        settings = ", ".join(f"{key}={value}" for key, value in params.items()) or "its defaults"
        console.print(
            f"outputs multiply the order-up-to levels and channel weights of the rule {summary['anchor']} "
            f"({(manifest.get('anchor') or {}).get('policy')} with {settings}); 1 everywhere is that rule",
            markup=False,
        )
    console.print(
        f"fidelity {_percent(summary['fidelity_on_table_states'])} on the table's states, "
        f"{_percent(summary['fidelity_on_teacher_states'])} on the teacher's; profit retention "
        f"{_percent(summary['profit_retention'])}; intervention rate {_percent(summary['intervention_rate'])}",
        markup=False,
    )


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _summary(manifest: dict, rules: int) -> dict:
    from invalloc.rules.table import anchor_label

    fidelity = manifest.get("fidelity") or {}
    retention = manifest.get("kpi_retention") or {}
    review = manifest.get("review") or {}
    return {
        "name": manifest.get("name"),
        "scenario": (manifest.get("scenario") or {}).get("name"),
        "rules": rules,
        "action_mode": manifest.get("action_mode", "compact"),
        "anchor": anchor_label(manifest.get("anchor")) if manifest.get("action_mode") == "anchored" else None,
        "status": review.get("status", "draft"),
        "reviewer": review.get("reviewer"),
        "fidelity_on_table_states": fidelity.get("on_table_states"),
        "fidelity_on_teacher_states": fidelity.get("on_teacher_states"),
        "profit_retention": retention.get("profit_retention"),
        "profit": (retention.get("rules") or {}).get("profit"),
        "teacher_profit": (retention.get("teacher") or {}).get("profit"),
        "intervention_rate": manifest.get("intervention_rate"),
        "source_run_id": (manifest.get("source") or {}).get("run_id"),
    }


@rules_app.command("diff")
def diff(
    directory_a: Annotated[Path, typer.Argument(help="The old rule table directory.")],
    directory_b: Annotated[Path, typer.Argument(help="The new rule table directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as JSON.")] = False,
) -> None:
    """Rules added, removed and changed (same conditions, other outputs) from A to B, and KPI deltas.

    Rule ids are derived from conditions, so the same conditions keep their id across exports.
    """
    table_a, manifest_a = _load(directory_a)
    table_b, manifest_b = _load(directory_b)
    result = table_diff(table_a, table_b)
    summary_a, summary_b = _summary(manifest_a, len(table_a)), _summary(manifest_b, len(table_b))
    keys = (
        "rules",
        "fidelity_on_table_states",
        "fidelity_on_teacher_states",
        "profit_retention",
        "profit",
        "intervention_rate",
    )
    result["kpi_deltas"] = {}
    for k in keys:
        a, b = summary_a[k], summary_b[k]
        result["kpi_deltas"][k] = {"a": a, "b": b, "delta": None if a is None or b is None else b - a}
    if as_json:
        print(json.dumps(result))
        return
    console.print(f"{directory_a} → {directory_b}", markup=False)
    for key in ("added", "removed"):
        console.print(f"{key}: {', '.join(result[key]) or 'none'}", markup=False)
    if result["features_changed"]:
        console.print("features differ: rules compare by id only", markup=False)
    changed = Table(title=f"changed ({len(result['changed'])})")
    for column in ("rule", "output", "a", "b"):
        changed.add_column(column)
    for rid, outputs in result["changed"].items():
        for name, (a, b) in outputs.items():
            changed.add_row(rid, name, f"{a:g}", f"{b:g}")
    if result["changed"]:
        console.print(changed)
    deltas = Table(title="KPIs")
    for column in ("", "a", "b", "Δ"):
        deltas.add_column(column, justify="right")
    for key, item in result["kpi_deltas"].items():
        deltas.add_row(key, *("n/a" if item[x] is None else f"{item[x]:,.4g}" for x in ("a", "b", "delta")))
    console.print(deltas)


def table_diff(a, b) -> dict:
    """Ids added and removed, and per shared id the outputs whose values changed ``{id: {output: (a, b)}}``."""
    ids_a, ids_b = set(a.rule_ids), set(b.rule_ids)
    changed: dict[str, dict[str, tuple[float, float]]] = {}
    outputs = [name for name in a.output_names if name in b.output_names]
    for rid in sorted(ids_a & ids_b):
        row_a, row_b = a.values[a.rule_ids.index(rid)], b.values[b.rule_ids.index(rid)]
        delta = {
            name: (float(row_a[a.output_names.index(name)]), float(row_b[b.output_names.index(name)]))
            for name in outputs
            if row_a[a.output_names.index(name)] != row_b[b.output_names.index(name)]
        }
        if delta:
            changed[rid] = delta
    return {
        "added": sorted(ids_b - ids_a),
        "removed": sorted(ids_a - ids_b),
        "changed": changed,
        "features_changed": a.feature_names != b.feature_names,
    }
