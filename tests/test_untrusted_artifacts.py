"""Loading a run never executes code: planted pickles in the artifact store are refused (their
sha256 differs from the one recorded at logging) and, even with the hashes forged to match,
never unpickled — for `simulate --policy run:ID`, `models:/`, and `train --resume`."""

from __future__ import annotations

import base64
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pytest
from typer.testing import CliRunner

from invalloc.agents.integrity import hashes, tag_key
from invalloc.agents.learned import LearnedPolicy, load_learned_policy
from invalloc.agents.training import train
from invalloc.cli import app
from invalloc.sim.policy import PolicyError

runner = CliRunner()


class _Payload:
    """Unpickling this runs ``touch MARKER``: what an attacker plants."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payload(marker: Path) -> bytes:
    data = pickle.dumps(_Payload(marker))
    pickle.loads(pickle.dumps(_Payload(marker.with_suffix(".selftest"))))  # the payload really works
    assert marker.with_suffix(".selftest").exists()
    marker.with_suffix(".selftest").unlink()
    return data


def _plant_model_zip(path: Path, marker: Path) -> None:
    """Rewrite SB3's model.zip with a cloudpickled ``lr_schedule`` that runs ``touch marker``."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    serialized = base64.b64encode(_payload(marker)).decode()
    data["lr_schedule"] = {":type:": "<class 'function'>", ":serialized:": serialized}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)


def _local(uri: str) -> Path:
    return Path(urlparse(uri).path)


@pytest.fixture
def run(tmp_path, mlflow_template_db, monkeypatch):
    """A short real training run on `tiny` (registered), its tracking URI and artifact folder."""
    store = tmp_path / "store"
    store.mkdir()
    shutil.copyfile(mlflow_template_db, store / "mlflow.db")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    result = train("tiny_smoke", tracking_uri=uri, timesteps=256, register="tiny-policy", progress=False)
    client = mlflow.MlflowClient(uri)
    artifacts = _local(client.get_run(result.run_id).info.artifact_uri)
    return uri, result, client, artifacts


def _forge_hashes(client, run_id: str, artifact_path: str, folder: Path) -> None:
    """What only someone who can also write the tracking store could do."""
    client.set_tag(run_id, tag_key(artifact_path), json.dumps(hashes(folder)))


def test_planted_model_zip_is_refused_by_simulate_and_never_unpickled(run, tmp_path):
    uri, result, client, artifacts = run
    marker = tmp_path / "pwned"
    _plant_model_zip(artifacts / "best" / "model.zip", marker)
    spec = f"run:{result.run_id}"
    command = ["simulate", "--scenario", "tiny", "--policy", spec, "--episodes", "1", "--json"]
    refused = runner.invoke(app, command)
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.startswith("error: ") and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "best/model.zip: sha256 does not match" in refused.stderr
    compared = runner.invoke(app, ["compare", "--scenario", "tiny", "--policy", "base_stock", "--policy", spec,
                                   "--episodes", "1", "--out", str(tmp_path / "report")])  # fmt: skip
    assert compared.exit_code == 2 and "sha256 does not match" in compared.stderr
    assert not marker.exists()
    # With the recorded hashes forged too, the policy loads — from JSON and npz — and the pickle never runs.
    _forge_hashes(client, result.run_id, "best", artifacts / "best")
    loaded = runner.invoke(app, command)
    assert loaded.exit_code == 0, loaded.output
    assert not marker.exists()


def test_planted_or_extra_files_in_a_registered_model_are_refused(run, tmp_path):
    uri, result, client, _ = run
    marker = tmp_path / "pwned"
    version = client.get_model_version("tiny-policy", "1")
    model_id = version.model_id or version.source.removeprefix("models:/")
    model_folder = _local(client.get_logged_model(model_id).artifact_location)
    policy_folder = next(p.parent for p in model_folder.rglob("policy.json"))
    before = load_learned_policy("models:/tiny-policy/1", uri)
    _plant_model_zip(policy_folder / "model.zip", marker)
    with pytest.raises(PolicyError, match="model.zip: sha256 does not match"):
        load_learned_policy("models:/tiny-policy/1", uri)
    (policy_folder / "extra.pkl").write_bytes(_payload(marker))
    with pytest.raises(PolicyError, match="policy/extra.pkl: not logged by invalloc"):
        load_learned_policy("models:/tiny-policy/1", uri)
    (policy_folder / "extra.pkl").unlink()
    (policy_folder / "model.zip").unlink()
    with pytest.raises(PolicyError, match="policy/model.zip: missing"):
        load_learned_policy("models:/tiny-policy/1", uri)
    assert not marker.exists()
    assert before.name == "tiny-policy/1"


def test_resume_refuses_planted_pickles_and_never_unpickles_them(run, tmp_path):
    uri, result, client, artifacts = run
    marker = tmp_path / "pwned"
    client.set_terminated(result.run_id, "KILLED")  # as if stopped: resumable
    checkpoint = artifacts / "checkpoint"
    genuine = (checkpoint / "model.zip").read_bytes()
    _plant_model_zip(checkpoint / "model.zip", marker)
    (checkpoint / "vecnormalize.pkl").write_bytes(_payload(marker))
    command = ["train", "--resume", result.run_id, "--timesteps", "512", "--tracking-uri", uri]

    def refused(match: str) -> None:
        result_ = runner.invoke(app, command)
        assert result_.exit_code == 2, result_.output
        assert result_.stderr.startswith("error: ") and len(result_.stderr.splitlines()) == 1, result_.stderr
        assert match in result_.stderr, result_.stderr
        assert client.get_run(result.run_id).info.status == "KILLED"
        assert not marker.exists()

    refused("checkpoint/model.zip: sha256 does not match")
    (checkpoint / "model.zip").write_bytes(genuine)
    refused("checkpoint/vecnormalize.pkl: not logged by invalloc")
    # With the hashes forged to match the planted files, resuming reads model.zip's JSON and state
    # dicts only (every cloudpickled field replaced) and the VecNormalize statistics from .npz.
    _plant_model_zip(checkpoint / "model.zip", marker)
    _forge_hashes(client, result.run_id, "checkpoint", checkpoint)
    resumed = runner.invoke(app, command)
    assert resumed.exit_code == 0, resumed.output
    assert not marker.exists()
    assert client.get_run(result.run_id).info.status == "FINISHED"
    # Control: the planted file is a real attack — SB3's own load would have run it.
    from stable_baselines3 import PPO

    control = tmp_path / "control"
    (tmp_path / "control.zip").write_bytes(genuine)
    _plant_model_zip(tmp_path / "control.zip", control)
    try:
        PPO.load(tmp_path / "control.zip", device="cpu")
    except Exception:  # noqa: BLE001 - whatever happens after the payload ran
        pass
    assert control.exists()


def test_a_policy_folder_loads_from_json_and_npz_only(run, tmp_path):
    """model.zip is not needed (nor read); an old folder without the network description is refused."""
    uri, result, client, artifacts = run
    folder = tmp_path / "policy"
    shutil.copytree(artifacts / "best", folder)
    reference = load_learned_policy(f"run:{result.run_id}", uri)
    (folder / "model.zip").write_bytes(b"not a zip")
    policy = LearnedPolicy.load(folder)
    import numpy as np

    observations = np.random.default_rng(0).normal(size=(8, reference.model.observation_space.shape[0]))
    np.testing.assert_array_equal(policy.actions(observations), reference.actions(observations))
    meta = json.loads((folder / "policy.json").read_text())
    for key, value, match in [
        ("network", None, "no network description"),
        ("network", {**meta["network"], "activation": "os.system"}, "activation 'os.system'"),
        ("network", {**meta["network"], "policy_class": "Evil"}, "policy class 'Evil'"),
        ("network", {**meta["network"], "kwargs": {"optimizer_class": "os.system"}}, "may not set optimizer_class"),
    ]:
        (folder / "policy.json").write_text(json.dumps({**meta, key: value}))
        with pytest.raises(PolicyError, match=match):
            LearnedPolicy.load(folder)
    (folder / "policy.json").write_text(json.dumps(meta))
    np.savez(folder / "policy_weights.npz", evil=np.array([_Payload(tmp_path / "pwned")], dtype=object))
    with pytest.raises(PolicyError, match="policy_weights.npz"):
        LearnedPolicy.load(folder)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("algorithm", ["PPO", "A2C", "SAC", "TD3"])
def test_rebuilt_network_acts_exactly_like_the_sb3_model(algorithm, tmp_path):
    """Saved and rebuilt from JSON and npz, every algorithm's policy predicts what SB3's model does."""
    import numpy as np
    import torch

    from invalloc.agents.algorithms import algorithm_class
    from invalloc.env import AllocationEnv

    env = AllocationEnv("tiny")
    kwargs = {"net_arch": [16, 8], "activation_fn": torch.nn.ReLU}
    model = algorithm_class(algorithm)("MlpPolicy", env, device="cpu", seed=0, policy_kwargs=kwargs)
    with torch.no_grad():
        for parameter in model.policy.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)  # not the initial weights
    LearnedPolicy(model, "digest", None, name="x").save(tmp_path / "policy", algorithm)
    loaded = LearnedPolicy.load(tmp_path / "policy")
    assert type(loaded.model).__name__ == type(model.policy).__name__
    observations = np.random.default_rng(1).normal(size=(16, env.observation_space.shape[0])).astype(np.float32)
    expected, _ = model.predict(observations, deterministic=True)
    np.testing.assert_array_equal(loaded.actions(observations), np.clip(expected, -1, 1))
    assert np.ptp(expected, axis=0).max() > 0
