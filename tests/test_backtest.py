"""`invalloc compare --demand-trace`: a backtest replays a hand-written trace exactly, with the same
numbers as `simulate --demand-trace`; the report and the printed summary say so; a bad trace is one
error line per problem. And short policy labels (a run's name, a model's NAME@ALIAS) everywhere a
comparison names a policy, with the full spec kept beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.config.shipped import shipped_folder

SKUS = ("widget", "gadget")
CHANNELS = ("stores", "online")
HORIZON = 20  # tiny's


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def write_trace(path: Path, scale: int = 1) -> Path:
    """A trace for tiny that no random draw would give: demand steps up mid-episode."""
    rows = [
        (period, channel, sku, scale * ((period % 5) + (12 if period >= 10 else 2) + 3 * c + s))
        for period in range(HORIZON)
        for c, channel in enumerate(CHANNELS)
        for s, sku in enumerate(SKUS)
    ]
    pd.DataFrame(rows, columns=["period", "channel", "sku", "quantity"]).to_csv(path, index=False)
    return path


def test_backtest_replays_the_trace_as_simulate_does(tmp_path, mlflow_uri):
    trace = write_trace(tmp_path / "holdout.csv")
    out = tmp_path / "report"
    result = run("compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "priority",
                 "--demand-trace", str(trace), "--seed", "3", "--out", str(out), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["episodes"] == 1  # the default with a trace
    assert data["demand_trace"]["path"] == str(trace.resolve())
    import hashlib

    assert data["demand_trace"]["sha256"] == hashlib.sha256(trace.read_bytes()).hexdigest()
    import mlflow

    logged = mlflow.MlflowClient(mlflow_uri).get_run(data["mlflow_run_id"]).data.params
    assert (
        logged["demand_trace"] == str(trace.resolve())
        and logged["demand_trace_sha256"] == data["demand_trace"]["sha256"]
    )
    for policy in ("base_stock", "priority"):
        simulated = run("simulate", "--scenario", "tiny", "--policy", policy, "--demand-trace", str(trace),
                        "--seed", "3", "--json")  # fmt: skip
        assert simulated.exit_code == 0, simulated.output
        episode = json.loads(simulated.stdout)["episodes"][0]
        kpis = {row["kpi"]: row["mean"] for row in data["kpis"] if row["policy"] == policy}
        for key in ("total_reward", "profit", "fill_rate", "minimum_cash"):
            assert kpis[key] == pytest.approx(episode[key], rel=1e-12, abs=1e-9), (policy, key)

    # Served demand is the trace's: units served + unserved = the trace's total over the kept periods.
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"replays the demand trace {trace.resolve()}" in html
    assert data["demand_trace"]["sha256"] in html  # the full digest in the report

    # The printed summary says it too; a trace of other demand gives other numbers.
    other = write_trace(tmp_path / "other.csv", scale=3)
    printed = run("compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "priority",
                  "--demand-trace", str(other), "--seed", "3", "--out", str(tmp_path / "other"))  # fmt: skip
    assert printed.exit_code == 0, printed.output
    text = " ".join(printed.stdout.split())
    assert "backtest: every episode replays the demand trace" in text and "other.csv" in text
    kpis = pd.read_csv(tmp_path / "other" / "kpis.csv").query("kpi == 'total_reward'").set_index("policy")["mean"]
    assert kpis["base_stock"] != pytest.approx(
        next(r["mean"] for r in data["kpis"] if r["policy"] == "base_stock" and r["kpi"] == "total_reward")
    )


def test_more_episodes_of_a_trace_only_where_something_else_is_random(tmp_path, mlflow_uri):
    trace = write_trace(tmp_path / "holdout.csv")
    # tiny splits channel demand over tiers and draws lead times: episodes still differ.
    result = run("compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "priority",
                 "--demand-trace", str(trace), "--episodes", "3", "--out", str(tmp_path / "r"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["episodes"] == 3
    assert "random lead times" in data["demand_trace"]["varies_between_episodes"]

    # One tier per channel and fixed lead times: every episode would be the same, so refused.
    scenario = yaml.safe_load((shipped_folder("scenarios") / "tiny.yaml").read_text())
    for channel in scenario["channels"]:
        channel["tiers"] = [{**channel["tiers"][0], "demand_share": 1.0}]
    for lane in scenario["lanes"]:
        if isinstance(lane.get("lead_time"), dict):
            lane["lead_time"] = 1
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "refused"
    result = run("compare", "--scenario", str(fixed), "--policy", "base_stock", "--policy", "priority",
                 "--demand-trace", str(trace), "--episodes", "3", "--out", str(out))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "would be identical" in result.stderr and "--episodes 1" in result.stderr
    assert not out.exists()


def test_a_bad_trace_is_one_line_per_problem_and_writes_nothing(tmp_path, mlflow_uri):
    trace = write_trace(tmp_path / "bad.csv")
    frame = pd.read_csv(trace)
    frame.loc[3, "sku"] = "sprocket"
    frame.loc[5, "quantity"] = -4
    frame.to_csv(trace, index=False)
    out = tmp_path / "out"
    result = run("compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", "priority",
                 "--demand-trace", str(trace), "--out", str(out))  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {trace}") for line in lines), result.stderr
    assert "sprocket" in lines[0] and "-4" in lines[1] and "Traceback" not in result.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- labels
def _tables(page: str) -> list[list[list[str]]]:
    """Every table of an HTML page as rows of cell texts."""
    from html.parser import HTMLParser

    tables: list[list[list[str]]] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "table":
                tables.append([])
            elif tag == "tr":
                tables[-1].append([])
            elif tag in ("td", "th"):
                tables[-1][-1].append("")

        def handle_data(self, data):
            if tables and tables[-1] and tables[-1][-1]:
                tables[-1][-1][-1] += data.strip()

    Parser().feed(page)
    return tables


def test_learned_policies_are_labelled_by_run_name(tmp_path, mlflow_uri):
    """(A registered model's NAME@ALIAS label: tests/test_api.py, on a really trained model.)"""
    from test_compare import _saved_learned_run

    run_id = _saved_learned_run(mlflow_uri, tmp_path, None)  # run name "ppo-test"
    specs = ["base_stock", f"run:{run_id}", "priority"]
    out = tmp_path / "labels"
    args = ["compare", "--scenario", "tiny", "--episodes", "2", "--out", str(out)]
    for spec in specs:
        args += ["--policy", spec]
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    labels = {p["spec"]: p["label"] for p in data["policies"]}
    assert labels == {"base_stock": "base_stock", f"run:{run_id}": "ppo-test", "priority": "priority"}
    assert {row["label"] for row in data["kpis"]} == set(labels.values())
    assert all(row["label"] == labels[row["policy"]] for row in data["paired"])  # the full spec kept beside

    tables = _tables((out / "report.html").read_text(encoding="utf-8"))
    assert ["KPI", "base_stock", "ppo-test", "priority"] in [t[0] for t in tables]  # the KPI table's header
    policies = next(t for t in tables if t[0][:2] == ["label", "spec"])
    assert [row[:2] for row in policies[1:]] == [[labels[spec], spec] for spec in specs]
    assert sum(run_id in cell for t in tables for row in t for cell in row) == 2  # spec and description only
    csv = pd.read_csv(out / "kpis.csv")
    assert list(csv.columns[:2]) == ["label", "policy"]
    assert set(csv.loc[csv["policy"] == f"run:{run_id}", "label"]) == {"ppo-test"}

    printed = run(*args)
    assert printed.exit_code == 0, printed.output
    assert "ppo-test" in printed.stdout and run_id not in printed.stdout
