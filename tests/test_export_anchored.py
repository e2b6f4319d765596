"""Rule export of an anchored teacher: a linear ARS policy correcting `priority@tuned` on `tiny`,
trained in a real MLflow store, exported by `invalloc export`, loaded, decided, simulated."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.config.loader import load_scenario
from invalloc.rules import RuleTableError, load_rule_policy, load_rule_table
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator, run_episode

runner = CliRunner()
SCENARIO = "tiny"
ANCHOR = "priority@tuned"
#: The few features the teacher observes; the table's inputs are the scenario's whole feature set.
TEACHER_FEATURES = ["days_remaining", "season_demand_index", "cash_headroom_over_buffer"]
#: An ARS experiment for tests only (not shipped): a linear policy on three features, seconds to train.
EXPERIMENT = {
    "name": "tiny_ars_anchored",
    "scenario": SCENARIO,
    "algorithm": "ARS",
    "hyperparameters": {"n_delta": 4, "n_top": 2, "delta_std": 0.1, "learning_rate": 0.05, "n_eval_episodes": 1},
    "policy": {"net_arch": []},
    "env": {
        "n_envs": 1,
        "action_mode": "anchored",
        "anchor": ANCHOR,
        "observation": "features",
        "features": TEACHER_FEATURES,
    },
    "vec_normalize": {"norm_reward": False},
    "timesteps": 2048,
    "seed": 0,
    "evaluation": {"every_timesteps": 1024, "episodes": 2},
    "checkpoint_every_timesteps": 1024,
}
#: `invalloc export` options: every stage runs, in seconds.
EXPORT_OPTIONS = ["--max-rules", "8", "--iterations", "2", "--episodes", "2", "--teacher-episodes", "4"]
EXPORT_OPTIONS += ["--validation-episodes", "1", "--evaluation-episodes", "3", "--no-register"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, mlflow_template_db):
    """(table directory, manifest, teacher): a trained anchored ARS run exported through the CLI."""
    from invalloc.agents.learned import load_learned_policy
    from invalloc.agents.training import train

    work = tmp_path_factory.mktemp("anchored")
    shutil.copyfile(mlflow_template_db, work / "mlflow.db")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    path = work / "experiment.yaml"
    path.write_text(yaml.safe_dump(EXPERIMENT))
    result = train(path, tracking_uri=uri, progress=False)
    teacher = load_learned_policy(f"run:{result.run_id}", uri)
    out = work / "tiny_anchored_rules"
    command = ["export", "--run", result.run_id, "--tracking-uri", uri, "--out", str(out), *EXPORT_OPTIONS, "--json"]
    exported = runner.invoke(app, command)
    assert exported.exit_code == 0, exported.output
    return out, json.loads(exported.stdout), teacher


def _simulator() -> Simulator:
    return Simulator(compile_network(load_scenario(SCENARIO)), check_invariants=True)


def test_teacher_is_an_anchored_linear_policy_on_three_features(exported):
    _, _, teacher = exported
    assert teacher.action_mode == "anchored" and teacher.features == TEACHER_FEATURES
    assert teacher.anchor["policy"] == "priority" and teacher.anchor["spec"] == ANCHOR
    assert teacher.model.observation_space.shape == (len(TEACHER_FEATURES),)


def test_export_records_the_anchor_and_sets_its_multipliers(exported):
    from invalloc.agents.anchor import build_anchor
    from invalloc.env.actions import ActionMapper
    from invalloc.env.features import FeatureSet

    out, manifest, teacher = exported
    table, on_disk = load_rule_table(out)
    assert on_disk == manifest
    assert manifest["format_version"] == 3
    assert manifest["action_mode"] == "anchored" and manifest["anchor"] == teacher.anchor
    assert table.metadata["action_mode"] == "anchored" and table.metadata["anchor"] == teacher.anchor
    simulator = _simulator()
    # Inputs: the whole feature set, though the teacher saw three features.
    assert table.feature_names == FeatureSet(simulator.network).names
    # Outputs: one per anchored action dimension, in the mapper's order, as multipliers of the rule's.
    mapper = ActionMapper(simulator, "anchored", build_anchor(teacher.anchor))
    assert [o.action for o in table.outputs] == mapper.names
    prefixes = ("sku_level_multiplier_", "dc_level_multiplier_", "channel_weight_multiplier_")
    assert all(o.name.startswith(prefixes) and o.transform == "log2" for o in table.outputs)
    assert {o.unit for o in table.outputs} == {"× anchor level", "× anchor weight"}
    assert all(ANCHOR in o.description for o in table.outputs)
    assert ((table.values >= 0.5) & (table.values <= 2.0)).all()
    assert np.allclose(table.values * 100, np.round(table.values * 100))  # multiples of 0.01
    # Fidelity and retention as for any table; the rule the teacher corrects is reported beside them.
    fidelity, retention = manifest["fidelity"], manifest["kpi_retention"]
    for key in ("on_table_states", "on_teacher_states", "on_table_states_strict", "on_teacher_states_strict"):
        assert 0.0 <= fidelity[key] <= 1.0
    assert retention["profit_retention"] == pytest.approx(retention["rules"]["profit"] / retention["teacher"]["profit"])
    assert retention["best_baseline"]["name"] in retention["baselines_profit"]
    assert retention["anchor"]["name"] == ANCHOR and retention["anchor"]["episodes"] == 3
    result = runner.invoke(app, ["rules", "verify", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["rules", "show", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["action_mode"] == "anchored" and json.loads(result.stdout)["anchor"] == ANCHOR
    result = runner.invoke(app, ["rules", "show", str(out)])
    assert result.exit_code == 0 and "channel weights of the rule priority@tuned" in " ".join(result.stdout.split())


def test_loaded_table_and_teacher_reproduce_the_exported_kpis(exported):
    """From disk (DMN), on the evaluation seeds, the table earns the profit the manifest reports;
    the teacher, reloaded, earns its own."""
    from invalloc.export.evaluation import _kpi_summary

    out, manifest, teacher = exported
    policy = load_rule_policy(out, "dmn")
    simulator = _simulator()
    first, last = manifest["evaluation_seeds"]
    seeds = range(first, last + 1)
    for actor, key in ((policy, "rules"), (teacher, "teacher")):
        episodes = [run_episode(simulator, actor, seed=s) for s in seeds]
        assert _kpi_summary(episodes, simulator)["profit"] == pytest.approx(manifest["kpi_retention"][key]["profit"])


def test_a_table_of_ones_is_the_anchor_and_other_values_move_it(exported):
    """Every multiplier 1 requests exactly what the anchor rule requests, every period; a level
    multiplier of 2 requests something else."""
    from invalloc.agents.anchor import build_anchor
    from invalloc.rules.policy import RuleTablePolicy

    out, manifest, _ = exported
    table, _ = load_rule_table(out)
    table.values[:] = 1.0
    ones = RuleTablePolicy(table, manifest["scenario"]["digest"])
    doubled_table, _ = load_rule_table(out)
    doubled_table.values[:] = 1.0
    doubled_table.values[:, 0] = 2.0  # the first SKU's level
    doubled = RuleTablePolicy(doubled_table, manifest["scenario"]["digest"])
    simulator = _simulator()
    simulator.reset(seed=5)
    anchor = build_anchor(manifest["anchor"])
    for policy in (anchor, ones, doubled):
        policy.reset(simulator.network, seed=5)
    moved = False
    while not simulator.done:
        expected = anchor.act(simulator)
        np.testing.assert_array_equal(ones.act(simulator), expected)
        moved |= not np.array_equal(doubled.act(simulator), expected)
        simulator.step(expected)
    assert moved


def test_stake_of_an_anchored_teacher_counts_what_its_action_can_move(exported):
    from invalloc.export.extraction import Rollouts

    _, _, teacher = exported
    simulator = _simulator()
    simulator.reset(seed=0)
    rollouts = Rollouts(simulator, teacher)
    assert rollouts.mapper.mode == "anchored"
    high, low = rollouts.mapper.requests(rollouts._high), rollouts.mapper.requests(rollouts._low)
    assert (high >= low).all() and (high > low).any()
    assert rollouts.stake() > 0


def test_raw_teachers_are_refused():
    from invalloc.export.extraction import teacher_mapper

    raw = SimpleNamespace(name="raw-agent", action_mode="raw", anchor=None)
    with pytest.raises(ValueError, match="raw-agent acts in action_mode='raw'; rule tables set 'compact' or"):
        teacher_mapper(_simulator(), raw)


def test_decide_and_simulate_through_the_cli(exported, tmp_path):
    from invalloc.env.features import FeatureSet

    out, _, _ = exported
    table, _ = load_rule_table(out)
    simulator = _simulator()
    features = FeatureSet(simulator.network)
    simulator.reset(seed=2)
    policy = load_rule_policy(out)
    policy.reset(simulator.network, seed=2)
    rows = []
    while not simulator.done:
        rows.append(features.compute(simulator))
        simulator.step(policy.act(simulator))
    states = tmp_path / "states.csv"
    pd.DataFrame(rows, columns=features.names).to_csv(states, index=False)
    result = runner.invoke(app, ["rules", "decide", str(out), "--input", str(states), "--format", "csv"])
    assert result.exit_code == 0, result.output
    decided = pd.read_csv(io.StringIO(result.stdout))
    assert list(decided.columns) == ["rule_id", *table.output_names]
    rules, values = table.decide_values(pd.read_csv(states)[table.feature_names].to_numpy())
    assert list(decided["rule_id"]) == [table.rule_ids[r] for r in rules]
    np.testing.assert_allclose(decided[table.output_names].to_numpy(), values)
    result = runner.invoke(app, ["simulate", "--scenario", SCENARIO, "--policy", f"rules:{out}", "--json"])
    assert result.exit_code == 0, result.output


def _refused(directory: Path, fragment: str) -> None:
    """Refused by `rules verify`, `simulate --policy rules:` and the loader: one error line, exit 2."""
    for argv in (
        ["rules", "verify", str(directory)],
        ["simulate", "--scenario", SCENARIO, "--policy", f"rules:{directory}"],
    ):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1, result.stderr
        assert fragment in result.stderr, result.stderr
    with pytest.raises(RuleTableError, match=fragment):
        load_rule_policy(directory)


def test_a_tampered_anchor_is_refused(exported, tmp_path):
    """The anchor is content: changing its parameters — in place, or with the manifest re-hashed —
    breaks the digest the audit log recorded at export."""
    from tampering import rehash

    out, manifest, _ = exported
    anchor = {**manifest["anchor"], "params": {**manifest["anchor"]["params"], "cover": "3"}}
    edited = tmp_path / "edited"
    shutil.copytree(out, edited)
    (edited / "manifest.json").write_text(json.dumps({**manifest, "anchor": anchor}, indent=2))
    _refused(edited, "manifest fields changed")
    rehashed = tmp_path / "rehashed"
    shutil.copytree(out, rehashed)
    rehash(rehashed, anchor=anchor)
    _refused(rehashed, "manifest fields changed")
    # Declared compact, so that the anchor would be ignored: refused the same way.
    compact = tmp_path / "compact"
    shutil.copytree(out, compact)
    rehash(compact, action_mode="compact", anchor=None)
    _refused(compact, "manifest fields changed")


def test_a_forged_anchor_that_is_not_a_rule_is_refused_when_the_table_acts(exported, tmp_path):
    """Even with the audit log forged to match, an anchor that cannot act is one error line."""
    from tampering import forge_audit_log, rehash

    out, manifest, _ = exported
    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    rehash(forged, anchor={"policy": "priority", "params": {"cover": "lots"}, "spec": "priority:cover=lots"})
    forge_audit_log(forged)
    assert runner.invoke(app, ["rules", "verify", str(forged)]).exit_code == 0  # shape fine; acts only with a scenario
    result = runner.invoke(app, ["simulate", "--scenario", SCENARIO, "--policy", f"rules:{forged}"])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.output
    assert "its anchor priority:cover=lots (manifest field anchor) cannot act on tiny" in result.stderr
