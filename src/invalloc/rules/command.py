"""``invalloc rules verify|decide|show|diff``: torch-free commands on a rule table directory.

Heavy imports happen inside the commands, so ``invalloc --help`` stays fast. Errors print
one ``error:`` line on standard error and exit with code 2.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Annotated

import numpy as np
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
        f"complete and non-overlapping; csv, json and dmn decide alike on {len(grid)} boundary states"
        + ("; every number within the manifest's stated precision" if manifest.get("precision") else "")
        + f"; status {status}"
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
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            help="One decision: an output group (e.g. sku_level_multiplier), one output, or a pattern "
            "(sku_level_multiplier_sku0*). Without it: the rules and a line per output group.",
        ),
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule (its id, e.g. R1a2b3c4d).")] = None,
    sort: Annotated[
        str,
        typer.Option("--sort", help="Order rules by: support (largest first), rule (id), a feature or an output."),
    ] = "support",
    width: Annotated[
        int | None,
        typer.Option("--width", min=40, help="Columns to fit (default: the terminal's, $COLUMNS, else 100)."),
    ] = None,
    xlsx: Annotated[
        Path | None,
        typer.Option(
            "--xlsx", help="Write a reviewer's workbook here instead: a summary sheet, then a sheet per output group."
        ),
    ] = None,
) -> None:
    """Print the rules (conditions, support), one decision at a time, and the table's fidelity and review."""
    if xlsx is not None:
        from invalloc.console import output_file_problems

        problems = output_file_problems(xlsx, "--xlsx", (".xlsx",))
        if problems:
            fail(problems)
    table, manifest = _load(directory)
    rows, members, sort_key = _selection(directory, table, output, rule, sort)
    summary = _summary(manifest, len(table))
    if xlsx is not None:
        _write_workbook(directory, table, manifest, summary, xlsx)
        return
    if as_json:
        print(json.dumps(summary))
        return
    from rich.console import Console

    screen = Console(width=width or shutil.get_terminal_size((100, 24)).columns, highlight=False, soft_wrap=False)
    rows = sorted(rows, key=sort_key)
    title = f"{manifest.get('name')} · {summary['scenario']} · {len(table)} rules · status {summary['status']}"
    if members is None:
        _print_overview(screen, table, rows, title)
    else:
        _print_decision(screen, table, rows, members, title + f" · {output}")
    if summary["action_mode"] == "anchored":
        params = (manifest.get("anchor") or {}).get("params") or {}
        settings = ", ".join(f"{key}={value}" for key, value in params.items()) or "its defaults"
        screen.print(
            f"outputs multiply the order-up-to levels and channel weights of the rule {summary['anchor']} "
            f"({(manifest.get('anchor') or {}).get('policy')} with {settings}); 1 everywhere is that rule",
            markup=False,
        )
    screen.print(
        f"fidelity {_percent(summary['fidelity_on_table_states'])} on the table's states, "
        f"{_percent(summary['fidelity_on_teacher_states'])} on the teacher's; profit retention "
        f"{_percent(summary['profit_retention'])}; intervention rate {_percent(summary['intervention_rate'])}",
        markup=False,
    )


def _selection(directory: Path, table, output: str | None, rule: str | None, sort: str):
    """Rows (rule indices), output indices (None: all, as an overview) and a sort key; bad options fail."""
    import fnmatch

    from invalloc.rules.table import output_groups

    problems = []
    rows = list(range(len(table)))
    if rule is not None:
        if rule not in table.rule_ids:
            some = ", ".join(table.rule_ids[:3])
            problems.append(f"--rule {rule}: no such rule in {directory} (ids such as {some}; see `rules show`)")
        else:
            rows = [table.rule_ids.index(rule)]
    members = None
    if output is not None:
        groups = output_groups(table.outputs)
        if output in groups:
            members = groups[output]
        else:
            members = [k for k, name in enumerate(table.output_names) if fnmatch.fnmatchcase(name, output)]
        if not members:
            problems.append(
                f"--output {output}: no such output or output group in {directory} (groups: {', '.join(groups)})"
            )
    key = None
    if sort == "support":
        key = lambda r: (-table.support[r], table.rule_ids[r])  # noqa: E731
    elif sort == "rule":
        key = lambda r: table.rule_ids[r]  # noqa: E731
    elif sort in table.feature_names:
        j = table.feature_names.index(sort)
        key = lambda r: (table.lower[r, j], table.upper[r, j], table.rule_ids[r])  # noqa: E731
    elif sort in table.output_names:
        k = table.output_names.index(sort)
        key = lambda r: (table.values[r, k], table.rule_ids[r])  # noqa: E731
    else:
        problems.append(f"--sort {sort}: not a column of {directory} (support, rule, a feature or an output name)")
    if problems:
        fail(problems)
    return rows, members, key


def _when(table, r: int) -> str:
    """Rule ``r``'s conditions, one constrained feature a line."""
    from invalloc.rules.table import condition_text

    lines = [
        f"{feature.name} {condition_text(table.lower[r, j], table.upper[r, j])}"
        for j, feature in enumerate(table.features)
        if table.lower[r, j] > -math.inf or table.upper[r, j] < math.inf
    ]
    return "\n".join(lines) or "(always)"


def _value(value: float) -> str:
    """An output value as written in the table files (no float artefacts)."""
    from invalloc.rules.table import number_text

    return number_text(value)


def _print_overview(screen, table, rows: list[int], title: str) -> None:
    """The rules with their conditions, then one line per output group: what to look at with --output."""
    from invalloc.rules.table import output_groups

    grid = Table(title=title, show_lines=True)
    grid.add_column("rule", no_wrap=True)
    grid.add_column("support", justify="right", no_wrap=True)
    grid.add_column("when (all hold)", overflow="fold")
    for r in rows:
        grid.add_row(table.rule_ids[r], f"{table.support[r]:.1%}", _when(table, r))
    screen.print(grid)
    groups = Table(title="decisions (output groups): show one with --output GROUP")
    groups.add_column("group", no_wrap=True)
    for column, justify in (("outputs", "right"), ("unit", "left"), ("values", "left")):
        groups.add_column(column, justify=justify, overflow="fold")
    groups.add_column("rules differ on", justify="right")
    for group, members in output_groups(table.outputs).items():
        values = table.values[np.ix_(rows, members)]
        varying = sum(len(set(values[:, m])) > 1 for m in range(len(members)))
        low, high = (_value(v) for v in (values.min(), values.max()))
        groups.add_row(
            group,
            str(len(members)),
            table.outputs[members[0]].unit,
            low if low == high else f"{low} – {high}",
            f"{varying} of {len(members)}",
        )
    screen.print(groups)


def _print_decision(screen, table, rows: list[int], members: list[int], title: str) -> None:
    """One decision: per rule its conditions and the selected outputs that differ between rules
    (as columns beside the conditions when they fit the width; else the conditions first, then
    the values as a matrix of rules × outputs in blocks of columns that fit); the outputs equal
    in every rule on one line below."""
    from invalloc.rules.table import output_group

    varying = members if len(rows) == 1 else [k for k in members if len(set(table.values[rows, k])) > 1]
    same = [k for k in members if k not in varying]
    group = {output_group(table.outputs[k]) for k in members}
    prefix = f"{group.pop()}_" if len(group) == 1 and len(members) > 1 else ""

    def label(k: int) -> str:
        name = table.outputs[k].name
        return name[len(prefix) :] if prefix and name.startswith(prefix) and len(name) > len(prefix) else name

    cells = {k: [_value(table.values[r, k]) for r in rows] for k in varying}
    widths = {k: max(len(label(k)), *(len(c) for c in cells[k])) for k in varying}
    ids = max(len(table.rule_ids[r]) for r in rows)
    when = min(max((len(line) for r in rows for line in _when(table, r).splitlines()), default=8), 30)
    beside = 1 + (ids + 3) + (7 + 3) + (when + 3) + sum(widths[k] + 3 for k in varying) <= screen.width
    grid = Table(title=title, show_lines=True)
    grid.add_column("rule", no_wrap=True)
    grid.add_column("support", justify="right", no_wrap=True)
    grid.add_column("when (all hold)", overflow="fold", min_width=when)
    for k in varying if beside else []:
        grid.add_column(label(k), justify="right", no_wrap=True)
    for i, r in enumerate(rows):
        grid.add_row(
            table.rule_ids[r], f"{table.support[r]:.1%}", _when(table, r), *(cells[k][i] for k in varying if beside)
        )
    screen.print(grid)
    if not beside:
        # Blocks of output columns that fit beside the rule id.
        blocks: list[list[int]] = [[]]
        used = 1 + ids + 3
        for k in varying:
            if blocks[-1] and used + widths[k] + 3 > screen.width:
                blocks.append([])
                used = 1 + ids + 3
            blocks[-1].append(k)
            used += widths[k] + 3
        for block in blocks:
            names = label(block[0]) if len(block) == 1 else f"{label(block[0])} … {label(block[-1])}"
            matrix = Table(title=f"{prefix.rstrip('_') or 'outputs'}: {names}")
            matrix.add_column("rule", no_wrap=True)
            for k in block:
                matrix.add_column(label(k), justify="right", no_wrap=True)
            for i, r in enumerate(rows):
                matrix.add_row(table.rule_ids[r], *(cells[k][i] for k in block))
            screen.print(matrix)
    if same:
        screen.print(
            ("in every rule shown: " if varying else "the same in every rule shown: ")
            + ", ".join(f"{table.outputs[k].name} = {_value(table.values[rows[0], k])}" for k in same),
            markup=False,
        )
    units = {table.outputs[k].unit for k in members}
    if len(members) == 1:
        screen.print(f"unit: {units.pop()} — {table.outputs[members[0]].description}", markup=False)
    elif len(units) == 1:
        screen.print(f"unit: {units.pop()}", markup=False)


def _write_workbook(directory: Path, table, manifest: dict, summary: dict, path: Path) -> None:
    from invalloc.rules.formats import write_xlsx
    from invalloc.rules.manifest import content_digest

    try:
        sheets = write_xlsx(table, workbook_summary(manifest, summary, content_digest(manifest)), path)
    except OSError as error:
        fail([f"--xlsx {path}: cannot be written ({first_line(error)})"])
    print(f"{path}: {len(sheets)} sheets ({', '.join(sheets)}) from {directory}")


def workbook_summary(manifest: dict, summary: dict, digest: str) -> list[tuple[str, object]]:
    """The label–value rows of a workbook's first sheet; KPIs to 4 significant digits."""
    from invalloc.rules.table import significant

    def number(value):
        return None if value is None else significant(float(value), 4)

    fidelity = manifest.get("fidelity") or {}
    retention = manifest.get("kpi_retention") or {}
    best = retention.get("best_baseline") or {}
    anchor = retention.get("anchor") or {}
    rounding = (manifest.get("precision") or {}).get("rounding_effect") or {}
    rows: list[tuple[str, object]] = [
        ("table", summary["name"]),
        ("scenario", summary["scenario"]),
        ("scenario sha256", (manifest.get("scenario") or {}).get("digest")),
        ("content sha256", digest),
        ("feature set version", (manifest.get("feature_set") or {}).get("version")),
        ("rules", summary["rules"]),
        ("review status", summary["status"]),
        ("reviewer", summary["reviewer"]),
        ("action mode", summary["action_mode"]),
        ("anchor (rule the outputs multiply)", summary["anchor"] or "none"),
        ("fidelity tolerance (action units)", number(fidelity.get("tolerance"))),
        ("fidelity on the table's states", number(summary["fidelity_on_table_states"])),
        ("fidelity on the teacher's states", number(summary["fidelity_on_teacher_states"])),
        ("profit retention (rules ÷ teacher)", number(summary["profit_retention"])),
        ("profit of the rules", number(summary["profit"])),
        ("profit of the teacher", number(summary["teacher_profit"])),
        ("best tuned baseline", best.get("name")),
        ("profit of the best baseline", number(best.get("profit"))),
        ("profit of the anchor", number(anchor.get("profit"))),
        ("intervention rate", number(summary["intervention_rate"])),
        ("source run", summary["source_run_id"]),
    ]
    if rounding:
        rows += [
            ("states on the same side of every rounded threshold", number(rounding.get("states_on_the_same_side"))),
            ("fidelity before rounding", number(rounding.get("fidelity_unrounded"))),
            ("fidelity after rounding", number(rounding.get("fidelity_rounded"))),
        ]
    rows.append(("precision", _precision_words(manifest.get("precision"))))
    return rows


def _precision_words(precision: dict | None) -> str:
    """The manifest's precision block in words (steps and significant digits, with how many use each)."""
    if not precision:
        return "not stated (exported before precision was recorded)"
    from collections import Counter

    def words(p: dict) -> str:
        return f"step {p['step']:g}" if p.get("step") else f"{p.get('significant_digits')} significant digits"

    parts = []
    for section in ("features", "outputs"):
        counts = Counter(words(p) for p in (precision.get(section) or {}).values())
        what = "thresholds" if section == "features" else "outputs"
        parts.append(f"{what}: " + ", ".join(f"{n} at {w}" for w, n in counts.items()))
    if precision.get("support"):
        parts.append(f"support: {words(precision['support'])}")
    return "; ".join(parts)


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
    across_scenarios: Annotated[
        bool,
        typer.Option(
            "--across-scenarios",
            help="Diff tables exported on different scenarios anyway (their rules and KPIs do not compare).",
        ),
    ] = False,
) -> None:
    """Rules added, removed and changed (same conditions, other outputs) from A to B, and KPI deltas.

    Rule ids are derived from conditions, so the same conditions keep their id across exports.
    Tables of two scenarios (or two versions of one) are refused unless ``--across-scenarios``.
    """
    table_a, manifest_a = _load(directory_a)
    table_b, manifest_b = _load(directory_b)
    scenario_a, scenario_b = (m.get("scenario") or {} for m in (manifest_a, manifest_b))
    same_scenario = (scenario_a.get("name"), scenario_a.get("digest")) == (
        scenario_b.get("name"),
        scenario_b.get("digest"),
    )
    if not same_scenario and not across_scenarios:
        what = (
            f"scenarios {scenario_a.get('name')} and {scenario_b.get('name')}"
            if scenario_a.get("name") != scenario_b.get("name")
            else f"two versions of scenario {scenario_a.get('name')} (digests differ)"
        )
        fail(
            [
                f"{directory_b / 'manifest.json'}: scenario: the tables were exported on {what}; their rules "
                "and KPIs do not compare (--across-scenarios to list the differences anyway)"
            ]
        )
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
    result["same_scenario"] = same_scenario
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
    if not same_scenario:
        console.print(
            f"scenarios differ ({scenario_a.get('name')} → {scenario_b.get('name')}): "
            "rules compare by id only and the KPIs are of different networks",
            markup=False,
        )
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
