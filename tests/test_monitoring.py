"""A rule table in production: the decision log, `rules monitor` and the challenger loop.

Real tables are exported on `tiny` from numpy teachers (tests/rule_teachers.py) of different
quality and registered in a real MLflow sqlite store; every command runs through the CLI.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.rules import load_rule_table
from invalloc.rules.decision_log import KPI_PREFIX
from invalloc.rules.manifest import write_manifest
from rule_teachers import export_tiny
from tampering import forge_audit_log

runner = CliRunner()
MODEL = "invalloc-rules-tiny"
#: Episodes of the logs: 5 × tiny's 20 periods = 100 periods.
LOG_EPISODES = 5


@pytest.fixture(scope="module")
def store(tmp_path_factory, mlflow_template_db) -> dict:
    """Three registered tiny tables: a middling champion, a better and a worse challenger."""
    folder = tmp_path_factory.mktemp("production")
    (folder / "tracking").mkdir()
    shutil.copyfile(mlflow_template_db, folder / "tracking" / "mlflow.db")
    uri = f"sqlite:///{folder / 'tracking' / 'mlflow.db'}"
    tables = {}
    for name, shift in (("champion", -0.5), ("better", 0.0), ("worse", -1.0)):
        tables[name] = folder / name
        export_tiny(tables[name], shift, tracking_uri=uri, register=MODEL)
    return {"uri": uri, **tables}


def _simulate_log(table: Path, log: Path, *extra: str) -> dict:
    argv = ["simulate", "--scenario", "tiny", "--policy", f"rules:{table}", "--episodes", str(LOG_EPISODES)]
    result = runner.invoke(app, [*argv, "--seed", "500", "--decision-log", str(log), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _demand_trace(path: Path, factor: float, seed: int = 7) -> Path:
    """`tiny`'s demand of one episode, per period × channel × SKU, times ``factor`` (a demand trace CSV)."""
    from invalloc.baselines import make_policy
    from invalloc.config.loader import load_scenario
    from invalloc.sim.network import compile_network
    from invalloc.sim.simulator import Simulator, run_episode

    network = compile_network(load_scenario("tiny"))
    reports = run_episode(Simulator(network), make_policy("base_stock"), seed=seed)
    channels = [tier.split("/")[0] for tier in network.tiers]
    rows = []
    for report in reports:
        for channel in dict.fromkeys(channels):
            tiers = [t for t, c in enumerate(channels) if c == channel]
            for s, sku in enumerate(network.skus):
                quantity = float(np.round(report.demand[tiers, s].sum() * factor))
                rows.append({"period": report.period, "channel": channel, "sku": sku, "quantity": quantity})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _monitor(table: Path, log: Path, *extra: str):
    result = runner.invoke(app, ["rules", "monitor", str(table), "--log", str(log), "--json", *extra])
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result, report


# ---------------------------------------------------------------------------------- export
def test_export_records_the_monitoring_reference(store):
    table, manifest = load_rule_table(store["better"])
    block = manifest["monitoring"]
    assert sorted(block["feature_ranges"]) == sorted(table.feature_names)
    assert all(low <= high for low, high in block["feature_ranges"].values())
    # The table's first state (opening stock, a full year left) lies inside what was seen.
    days = block["feature_ranges"]["days_remaining"]
    assert days[0] <= 140.0 <= days[1]
    assert list(block["hit_rates"]) == table.rule_ids and sum(block["hit_rates"].values()) == pytest.approx(1, abs=1e-5)
    assert block["periods"] == 10 * 20 and block["episodes"] == 10  # the held-out evaluation episodes
    assert {"fill_rate", "reward", "profit", "backordered_units"} <= set(block["kpis"])
    # The reference KPIs are the table's own on those episodes: its profit per period × periods.
    evaluated = manifest["kpi_retention"]["rules"]
    assert 0 < block["kpis"]["fill_rate"]["mean"] <= 1
    assert block["kpis"]["profit"]["mean"] * 20 > 0.5 * evaluated["profit"]


# ---------------------------------------------------------------------------------- the log
def test_decision_log_holds_features_decisions_and_kpis_per_period(store, tmp_path):
    log = tmp_path / "log.csv"
    simulated = _simulate_log(store["better"], log)
    frame = pd.read_csv(log)
    table, _ = load_rule_table(store["better"])
    assert len(frame) == LOG_EPISODES * 20
    assert list(frame.columns[:4]) == ["episode", "seed", "period", "rule_id"]
    assert list(frame.columns[4 : 4 + len(table.features)]) == table.feature_names
    assert set(table.output_names) <= set(frame.columns)
    assert frame.groupby("episode")["period"].apply(list).tolist() == [list(range(20))] * LOG_EPISODES
    # The rule and decisions logged are the table's for the logged features.
    rules = table.decide(frame[table.feature_names].to_numpy())
    assert frame["rule_id"].tolist() == [table.rule_ids[r] for r in rules]
    assert np.array_equal(frame[table.output_names].to_numpy(), table.values[rules])
    # The realised KPIs add up to the episode KPIs simulate reports (after tiny's 2 warm-up periods).
    for episode in simulated["episodes"]:
        rows = frame[(frame["episode"] == episode["episode"]) & (frame["period"] >= 2)]
        assert rows[KPI_PREFIX + "profit"].sum() == pytest.approx(episode["profit"])
        assert rows[KPI_PREFIX + "backordered_units"].sum() == pytest.approx(episode["backordered_units"])
        served, demand = rows[KPI_PREFIX + "served_units"].sum(), rows[KPI_PREFIX + "demand_units"].sum()
        assert served / demand == pytest.approx(episode["fill_rate"])
    # The log is also a states CSV for `rules decide`, which decides as logged.
    decided = runner.invoke(app, ["rules", "decide", str(store["better"]), "--input", str(log)])
    assert decided.exit_code == 0, decided.output
    assert pd.read_csv(io.StringIO(decided.stdout))["rule_id"].tolist() == frame["rule_id"].tolist()
    # The same log as parquet, read back identically.
    _simulate_log(store["better"], tmp_path / "log.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "log.parquet"), frame, check_dtype=False)


# ---------------------------------------------------------------------------------- monitor
def test_monitor_passes_a_log_of_the_world_it_was_exported_for(store, tmp_path):
    log = tmp_path / "log.csv"
    _simulate_log(store["better"], log)
    result, report = _monitor(store["better"], log, "--report", str(tmp_path / "report"))
    assert result.exit_code == 0, result.output
    assert report["status"] == "pass" and "alert" not in result.stderr
    assert [c["name"] for c in report["checks"]] == ["coverage", "hit_rates", "kpi_drift", "overrides"]
    assert all(c["passed"] and c["value"] is not None for c in report["checks"])
    assert 0 <= report["coverage"]["share_outside"] <= 0.05
    assert report["hit_rates"]["psi"] >= 0 and 0 < report["hit_rates"]["chi_square_p_value"] <= 1
    assert abs(report["kpis"]["fill_rate"]["relative_drift"]) < 0.1
    assert report["overrides"]["periods"] == 0 and report["overrides"]["rule_id_mismatches"] == 0
    written = json.loads((tmp_path / "report" / "monitor.json").read_text())
    assert written == report
    html = (tmp_path / "report" / "monitor.html").read_text()
    assert "PASS" in html and "hit_rates.png" in html and (tmp_path / "report" / "hit_rates.png").stat().st_size > 0


def test_monitor_flags_a_shifted_demand_log(store, tmp_path):
    log = tmp_path / "shifted.parquet"
    _simulate_log(store["better"], log, "--demand-trace", str(_demand_trace(tmp_path / "trace.csv", 1.5)))
    result, report = _monitor(store["better"], log, "--report", str(tmp_path / "report"))
    assert result.exit_code == 3, result.output
    alert = result.stderr.strip().splitlines()
    assert len(alert) == 1 and alert[0].startswith("alert: ")
    assert report["status"] == "alert"
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert {"coverage", "kpi_drift"} <= failed
    assert report["coverage"]["share_outside"] > 0.05
    # More demand, the same cover: the backlog features leave the range seen at export …
    assert report["coverage"]["by_feature"]["backlog_days_online_web"]["share_outside"] > 0
    # … and the fill rate falls.
    assert report["kpis"]["fill_rate"]["relative_drift"] < -0.1
    assert "ALERT" in (tmp_path / "report" / "monitor.html").read_text()
    # The thresholds are the caller's: wide enough, the same log passes.
    loose = ["--max-out-of-range", "1", "--max-psi", "100", "--max-kpi-drift", "100"]
    result, report = _monitor(store["better"], log, *loose)
    assert result.exit_code == 0 and report["status"] == "pass", result.output


def test_monitor_reports_edited_decisions_as_overrides(store, tmp_path):
    log = tmp_path / "log.csv"
    _simulate_log(store["better"], log)
    frame = pd.read_csv(log)
    table, _ = load_rule_table(store["better"])
    edited = frame.index[frame["period"].isin([3, 4])]  # two periods of every episode: 10% of the log
    frame.loc[edited, table.output_names[0]] = frame.loc[edited, table.output_names[0]] * 2
    frame.to_csv(tmp_path / "edited.csv", index=False)
    result, report = _monitor(store["better"], tmp_path / "edited.csv")
    assert result.exit_code == 3 and "overrides" in result.stderr
    overrides = report["overrides"]
    assert overrides["periods"] == 2 * LOG_EPISODES and overrides["share"] == pytest.approx(0.1)
    assert overrides["by_output"] == {table.output_names[0]: 2 * LOG_EPISODES}
    first = overrides["examples"][0]
    assert (first["episode"], first["period"], first["output"]) == (0, 3, table.output_names[0])
    assert first["logged"] == pytest.approx(2 * first["table"])
    # Only the overrides fail; allowed 10% of periods, the same log passes.
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["overrides"]
    result, _ = _monitor(store["better"], tmp_path / "edited.csv", "--max-overrides", "0.1")
    assert result.exit_code == 0, result.output


def test_monitor_and_decision_log_of_a_registered_table(store, tmp_path):
    version = json.loads((store["better"] / "manifest.json").read_text())["registry"]["version"]
    uri = f"models:/{MODEL}/{version}"
    argv = ["simulate", "--scenario", "tiny", "--policy", uri, "--episodes", "2", "--seed", "500"]
    result = runner.invoke(app, [*argv, "--decision-log", str(tmp_path / "log.csv"), "--tracking-uri", store["uri"]])
    assert result.exit_code == 0, result.output
    # The registered table logs what the directory logs.
    _simulate_log(store["better"], tmp_path / "from_dir.csv")
    from_dir = pd.read_csv(tmp_path / "from_dir.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "log.csv"), from_dir[from_dir["episode"] < 2])
    result = runner.invoke(
        app, ["rules", "monitor", uri, "--log", str(tmp_path / "log.csv"), "--tracking-uri", store["uri"], "--json"]
    )
    assert result.exit_code == 0, result.output
    assert (
        json.loads(result.stdout)["table"]["content_sha256"]
        == json.loads(
            runner.invoke(
                app, ["rules", "monitor", str(store["better"]), "--log", str(tmp_path / "log.csv"), "--json"]
            ).stdout
        )["table"]["content_sha256"]
    )


def test_monitor_of_a_table_exported_before_monitoring(store, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(store["better"], old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["monitoring"]
    write_manifest(old, manifest)
    forge_audit_log(old)  # as the export of an earlier version recorded it
    log = tmp_path / "log.csv"
    _simulate_log(store["better"], log)
    result, report = _monitor(old, log)
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["coverage"]["value"] is None and "no monitoring block" in checks["coverage"]["note"]
    assert checks["kpi_drift"]["value"] is None
    assert "support" in report["hit_rates"]["expected_from"]


# ---------------------------------------------------------------------------------- challenge
def _aliases(uri: str) -> dict[str, str]:
    import mlflow

    return {
        alias: str(version) for alias, version in mlflow.MlflowClient(uri).get_registered_model(MODEL).aliases.items()
    }


def test_challenge_aliases_only_a_better_challenger(store):
    import mlflow

    uri = store["uri"]
    versions = {
        name: json.loads((store[name] / "manifest.json").read_text())["registry"]["version"]
        for name in ("champion", "better", "worse")
    }
    # The table in production: approved, so the registry's champion.
    approve = ["rules", "approve", str(store["champion"]), "--reviewer", "R. Eviewer", "--comment", "in production"]
    result = runner.invoke(app, [*approve, "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert _aliases(uri)["champion"] == versions["champion"]
    champion = f"models:/{MODEL}@champion"
    base = ["rules", "challenge", "--champion", champion, "--episodes", "6", "--processes", "1"]

    result = runner.invoke(app, [*base, "--challenger", f"rules:{store['worse']}", "--tracking-uri", uri, "--json"])
    assert result.exit_code == 0, result.output
    worse_result = json.loads(result.stdout)
    assert worse_result["ci_high"] < 0 and worse_result["verdict"] == "worse" and not worse_result["alias_set"]
    assert "challenger" not in _aliases(uri)

    result = runner.invoke(app, [*base, "--challenger", f"rules:{store['better']}", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "alias challenger set on" in result.stdout and "rules approve" in result.stdout
    assert _aliases(uri)["challenger"] == versions["better"]
    client = mlflow.MlflowClient(uri)
    tags = client.get_model_version(MODEL, versions["better"]).tags
    low, high = json.loads(tags["challenge_ci"])
    assert 0 < low < high
    # Promotion still needs a review: the champion stays.
    assert _aliases(uri)["champion"] == versions["champion"]
    run = client.get_run(tags["challenge_run_id"])
    assert run.data.tags["invalloc.command"] == "challenge" and run.data.tags["invalloc.challenge.alias_set"] == "true"

    # A worse challenger afterwards leaves the alias where it is, also on recent demand (a trace, × 1.5).
    trace = _demand_trace(store["champion"].parent / "recent.csv", 1.5)
    worse = [*base, "--challenger", f"rules:{store['worse']}", "--tracking-uri", uri, "--json"]
    result = runner.invoke(app, [*worse, "--demand-trace", str(trace)])
    assert result.exit_code == 0, result.output
    on_trace = json.loads(result.stdout)
    assert not on_trace["alias_set"] and on_trace["mean_difference"] != worse_result["mean_difference"]
    assert _aliases(uri)["challenger"] == versions["better"]
    tags = client.get_run(on_trace["mlflow_run_id"]).data.tags
    assert tags["invalloc.challenge.demand_trace"] == str(trace.resolve())
    assert len(tags["invalloc.challenge.demand_trace_sha256"]) == 64
