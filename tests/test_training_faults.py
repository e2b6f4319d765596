"""Faults in training: kill -9, a concurrent --resume, a crash, relative scenario files, temp folders.

Real components: `invalloc train` subprocesses, a real MLflow sqlite store in the test's tmp
dir, real SB3 training on `tiny`. Every subprocess gets its own TMPDIR so that a leftover
temporary folder is seen.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from invalloc.agents.experiment import resolve_experiment_path
from invalloc.cli import app
from invalloc.config.loader import resolve_scenario_path
from invalloc.processes import FileLock, ProcessIdentity, process_start
from invalloc.tracking import KILLED_REASON_TAG, RunBusy, RunLease

INVALLOC = str(Path(sys.executable).with_name("invalloc"))
OWNER = "invalloc.owner."


def _experiment(tmp_path: Path, name: str = "long.yaml", **changes) -> Path:
    """tiny_smoke, changed: a checkpoint and an evaluation every 1024 steps by default."""
    experiment = yaml.safe_load(resolve_experiment_path("tiny_smoke").read_text())
    experiment.update(checkpoint_every_timesteps=1024, evaluation={"every_timesteps": 1024, "episodes": 2})
    experiment.update(changes)
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(experiment))
    return path


def _environment(tmp_path: Path, uri: str) -> tuple[dict[str, str], Path]:
    temp = tmp_path / "tmpdir"
    temp.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "TMPDIR": str(temp),
        # torch keeps a compiler cache in the temp folder by default; it is a cache, not ours.
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "torch-cache"),
    }
    return env, temp


def _steps(client, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def _wait_for_progress(client, run_id: str, process: subprocess.Popen) -> None:
    """Until the run has logged its first checkpoint's evaluation (or the trainer died)."""
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not _steps(client, run_id, "eval/total_reward"):
        time.sleep(0.5)
    assert _steps(client, run_id, "eval/total_reward"), "no checkpoint within 5 minutes: " + str(process.poll())


def test_kill_9_concurrent_resume_refused_then_resume_marks_killed(tmp_path, mlflow_uri):
    env, temp = _environment(tmp_path, mlflow_uri)
    path = _experiment(tmp_path, timesteps=200_000)
    trainer = subprocess.Popen(
        [INVALLOC, "train", str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        line = trainer.stdout.readline()
        assert line.startswith("MLflow run: "), line
        run_id = line.split()[-1]
        client = mlflow.MlflowClient(mlflow_uri)
        _wait_for_progress(client, run_id, trainer)
        run = client.get_run(run_id)
        assert run.info.status == "RUNNING"
        assert run.data.tags[OWNER + "pid"] == str(trainer.pid)
        assert run.data.tags[OWNER + "start"] == process_start(trainer.pid)

        # A second trainer on the live run is refused before it writes anything.
        concurrent = subprocess.run(
            [INVALLOC, "train", "--resume", run_id], capture_output=True, text=True, env=env, timeout=300
        )
        assert concurrent.returncode == 2, concurrent.stderr
        lines = concurrent.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in concurrent.stderr
        assert run_id in lines[0] and f"pid {trainer.pid}" in lines[0]
        assert "MLflow run" not in concurrent.stdout
        assert trainer.poll() is None, "the trainer died while the resume was refused"
        assert client.get_run(run_id).info.status == "RUNNING"
    finally:
        trainer.kill()  # SIGKILL: nothing of the trainer's own runs
        trainer.wait(timeout=60)
    assert trainer.returncode == -9
    assert client.get_run(run_id).info.status == "RUNNING"  # as a kill -9 leaves it
    leftovers = [p.name for p in temp.iterdir()]
    assert any(name.startswith(f"invalloc-train.{trainer.pid}.") for name in leftovers), leftovers
    # The step of the last checkpoint in the store (a kill can land after a checkpoint's files
    # are logged and before the metrics up to it are, so the metric history may stop earlier).
    state_file = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="checkpoint/trainer_state.json", tracking_uri=mlflow_uri, dst_path=tmp_path / "ck"
    )
    checkpoint = json.loads(Path(state_file).read_text())["timesteps"]
    assert max(_steps(client, run_id, "eval/total_reward")) <= checkpoint

    resumed = subprocess.run(
        [INVALLOC, "train", "--resume", run_id, "--timesteps", str(checkpoint + 1024)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"marked run {run_id} KILLED: owner process pid {trainer.pid}" in resumed.stderr
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert f"pid {trainer.pid}" in run.data.tags[KILLED_REASON_TAG] and "gone" in run.data.tags[KILLED_REASON_TAG]
    assert run.data.tags[OWNER + "pid"] != str(trainer.pid)  # the resuming process owned it after
    for key in ("eval/total_reward", "train/value_loss", "rollout/ep_rew_mean"):
        steps = _steps(client, run_id, key)
        assert len(steps) == len(set(steps)), f"{key} logged a step twice: {sorted(steps)}"
    assert max(_steps(client, run_id, "eval/total_reward")) == checkpoint + 1024
    assert list(temp.iterdir()) == []  # the killed trainer's folder was swept, the resume's removed


def test_runs_clean_ends_only_runs_whose_owner_is_gone(tmp_path, mlflow_uri, monkeypatch):
    client = mlflow.MlflowClient(mlflow_uri)
    experiment = client.create_experiment("faults")
    me = ProcessIdentity.current()
    gone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone_start = process_start(gone.pid)
    gone.kill()
    gone.wait()

    def run(owner: dict[str, str] | None) -> str:
        tags = {OWNER + key: value for key, value in (owner or {}).items()}
        return client.create_run(experiment, tags=tags).info.run_id

    local = {"host": me.host, "boot": me.boot}
    now = time.time()
    runs = {
        "dead pid": run({**local, "pid": str(gone.pid), "start": gone_start, "heartbeat": f"{now:.0f}"}),
        "pid reused": run({**local, "pid": str(me.pid), "start": "1", "heartbeat": f"{now:.0f}"}),
        "rebooted": run({**local, "boot": "another-boot", "pid": str(me.pid), "start": me.start}),
        "live": run({**local, "pid": str(me.pid), "start": me.start, "heartbeat": "0"}),
        "other host, lease expired": run(
            {"host": "elsewhere.invalid", "pid": "1", "heartbeat": f"{now - 3600:.0f}", "lease_seconds": "600"}
        ),
        "other host, lease valid": run(
            {"host": "elsewhere.invalid", "pid": "1", "heartbeat": f"{now - 60:.0f}", "lease_seconds": "600"}
        ),
        "other container, lease valid": run(
            {**local, "pid_namespace": "pid:[1]", "pid": str(gone.pid), "heartbeat": f"{now:.0f}"}
        ),
        "no owner": run(None),
    }
    finished = run({**local, "pid": str(gone.pid), "start": gone_start})
    client.set_terminated(finished, "FINISHED")
    # Temporary folders: one of the dead process, one of this live process.
    temp = tmp_path / "tmpdir"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    (temp / f"invalloc-train.{gone.pid}.{gone_start}.abc").mkdir()
    (temp / f"invalloc-train.{gone.pid}.{gone_start}.abc" / "model.zip").write_text("x")
    (temp / f"invalloc-export.{me.pid}.{me.start}.def").mkdir()
    (temp / "unrelated").mkdir()

    result = CliRunner().invoke(app, ["runs", "clean", "--tracking-uri", mlflow_uri])
    assert result.exit_code == 0, result.output
    expected_killed = {"dead pid", "pid reused", "rebooted", "other host, lease expired"}
    for label, run_id in runs.items():
        info = client.get_run(run_id)
        if label in expected_killed:
            assert info.info.status == "KILLED", label
            assert info.data.tags[KILLED_REASON_TAG], label
            assert run_id in result.stdout
        else:
            assert info.info.status == "RUNNING", label
            assert KILLED_REASON_TAG not in info.data.tags, label
    assert "no heartbeat" in client.get_run(runs["other host, lease expired"]).data.tags[KILLED_REASON_TAG]
    assert client.get_run(finished).info.status == "FINISHED"
    assert f"{len(expected_killed)} run(s) marked KILLED" in result.stdout
    assert sorted(p.name for p in temp.iterdir()) == [f"invalloc-export.{me.pid}.{me.start}.def", "unrelated"]


def test_lock_file_is_exclusive_and_released(tmp_path):
    first, second = FileLock(tmp_path / "run.lock"), FileLock(tmp_path / "run.lock")
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert not (tmp_path / "run.lock").exists()
    assert second.acquire()
    second.release()


def test_lease_renews_its_heartbeat_and_refuses_a_second_owner(mlflow_uri):
    client = mlflow.MlflowClient(mlflow_uri)
    run_id = client.create_run(client.create_experiment("lease")).info.run_id
    lease = RunLease(client, mlflow_uri, heartbeat_seconds=0.05)
    lease.acquire(run_id)
    try:
        first = client.get_run(run_id).data.tags[OWNER + "heartbeat"]
        with pytest.raises(RunBusy, match=f"run {run_id} is being trained by another process"):
            RunLease(client, mlflow_uri).acquire(run_id)  # the lock file is held
        deadline = time.time() + 30
        while client.get_run(run_id).data.tags[OWNER + "heartbeat"] == first and time.time() < deadline:
            time.sleep(0.1)
        assert client.get_run(run_id).data.tags[OWNER + "heartbeat"] != first
    finally:
        lease.release()
    assert client.get_run(run_id).data.tags[OWNER + "heartbeat"] == "0"  # given up
    again = RunLease(client, mlflow_uri)  # released: this process may take it again
    again.acquire(run_id)
    again.release()
    assert client.get_run(run_id).info.status == "RUNNING"

    # Owned from another host: refused while its lease holds, even when the run is not RUNNING.
    client.set_terminated(run_id, "KILLED")
    for key, value in {"host": "elsewhere.invalid", "pid": "1", "heartbeat": f"{time.time():.0f}"}.items():
        client.set_tag(run_id, OWNER + key, value)
    with pytest.raises(RunBusy, match="pid 1 on elsewhere.invalid"):
        RunLease(client, mlflow_uri).acquire(run_id)
    client.set_tag(run_id, OWNER + "heartbeat", "0")  # that owner gave it up
    last = RunLease(client, mlflow_uri)
    last.acquire(run_id)
    last.release()


def _trace_scenario(root: Path) -> Path:
    """`tiny` with its demand replayed from a trace the scenario names relatively (../data/…)."""
    scenario = yaml.safe_load(resolve_scenario_path("tiny").read_text())
    horizon = scenario["episode"]["horizon"]
    rows = [
        {"period": t, "channel": channel, "sku": sku, "quantity": quantity + t % 3}
        for t in range(horizon)
        for channel, sku, quantity in [("stores", "widget", 10), ("stores", "gadget", 5), ("online", "widget", 5)]
    ]
    (root / "data").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "data" / "demand.csv", index=False)
    scenario["demand"] = {"trace": "../data/demand.csv"}
    path = root / "scenarios" / "tiny_trace.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(scenario))
    return path


def test_crash_is_one_line_and_a_relative_trace_run_resumes_and_exports_elsewhere(tmp_path, mlflow_uri, monkeypatch):
    import invalloc.agents.training as training

    project = tmp_path / "project"
    _trace_scenario(project)
    path = _experiment(project / "experiments", "trace.yaml", scenario="../scenarios/tiny_trace.yaml", timesteps=2048)
    temp = tmp_path / "in-process-tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "torch-cache"))  # a cache, not ours
    real_evaluate, calls = training.evaluate, []

    def evaluate_then_explode(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # after the first checkpoint (1024 steps)
            raise RuntimeError("evaluation exploded")
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate", evaluate_then_explode)
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["train", str(path)])
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    run_id = result.stdout.split("MLflow run: ")[1].split()[0]
    assert errors[-1].startswith("error: training failed: RuntimeError: evaluation exploded")
    assert run_id in errors[-1] and sum(line.startswith("error") for line in errors) == 1
    client = mlflow.MlflowClient(mlflow_uri)
    assert client.get_run(run_id).info.status == "FAILED"
    logged = Path(client.download_artifacts(run_id, "error/traceback.txt", str(tmp_path / "tb"))).read_text()
    assert "Traceback" in logged and "evaluate_then_explode" in logged
    assert list(temp.iterdir()) == []
    assert _steps(client, run_id, "eval/total_reward") == [1024]

    # The original files are gone; the resume runs from elsewhere on the logged copies.
    (project / "data" / "demand.csv").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env, subprocess_temp = _environment(tmp_path, mlflow_uri)
    resumed = subprocess.run(
        [INVALLOC, "train", "--resume", run_id], capture_output=True, text=True, env=env, cwd=elsewhere, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert client.get_run(run_id).info.status == "FINISHED"
    assert _steps(client, run_id, "eval/total_reward") == [1024, 2048]
    assert list(subprocess_temp.iterdir()) == []

    # export restores the logged scenario with its trace too, and leaves no temporary folder.
    out = elsewhere / "rules"
    exported = subprocess.run(
        [INVALLOC, "export", "--run", run_id, "--out", str(out), "--no-register", "--iterations", "1",
         "--episodes", "2", "--teacher-episodes", "2", "--validation-episodes", "1", "--evaluation-episodes", "1"],
        capture_output=True, text=True, env=env, cwd=elsewhere, timeout=600,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert (out / "manifest.json").is_file()
    assert list(subprocess_temp.iterdir()) == []
    assert sorted(p.name for p in elsewhere.iterdir()) == ["rules"]


def test_compare_and_export_runs_are_owned_and_a_killed_one_is_marked_killed(tmp_path, mlflow_uri):
    """Comparison and export runs hold a lease like training runs (tracking.owned_run): one whose
    process is killed with -9 inside it is marked KILLED by `runs clean`; a finished one is left."""
    code = (
        "import os, signal, sys, mlflow\n"
        "from invalloc.tracking import experiment_id, owned_run\n"
        "uri = sys.argv[1]\n"
        "client = mlflow.MlflowClient(uri)\n"
        "with owned_run(client, uri, experiment_id('compare', uri), 'finished', {}) as run:\n"
        "    pass\n"
        "with owned_run(client, uri, experiment_id('compare', uri), 'killed', {}) as run:\n"
        "    print(run.info.run_id, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code, mlflow_uri], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == -signal.SIGKILL, out.stderr
    killed = out.stdout.split()[0]
    client = mlflow.MlflowClient(mlflow_uri)
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("compare").experiment_id])}
    assert runs["killed"].info.status == "RUNNING" and runs["finished"].info.status == "FINISHED"
    assert any(key.startswith("invalloc.owner.") for key in runs["killed"].data.tags)
    result = CliRunner().invoke(app, ["runs", "clean", "--tracking-uri", mlflow_uri])
    assert result.exit_code == 0, result.output
    assert client.get_run(killed).info.status == "KILLED"
    assert client.get_run(runs["finished"].info.run_id).info.status == "FINISHED"
