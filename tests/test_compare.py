"""`invalloc compare`: common random numbers, paired statistics, the report folder, the MLflow run
and one-line errors for bad specs — on the real simulator and a real sqlite MLflow store."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.config.loader import load_scenario
from invalloc.evaluation import run_comparison
from invalloc.evaluation.specs import resolve_specs
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator, run_episode

NOTHING = "base_stock:level=0"  # orders up to zero: never buys, sells only its opening stock


def compare(*args: str):
    return CliRunner().invoke(app, ["compare", *args])


@pytest.fixture
def tuned(tmp_path) -> Path:
    """A params file as `invalloc tune` writes it, for tiny."""
    path = tmp_path / "tuned.yaml"
    path.write_text(yaml.safe_dump({"policy": "base_stock", "scenario": "tiny", "params": {"cover": 2.0}}))
    return path


def test_every_policy_sees_identical_demand_on_episode_i(tuned):
    loaded = load_scenario("tiny")
    resolved = resolve_specs(["base_stock", NOTHING, "priority:cover=3", "oracle", f"@{tuned}"], loaded)
    simulator = Simulator(compile_network(loaded), check_invariants=True)
    demands, rewards = {}, {}
    for spec, policy in resolved:
        for episode in range(3):
            reports = run_episode(simulator, policy, seed=100 + episode)
            demands[spec.text, episode] = np.stack([r.demand for r in reports])
            rewards[spec.text, episode] = sum(r.reward for r in reports)
    for episode in range(3):
        first = demands["base_stock", episode]
        for spec, _ in resolved:
            np.testing.assert_array_equal(demands[spec.text, episode], first)
    # Not vacuous: the policies really act differently, and demand differs between episodes.
    assert len({round(rewards[spec.text, 0], 6) for spec, _ in resolved}) == len(resolved)
    assert not np.array_equal(demands["base_stock", 0], demands["base_stock", 1])
    assert [spec.name for spec, _ in resolved][-1] == "base_stock"
    assert dict(resolved[-1][0].params) == {"cover": "2.0"}


def test_dominated_policy_is_worse_and_results_do_not_depend_on_processes(tuned):
    specs = ["base_stock", NOTHING, f"base_stock@{tuned}:stop=auto"]
    serial = run_comparison("tiny", specs, episodes=6, seed=0, processes=1, progress=False, log_to_mlflow=False)
    # Default reference: the best baseline by mean total reward.
    rewards = serial.kpis[serial.kpis["kpi"] == "total_reward"].set_index("policy")["mean"]
    assert serial.reference == rewards.idxmax() != NOTHING
    row = serial.paired.query("policy == @NOTHING and kpi == 'total_reward'").iloc[0]
    assert row.ci_high < 0 and row.verdict == "worse" and row.p_value < 0.01
    assert row.mean_difference == pytest.approx(rewards[NOTHING] - rewards[serial.reference])
    fill = serial.paired.query("policy == @NOTHING and kpi == 'fill_rate'").iloc[0]
    assert fill.ci_high < 0 and fill.verdict == "worse"
    # Two worker processes give the same numbers, bit for bit.
    parallel = run_comparison("tiny", specs, episodes=6, seed=0, processes=2, progress=False, log_to_mlflow=False)
    assert parallel.processes == 2
    pd.testing.assert_frame_equal(parallel.kpis, serial.kpis, check_exact=True)
    pd.testing.assert_frame_equal(parallel.paired, serial.paired, check_exact=True)
    assert [r.demand_digest for r in parallel.results[NOTHING]] == [r.demand_digest for r in serial.results[NOTHING]]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        elif tag == "table":
            self.tables += 1


def test_cli_report_folder_and_mlflow_run(tmp_path, mlflow_uri):
    import matplotlib.image
    import mlflow

    out = tmp_path / "report"
    specs = ["--policy", "base_stock", "--policy", NOTHING, "--policy", "oracle"]
    result = compare("--scenario", "tiny", *specs, "--episodes", "4", "--seed", "7", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["reference"] == "base_stock"  # the oracle is the best, but no baseline
    assert data["seeds"] == [7, 10]
    assert Path(data["report"]) == out / "report.html"

    page = _Links()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert page.tables >= 5  # policies, KPIs, one paired table per other policy, gap closed
    # The five summary plots, then per policy episode 0's overview and a trajectory per SKU (tiny has 2).
    assert len(page.images) == 5 + 3 * (1 + 2)
    for src in page.images:
        image = matplotlib.image.imread(out / src)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    for href in page.links:
        assert (out / href).is_file()
    kpis = pd.read_csv(out / "kpis.csv")
    assert set(kpis["policy"]) == {"base_stock", NOTHING, "oracle"}
    assert {"fill_rate_by_tier/stores/key", "inventory_value_by_dc/dc", "minimum_cash"} <= set(kpis["kpi"])
    assert "oracle_bound" in set(kpis.query("policy == 'oracle'")["kpi"])
    gap = pd.read_csv(out / "gap_closed.csv").set_index("policy")["gap_closed"]
    assert gap["base_stock"] == 0.0 and 0.0 < gap["oracle"] <= 1.0 and gap[NOTHING] < 0.0
    episodes = pd.read_csv(out / "episodes.csv")
    assert len(episodes) == 3 * 4 and sorted(set(episodes["seed"])) == [7, 8, 9, 10]

    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(data["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["invalloc.scenario_hash"] == load_scenario("tiny").digest
    assert run.data.params["reference"] == "base_stock" and run.data.params["episodes"] == "4"
    difference = run.data.metrics[f"compare/{NOTHING.replace('=', '_')}/total_reward_mean_difference"]
    assert difference == pytest.approx(data["paired"][0]["mean_difference"]) and difference < 0

    def files(path: str) -> set[str]:
        return {Path(item.path).name for item in client.list_artifacts(run.info.run_id, path)}

    assert {f"{stem}.png" for stem in ("profit_distribution", "fill_rate_by_tier", "inventory_by_dc")} <= files(
        "figures"
    )
    assert len(files("figures")) == 5
    assert {"kpis.csv", "paired_differences.csv", "gap_closed.csv", "kpis.json"} <= files("tables")
    assert "report.html" in files("report")
    # Drawn once: the folder logged to MLflow is the one written to --out, byte for byte.
    logged = Path(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="report", tracking_uri=mlflow_uri)
    )
    assert (logged / "report.html").read_bytes() == (out / "report.html").read_bytes()
    assert data["mlflow_run_id"] in (out / "report.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in logged.iterdir()) == sorted(p.name for p in out.iterdir())


def test_compare_draws_its_report_once(tmp_path, mlflow_uri, monkeypatch):
    from invalloc.evaluation import report as report_module
    from invalloc.evaluation.command import compare_to_folder

    drawn = []
    render_folder = report_module.render_folder
    monkeypatch.setattr(report_module, "render_folder", lambda *a: drawn.append(a[1]) or render_folder(*a))
    comparison, page = compare_to_folder("tiny", ["base_stock", NOTHING], episodes=2, seed=3, out=tmp_path / "out")
    assert len(drawn) == 1 and page == tmp_path / "out" / "report.html"
    assert comparison.mlflow_run_id in page.read_text(encoding="utf-8")
    assert not drawn[0].exists()  # the folder drawn for MLflow is not left behind


def _saved_learned_run(uri: str, tmp_path: Path, overrides: dict | None) -> str:
    """An MLflow run holding an (untrained) PPO agent for tiny — with ``overrides``, for another scenario."""
    import gymnasium as gym
    import mlflow
    from stable_baselines3 import PPO

    from invalloc.agents.integrity import log_with_hashes
    from invalloc.agents.learned import LearnedPolicy
    from invalloc.tracking import experiment_id

    env = gym.make("invalloc/Allocation-v0", scenario="tiny")
    model = PPO("MlpPolicy", env, n_steps=64, seed=0, device="cpu")
    policy = LearnedPolicy(model, load_scenario("tiny", overrides).digest, name="ppo-test")
    folder = tmp_path / f"policy-{len(list(tmp_path.iterdir()))}"
    policy.save(folder, "PPO")
    client = mlflow.MlflowClient(uri)
    run = client.create_run(experiment_id("train-test", uri), run_name="ppo-test")
    log_with_hashes(client, run.info.run_id, folder, "best")  # as training logs it: sha256 recorded
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_learned_policy_by_run_id(tmp_path, mlflow_uri):
    run_id = _saved_learned_run(mlflow_uri, tmp_path, None)
    result = compare("--scenario", "tiny", "--policy", "base_stock", "--policy", f"run:{run_id}",
                     "--episodes", "2", "--out", str(tmp_path / "r"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    learned = next(p for p in data["policies"] if p["spec"] == f"run:{run_id}")
    assert learned["kind"] == "learned" and "ppo-test" in learned["description"]

    other = _saved_learned_run(mlflow_uri, tmp_path, {"episode": {"horizon": 10}})
    out = tmp_path / "mismatch"
    result = compare("--scenario", "tiny", "--policy", "base_stock", "--policy", f"run:{other}", "--out", str(out))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "different scenario" in result.stderr and f"run:{other}" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", "unknown policy 'nonsense'"),
        ("base_stock:colour=blue", "colour"),
        ("base_stock:cover", "not KEY=VALUE"),
        ("fixed", "--policy fixed: needs parameter quantities"),
        ("base_stock@missing.yaml", "params file not found"),
        ("@{retail_params}", "tuned on scenario 'retail'"),
        ("run:0123456789abcdef0123456789abcdef", "run:0123456789abcdef0123456789abcdef"),
        ("run:abc", "--policy run:abc: "),  # not rendered as rich's :abc: emoji
        ("rules:{tmp}/no-such-rules", "rules:"),
        ("base_stock", "given twice"),
    ],
)
def test_bad_spec_is_one_line_exit_2_and_writes_nothing(tmp_path, mlflow_uri, spec, message):
    retail_params = tmp_path / "retail.yaml"
    retail_params.write_text(yaml.safe_dump({"policy": "base_stock", "scenario": "retail", "params": {"cover": 2}}))
    spec = spec.format(retail_params=retail_params, tmp=tmp_path)
    out = tmp_path / "out"
    result = compare("--scenario", "tiny", "--policy", "base_stock", "--policy", spec, "--episodes", "2",
                     "--out", str(out))  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_missing_model_from_a_real_process_prints_exactly_one_line(tmp_path, mlflow_uri):
    """Outside pytest's warning capture: MLflow's import-time warnings must not precede the error."""
    import subprocess
    import sys

    out = tmp_path / "out"
    command = [sys.executable, "-m", "invalloc.cli", "compare", "--scenario", "tiny", "--policy", "base_stock",
               "--policy", "models:/nobody@champion", "--out", str(out), "--tracking-uri", mlflow_uri]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: --policy models:/nobody@champion: ")
    assert "nobody" in result.stderr and not out.exists()


def test_out_folder_with_other_files_is_refused_untouched(tmp_path, mlflow_uri):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = compare("--scenario", "tiny", "--policy", "base_stock", "--policy", NOTHING, "--out", str(out))
    assert result.exit_code == 2 and "not empty" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    result = compare("--scenario", "tiny", "--policy", "base_stock", "--episodes", "2", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "at least two policies" in result.stderr


def test_write_report_replaces_an_earlier_report_and_leaves_no_temporary_folder(tmp_path):
    from invalloc.evaluation import write_report

    comparison = run_comparison("tiny", ["base_stock", NOTHING], 1, 0, progress=False, log_to_mlflow=False)
    # One episode: a difference, but no interval or verdict (not a zero-width "significant" one).
    assert set(comparison.paired["verdict"]) == {"one episode: no CI"} and comparison.paired["ci_low"].isna().all()
    out = tmp_path / "report"
    write_report(comparison, out)
    (out / "stale.png").write_text("from an older report")
    path = write_report(comparison, out)
    assert path == out / "report.html" and path.is_file()
    assert not (out / "stale.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
