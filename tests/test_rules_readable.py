"""Readable rule tables: a stated precision and no float artefacts in any format, the same
decisions after rounding, `rules show` one decision at a time within 100 columns, the
reviewer's workbook, and the DMN diagram (DMNDI) evaluated by an independent FEEL engine."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.export.extraction import tree_leaves
from invalloc.rules import RuleTableError, load_rule_table
from invalloc.rules.formats import DC_NAMESPACE, DI_NAMESPACE, DMN_NAMESPACE, DMNDI_NAMESPACE, FILE_NAMES
from invalloc.rules.manifest import verify_rule_table
from invalloc.rules.table import (
    Output,
    action_outputs,
    boundary_grid,
    conforms,
    output_groups,
    precision_problem,
    round_to,
    significant_digits,
)
from tampering import forge_audit_log, rehash

runner = CliRunner()
#: `invalloc export` options: every stage of the quickstart's export runs, in seconds.
EXPORT_OPTIONS = ["--max-rules", "16", "--iterations", "2", "--episodes", "2", "--teacher-episodes", "4"]
EXPORT_OPTIONS += ["--validation-episodes", "1", "--evaluation-episodes", "2", "--no-register"]
#: A number as written in a file: not part of an identifier, a hex digest, a date or a namespace URI.
NUMBER = re.compile(r"(?<![\w./-])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w./])")
#: The most significant digits any number of a table has at its stated precision (days to ½ day
#: below 10,000; ratios to 0.01; two significant digits; support three).
MOST_DIGITS = 5


@pytest.fixture(scope="module")
def exported(tmp_path_factory, mlflow_template_db) -> tuple[Path, dict]:
    """The quickstart's retail export: its experiment (ARS anchored on `proportional@tuned`),
    trained briefly in a real MLflow store, exported by `invalloc export` and verified."""
    import shutil

    from invalloc.agents.training import train
    from invalloc.quickstart import EXPERIMENT

    work = tmp_path_factory.mktemp("readable")
    shutil.copyfile(mlflow_template_db, work / "mlflow.db")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    trained = train(EXPERIMENT, timesteps=1024, tracking_uri=uri, progress=False)
    out = work / "retail_table"
    command = ["export", "--run", trained.run_id, "--tracking-uri", uri, "--out", str(out), *EXPORT_OPTIONS, "--json"]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def _decimal_conforms(token: str, precision: dict) -> bool:
    """Whether a number *as written* holds no more than ``precision`` (checked on the text)."""
    value = Decimal(token)
    if precision.get("step"):
        return value % Decimal(repr(float(precision["step"]))) == 0
    return len(value.normalize().as_tuple().digits) <= precision["significant_digits"]


# ---------------------------------------------------------------------------------- rounding
def test_rounding_gives_the_decimal_and_the_same_value_as_before():
    """19 × 0.05 is written 0.95, not 0.9500000000000001; every value is within one float step of
    what the earlier rounding gave, so every action (and decision) stays the same."""
    assert repr(round_to(19 * 0.05, {"step": 0.05})) == "0.95"
    assert repr(round_to(1.15, {"step": 0.05})) == "1.15"
    assert repr(round_to(0.123456, {"significant_digits": 2})) == "0.12"
    assert round_to(-0.001, {"step": 0.5}) == 0.0 and repr(round_to(-0.001, {"step": 0.5})) == "0.0"
    assert significant_digits(0.9500000000000001) == 16 and significant_digits(1200000.0) == 2
    assert not conforms(0.9500000000000001, {"step": 0.05}) and conforms(0.95, {"step": 0.05})
    assert not conforms(0.125, {"significant_digits": 2}) and conforms(0.13, {"significant_digits": 2})
    actions = np.linspace(-1.0, 1.0, 4001)
    for mode in ("compact", "anchored"):
        names = ["cover/sku/a", "allocation_weight/b"] if mode == "compact" else ["level_scale/sku/a"]
        for output in action_outputs(names, mode):
            values = output.from_action(actions)
            assert all(len(repr(float(v))) <= 6 for v in values), output.name
            if output.step:
                earlier = np.round(2.0**actions / output.step) * output.step
                assert np.abs(values - earlier).max() <= 2.3e-16  # one float step at most
                assert np.array_equal(output.to_action(values), output.to_action(values))


def test_tree_descent_matches_scikit_learn():
    """The descent that measures the rounding effect reaches scikit-learn's own leaves with the exact cuts."""
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    features = rng.normal(size=(2000, 4)) * [1, 10, 100, 0.1]
    target = np.sin(features[:, 0]) + features[:, 1] / 10
    tree = DecisionTreeRegressor(max_leaf_nodes=16, random_state=0).fit(features, target)
    leaves = tree_leaves(tree.tree_, features.astype(np.float32), tree.tree_.threshold, strict=False)
    assert np.array_equal(leaves, tree.apply(features))


def test_rounding_effect_counts_the_states_a_rounded_split_moves():
    """A split at 3.05 days (between states at 3.0 and 3.1) rounds to 3.0: the state at 3.0
    changes side, and only it; the measure reports that share and the fidelity it costs."""
    from types import SimpleNamespace

    from sklearn.tree import DecisionTreeRegressor

    from invalloc.env.feature_definitions import Feature
    from invalloc.export.extraction import Visits, refit_outputs, rounding_effect, tree_to_table

    x = np.round(np.arange(0.0, 10.0, 0.1), 1)
    target = np.where(x < 3.05, -0.5, 0.5)
    tree = DecisionTreeRegressor(max_leaf_nodes=2).fit(x[:, None], target)
    assert tree.tree_.threshold[0] == pytest.approx(3.05)
    features = SimpleNamespace(size=1, features=[Feature("cover", "days", "days of cover")])
    table = tree_to_table(tree, features, action_outputs(["cover/sku/a"], "compact"), {"name": "t"})
    assert sorted(table.upper[:, 0].tolist()) == [3.0, np.inf]  # the split as written: 3.0 days
    visits = Visits(x[:, None], np.zeros((len(x), 1), dtype=np.float32), np.ones(len(x)), target[:, None])
    refit_outputs(table, visits, np.ones(len(x)))
    effect = rounding_effect(tree, table, visits, 0.25)
    assert effect["states"] == 100
    assert effect["states_on_the_same_side"] == pytest.approx(0.99)
    assert effect["fidelity_unrounded"] == 1.0 and effect["fidelity_rounded"] == pytest.approx(0.99)
    assert effect["fidelity_change"] == pytest.approx(-0.01)


def test_export_states_its_precision_and_every_format_keeps_to_it(exported):
    out, manifest = exported
    precision = manifest["precision"]
    table, on_disk = load_rule_table(out)
    assert set(precision["features"]) == set(table.feature_names)
    assert set(precision["outputs"]) == set(table.output_names)
    assert precision["support"] == {"significant_digits": 3}
    # The stated precision is covered by the content digest: the manifest on disk is the one recorded.
    assert on_disk["precision"] == precision
    units = {f.name: f.unit for f in table.features}
    steps = {"days": {"step": 0.5}, "ratio": {"step": 0.01}}
    for name, stated in precision["features"].items():
        assert stated == steps.get(units[name], {"significant_digits": 2}), name
    # CSV: every threshold and value as written.
    rows = list(csv.reader(io.StringIO((out / "rules.csv").read_text())))
    header = rows[0]
    checked = 0
    for row in rows[1:]:
        for column, cell in zip(header, row, strict=True):
            if column.startswith("in."):
                stated = precision["features"][column[3:]]
            elif column.startswith("out."):
                stated = precision["outputs"][column[4:]]
            elif column == "support":
                stated = precision["support"]
            else:
                continue
            for token in NUMBER.findall(cell):
                assert _decimal_conforms(token, stated), (column, cell)
                checked += 1
    assert checked > (len(rows) - 1) * len(table.outputs)
    # JSON: every bound, value and support as written (json writes a float's shortest repr).
    document = json.loads((out / "rules.json").read_text())
    for rule in document["rules"]:
        assert _decimal_conforms(repr(rule["support"]), precision["support"])
        for name, bounds in rule["when"].items():
            for bound in bounds.values():
                assert bound is None or _decimal_conforms(repr(bound), precision["features"][name])
        for name, value in rule["then"].items():
            assert _decimal_conforms(repr(value), precision["outputs"][name])
    # Every format as read back, and no number anywhere in the three files with more digits.
    for fmt, name in FILE_NAMES.items():
        loaded, _ = load_rule_table(out, fmt)
        assert precision_problem(loaded, precision) is None
        digits = [significant_digits(float(token)) for token in NUMBER.findall((out / name).read_text())]
        assert digits and max(digits) <= MOST_DIGITS, name
    assert "0.9500000000000001" not in (out / "rules.dmn").read_text()


def test_rounding_keeps_the_partition_and_the_decisions(exported):
    """The rounded table is a partition in every format, all formats decide alike on every
    boundary, and the manifest states what rounding did to the states seen in extraction."""
    out, manifest = exported
    result = verify_rule_table(out)  # every format a partition, deciding alike on the boundary grid
    reference = result["table"]
    effect = manifest["precision"]["rounding_effect"]
    assert effect["states"] > manifest["extraction"]["states"]  # with the teacher's validation states
    assert 0.9 <= effect["states_on_the_same_side"] <= 1.0
    assert effect["fidelity_change"] == pytest.approx(effect["fidelity_rounded"] - effect["fidelity_unrounded"])
    assert effect["fidelity_rounded"] >= effect["fidelity_unrounded"] - 0.05
    # Support is the rounded share of the states each rule matched: it still sums to 1 (to its digits).
    assert reference.support.sum() == pytest.approx(1.0, abs=5e-3)
    # `rules decide` writes the values as the table holds them: no float artefacts.
    grid = boundary_grid(reference)
    import pandas as pd

    states = out.parent / "states.csv"
    pd.DataFrame(grid, columns=reference.feature_names).to_csv(states, index=False)
    decided = runner.invoke(app, ["rules", "decide", str(out), "--input", str(states)])
    assert decided.exit_code == 0, decided.output
    body = decided.stdout.split("\n", 1)[1]
    assert max(significant_digits(float(t)) for t in NUMBER.findall(body)) <= MOST_DIGITS
    frame = pd.read_csv(io.StringIO(decided.stdout))
    rules = reference.decide(grid)
    assert frame["rule_id"].tolist() == [reference.rule_ids[r] for r in rules]
    assert np.array_equal(frame[reference.output_names].to_numpy(), reference.values[rules])


def test_a_table_finer_than_its_stated_precision_is_refused(exported, tmp_path):
    """A manifest that states a precision the table does not keep fails verification, even
    when the directory is forged consistently (files re-hashed, audit log rewritten)."""
    import shutil

    out, manifest = exported
    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    first = manifest["outputs"][0]["name"]
    precision = json.loads(json.dumps(manifest["precision"]))
    precision["outputs"][first] = {"step": 7.0}
    rehash(forged, precision=precision)
    forge_audit_log(forged)
    with pytest.raises(RuleTableError, match=rf"rules\.json: rule R\w+: output {first} = .* stated step 7"):
        verify_rule_table(forged)
    result = runner.invoke(app, ["rules", "verify", str(forged)])
    assert result.exit_code == 2 and "manifest.json field precision" in result.stderr


# ---------------------------------------------------------------------------------- rules show
def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_show_prints_one_decision_at_a_time_within_100_columns(exported):
    out, _ = exported
    table, _ = load_rule_table(out)
    groups = output_groups(table.outputs)
    assert len(groups) >= 2 and any(len(members) > 10 for members in groups.values())
    environment = {"COLUMNS": "100"}
    overview = runner.invoke(app, ["rules", "show", str(out)], env=environment)
    assert overview.exit_code == 0, overview.output
    assert _widest(overview.stdout) <= 100
    assert all(group in overview.stdout for group in groups)
    for group, members in groups.items():
        result = runner.invoke(app, ["rules", "show", str(out), "--output", group], env=environment)
        assert result.exit_code == 0, result.output
        assert _widest(result.stdout) <= 100, group
        assert all(rid in result.stdout for rid in table.rule_ids)
        others = [name for name in table.output_names if name not in {table.outputs[k].name for k in members}]
        assert not any(name in result.stdout for name in others), group
    # One output, one rule, sorted by a feature; a pattern selects several outputs of a group.
    name = table.output_names[0]
    rid = table.rule_ids[-1]
    single = runner.invoke(app, ["rules", "show", str(out), "--output", name, "--rule", rid], env=environment)
    assert single.exit_code == 0 and rid in single.stdout and _widest(single.stdout) <= 100
    assert sum(other in single.stdout for other in table.rule_ids) == 1
    shown = f"{table.values[-1, 0]:g}"
    assert shown in single.stdout
    feature = table.feature_names[int(np.argmax(np.isfinite(table.lower).sum(axis=0)))]
    ordered = runner.invoke(app, ["rules", "show", str(out), "--sort", feature], env=environment)
    assert ordered.exit_code == 0, ordered.output
    j = table.feature_names.index(feature)
    by_position = sorted(range(len(table)), key=lambda r: ordered.stdout.index(table.rule_ids[r]))
    lows = [table.lower[r, j] for r in by_position]
    assert lows == sorted(lows) and len(set(lows)) > 1
    narrow = runner.invoke(app, ["rules", "show", str(out), "--output", next(iter(groups)), "--width", "60"])
    assert narrow.exit_code == 0 and _widest(narrow.stdout) <= 60


# ---------------------------------------------------------------------------------- workbook
def test_workbook_opens_and_holds_the_json_values(exported, tmp_path):
    from openpyxl import load_workbook

    out, manifest = exported
    path = tmp_path / "review" / "retail.xlsx"
    result = runner.invoke(app, ["rules", "show", str(out), "--xlsx", str(path)])
    assert result.exit_code == 0, result.output
    book = load_workbook(path, read_only=True)
    document = json.loads((out / "rules.json").read_text())
    table, _ = load_rule_table(out)
    groups = output_groups(table.outputs)
    assert book.sheetnames == ["summary", "conditions", *groups]
    summary = {label: value for label, value in book["summary"].iter_rows(values_only=True)}
    from invalloc.rules.manifest import content_digest

    assert summary["content sha256"] == content_digest(manifest)
    assert summary["scenario"] == "retail" and summary["scenario sha256"] == manifest["scenario"]["digest"]
    assert summary["fidelity on the table's states"] == pytest.approx(manifest["fidelity"]["on_table_states"], 1e-3)
    retention = manifest["kpi_retention"]["profit_retention"]
    assert summary["profit retention (rules ÷ teacher)"] == pytest.approx(retention, 1e-3)
    assert "outputs:" in summary["precision"] and "anchor (rule the outputs multiply)" in summary
    rules = {rule["id"]: rule for rule in document["rules"]}
    for group, members in groups.items():
        rows = list(book[group].iter_rows(values_only=True))
        assert list(rows[0][3:]) == [table.outputs[k].name for k in members]
        assert len(rows) == len(rules) + 1
        for row in rows[1:]:
            rule = rules[row[0]]
            assert row[1] == rule["support"]
            assert list(row[3:]) == [rule["then"][table.outputs[k].name] for k in members]  # exactly equal
    csv_rows = list(csv.reader(io.StringIO((out / "rules.csv").read_text())))
    conditions = list(book["conditions"].iter_rows(values_only=True))
    n_features = len(table.features)
    for sheet_row, csv_row in zip(conditions[1:], csv_rows[1:], strict=True):
        assert sheet_row[0] == csv_row[0] and list(sheet_row[2:]) == csv_row[1 : 1 + n_features]


# ---------------------------------------------------------------------------------- DMN
def test_dmn_diagram_shows_every_input_and_the_decision(exported):
    out, _ = exported
    table, _ = load_rule_table(out)
    root = ET.parse(out / "rules.dmn").getroot()
    dmn, dmndi, dc, di = (f"{{{n}}}" for n in (DMN_NAMESPACE, DMNDI_NAMESPACE, DC_NAMESPACE, DI_NAMESPACE))
    assert root[-1].tag == f"{dmndi}DMNDI"  # last child of definitions, as DMN 1.3 orders it
    inputs = {e.get("id"): e.get("name") for e in root.findall(f"{dmn}inputData")}
    assert sorted(inputs.values()) == sorted(table.feature_names)
    decision = root.find(f"{dmn}decision")
    requirements = {
        r.get("id"): r.find(f"{dmn}requiredInput").get("href")[1:]
        for r in decision.findall(f"{dmn}informationRequirement")
    }
    assert sorted(requirements.values()) == sorted(inputs)
    diagram = root.find(f"{dmndi}DMNDI/{dmndi}DMNDiagram")
    shapes = {s.get("dmnElementRef"): s.find(f"{dc}Bounds") for s in diagram.findall(f"{dmndi}DMNShape")}
    assert set(shapes) == set(inputs) | {decision.get("id")}
    boxes = []
    for bounds in shapes.values():
        x, y, w, h = (float(bounds.get(k)) for k in ("x", "y", "width", "height"))
        assert w > 0 and h > 0
        boxes.append((x, y, x + w, y + h))
    for k, a in enumerate(boxes):  # no two shapes overlap
        assert not any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3] for b in boxes[k + 1 :])
    edges = {e.get("dmnElementRef"): e.findall(f"{di}waypoint") for e in diagram.findall(f"{dmndi}DMNEdge")}
    assert set(edges) == set(requirements)
    assert all(len(points) >= 2 for points in edges.values())


def test_independent_engine_decides_the_exported_dmn_alike_on_every_boundary(exported):
    """pyDMNrules (FEEL via pySFeel) reads the DMN with its diagram and picks the same rule, with
    the same outputs, as the evaluator on every probe of every boundary of the real table."""
    pydmnrules = pytest.importorskip("pyDMNrules")
    out, _ = exported
    table, _ = load_rule_table(out, "dmn")
    engine = pydmnrules.DMN()
    status = engine.useXML((out / "rules.dmn").read_text())
    assert "errors" not in status, status
    grid = boundary_grid(table)
    expected = table.decide(grid)
    assert len(grid) > 3 * len(table)
    for state, rule in zip(grid, expected, strict=True):
        status, result = engine.decide({name: float(v) for name, v in zip(table.feature_names, state, strict=True)})
        assert "errors" not in status, (state, status)
        decided = result["Result"] if isinstance(result, dict) else result[-1]["Result"]
        assert decided["rule_id"] == table.rule_ids[rule], state
        assert [float(decided[name]) for name in table.output_names] == table.values[rule].tolist()


def test_outputs_group_by_decision():
    names = ["cover/sku/sku01", "cover/sku/sku02", "cover/location/dc_a", "allocation_weight/stores"]
    outputs = action_outputs(names, "compact")
    assert output_groups(outputs) == {
        "sku_cover_multiplier": [0, 1],
        "dc_cover_multiplier": [2],
        "channel_allocation_weight": [3],
    }
    hand_written = [Output("cover", "", "", "", "log2")]
    assert output_groups(hand_written) == {"cover": [0]}
