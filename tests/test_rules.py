"""The torch-free rule table evaluator: partition checks, formats, DMN, hashes, policy, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.config.loader import load_scenario
from invalloc.env.actions import ActionMapper
from invalloc.rules import (
    FEATURE_SET_VERSION,
    Feature,
    FeatureSet,
    Output,
    RuleTable,
    RuleTableError,
    load_rule_policy,
    load_rule_table,
    read_csv,
    read_dmn,
    read_json,
    write_csv,
    write_dmn,
    write_json,
)
from invalloc.rules.command import boundary_grid
from invalloc.rules.formats import describe_features, describe_outputs
from invalloc.rules.manifest import MANIFEST_FILE, MANIFEST_VERSION, append_audit, write_manifest
from invalloc.rules.table import compact_outputs, rule_id
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator, run_episode
from tampering import forge_audit_log, rehash

runner = CliRunner()


def _partition(n_features: int, n_rules: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random axis-aligned partition of R^F into ``n_rules`` boxes (a random tree), bounds rounded."""
    rng = np.random.default_rng(seed)
    boxes = [(np.full(n_features, -np.inf), np.full(n_features, np.inf))]
    while len(boxes) < n_rules:
        lower, upper = boxes.pop(int(rng.integers(len(boxes))))
        f = int(rng.integers(n_features))
        cut = round(float(rng.uniform(max(lower[f], -50.0), min(upper[f], 50.0))), 1)
        if not lower[f] < cut < upper[f]:
            boxes.append((lower, upper))
            continue
        left_upper, right_lower = upper.copy(), lower.copy()
        left_upper[f], right_lower[f] = cut, cut
        boxes += [(lower, left_upper), (right_lower, upper)]
    return np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes])


def _table(n_features: int = 4, n_rules: int = 12, seed: int = 0) -> RuleTable:
    lower, upper = _partition(n_features, n_rules, seed)
    rng = np.random.default_rng(seed + 1)
    outputs = [
        Output("sku_cover_multiplier_a", "× base cover", "cover of a", "cover/sku/a", "log2", 0.05),
        Output("channel_allocation_weight_b", "relative weight", "weight of b", "allocation_weight/b", "half_ln"),
    ]
    values = np.column_stack([rng.integers(10, 40, n_rules) * 0.05, rng.uniform(0.2, 5, n_rules).round(2)])
    return RuleTable(
        features=[Feature(f"feature_{j}", "days", f"feature {j}") for j in range(n_features)],
        outputs=outputs,
        lower=lower,
        upper=upper,
        values=values,
        support=np.full(n_rules, 1 / n_rules),
        rule_ids=[rule_id(lo, hi) for lo, hi in zip(lower, upper, strict=True)],
        metadata={"name": "test", "scenario": "none", "feature_set_version": "1"},
    )


def _brute_force(table: RuleTable, states: np.ndarray) -> np.ndarray:
    """Index of the matching rule by testing every rule (asserting exactly one matches)."""
    match = ((table.lower[None] <= states[:, None]) & (states[:, None] < table.upper[None])).all(axis=2)
    assert (match.sum(axis=1) == 1).all()
    return match.argmax(axis=1)


# ---------------------------------------------------------------------------------- the model
def test_decide_matches_brute_force_on_boundaries_and_random_states():
    table = _table(5, 40, seed=3)
    table.check()
    grid = boundary_grid(table)
    states = np.concatenate([grid, np.random.default_rng(0).uniform(-60, 60, (5000, 5))])
    assert np.array_equal(table.decide(states), _brute_force(table, states))


def test_more_than_64_rules_use_several_bitset_words():
    table = _table(3, 150, seed=4)
    table.check()
    states = np.concatenate([boundary_grid(table), np.random.default_rng(1).uniform(-60, 60, (3000, 3))])
    assert np.array_equal(table.decide(states), _brute_force(table, states))


def test_overlapping_table_is_refused_naming_both_rules():
    table = _table()
    table.lower[0] = -np.inf
    table.upper[0] = np.inf  # rule 0 now covers everything, overlapping all others
    with pytest.raises(RuleTableError, match="overlapping rules — .* both match"):
        table.check("t.json")


def test_incomplete_table_is_refused_with_an_uncovered_point():
    table = _table()
    keep = np.arange(1, len(table))
    gap = RuleTable(
        table.features,
        table.outputs,
        table.lower[keep],
        table.upper[keep],
        table.values[keep],
        table.support[keep],
        [table.rule_ids[k] for k in keep],
    )
    with pytest.raises(RuleTableError, match="incomplete — no rule matches") as caught:
        gap.check("t.json")
    point = dict(part.split("=") for part in str(caught.value).split("matches ")[1].split(", "))
    state = np.array([[float(point[f"feature_{j}"]) for j in range(4)]])
    # The reported point is in the removed rule and in no other.
    assert _brute_force(table, state)[0] == 0


def test_nan_feature_is_refused():
    table = _table()
    states = np.zeros((3, 4))
    states[1, 2] = np.nan
    with pytest.raises(RuleTableError, match="row 1: feature feature_2 is missing"):
        table.decide(states)


def test_outputs_round_to_business_values_and_map_to_actions():
    cover, weight = compact_outputs(["cover/sku/sku01", "allocation_weight/stores"])
    assert cover.name == "sku_cover_multiplier_sku01" and weight.name == "channel_allocation_weight_stores"
    assert cover.from_action(np.array([0.0, 1.0, -1.0, 0.5])).tolist() == pytest.approx([1.0, 2.0, 0.5, 1.4])
    assert cover.to_action(np.array([2.0, 1.0, 0.5])).tolist() == pytest.approx([1.0, 0.0, -1.0])
    assert weight.from_action(np.array([0.3])).tolist() == [1.8]  # e^0.6 = 1.822 → 2 significant figures
    assert weight.to_action(np.array([np.exp(2.0) * 1.01])).tolist() == [1.0]  # clipped into [-1, 1]


# ---------------------------------------------------------------------------------- formats
def test_csv_json_dmn_decide_identically_on_every_boundary(tmp_path):
    table = _table(4, 30, seed=7)
    table.check()
    write_csv(table, tmp_path / "rules.csv")
    write_json(table, tmp_path / "rules.json")
    write_dmn(table, tmp_path / "rules.dmn")
    grid = boundary_grid(table)
    expected = _brute_force(table, grid)
    readers = ((read_csv, "rules.csv"), (read_json, "rules.json"), (read_dmn, "rules.dmn"))
    for loaded in (read(tmp_path / name) for read, name in readers):
        assert loaded.rule_ids == table.rule_ids
        assert np.array_equal(loaded.lower, table.lower) and np.array_equal(loaded.upper, table.upper)
        assert np.array_equal(loaded.values, table.values)
        assert np.array_equal(loaded.decide(grid), expected)


def test_json_matches_its_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from invalloc.rules.formats import json_schema

    table = _table()
    write_json(table, tmp_path / "rules.json")
    document = json.loads((tmp_path / "rules.json").read_text())
    jsonschema.validate(document, json_schema())
    document["rules"][0]["when"]["feature_0"]["min"] = "ten"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json_schema())


HAND_WRITTEN_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="hand" namespace="https://example.com/hand">
  <decision id="reorder" name="reorder">
    <decisionTable id="t" hitPolicy="UNIQUE">
      <input id="i1" label="Days of cover">
        <inputExpression typeRef="number"><text>days_of_cover</text></inputExpression></input>
      <input id="i2" label="Cash">
        <inputExpression typeRef="number"><text>cash_headroom</text></inputExpression></input>
      <output id="o0" name="rule_id" typeRef="string"/>
      <output id="o1" name="cover" typeRef="number"/>
      <rule id="a"><inputEntry><text>&lt;= 7</text></inputEntry><inputEntry><text>-</text></inputEntry>
        <outputEntry><text>"LOW"</text></outputEntry><outputEntry><text>1.5</text></outputEntry></rule>
      <rule id="b"><inputEntry><text>]7..14]</text></inputEntry><inputEntry><text>&lt; 0</text></inputEntry>
        <outputEntry><text>"MID_SHORT_CASH"</text></outputEntry><outputEntry><text>0.8</text></outputEntry></rule>
      <rule id="c"><inputEntry><text>(7..14]</text></inputEntry><inputEntry><text>&gt;= 0</text></inputEntry>
        <outputEntry><text>"MID"</text></outputEntry><outputEntry><text>1.1</text></outputEntry></rule>
      <rule id="d"><inputEntry><text>&gt; 14</text></inputEntry><inputEntry><text>-</text></inputEntry>
        <outputEntry><text>"HIGH"</text></outputEntry><outputEntry><text>0.5</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def test_hand_written_dmn_evaluates_as_expected(tmp_path):
    path = tmp_path / "hand.dmn"
    path.write_text(HAND_WRITTEN_DMN)
    table = read_dmn(path)
    assert table.feature_names == ["days_of_cover", "cash_headroom"] and table.output_names == ["cover"]
    states = np.array([[7.0, 5.0], [7.0000001, -1.0], [14.0, -0.0], [14.0, 1e9], [14.0000001, -5.0], [-3.0, 0.0]])
    rules, values = table.decide_values(states)
    assert [table.rule_ids[r] for r in rules] == ["LOW", "MID_SHORT_CASH", "MID", "MID", "HIGH", "LOW"]
    assert values[:, 0].tolist() == [1.5, 0.8, 1.1, 1.1, 0.5, 1.5]


def test_hand_written_dmn_with_a_gap_or_overlap_is_refused(tmp_path):
    gap = HAND_WRITTEN_DMN.replace("<text>&gt; 14</text>", "<text>&gt; 15</text>")
    (tmp_path / "gap.dmn").write_text(gap)
    with pytest.raises(RuleTableError, match=r"gap\.dmn: incomplete"):
        read_dmn(tmp_path / "gap.dmn")
    overlap = HAND_WRITTEN_DMN.replace("<text>]7..14]</text>", "<text>[7..14]</text>")
    (tmp_path / "overlap.dmn").write_text(overlap)
    with pytest.raises(RuleTableError, match=r"overlap\.dmn: overlapping rules"):
        read_dmn(tmp_path / "overlap.dmn")
    unsupported = HAND_WRITTEN_DMN.replace("<text>&gt; 14</text>", "<text>not(&lt;= 14)</text>")
    (tmp_path / "feel.dmn").write_text(unsupported)
    with pytest.raises(RuleTableError, match=r"feel\.dmn: rule 4: unsupported FEEL unary test"):
        read_dmn(tmp_path / "feel.dmn")


def test_dmn_with_entities_is_refused(tmp_path):
    path = tmp_path / "bomb.dmn"
    path.write_text('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><definitions>&a;</definitions>')
    with pytest.raises(RuleTableError, match="DOCTYPE/ENTITY"):
        read_dmn(path)


def test_independent_dmn_engine_agrees_on_the_boundary_grid(tmp_path):
    """pyDMNrules (FEEL via pySFeel) evaluates the exported DMN to the same rule on every probe."""
    pydmnrules = pytest.importorskip("pyDMNrules")
    table = _table(3, 10, seed=11)
    table.check()
    write_dmn(table, tmp_path / "rules.dmn")
    engine = pydmnrules.DMN()
    status = engine.useXML((tmp_path / "rules.dmn").read_text())
    assert "errors" not in status, status
    grid = boundary_grid(table)
    expected = table.decide(grid)
    for state, rule in zip(grid, expected, strict=True):
        status, result = engine.decide({name: float(v) for name, v in zip(table.feature_names, state, strict=True)})
        assert "errors" not in status, (state, status)
        decided = result["Result"] if isinstance(result, dict) else result[-1]["Result"]
        assert decided["rule_id"] == table.rule_ids[rule], state
        assert decided["sku_cover_multiplier_a"] == pytest.approx(table.values[rule, 0])
        assert decided["channel_allocation_weight_b"] == pytest.approx(table.values[rule, 1])


# ---------------------------------------------------------------------------------- directories
def _retail_table(version: str = FEATURE_SET_VERSION) -> tuple[RuleTable, object]:
    """A small valid table for `retail`: split on the central DC's regular cover and the season."""
    loaded = load_scenario("retail")
    network = compile_network(loaded)
    features = FeatureSet(network, version)
    outputs = compact_outputs(ActionMapper(Simulator(network, check_invariants=False), "compact").names)
    cover = features.names.index("days_of_cover_dc_central_regular")
    season = features.names.index("season_demand_index")
    n_features = features.size
    lower = np.full((3, n_features), -np.inf)
    upper = np.full((3, n_features), np.inf)
    upper[0, cover] = 10.0
    lower[1, cover], upper[1, season] = 10.0, 1.0
    lower[2, cover], lower[2, season] = 10.0, 1.0
    values = np.ones((3, len(outputs)))
    values[0, : len(outputs) - 2] = 1.5  # short of cover: aim higher
    values[2, : len(outputs) - 2] = 0.75
    table = RuleTable(
        list(features.features),
        outputs,
        lower,
        upper,
        values,
        np.array([0.3, 0.3, 0.4]),
        [rule_id(lo, hi) for lo, hi in zip(lower, upper, strict=True)],
        {
            "name": "retail_rules",
            "scenario": "retail",
            "scenario_digest": loaded.digest,
            "feature_set_version": version,
        },
    )
    table.check()
    return table, loaded


def write_directory(table: RuleTable, loaded, directory: Path) -> Path:
    """A rule table directory written the way the exporter writes it (without extraction)."""
    from invalloc.export.exporter import write_table_files

    directory.mkdir(parents=True, exist_ok=True)
    write_table_files(table, directory)
    manifest = {
        "format": "invalloc-rule-table-manifest",
        "format_version": MANIFEST_VERSION,
        "name": directory.name,
        "scenario": {"name": loaded.scenario.name, "digest": loaded.digest},
        "feature_set": {
            "version": table.metadata["feature_set_version"],
            "features": describe_features(table),
        },
        "outputs": describe_outputs(table),
        "review": {"status": "draft", "reviewer": None, "date": None, "comment": None},
        "fidelity": {"on_table_states": 0.97, "on_teacher_states": 0.96},
        "kpi_retention": {"profit_retention": 0.99, "rules": {"profit": 100.0}},
        "intervention_rate": 0.1,
        "registry": None,
    }
    write_manifest(directory, manifest)
    append_audit(directory, {"time": "2026-01-01T00:00:00+00:00", "event": "exported", "status": "draft"}, manifest)
    return directory


@pytest.fixture(scope="module")
def retail_directory(tmp_path_factory) -> Path:
    table, loaded = _retail_table()
    return write_directory(table, loaded, tmp_path_factory.mktemp("tables") / "retail_rules")


def test_policy_decides_like_the_table_and_runs_through_the_simulator(retail_directory):
    policy = load_rule_policy(retail_directory)
    network = compile_network(load_scenario("retail"))
    simulator = Simulator(network, check_invariants=True)
    reports = run_episode(simulator, policy, seed=3)
    assert len(reports) == network.scenario.episode.horizon and all(r.invariants_ok for r in reports)
    # Same seed, same decisions: a rule table is deterministic.
    again = run_episode(simulator, load_rule_policy(retail_directory, "dmn"), seed=3)
    assert [r.profit for r in again] == [r.profit for r in reports]
    # The rule that decided is the one the features select.
    simulator.reset(seed=5)
    policy.reset(network, seed=5)
    features = policy.features(simulator)
    policy.act(simulator)
    assert policy.last_rule_id == policy.table.rule_ids[int(policy.table.decide(features[None])[0])]


def test_version_1_table_still_decides(tmp_path):
    """Feature set version 2 adds the inbound pipeline; a version-1 table keeps its 19 features."""
    table, loaded = _retail_table("1")
    assert len(table.features) == 19 and not any(f.name.startswith("inbound_days") for f in table.features)
    policy = load_rule_policy(write_directory(table, loaded, tmp_path / "v1"))
    assert policy.table.metadata["feature_set_version"] == "1"
    run_episode(Simulator(compile_network(loaded), check_invariants=False), policy, seed=0)
    v2 = FeatureSet(compile_network(loaded))
    assert v2.version == "2" and v2.size == 19 + 3 * 3  # three DCs × arrivals in 0, 1, 2 periods


def test_policy_refuses_another_scenario(retail_directory):
    policy = load_rule_policy(retail_directory)
    other = compile_network(load_scenario("retail", {"finance": {"treasury_buffer": 1.0}}))
    with pytest.raises(RuleTableError, match="extracted on scenario"):
        policy.reset(other)


@pytest.mark.parametrize("name", ["rules.csv", "rules.json", "rules.dmn", "rules.schema.json"])
def test_tampered_file_is_refused(retail_directory, tmp_path, name):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(retail_directory, copy)
    path = copy / name
    path.write_text(path.read_text().replace("1.5", "1.6", 1) + " ")
    with pytest.raises(RuleTableError, match=f"{name}: sha256 does not match the manifest"):
        load_rule_policy(copy)
    result = runner.invoke(app, ["rules", "verify", str(copy)])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "sha256" in result.stderr
    assert "Traceback" not in result.output


def test_rehashed_overlapping_table_is_refused_at_load(retail_directory, tmp_path):
    """Even with matching hashes, a table that is not a partition does not load."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(retail_directory, copy)
    document = json.loads((copy / "rules.json").read_text())
    document["rules"][1]["when"]["days_of_cover_dc_central_regular"]["min"] = 9.0  # overlaps rule 0 on [9, 10)
    (copy / "rules.json").write_text(json.dumps(document))
    rehash(copy)
    with pytest.raises(RuleTableError, match="rules.json changed"):
        load_rule_table(copy)  # the content no longer matches the export's record
    forge_audit_log(copy)  # even with the record forged too
    with pytest.raises(RuleTableError, match="rules.json: overlapping rules"):
        load_rule_table(copy)


def test_review_edited_outside_the_audit_log_is_refused(retail_directory, tmp_path):
    """A manifest whose review disagrees with the audit log is refused even when re-hashed."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(retail_directory, copy)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["review"] = {"status": "approved", "reviewer": "Mallory", "date": "2026-01-01", "comment": "trust me"}
    write_manifest(copy, manifest)  # every sha256 matches again
    with pytest.raises(RuleTableError, match="review status 'approved' disagrees with audit_log.jsonl"):
        load_rule_table(copy)
    result = runner.invoke(app, ["rules", "verify", str(copy)])
    assert result.exit_code == 2 and "disagrees with audit_log.jsonl" in result.stderr
    # Forging a review entry does not help unless it is an allowed step from the status the log reached.
    with open(copy / "audit_log.jsonl", "a") as handle:
        handle.write(json.dumps({"event": "review", "from": "draft", "status": "active", "reviewer": "Mallory"}) + "\n")
    with pytest.raises(RuleTableError, match="line 2 does not chain to the line before it"):
        load_rule_table(copy)
    forge_audit_log(copy)
    with pytest.raises(RuleTableError, match="line 2 moves the review from 'draft' to 'active'"):
        load_rule_table(copy)


def test_evaluator_imports_only_numpy_and_the_standard_library(retail_directory):
    """A production rule consumer: importing, verifying, loading (JSON, CSV, DMN) and deciding
    load no simulator, numba, scipy, pandas, gymnasium, pydantic, yaml, CLI or ML library."""
    code = textwrap.dedent(
        f"""
        import sys

        AT_START = set(sys.modules)  # the interpreter's own (site hooks such as _distutils_hack)

        def third_party():
            loaded = {{m.split(".")[0] for m in set(sys.modules) - AT_START}}
            return sorted(loaded - set(sys.stdlib_module_names) - {{"invalloc"}})

        import invalloc.rules
        print(third_party())
        from pathlib import Path
        import numpy as np
        from invalloc.rules import load_rule_policy, load_rule_table, verify_rule_table
        directory = Path({str(retail_directory)!r})
        verify_rule_table(directory)
        for fmt in ("json", "csv"):
            load_rule_table(directory, fmt)
        policy = load_rule_policy(directory, "dmn")
        print(policy.table.decide(np.zeros((4, len(policy.table.features)))).tolist())
        print(third_party())
        print(sorted(m for m in sys.modules if m.startswith(("invalloc.sim.", "invalloc.env."))))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    after_import, decided, after_deciding, invalloc_modules = out.stdout.strip().splitlines()
    assert after_import == "['numpy']"
    assert decided == "[0, 0, 0, 0]"
    assert after_deciding == "['numpy']"
    # Only the dependency-free definitions of the lower layers (no simulator, no environment).
    assert invalloc_modules == "['invalloc.env.feature_definitions', 'invalloc.sim.policy']"


def test_evaluator_decides_a_million_states_in_one_call(retail_directory):
    """One vectorised call decides a million states as state-by-state calls do (its speed is
    measured by scripts/bench_rules.py, not here)."""
    table, _ = load_rule_table(retail_directory)
    states = np.random.default_rng(0).uniform(0, 20, (1_000_000, len(table.features)))
    decided = np.asarray(table.decide(states))
    assert decided.shape[0] == 1_000_000
    sample = np.random.default_rng(1).choice(1_000_000, 200, replace=False)
    one_by_one = np.array([np.asarray(table.decide(states[i : i + 1]))[0] for i in sample])
    np.testing.assert_array_equal(decided[sample], one_by_one)


# ---------------------------------------------------------------------------------- CLI
def test_cli_verify_show_decide_diff(retail_directory, tmp_path):
    result = runner.invoke(app, ["rules", "verify", str(retail_directory)])
    assert result.exit_code == 0, result.output
    assert "verified" in result.stdout and "3 rules" in result.stdout

    result = runner.invoke(app, ["rules", "show", str(retail_directory)])
    assert result.exit_code == 0 and "< 10" in result.stdout and "status draft" in result.stdout

    table, _ = load_rule_table(retail_directory)
    states = np.full((3, len(table.features)), 5.0)
    cover = table.feature_names.index("days_of_cover_dc_central_regular")
    season = table.feature_names.index("season_demand_index")
    states[:, cover] = [9.99, 10.0, 10.0]
    states[:, season] = [1.5, 0.99, 1.0]
    import pandas as pd

    pd.DataFrame(states, columns=table.feature_names).to_csv(tmp_path / "in.csv", index=False)
    command = ["rules", "decide", str(retail_directory), "--input", str(tmp_path / "in.csv")]
    result = runner.invoke(app, [*command, "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    decided = pd.read_csv(tmp_path / "out.csv")
    assert decided["rule_id"].tolist() == [table.rule_ids[r] for r in (0, 1, 2)]
    assert decided["sku_cover_multiplier_sku01"].tolist() == [1.5, 1.0, 0.75]

    pd.DataFrame({"days_remaining": [1.0]}).to_csv(tmp_path / "bad.csv", index=False)
    result = runner.invoke(app, ["rules", "decide", str(retail_directory), "--input", str(tmp_path / "bad.csv")])
    assert result.exit_code == 2 and "missing feature column" in result.stderr

    # B: one rule's outputs changed, another split in two.
    changed, loaded = _retail_table()
    changed.values[0, 0] = 1.25
    b = write_directory(changed, loaded, tmp_path / "b")
    result = runner.invoke(app, ["rules", "diff", str(retail_directory), str(b), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == [] and report["removed"] == []
    assert report["changed"] == {table.rule_ids[0]: {"sku_cover_multiplier_sku01": [1.5, 1.25]}}


def test_simulate_with_a_rule_table(retail_directory):
    result = runner.invoke(
        app, ["simulate", "--policy", f"rules:{retail_directory}", "--episodes", "2", "--no-check-invariants", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["episodes"]) == 2
    result = runner.invoke(app, ["simulate", "--policy", "rules:/nonexistent/table"])
    assert result.exit_code == 2 and "manifest.json: missing" in result.stderr
    result = runner.invoke(app, ["simulate", "--scenario", "tiny", "--policy", f"rules:{retail_directory}"])
    assert result.exit_code == 2 and "different scenario" in result.stderr


# ---------------------------------------------------------------------------------- tampering
def _approved_copy(retail_directory: Path, tmp_path: Path) -> Path:
    """A copy of the retail table, approved through the review (no tracking store)."""
    import shutil

    from invalloc.export.exporter import review

    copy = tmp_path / "approved"
    shutil.copytree(retail_directory, copy)
    review(copy, "Ada", "ok for pilot", "approved")
    assert json.loads((copy / MANIFEST_FILE).read_text())["review"]["status"] == "approved"
    return copy


def _refused_everywhere(directory: Path, tmp_path: Path, match: str) -> None:
    """Every load path refuses ``directory`` with one error line containing ``match``."""
    import re

    import pandas as pd

    for fmt in ("json", "csv", "dmn"):
        with pytest.raises(RuleTableError, match=re.escape(match)):
            load_rule_table(directory, fmt)
        with pytest.raises(RuleTableError, match=re.escape(match)):
            load_rule_policy(directory, fmt)
    features = json.loads((directory / MANIFEST_FILE).read_text())["feature_set"]["features"]
    pd.DataFrame({f["name"]: [1.0] for f in features}).to_csv(tmp_path / "states.csv", index=False)
    commands = [
        ["rules", "verify", str(directory)],
        ["rules", "show", str(directory)],
        ["rules", "decide", str(directory), "--input", str(tmp_path / "states.csv")],
        ["rules", "decide", str(directory), "--input", str(tmp_path / "states.csv"), "--format", "dmn"],
        ["simulate", "--policy", f"rules:{directory}", "--episodes", "1"],
        ["compare", "--policy", "base_stock", "--policy", f"rules:{directory}", "--episodes", "1",
         "--out", str(tmp_path / "report"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
    ]  # fmt: skip
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1, result.stderr
        assert match in result.stderr, (command, result.stderr)
        assert not result.stdout
    assert not (tmp_path / "report").exists()


def test_outputs_edited_consistently_after_approval_are_refused_everywhere(retail_directory, tmp_path):
    """The issue's attack: new outputs written consistently in CSV, JSON and DMN, manifest re-hashed."""
    from invalloc.export.exporter import write_table_files

    copy = _approved_copy(retail_directory, tmp_path)
    assert runner.invoke(app, ["rules", "verify", str(copy)]).exit_code == 0
    edited, _ = load_rule_table(copy)
    edited.values[0, :] = 4.0  # order four times the cover when short
    write_table_files(edited, copy)
    rehash(copy)  # every listed sha256 matches again
    assert runner.invoke(app, ["rules", "verify", str(copy)]).stderr.count("sha256 does not match") == 0
    _refused_everywhere(copy, tmp_path, "differs from the")
    message = pytest.raises(RuleTableError, load_rule_table, copy).value.args[0]
    assert "recorded when it became approved (line 2; rules.csv, rules.json, rules.dmn changed)" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fidelity", {"on_table_states": 0.999, "on_teacher_states": 0.999}),
        ("kpi_retention", {"profit_retention": 1.2, "rules": {"profit": 120.0}}),
        ("scenario", {"name": "retail", "digest": "0" * 64}),
        ("intervention_rate", 0.0),
        ("feature_set", {"version": "1", "features": []}),
    ],
)
def test_manifest_fields_edited_after_approval_are_refused(retail_directory, tmp_path, field, value):
    copy = _approved_copy(retail_directory, tmp_path)
    rehash(copy, **{field: value})
    _refused_everywhere(copy, tmp_path, "manifest fields changed")


def test_edits_of_a_draft_are_refused_too(retail_directory, tmp_path):
    """The export's own record binds the content: a draft edited and re-hashed does not load either."""
    import shutil

    copy = tmp_path / "draft"
    shutil.copytree(retail_directory, copy)
    rehash(copy, fidelity={"on_table_states": 1.0, "on_teacher_states": 1.0})
    with pytest.raises(RuleTableError, match="recorded at export \\(line 1; manifest fields changed\\)"):
        load_rule_policy(copy)


@pytest.mark.parametrize("extra", ["notes.txt", "rules.py", ".hidden", "subfolder"])
def test_files_not_in_the_manifest_are_refused(retail_directory, tmp_path, extra):
    copy = _approved_copy(retail_directory, tmp_path)
    if extra == "subfolder":
        (copy / extra).mkdir()
    else:
        (copy / extra).write_text("print('hello')\n")
    _refused_everywhere(copy, tmp_path, f"{extra}: not listed in the manifest")


def test_a_manifest_listing_a_foreign_file_is_refused(retail_directory, tmp_path):
    from invalloc.rules.manifest import sha256_file

    copy = _approved_copy(retail_directory, tmp_path)
    (copy / "extra.csv").write_text("x\n")
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["files"]["extra.csv"] = sha256_file(copy / "extra.csv")
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(RuleTableError, match="lists 'extra.csv', which is not a rule table file"):
        load_rule_table(copy)


@pytest.mark.parametrize("edit", ["last_comment", "first_line", "drop_last", "delete", "empty", "not_json"])
def test_audit_log_edits_are_refused(retail_directory, tmp_path, edit):
    copy = _approved_copy(retail_directory, tmp_path)
    path = copy / "audit_log.jsonl"
    lines = path.read_text().splitlines()
    expected = {
        "last_comment": "review block (reviewer, date, comment) differs",
        "first_line": "line 2 does not chain to the line before it",
        "drop_last": "review status 'approved' disagrees with audit_log.jsonl",
        "delete": "audit_log.jsonl: missing",
        "empty": "audit_log.jsonl: empty",
        "not_json": "line 2 is not JSON",
    }[edit]
    if edit == "last_comment":
        entry = json.loads(lines[-1])
        entry["comment"] = "approved by the board"
        lines[-1] = json.dumps(entry, sort_keys=True)
    elif edit == "first_line":
        lines[0] = lines[0].replace('"2026-01-01', '"2025-01-01', 1)
        assert lines[0] != path.read_text().splitlines()[0]
    elif edit == "drop_last":
        lines = lines[:-1]
    elif edit == "not_json":
        lines[-1] = lines[-1][:-5]
    elif edit == "empty":
        lines = []
    if edit == "delete":
        path.unlink()
    else:
        path.write_text("".join(line + "\n" for line in lines))
    _refused_everywhere(copy, tmp_path, expected)


def test_registry_block_edited_is_refused(retail_directory, tmp_path):
    copy = _approved_copy(retail_directory, tmp_path)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["registry"] = {"model_name": "other", "version": "7", "alias": "champion", "export_run_id": "x"}
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(RuleTableError, match="registry block .* differs from the one audit_log.jsonl recorded"):
        load_rule_table(copy)


def test_a_table_written_before_content_binding_is_refused(retail_directory, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(retail_directory, copy)
    rehash(copy, format_version=1)
    _refused_everywhere(copy, tmp_path, "format_version 1, this version reads 2 and 3")


def test_a_format_2_table_reads_as_compact(retail_directory, tmp_path):
    """Tables exported before action modes were recorded (format 2, no action_mode) set the
    compact action; a format 2 manifest cannot claim anchored outputs."""
    import shutil

    copy = tmp_path / "format2"
    shutil.copytree(retail_directory, copy)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    assert "action_mode" not in manifest and "anchor" not in manifest
    rehash(copy, format_version=2)
    forge_audit_log(copy)
    table, _ = load_rule_table(copy)
    assert table.metadata["action_mode"] == "compact" and table.metadata["anchor"] is None
    policy = load_rule_policy(copy)
    reports = run_episode(Simulator(compile_network(load_scenario("retail"))), policy, seed=1)
    assert policy._mapper is not None and policy._mapper.mode == "compact" and len(reports) > 0
    claimed = tmp_path / "claimed"
    shutil.copytree(copy, claimed)
    rehash(claimed, action_mode="anchored", anchor={"policy": "proportional", "params": {}})
    forge_audit_log(claimed)
    _refused_everywhere(claimed, tmp_path, "format_version 2 tables set the compact action only")


def test_outputs_that_read_their_values_unlike_the_action_mode_are_refused(tmp_path):
    """A compact table relabelled anchored (actions renamed, manifest re-hashed): its channel
    weights are read by half_ln, anchored weights by log2 — refused before it acts."""
    from dataclasses import replace

    from invalloc.rules.policy import RuleTablePolicy

    table, loaded = _retail_table()
    table.outputs = [replace(o, action=o.action.replace("cover/", "level_scale/")) for o in table.outputs]
    table.metadata.update(action_mode="anchored", anchor={"policy": "proportional", "params": {}})
    policy = RuleTablePolicy(table, loaded.digest)
    simulator = Simulator(compile_network(loaded))
    simulator.reset(seed=0)
    with pytest.raises(RuleTableError, match="reads its value by half_ln, anchored actions read allocation_weight"):
        policy.act(simulator)


def test_approving_a_table_that_does_not_verify_is_refused(retail_directory, tmp_path):
    """Incomplete (a rule removed from the CSV), even with the manifest re-hashed and the log forged:
    one error line, exit 2, nothing changed."""
    from tampering import incomplete_copy, tree

    copy = incomplete_copy(retail_directory, tmp_path / "incomplete")
    before = tree(copy)
    result = runner.invoke(app, ["rules", "verify", str(copy)])
    assert result.exit_code == 2 and "rules.csv" in result.stderr
    result = runner.invoke(app, ["rules", "approve", str(copy), "--reviewer", "Eve", "--comment", "fine"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert "rules.csv" in result.stderr
    assert tree(copy) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
