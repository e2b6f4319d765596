"""Training pipeline: real SB3 training on `tiny`, a real MLflow store (sqlite and a server)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from invalloc.agents.experiment import EXPERIMENTS_DIR, ExperimentError, load_experiment
from invalloc.agents.learned import load_learned_policy
from invalloc.agents.training import train
from invalloc.cli import app
from invalloc.config.loader import load_scenario
from invalloc.sim.network import compile_network
from invalloc.sim.simulator import Simulator

INVALLOC = str(Path(sys.executable).with_name("invalloc"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_template_db):
    """One short training on `tiny`, registered, in its own store (shared by this module's read-back tests)."""
    store = tmp_path_factory.mktemp("trained")
    shutil.copyfile(mlflow_template_db, store / "mlflow.db")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    result = train("tiny_smoke", tracking_uri=uri, run_name="readback", register="tiny-policy", progress=False)
    return uri, result


def test_run_holds_params_metrics_artifacts_and_tags(trained):
    uri, result = trained
    client = mlflow.MlflowClient(uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "readback"
    params = run.data.params
    assert params["experiment.algorithm"] == "PPO"
    assert params["experiment.hyperparameters.n_steps"] == "128"
    assert params["scenario.name"] == load_scenario("tiny").scenario.name
    assert any(key.startswith("scenario.products") for key in params)
    tags = run.data.tags
    assert tags["invalloc.scenario_hash"] == load_scenario("tiny").digest
    assert tags["invalloc.version"] and tags["invalloc.git_commit"]
    metrics = run.data.metrics
    # SB3's own training metrics arrive through the MLflow logger output format.
    assert {"train/value_loss", "train/policy_gradient_loss", "rollout/ep_rew_mean"} <= set(metrics)
    assert {"eval/total_reward", "eval/profit", "eval/fill_rate", "eval/rule_interventions"} <= set(metrics)
    tiers = compile_network(load_scenario("tiny")).tiers
    assert {f"eval/fill_rate/{tier}" for tier in tiers} <= set(metrics)
    assert any(key.startswith("constraints/") for key in metrics)
    history = client.get_metric_history(result.run_id, "eval/total_reward")
    assert [m.step for m in history] == [1024, 2048]
    assert max(m.value for m in history) == pytest.approx(result.best_reward)
    listed = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config", "checkpoint", "best", "evaluation.csv", "learning_curve.png"} <= listed
    best = {a.path for a in client.list_artifacts(result.run_id, "best")}
    assert best == {"best/model.zip", "best/policy_weights.npz", "best/observation_stats.npz", "best/policy.json"}
    checkpoint = {a.path for a in client.list_artifacts(result.run_id, "checkpoint")}
    assert "checkpoint/vecnormalize.npz" in checkpoint and not any(p.endswith(".pkl") for p in checkpoint)
    # Every artifact invalloc reads back has its files' sha256 recorded as a run tag.
    for artifact in ("config", "checkpoint", "best", "policy", "evaluation_episodes.csv", "evaluation.csv",
                     "learning_curve.png"):  # fmt: skip
        assert len(json.loads(tags[f"invalloc.sha256.{artifact}"])) >= 1
    folder = Path(client.download_artifacts(result.run_id, "evaluation.csv"))
    table = pd.read_csv(folder)
    assert list(table["timesteps"]) == [1024, 2048]
    config = Path(client.download_artifacts(result.run_id, "config"))
    assert yaml.safe_load((config / "experiment.yaml").read_text())["name"] == "tiny_smoke"
    png = Path(client.download_artifacts(result.run_id, "learning_curve.png")).read_bytes()
    assert png.startswith(b"\x89PNG")


def test_registered_model_reloads_and_predicts_the_same_actions(trained):
    uri, result = trained
    assert result.registered_version == "1"
    from_run = load_learned_policy(f"run:{result.run_id}", uri)
    from_registry = load_learned_policy("models:/tiny-policy/1", uri)
    mlflow.set_tracking_uri(uri)
    pyfunc = mlflow.pyfunc.load_model("models:/tiny-policy/1")
    network = compile_network(load_scenario("tiny"))
    simulator = Simulator(network)
    simulator.reset(seed=7)
    observations = []
    while not simulator.done:
        observations.append(from_run.observation(simulator))
        simulator.step(from_run.act(simulator))
    batch = np.stack(observations)
    names = pyfunc.metadata.get_input_schema().input_names()
    expected = from_run.actions(batch)
    np.testing.assert_array_equal(from_registry.actions(batch), expected)
    np.testing.assert_allclose(pyfunc.predict(pd.DataFrame(batch, columns=names)), expected, rtol=0, atol=1e-7)
    # The actions really depend on the state (not a constant policy that would pass trivially).
    assert np.ptp(expected, axis=0).max() > 0


def test_missing_run_and_model_are_one_line_errors(trained):
    uri, _ = trained
    from invalloc.sim.policy import PolicyError

    with pytest.raises(PolicyError, match="run:0123456789abcdef"):
        load_learned_policy("run:0123456789abcdef", uri)
    with pytest.raises(PolicyError, match="models:/no-such-model/1"):
        load_learned_policy("models:/no-such-model/1", uri)


def test_same_seed_same_training(mlflow_uri):
    first = train("tiny_smoke", tracking_uri=mlflow_uri, timesteps=1024, progress=False)
    second = train("tiny_smoke", tracking_uri=mlflow_uri, timesteps=1024, progress=False)
    assert first.run_id != second.run_id
    assert first.evaluations == second.evaluations


def test_crash_marks_the_run_failed(mlflow_uri, monkeypatch):
    import invalloc.agents.training as training

    def broken(*args, **kwargs):
        raise RuntimeError("evaluation exploded")

    monkeypatch.setattr(training, "evaluate", broken)
    started: list[str] = []
    with pytest.raises(RuntimeError, match="exploded"):
        train("tiny_smoke", tracking_uri=mlflow_uri, progress=False, on_run_started=started.append)
    assert mlflow.MlflowClient(mlflow_uri).get_run(started[0]).info.status == "FAILED"


def test_bad_experiment_reports_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nscenario: tiny\nalgorithm: PPO\nhyperparameters: {n_stepz: 3}\nenv: {n_envs: 0}\ntimestepz: 5\n"
    )
    with pytest.raises(ExperimentError) as caught:
        load_experiment(bad)
    text = "\n".join(caught.value.lines())
    assert "hyperparameters.n_stepz" in text and "env.n_envs" in text and "timestepz: unknown key" in text
    result = CliRunner().invoke(app, ["train", str(bad)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "hyperparameters.n_stepz" in result.output
    missing_scenario = tmp_path / "missing.yaml"
    missing_scenario.write_text("name: m\nscenario: nowhere.yaml\n")
    result = CliRunner().invoke(app, ["train", str(missing_scenario)])
    assert result.exit_code == 2 and "nowhere.yaml" in result.output


def test_unreachable_server_is_reported_before_training(tmp_path):
    port = _free_port()
    result = subprocess.run(
        [INVALLOC, "train", "tiny_smoke", "--tracking-uri", f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unreachable" in result.stderr and str(port) in result.stderr
    assert "MLflow run" not in result.stdout
    assert not (tmp_path / "mlflow.db").exists()


def test_resume_after_sigterm_continues_the_same_run(tmp_path, mlflow_uri):
    experiment = yaml.safe_load((EXPERIMENTS_DIR / "tiny_smoke.yaml").read_text())
    experiment.update(timesteps=12_288, checkpoint_every_timesteps=1024)
    experiment["evaluation"] = {"every_timesteps": 1024, "episodes": 2}
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(experiment))
    temp = tmp_path / "tmpdir"  # to see that no temporary folder is left behind
    temp.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "TMPDIR": str(temp),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "torch-cache")}  # fmt: skip
    process = subprocess.Popen(
        [INVALLOC, "train", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    line = process.stdout.readline()
    assert line.startswith("MLflow run: "), line + process.stderr.read()
    run_id = line.split()[-1]
    client = mlflow.MlflowClient(mlflow_uri)
    deadline = time.time() + 120
    while time.time() < deadline and not client.get_metric_history(run_id, "eval/total_reward"):
        time.sleep(0.5)
    assert client.get_metric_history(run_id, "eval/total_reward"), "no checkpoint within 2 minutes"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "KILLED" in stderr and "Traceback" not in stderr
    assert list(temp.iterdir()) == []
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    stopped_at = max(m.step for m in client.get_metric_history(run_id, "train/value_loss"))
    assert stopped_at < 12_288

    resumed = subprocess.run(
        [INVALLOC, "train", "--resume", run_id], capture_output=True, text=True, env=env, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"MLflow run: {run_id}" in resumed.stdout
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for key in ("eval/total_reward", "train/value_loss", "rollout/ep_rew_mean"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert len(steps) == len(set(steps)), f"{key} logged a step twice: {sorted(steps)}"
    evaluations = sorted(m.step for m in client.get_metric_history(run_id, "eval/total_reward"))
    assert evaluations[-1] == 12_288
    assert any(step > stopped_at for step in evaluations) and any(step <= stopped_at for step in evaluations)
    assert len(client.search_runs([run.info.experiment_id])) == 1
    assert list(temp.iterdir()) == []
    # A finished run cannot be resumed again.
    again = subprocess.run([INVALLOC, "train", "--resume", run_id], capture_output=True, text=True, env=env)
    assert again.returncode == 2 and "already finished" in again.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_training_against_a_real_mlflow_server(tmp_path, mlflow_template_db):
    shutil.copyfile(mlflow_template_db, tmp_path / "server.db")
    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)
        result = subprocess.run(
            [INVALLOC, "train", "tiny_smoke", "--timesteps", "1024", "--tracking-uri", uri, "--register", "served"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        run_id = result.stdout.splitlines()[0].split()[-1]
        client = mlflow.MlflowClient(uri)
        assert client.get_run(run_id).info.status == "FINISHED"
        assert "eval/total_reward" in client.get_run(run_id).data.metrics
        assert (tmp_path / "server-artifacts").is_dir()
        policy = load_learned_policy("models:/served/1", uri)
        network = compile_network(load_scenario("tiny"))
        simulator = Simulator(network)
        simulator.reset(seed=0)
        assert policy.act(simulator).shape == (network.n_decisions,)
        assert not (tmp_path / "mlflow.db").exists()  # nothing written to a local store by mistake
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")))
def test_shipped_experiments_validate(name):
    loaded = load_experiment(name)
    assert loaded.experiment.name == name
    assert loaded.experiment.timesteps >= loaded.experiment.evaluation.every_timesteps


def test_agent_on_the_feature_observation_trains_saves_and_acts(mlflow_uri, tmp_path):
    """env.observation: features reaches the env, the saved policy, the pyfunc's input schema
    and the policy acting on a bare simulator (which must rebuild the same observation)."""
    from invalloc.env.features import FEATURE_SET_VERSION, FeatureSet

    experiment = yaml.safe_load((EXPERIMENTS_DIR / "tiny_smoke.yaml").read_text())
    experiment["env"] = {**experiment.get("env", {}), "observation": "features"}
    path = tmp_path / "features.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = train(path, tracking_uri=mlflow_uri, timesteps=1024, register="tiny-features", progress=False)
    run = mlflow.MlflowClient(mlflow_uri).get_run(result.run_id)
    assert run.data.params["experiment.env.observation"] == "features"
    policy = load_learned_policy(f"run:{result.run_id}", mlflow_uri)
    assert policy.observation_kind == "features"
    assert policy.feature_set_version == FEATURE_SET_VERSION
    network = compile_network(load_scenario(experiment["scenario"]))
    feature_set = FeatureSet(network)
    mlflow.set_tracking_uri(mlflow_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/tiny-features/1")
    assert pyfunc.metadata.get_input_schema().input_names() == feature_set.names
    simulator = Simulator(network)
    simulator.reset(seed=3)
    observations = []
    while not simulator.done:
        observation = policy.observation(simulator)
        np.testing.assert_array_equal(observation, feature_set.compute(simulator).astype(np.float32))
        observations.append(observation)
        simulator.step(policy.act(simulator))
    batch = np.stack(observations)
    frame = pd.DataFrame(batch, columns=feature_set.names)
    np.testing.assert_allclose(pyfunc.predict(frame), policy.actions(batch), rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("algorithm", "extra"),
    [
        ("A2C", {"hyperparameters": {"n_steps": 8}}),
        ("SAC", {"hyperparameters": {"learning_starts": 64, "batch_size": 32, "buffer_size": 1000}}),
        ("TD3", {"hyperparameters": {"learning_starts": 64, "batch_size": 32, "buffer_size": 1000}}),
        ("PPO", {"hyperparameters": {"n_steps": 64, "batch_size": 64}, "env": {"n_envs": 2, "vec_env": "subproc"}}),
    ],
)
def test_every_algorithm_and_subprocess_envs_train(tmp_path, mlflow_uri, algorithm, extra):
    experiment = {
        "name": f"tiny_{algorithm.lower()}",
        "scenario": "tiny",
        "algorithm": algorithm,
        "policy": {"net_arch": [16, 16]},
        "env": {"n_envs": 1},
        "timesteps": 256,
        "evaluation": {"every_timesteps": 128, "episodes": 2},
        "checkpoint_every_timesteps": 128,
    }
    for key, value in extra.items():
        experiment[key] = {**experiment.get(key, {}), **value}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))
    result = train(path, tracking_uri=mlflow_uri, progress=False)
    run = mlflow.MlflowClient(mlflow_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["experiment.algorithm"] == algorithm
    assert [e["timesteps"] for e in result.evaluations][-1] == result.timesteps >= 256
    policy = load_learned_policy(f"run:{result.run_id}", mlflow_uri)
    network = compile_network(load_scenario("tiny"))
    simulator = Simulator(network)
    simulator.reset(seed=1)
    assert np.isfinite(policy.act(simulator)).all()
