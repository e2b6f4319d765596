"""The command line: contract of `simulate`, `scenario validate/show`, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from invalloc.config.loader import SCENARIO_DIR


def invalloc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invalloc.cli", *args], capture_output=True, text=True)


def test_help_everywhere():
    for args in ([], ["scenario"], ["scenario", "validate"], ["simulate"]):
        result = invalloc(*args, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


def test_validate_ok_prints_one_line():
    result = invalloc("scenario", "validate", str(SCENARIO_DIR / "retail.yaml"))
    assert result.returncode == 0
    assert len(result.stdout.strip().splitlines()) == 1
    assert "valid" in result.stdout


def test_validate_bad_scenario_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (SCENARIO_DIR / "tiny.yaml").read_text()
    text = text.replace("episode:", "colour: blue\nepisode:", 1)
    bad.write_text(text.replace("horizon: 20", "horizon: -3"))
    result = invalloc("scenario", "validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert any("colour" in line for line in lines)
    assert any("episode.horizon" in line for line in lines)
    assert all(line.startswith("error: ") for line in lines)


def test_show_json_lists_decisions_in_stable_order():
    first = json.loads(invalloc("scenario", "show", "orgym_invmanagement_v0", "--json").stdout)
    assert set(first) >= {"skus", "channels", "locations", "decisions"}
    assert first["locations"] == ["stage0", "stage1", "stage2"]
    assert (
        first["decisions"]
        == json.loads(invalloc("scenario", "show", "orgym_invmanagement_v0", "--json").stdout)["decisions"]
    )
    retail = json.loads(invalloc("scenario", "show", "retail", "--json").stdout)
    assert len(retail["skus"]) >= 20 and len(retail["channels"]) == 3 and len(retail["locations"]) == 3
    assert any(d.startswith("allocate/") for d in retail["decisions"])


def test_simulate_json_contract_and_seeds():
    result = invalloc(
        "simulate", "--scenario", "tiny", "--policy", "base_stock", "--episodes", "3", "--seed", "5", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["episodes"]) == 3
    for episode in data["episodes"]:
        for key in (
            "total_reward",
            "per_period_reward",
            "profit",
            "cost_per_period",
            "fill_rate",
            "fill_rate_by_tier",
            "minimum_cash",
            "rule_interventions",
            "invariants_ok",
        ):
            assert key in episode
        assert episode["invariants_ok"] is True
        assert episode["total_reward"] == pytest.approx(sum(episode["per_period_reward"]))
    profits = [e["profit"] for e in data["episodes"]]
    summary = data["summary"]["profit"]
    assert summary["ci_low"] <= sum(profits) / 3 <= summary["ci_high"]
    again = json.loads(invalloc("simulate", "--scenario", "tiny", "--episodes", "3", "--seed", "5", "--json").stdout)
    assert again["episodes"] == data["episodes"]


def test_replay_reproduces_fixed_policy(tmp_path):
    show = json.loads(invalloc("scenario", "show", "orgym_invmanagement_v1", "--json").stdout)
    actions = pd.DataFrame({"period": range(30), **{name: 20 for name in show["decisions"]}})
    path = tmp_path / "actions.csv"
    actions.to_csv(path, index=False)
    replay = json.loads(
        invalloc(
            "simulate", "--scenario", "orgym_invmanagement_v1", "--policy", "replay", "--actions", str(path), "--json"
        ).stdout
    )
    fixed = json.loads(
        invalloc(
            "simulate", "--scenario", "orgym_invmanagement_v1", "--policy", "fixed", "--param", "quantity=20", "--json"
        ).stdout
    )
    assert replay["episodes"][0]["per_period_reward"] == fixed["episodes"][0]["per_period_reward"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--scenario", "no_such_scenario"], "no_such_scenario"),
        (["--scenario", "tiny", "--policy", "magic"], "unknown policy"),
        (["--scenario", "tiny", "--policy", "s_S", "--param", "s=5"], "s_S takes both"),
        (["--scenario", "tiny", "--policy", "base_stock", "--param", "level=abc"], "level=abc"),
        (["--scenario", "tiny", "--policy", "base_stock", "--param", "colour=1"], "colour"),
        (["--scenario", "tiny", "--policy", "replay", "--actions", "missing.csv"], "missing.csv"),
        (["--scenario", "tiny", "--demand-trace", "missing_trace.csv"], "missing_trace.csv"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle):
    result = invalloc("simulate", *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_audit_log_written_atomically(tmp_path):
    path = tmp_path / "audit.parquet"
    result = invalloc("simulate", "--scenario", "tiny", "--episodes", "2", "--audit-log", str(path), "--json")
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(path)
    assert {"episode", "period", "event", "sku", "quantity", "amount"} <= set(table.columns)
    assert {"order", "receipt", "sale", "holding_cost"} <= set(table["event"])
    assert sorted(table["episode"].unique()) == [0, 1]
    assert not list(tmp_path.glob(".*tmp"))


def test_tune_writes_params_that_simulate_reads(tmp_path):
    out = tmp_path / "tuned.yaml"
    result = invalloc(
        "tune",
        "--scenario",
        "tiny",
        "--policy",
        "base_stock",
        "--seeds",
        "0-2",
        "--budget",
        "6",
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    tuned = json.loads(result.stdout)
    assert out.is_file() and set(tuned["params"]) == {"cover"}
    simulated = invalloc(
        "simulate", "--scenario", "tiny", "--policy", "base_stock", "--params", str(out), "--episodes", "3", "--json"
    )
    assert simulated.returncode == 0, simulated.stderr
    direct = invalloc(
        "simulate",
        "--scenario",
        "tiny",
        "--policy",
        "base_stock",
        "--param",
        f"cover={tuned['params']['cover']}",
        "--episodes",
        "3",
        "--json",
    )
    assert json.loads(simulated.stdout)["episodes"] == json.loads(direct.stdout)["episodes"]
    wrong = invalloc("simulate", "--scenario", "tiny", "--policy", "s_S", "--params", str(out))
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr and str(out) in wrong.stderr
    missing = invalloc("simulate", "--scenario", "tiny", "--params", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr


def test_stop_auto_orders_nothing_that_cannot_be_sold():
    from invalloc.baselines import make_policy
    from invalloc.config.loader import load_scenario
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator, run_episode

    network = compile_network(load_scenario("orgym_invmanagement_v1"))
    reports = run_episode(Simulator(network), make_policy("base_stock", {"levels": "89,209,420", "stop": "auto"}), 0)
    executed = np.array([r.decision.executed for r in reports])  # (periods, stage 0, 1, 2)
    assert executed[27:, 0].sum() == 0 and executed[22:, 1].sum() == 0 and executed[12:, 2].sum() == 0
    assert executed[:12, 2].sum() > 0


def test_oracle_reports_its_bound_in_clean_json():
    result = invalloc(
        "simulate", "--scenario", "orgym_invmanagement_v1", "--policy", "oracle", "--episodes", "2", "--json"
    )
    assert result.returncode == 0, result.stderr
    episodes = json.loads(result.stdout)["episodes"]  # nothing but JSON on standard output
    for episode in episodes:
        assert episode["oracle_bound"] >= episode["total_reward"] - 1e-6
        assert episode["invariants_ok"]


def test_version_from_python_m_and_the_command():
    from invalloc import __version__

    result = subprocess.run([sys.executable, "-m", "invalloc", "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"invalloc {__version__}"
    assert __version__.count(".") >= 2
