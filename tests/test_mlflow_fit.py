"""MLflow fit: a short `invalloc train` prints no MLflow noise; its run carries MLflow's system tags
and a descriptive name; its experiment the classic-ML kind; its policy model public requirements."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
INVALLOC = str(Path(sys.executable).with_name("invalloc"))
#: What MLflow prints when it is noisy: warnings (with raw ANSI colour codes), INFO lines, progress bars.
NOISE = ("Warning", "WARNING", "\x1b[", " INFO ", "Downloading artifacts", "Uploading artifacts")


def _commit_of_source() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=SOURCE, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="module")
def short_train(tmp_path_factory, mlflow_template_db):
    """`invalloc train tiny_smoke` for 256 steps, as a user runs it (its own process and output)."""
    import shutil

    work = tmp_path_factory.mktemp("train")
    shutil.copyfile(mlflow_template_db, work / "mlflow.db")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    result = subprocess.run(
        [INVALLOC, "train", "tiny_smoke", "--timesteps", "256", "--tracking-uri", uri, "--register", "tiny-policy"],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(SOURCE)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_id = next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("MLflow run:"))
    return uri, run_id, result.stdout + result.stderr, work


def test_a_short_train_prints_no_mlflow_noise(short_train):
    _, _, output, _ = short_train
    for noise in NOISE:
        assert noise not in output, f"{noise!r} in the output of `invalloc train`:\n{output}"


def test_the_run_page_shows_source_user_commit_and_a_descriptive_name(short_train):
    uri, run_id, _, _ = short_train
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.run_name == "tiny_smoke-tiny-s0"  # experiment, scenario, seed
    tags = run.data.tags
    assert tags["mlflow.source.type"] == "LOCAL"
    assert Path(tags["mlflow.source.name"]).name == "invalloc"  # the command that created it
    assert tags["mlflow.user"]
    commit = _commit_of_source()
    if commit is not None:  # a git checkout: the commit the code ran from
        assert tags["mlflow.source.git.commit"] == commit
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_policy_model_can_be_rebuilt_from_a_package_index(short_train, tmp_path):
    """Its requirements are published versions (no local `+cpu`, no unpublished invalloc); the
    invalloc code it runs ships with it, and a fresh interpreter loads it from there."""
    uri, _, _, _ = short_train
    source = mlflow.MlflowClient(uri, registry_uri=uri).get_model_version_download_uri("tiny-policy", "1")
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=uri, dst_path=str(tmp_path)))
    requirements = (folder / "requirements.txt").read_text().split()
    names = [line.split("==")[0] for line in requirements]
    assert all("==" in line and "+" not in line for line in requirements), requirements
    assert "invalloc" not in names and {"torch", "stable-baselines3", "sb3-contrib", "mlflow", "numpy"} <= set(names)
    assert (folder / "code" / "invalloc" / "agents" / "pyfunc.py").is_file()
    assert (folder / "input_example.json").is_file()  # no "input example was not provided" warning
    script = (
        "import json, sys, mlflow\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "actions = model.predict(model.input_example)\n"
        "import invalloc\n"
        "print(json.dumps({'shape': list(actions.shape), 'invalloc': invalloc.__file__}))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script, "models:/tiny-policy/1"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "MLFLOW_TRACKING_URI": uri},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["shape"][0] == 1 and loaded["shape"][1] > 0
    assert f"{os.sep}code{os.sep}invalloc{os.sep}__init__.py" in loaded["invalloc"]


def test_runs_of_compare_and_export_carry_the_system_tags_too(mlflow_uri):
    """Every run invalloc creates goes through `tracking.create_run` (owned runs included)."""
    from invalloc.tracking import experiment_id, owned_run

    client = mlflow.MlflowClient(mlflow_uri)
    with owned_run(client, mlflow_uri, experiment_id("compare", mlflow_uri), "named", {"x": "1"}) as run:
        run_id = run.info.run_id
    tags = client.get_run(run_id).data.tags
    assert tags["x"] == "1" and tags["mlflow.runName"] == "named"
    assert {"mlflow.user", "mlflow.source.name", "mlflow.source.type"} <= set(tags)
    # An experiment created before the kind tag existed gets it when next used.
    legacy = client.create_experiment("legacy")
    assert "mlflow.experimentKind" not in client.get_experiment(legacy).tags
    assert experiment_id("legacy", mlflow_uri) == legacy
    assert client.get_experiment(legacy).tags["mlflow.experimentKind"] == "custom_model_development"
