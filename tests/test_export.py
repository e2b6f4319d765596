"""Rule export: extraction from a real SB3 teacher, verification, refusal, review and registry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.config.loader import load_scenario
from invalloc.export.exporter import ExportError, export_rule_table, review
from invalloc.export.extraction import ExtractionSettings, extract
from invalloc.rules import FEATURE_SET_VERSION, RuleTableError, load_rule_policy, load_rule_table
from invalloc.rules.manifest import content_digest, write_manifest
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator
from rule_teachers import QUICK_RETAIL_SETTINGS, retail_ppo_teacher  # noqa: E402, I001 - tests/ helper

runner = CliRunner()
QUICK = QUICK_RETAIL_SETTINGS


@pytest.fixture(scope="module")
def teacher():
    return retail_ppo_teacher()


@pytest.fixture(scope="module")
def exported(teacher, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("export") / "retail_table"
    manifest = export_rule_table(teacher, load_scenario("retail"), out, QUICK, source={"teacher": "ppo"})
    return out, manifest


def test_export_writes_a_verified_table_with_its_manifest(exported):
    out, manifest = exported
    assert sorted(p.name for p in out.iterdir()) == [
        "audit_log.jsonl",
        "manifest.json",
        "rules.csv",
        "rules.dmn",
        "rules.json",
        "rules.schema.json",
    ]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    table, on_disk = load_rule_table(out)
    assert on_disk == manifest
    assert 1 <= len(table) <= QUICK.max_rules == manifest["extraction"]["max_rules"]
    assert manifest["scenario"]["digest"] == load_scenario("retail").digest
    assert manifest["feature_set"]["version"] == FEATURE_SET_VERSION == "2" and manifest["review"]["status"] == "draft"
    assert {f.name for f in table.features} >= {"inbound_days_dc_central_arriving_in_0", "days_remaining"}
    # Support is written to 3 significant digits: each share within 0.5% of itself, the sum within 0.005 of 1.
    assert table.support.sum() == pytest.approx(1.0, abs=5e-3) and (table.support >= 0).all()
    fidelity = manifest["fidelity"]
    for key in ("on_table_states", "on_teacher_states", "on_table_states_strict"):
        assert 0.0 <= fidelity[key] <= 1.0
    retention = manifest["kpi_retention"]
    assert set(retention["rules"]["fill_rate_by_tier"]) == set(compile_network(load_scenario("retail")).tiers)
    # Tuned parameters ship for retail, so the table is measured against the tuned baselines.
    assert retention["best_baseline"]["name"] in ("base_stock@tuned", "proportional@tuned", "priority@tuned")
    assert retention["profit_retention"] == pytest.approx(retention["rules"]["profit"] / retention["teacher"]["profit"])
    assert 0.0 <= manifest["intervention_rate"] <= 1.0
    changed = manifest["decision_variables_changed"]
    assert 0.0 <= changed["rules"] <= 1.0 and 0.0 <= changed["teacher"] <= 1.0
    assert [h["iteration"] for h in manifest["extraction"]["history"]] == [1, 2]
    assert all(0.0 <= h["fidelity_on_teacher_validation_states"] <= 1.0 for h in manifest["extraction"]["history"])
    # Business rounding: cover multipliers are multiples of 0.05.
    covers = table.values[:, [o.transform == "log2" for o in table.outputs]]
    assert np.allclose(covers * 20, np.round(covers * 20))
    # Every format decides alike on every boundary, through the CLI as a reviewer would check.
    result = runner.invoke(app, ["rules", "verify", str(out)])
    assert result.exit_code == 0, result.output
    assert "complete and non-overlapping" in result.stdout


def test_table_imitates_the_teacher_on_its_training_states(teacher):
    """The table's actions are closer to the teacher's than the best constant action is."""
    simulator = Simulator(compile_network(load_scenario("retail")), check_invariants=False)
    extraction = extract(simulator, teacher, QUICK)
    data, table = extraction.data, extraction.table
    table_error = np.abs(table.actions()[table.decide(data.features)] - data.teacher_actions).mean()
    constant_error = np.abs(np.median(data.teacher_actions, axis=0) - data.teacher_actions).mean()
    assert table_error < constant_error
    # Same settings, same table.
    again = extract(simulator, teacher, QUICK).table
    assert again.rule_ids == table.rule_ids and np.array_equal(again.values, table.values)


def test_rule_table_policy_reproduces_the_exported_kpis(exported):
    """Loaded from disk, the table earns exactly the profit the manifest reports (same seeds)."""
    from invalloc.export.evaluation import _kpi_summary
    from invalloc.sim.simulator import run_episode

    out, manifest = exported
    policy = load_rule_policy(out, "csv")
    simulator = Simulator(compile_network(load_scenario("retail")), check_invariants=True)
    first, last = manifest["evaluation_seeds"]
    episodes = [run_episode(simulator, policy, seed=s) for s in range(first, last + 1)]
    assert _kpi_summary(episodes, simulator)["profit"] == pytest.approx(manifest["kpi_retention"]["rules"]["profit"])


@pytest.mark.parametrize("defect", ["overlap", "gap"])
def test_export_refuses_a_table_that_is_not_a_partition(teacher, tmp_path, monkeypatch, defect):
    import invalloc.export.exporter as exporter

    real_extract = exporter.extract

    def broken_extract(*args, **kwargs):
        extraction = real_extract(*args, **kwargs)
        table = extraction.table
        if defect == "overlap":
            table.lower[0] = -np.inf
            table.upper[0] = np.inf
        else:
            keep = slice(1, None)
            table.lower, table.upper, table.values = table.lower[keep], table.upper[keep], table.values[keep]
            table.support, table.rule_ids = table.support[keep], table.rule_ids[keep]
        table._masks = None  # forget the checked evaluator
        return extraction

    monkeypatch.setattr(exporter, "extract", broken_extract)
    settings = ExtractionSettings(
        max_rules=4, iterations=1, episodes_per_iteration=1, evaluation_episodes=1, min_gain=0
    )
    out = tmp_path / "table"
    with pytest.raises(RuleTableError, match="overlapping rules" if defect == "overlap" else "incomplete"):
        export_rule_table(teacher, load_scenario("retail"), out, settings)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_export_refuses_a_teacher_of_another_scenario(teacher, tmp_path):
    with pytest.raises(ExportError, match="was trained on scenario"):
        export_rule_table(teacher, load_scenario("tiny"), tmp_path / "t", QUICK)
    assert not (tmp_path / "t").exists()


def test_review_lifecycle_and_registry(exported, tmp_path, mlflow_uri):
    import shutil

    import mlflow

    out = tmp_path / "table"
    shutil.copytree(exported[0], out)
    # Approving an unregistered table registers it (candidate) and moves champion to it.
    result = runner.invoke(
        app,
        ["rules", "approve", str(out), "--reviewer", "Ada", "--comment", "ok for pilot", "--register", "retail-rules"],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["review"]["status"] == "approved" and manifest["review"]["reviewer"] == "Ada"
    assert manifest["registry"]["alias"] == "champion"
    client = mlflow.MlflowClient(mlflow_uri)
    champion = client.get_model_version_by_alias("retail-rules", "champion")
    assert str(champion.version) == manifest["registry"]["version"]
    # Approval moves the version from candidate to champion.
    assert "candidate" not in client.get_registered_model("retail-rules").aliases
    assert champion.tags["review_status"] == "approved"
    lines = (out / "audit_log.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["exported", "review"] and events[1]["from"] == "draft"
    # Both status changes record the same content digest, and the registered version carries it.
    digest = content_digest(manifest)
    assert [e["content_sha256"] for e in events] == [digest, digest]
    assert champion.tags["content_sha256"] == digest
    assert events[1]["registry"] == manifest["registry"]
    assert runner.invoke(app, ["rules", "verify", str(out)]).exit_code == 0  # re-hashed
    # The review block is hash-chained into the audit log: editing it (or a log entry) and
    # re-hashing the files is still detected.
    assert events[1]["previous"] == hashlib.sha256(lines[0].encode()).hexdigest()
    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    edited = {**manifest, "review": {**manifest["review"], "reviewer": "Mallory"}}
    write_manifest(forged, edited)
    result = runner.invoke(app, ["rules", "verify", str(forged)])
    assert result.exit_code == 2 and "differs from the one audit_log.jsonl recorded" in result.stderr
    first = {**json.loads(lines[0]), "source": {"teacher": "mallory"}}
    (forged / "audit_log.jsonl").write_text(json.dumps(first, sort_keys=True) + "\n" + lines[1] + "\n")
    write_manifest(forged, manifest)
    with pytest.raises(RuleTableError, match="line 2 does not chain to the line before it"):
        load_rule_table(forged)
    # The registered model holds the approved files.
    folder = Path(mlflow.artifacts.download_artifacts("models:/retail-rules@champion", dst_path=str(tmp_path / "dl")))
    manifest_path = folder / "artifacts" / "rule_table" / "manifest.json"
    assert json.loads(manifest_path.read_text())["review"]["status"] == "approved"
    # Approved cannot be approved again; it can become active, then retired.
    result = runner.invoke(app, ["rules", "approve", str(out), "--reviewer", "Ada", "--comment", "again"])
    assert result.exit_code == 2 and "cannot move to approved" in result.stderr
    review(out, "Bob", "go live", "active", mlflow_uri)
    assert client.get_registered_model("retail-rules").aliases == {"champion": int(champion.version)}
    review(out, "Bob", "superseded", "retired", mlflow_uri)
    assert json.loads((out / "manifest.json").read_text())["review"]["status"] == "retired"
    assert client.get_model_version("retail-rules", champion.version).tags["review_status"] == "retired"
    # Retirement removes the champion alias.
    assert "champion" not in client.get_registered_model("retail-rules").aliases
    assert json.loads((out / "manifest.json").read_text())["registry"]["alias"] is None
    # A tampered table cannot be approved.
    (out / "rules.csv").write_text((out / "rules.csv").read_text() + "\n")
    with pytest.raises(RuleTableError, match="sha256"):
        review(out, "Eve", "sneak", "retired", mlflow_uri)


def test_cli_export_from_a_training_run(tmp_path, mlflow_uri, monkeypatch):
    """`invalloc train` → `invalloc export --run` → verified, registered @candidate; errors in one line."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "tiny_smoke", "--timesteps", "256", "--tracking-uri", mlflow_uri])
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("MLflow run:"))
    command = ["export", "--run", run_id, "--max-rules", "6", "--iterations", "1", "--episodes", "2"]
    command += ["--teacher-episodes", "2", "--validation-episodes", "1"]
    result = runner.invoke(app, [*command, "--evaluation-episodes", "2", "--out", "tiny_rules", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["source"]["run_id"] == run_id and manifest["rules"] <= 6
    assert manifest["scenario"]["name"] == "tiny"
    client = mlflow.MlflowClient(mlflow_uri)
    candidate = client.get_model_version_by_alias("invalloc-rules-tiny", "candidate")
    assert str(candidate.version) == manifest["registry"]["version"]
    assert runner.invoke(app, ["rules", "verify", "tiny_rules"]).exit_code == 0
    result = runner.invoke(app, ["simulate", "--scenario", "tiny", "--policy", "rules:tiny_rules", "--json"])
    assert result.exit_code == 0, result.output
    # Errors: one line, exit 2, nothing written.
    result = runner.invoke(app, ["export", "--run", "no-such-run", "--out", "nothing"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert not Path("nothing").exists()
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("mine")
    result = runner.invoke(app, [*command, "--out", "occupied"])
    assert result.exit_code == 2 and "not a rule table directory" in result.stderr
    assert (tmp_path / "occupied" / "notes.txt").read_text() == "mine"


def _write_outputs(directory: Path, value: float) -> None:
    """Rewrite the outputs of rule 0 consistently in CSV, JSON and DMN and re-hash the manifest."""
    from invalloc.export.exporter import write_table_files
    from tampering import rehash

    table, _ = load_rule_table(directory)
    table.values[0, :] = value
    write_table_files(table, directory)
    rehash(directory)


def test_approval_refuses_tampered_or_incomplete_tables_and_moves_no_alias(teacher, tmp_path, mlflow_uri):
    """`rules approve` on a table that does not verify: one error line, exit 2, nothing changed on
    disk, no alias moved — also when the attacker forged the whole audit log to match."""
    import shutil

    import mlflow

    from tampering import forge_audit_log, incomplete_copy, rehash, tree

    out = tmp_path / "registered"
    manifest = export_rule_table(
        teacher, load_scenario("retail"), out, QUICK, tracking_uri=mlflow_uri, register="retail-rules"
    )
    client = mlflow.MlflowClient(mlflow_uri)
    candidate = client.get_model_version_by_alias("retail-rules", "candidate")
    assert candidate.tags["content_sha256"] == content_digest(manifest)
    assert json.loads((out / "audit_log.jsonl").read_text())["registry"] == manifest["registry"]
    assert runner.invoke(app, ["rules", "verify", str(out)]).exit_code == 0

    def refused(directory: Path, match: str) -> None:
        before = tree(directory)
        command = ["rules", "approve", str(directory), "--reviewer", "Eve", "--comment", "fine"]
        result = runner.invoke(app, [*command, "--tracking-uri", mlflow_uri])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1, result.stderr
        assert match in result.stderr, result.stderr
        assert tree(directory) == before
        assert "champion" not in client.get_registered_model("retail-rules").aliases
        assert client.get_model_version("retail-rules", candidate.version).tags["review_status"] == "draft"

    # Outputs edited consistently in all three formats, manifest re-hashed.
    edited = tmp_path / "edited"
    shutil.copytree(out, edited)
    _write_outputs(edited, 4.0)
    refused(edited, "rules.csv, rules.json, rules.dmn changed")
    # ... and the audit log forged to match: the registered version still holds the exported content.
    forge_audit_log(edited)
    assert runner.invoke(app, ["rules", "verify", str(edited)]).exit_code == 0
    refused(edited, "registered version retail-rules v1 holds content")
    # `rules verify --tracking-uri` checks the same anchor for a consumer.
    result = runner.invoke(app, ["rules", "verify", str(edited), "--tracking-uri", mlflow_uri])
    assert result.exit_code == 2 and "registered version retail-rules v1 holds content" in result.stderr
    result = runner.invoke(app, ["rules", "verify", str(out), "--tracking-uri", mlflow_uri])
    assert result.exit_code == 0 and "registered as retail-rules v1 with this content" in result.stdout
    # Incomplete: a rule removed from the CSV, re-hashed, log forged: `verify` and `approve` refuse it.
    incomplete = incomplete_copy(out, tmp_path / "incomplete")
    result = runner.invoke(app, ["rules", "verify", str(incomplete)])
    assert result.exit_code == 2 and "rules.csv" in result.stderr
    refused(incomplete, "rules.csv")
    # A manifest field (profit retention) edited and re-hashed.
    inflated = tmp_path / "inflated"
    shutil.copytree(out, inflated)
    rehash(inflated, kpi_retention={**manifest["kpi_retention"], "profit_retention": 1.5})
    refused(inflated, "manifest fields changed")
    # An extra file.
    extra = tmp_path / "extra"
    shutil.copytree(out, extra)
    (extra / "run_me.sh").write_text("touch pwned\n")
    refused(extra, "run_me.sh: not listed in the manifest")
    # The untouched table is approved and becomes champion.
    result = runner.invoke(app, ["rules", "approve", str(out), "--reviewer", "Ada", "--comment", "ok"])
    assert result.exit_code == 0, result.output
    assert client.get_model_version_by_alias("retail-rules", "champion").version == candidate.version
