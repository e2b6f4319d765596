"""The Python API (``import invalloc``): the commands' work as functions that return Python objects
and raise (never exit) on bad input — on the real simulator, a real sqlite MLflow store and a
really trained (short) agent."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

import invalloc
from invalloc.cli import app
from rule_teachers import TINY_SETTINGS  # noqa: I001 - tests/ helper


def test_importing_the_package_stays_light_and_names_the_api():
    code = (
        "import sys, invalloc; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pandas', 'torch', 'mlflow')); "
        "print(heavy, sorted(set(invalloc.API) & set(dir(invalloc))), 'invalloc.api' in sys.modules); "
        "invalloc.load_scenario; print('invalloc.api' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    first, second = result.stdout.splitlines()
    assert first == f"[] {sorted(invalloc.API)} False"
    assert second == "True"
    with pytest.raises(AttributeError, match="no attribute 'simulation'"):
        invalloc.simulation  # noqa: B018


def test_the_api_examples_run():
    import invalloc.api

    outcome = doctest.testmod(invalloc.api, optionflags=doctest.ELLIPSIS)
    assert outcome.failed == 0 and outcome.attempted >= 8


def test_load_scenario_and_make_env(tmp_path):
    from invalloc.config.loader import ScenarioError

    loaded = invalloc.load_scenario("tiny", {"episode": {"horizon": 12}})
    assert loaded.scenario.episode.horizon == 12 and len(loaded.digest) == 64
    env = invalloc.make_env("tiny", periods=5)
    env.reset(seed=1)
    steps = 0
    truncated = False
    while not truncated:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated and info["period"] == steps
        steps += 1
    assert steps == 5

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nproducts: []\n")
    with pytest.raises(ScenarioError) as raised:
        invalloc.load_scenario(broken)
    assert len(raised.value.lines()) >= 2 and all(line.startswith(str(broken)) for line in raised.value.lines())
    with pytest.raises(ValueError, match="periods"):
        invalloc.make_env("tiny", periods=0)


def test_simulate_returns_what_the_command_prints(tmp_path):
    from invalloc.sim.demand import DemandTraceError
    from invalloc.sim.policy import PolicyError

    run = invalloc.simulate("tiny", "priority", params={"cover": 2.5}, episodes=3, seed=4, plot=tmp_path / "plots",
                            statements=tmp_path / "statements")  # fmt: skip
    printed = CliRunner().invoke(app, ["simulate", "--scenario", "tiny", "--policy", "priority", "--param",
                                       "cover=2.5", "--episodes", "3", "--seed", "4", "--json"])  # fmt: skip
    assert printed.exit_code == 0, printed.output
    data = json.loads(printed.stdout)
    assert json.loads(json.dumps(run.summary)) == data["summary"]  # the same numbers
    assert list(run.kpis["seed"]) == [4, 5, 6]
    assert run.kpis["total_reward"].tolist() == pytest.approx([e["total_reward"] for e in data["episodes"]])
    # Period records and books of every episode, and the statements drawn from them.
    assert [len(reports) for reports in run.reports] == [20, 20, 20]
    assert [books.seed for books in run.books] == [4, 5, 6]
    assert all(run.statements(i).reconciled for i in range(3))
    warmup = invalloc.load_scenario("tiny").scenario.episode.warmup
    assert sum(r.revenue for r in run.reports[1][warmup:]) == pytest.approx(run.episodes[1]["revenue"])
    assert (tmp_path / "plots" / "overview.png").is_file() and (tmp_path / "statements").is_dir()
    assert len(run.written) == 2

    with pytest.raises(PolicyError, match="--policy nonsense: unknown policy"):
        invalloc.simulate("tiny", "nonsense")
    trace = tmp_path / "trace.csv"
    pd.DataFrame({"period": [0, 0], "channel": ["stores", "nowhere"], "sku": ["widget", "widget"],
                  "quantity": [1, -1]}).to_csv(trace, index=False)  # fmt: skip
    with pytest.raises(DemandTraceError) as raised:
        invalloc.simulate("tiny", demand_trace=trace)
    assert len(raised.value.lines()) >= 2 and all(str(trace) in line for line in raised.value.lines())


def test_train_compare_backtest_and_export(tmp_path, mlflow_uri):
    """The tutorial's path on tiny: a short training run, a comparison with a tuned baseline (the
    learned policy labelled by its run name and its registered alias), a backtest, a rule table."""
    import mlflow

    from invalloc.evaluation.compare import ComparisonError

    trained = invalloc.train("tiny_smoke", timesteps=512, tracking_uri=mlflow_uri, register="invalloc-policy-tiny")
    assert trained.spec == f"run:{trained.run_id}" and trained.timesteps >= 512
    assert trained.evaluations and trained.registered_version == "1"
    client = mlflow.MlflowClient(mlflow_uri)
    client.set_registered_model_alias("invalloc-policy-tiny", "champion", "1")
    assert client.get_run(trained.run_id).info.status == "FINISHED"

    specs = [trained.spec, "models:/invalloc-policy-tiny@champion", "base_stock@tuned"]
    result = invalloc.compare("tiny", specs, episodes=3, seed=100, out=tmp_path / "report", tracking_uri=mlflow_uri)
    assert result.report == tmp_path / "report" / "report.html" and result.report.is_file()
    assert result.labels == {
        trained.spec: "tiny_smoke-tiny-s0",
        "models:/invalloc-policy-tiny@champion": "invalloc-policy-tiny@champion",
        "base_stock@tuned": "base_stock@tuned",
    }
    assert result.reference == "base_stock@tuned"  # the only baseline
    assert list(result.table.columns) == ["KPI", "tiny_smoke-tiny-s0", "invalloc-policy-tiny@champion",
                                          "base_stock@tuned"]  # fmt: skip
    rewards = result.kpis.query("kpi == 'total_reward'").set_index("label")["mean"]
    # The run and its registered model are the same policy: the same numbers on the same demand.
    assert rewards["tiny_smoke-tiny-s0"] == pytest.approx(rewards["invalloc-policy-tiny@champion"])
    paired = result.paired.query("kpi == 'total_reward'")
    assert set(paired["label"]) == {"tiny_smoke-tiny-s0", "invalloc-policy-tiny@champion"}
    assert set(paired["reference"]) == {"base_stock@tuned"} and (paired["n"] == 3).all()
    assert result.mlflow_run_id and json.dumps(result.to_dict())
    # The plots name policies by label too, and money ticks carry thousands separators.
    from invalloc.evaluation.report import figures

    drawn = figures(result.comparison)
    for stem in ("profit_distribution", "reward_difference"):
        drawn[stem].draw_without_rendering()
    box = drawn["profit_distribution"].axes[0]
    assert [t.get_text() for t in box.get_yticklabels()] == list(result.labels.values())
    ticks = [t.get_text() for t in box.get_xticklabels() if t.get_text()]
    assert any("," in t for t in ticks) and not any("e" in t.lower() for t in ticks), ticks
    forest = drawn["reward_difference"]
    assert [t.get_text() for t in forest.axes[0].get_yticklabels()] == ["tiny_smoke-tiny-s0",
                                                                        "invalloc-policy-tiny@champion"]  # fmt: skip
    assert "reference: base_stock@tuned" in forest.get_suptitle()

    # A backtest on a hand-written trace: one episode, the trace named in the report.
    trace = tmp_path / "holdout.csv"
    rows = [(p, c, s, 5 + p % 4) for p in range(20) for c in ("stores", "online") for s in ("widget", "gadget")]
    pd.DataFrame(rows, columns=["period", "channel", "sku", "quantity"]).to_csv(trace, index=False)
    backtest = invalloc.compare("tiny", [trained.spec, "base_stock@tuned"], demand_trace=trace,
                                out=tmp_path / "backtest", tracking_uri=mlflow_uri)  # fmt: skip
    assert backtest.comparison.episodes == 1
    assert str(trace.resolve()) in backtest.report.read_text(encoding="utf-8")
    with pytest.raises(ComparisonError, match="--episodes 0"):
        invalloc.compare("tiny", ["base_stock", "priority"], episodes=0, out=tmp_path / "x", tracking_uri=mlflow_uri)

    rules = invalloc.export_rules(trained.run_id, tmp_path / "rules", tracking_uri=mlflow_uri, settings=TINY_SETTINGS)
    assert rules.spec == f"rules:{tmp_path / 'rules'}"
    assert 0.0 <= rules.fidelity["on_table_states"] <= 1.0 and 0.0 <= rules.fidelity["on_teacher_states"] <= 1.0
    assert len(rules.rules) == rules.manifest["rules"] == len(rules.table) >= 1
    assert "rules;" in rules.summary() or "rules correcting" in rules.summary()
    assert rules.manifest["registry"]["model_name"] == "invalloc-rules-tiny"
    replay = invalloc.simulate("tiny", rules.spec, episodes=2, seed=100)
    assert replay.kpis["fill_rate"].between(0.0, 1.0).all()


def test_tune_writes_a_params_file_the_specs_read(tmp_path):
    from invalloc.sim.policy import PolicyError

    tuned = invalloc.tune("tiny", "base_stock", tmp_path / "tuned.yaml", seeds="0-4", budget=12)
    assert tuned.spec == f"base_stock@{tmp_path / 'tuned.yaml'}" and set(tuned.params) >= {"cover"}
    assert len(tuned.result.history) <= 12 and tuned.result.seeds == [0, 1, 2, 3, 4]
    # The file gives the tuned policy back: simulated on the training seeds, its mean reward.
    run = invalloc.simulate("tiny", "base_stock", params_file=tuned.file, episodes=5, seed=0)
    assert run.kpis["total_reward"].mean() == pytest.approx(tuned.result.mean_reward)
    with pytest.raises(PolicyError, match="colour"):
        invalloc.simulate("tiny", "base_stock", params={"colour": "blue"})


def test_build_scenario_from_the_example_company(tmp_path):
    """The example company's tables and history → a validated scenario, its hold-out trace and
    the fit report's key table; bad tables raise BuildError with file:row:column lines."""
    import shutil
    from pathlib import Path

    from invalloc.history.build import BuildError

    examples = Path(__file__).resolve().parents[1] / "examples" / "history"
    built = invalloc.build_scenario(tmp_path / "company.yaml", tables=examples, holdout_periods=26,
                                    fit_report=tmp_path / "fit")  # fmt: skip
    loaded = built.load()
    assert built.path == tmp_path / "company.yaml" and loaded.scenario.episode.horizon == 26
    assert len(loaded.scenario.products) == built.result.skus == 50
    holdout = pd.read_csv(built.holdout)
    assert sorted(set(holdout["period"])) == list(range(26)) and len(holdout) == 26 * 50 * 3
    series = built.fit_series
    assert len(series) == 150 and set(series["model"]) <= {"poisson", "negative_binomial", "normal", "none"}
    assert series.groupby("model").size().to_dict() == built.result.streams_by_model
    assert set(series["verdict"]) <= {"better", "even", "worse", None}
    # The backtest replays the hold-out exactly: its demand is the trace's.
    run = invalloc.simulate(built.path, "base_stock", demand_trace=built.holdout, periods=26)
    demand = sum(float(r.demand.sum()) for r in run.reports[0])
    assert demand == pytest.approx(float(holdout["quantity"].sum()))

    broken = tmp_path / "broken"
    shutil.copytree(examples, broken)
    products = pd.read_csv(broken / "products.csv")
    products.loc[2, "unit_cost"] = -1
    products.to_csv(broken / "products.csv", index=False)
    with pytest.raises(BuildError) as raised:
        invalloc.build_scenario(tmp_path / "x.yaml", tables=broken)
    assert any(line.startswith(f"{broken / 'products.csv'}:4:unit_cost") for line in raised.value.problems), (
        raised.value.problems
    )
    assert not (tmp_path / "x.yaml").exists()
    with pytest.raises(BuildError, match="--history"):
        invalloc.build_scenario(tmp_path / "y.yaml", tables=tmp_path / "nowhere")
