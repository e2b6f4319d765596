"""Runs the bad-input corpus (``corpus.py``): every case must fail cleanly.

Clean means: exit code 2; standard error holds only ``error: …`` lines (no traceback; the one
compile notice of a first run on a cold numba cache is allowed) and
they contain the case's fragments (the file and field at fault); the working directory holds
exactly what it held before (nothing written, no MLflow store or run left behind). Most cases
run in-process through typer's CliRunner; those marked ``subprocess`` go through the real
console entry point (``python -m invalloc.cli``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from corpus import CASES, Case  # noqa: I001 - the corpus module beside this file
from typer.testing import CliRunner

from invalloc.cli import app
from invalloc.sim.kernels import COMPILE_NOTICE

SOURCE = Path(__file__).resolve().parents[2] / "src"
#: Exceptions an API case may raise: a plain refusal, never a crash.
CLEAN_EXCEPTIONS = (ValueError, TypeError, RuntimeError)
CRASHES = (RecursionError, MemoryError, AssertionError, OverflowError, KeyError, IndexError, AttributeError)


def _materialise(case: Case, work: Path) -> dict[str, str]:
    """Write the case's files into ``work``; returns environment variables it sets."""
    env: dict[str, str] = {}
    for name, content in case.files.items():
        if name == "@env":
            env = {k: v.replace("{w}", str(work)) for k, v in content.items()}
            continue
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return env


def _snapshot(work: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``work`` with its size and modification time."""
    found = {}
    for root, dirs, files in os.walk(work):
        for name in dirs + files:
            path = Path(root) / name
            stat = path.lstat()
            found[str(path.relative_to(work))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return found


def test_corpus_is_large_and_distinct():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(CASES) >= 250
    assert sum(case.subprocess for case in CASES) >= 5
    kinds = {case.id.split("/")[0] for case in CASES}
    for kind in (
        "scenario",
        "scenario-file",
        "trace-cli",
        "trace-scenario",
        "actions",
        "param",
        "params-file",
        "option",
        "experiment",
        "experiment-file",
        "tracking-train",
        "rules-show",
        "rules-verify",
        "states",
        "env",
        "sweep",
        "executor",
    ):
        assert kind in kinds, kind


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_fails_cleanly(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = _materialise(case, work)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if "MLFLOW_TRACKING_URI" not in env:
        # Commands that default to ./mlflow.db must not create one in the work dir either.
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(work)
    before = _snapshot(work)
    if case.api is not None:
        with pytest.raises(Exception) as caught:
            case.api(work)
        error = caught.value
        assert isinstance(error, CLEAN_EXCEPTIONS) and not isinstance(error, CRASHES), repr(error)
        message = str(error)
        assert "\n" not in message.strip(), message
        for fragment in case.expect:
            assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"
    else:
        argv = [arg.replace("{w}", str(work)) for arg in case.argv]
        if case.subprocess:
            result = subprocess.run(
                [sys.executable, "-m", "invalloc.cli", *argv],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "PYTHONPATH": str(SOURCE), **env},
                cwd=work,
            )
            code, stderr, stdout = result.returncode, result.stderr, result.stdout
        else:
            result = CliRunner().invoke(app, argv)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            code, stderr, stdout = result.exit_code, result.stderr, result.stdout
        assert "Traceback" not in stderr + stdout
        assert code == 2, f"exit {code}; stdout {stdout[-300:]!r}; stderr {stderr[-600:]!r}"
        # The one line a first run on a cold numba cache prints before work that compiles is
        # progress, not an error; everything else must be an error line.
        lines = [line for line in stderr.splitlines() if line.strip() and line.strip() != COMPILE_NOTICE]
        assert lines, "no error line"
        assert all(line.startswith("error: ") for line in lines), stderr
        for fragment in case.expect:
            fragment = fragment.replace("{w}", str(work))
            assert fragment.lower() in stderr.lower(), f"{fragment!r} not in {stderr!r}"
    assert _snapshot(work) == before, "the command wrote into the working directory"
