"""Where runs are tracked: an embedded MLflow sqlite store by default, or an MLflow server.

Every command that logs (``train``, ``compare``, ``export``, ``rules approve``) calls
:func:`configure_tracking` first, so an unreachable server is reported in one line before
any work starts, and :func:`experiment_id` so that runs of a local store keep their
artifacts in a folder beside the database rather than wherever MLflow would default to.
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: The default store: a sqlite file in the working directory (no server needed).
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: Artifacts of a local store go here, beside ``mlflow.db``.
DEFAULT_ARTIFACT_FOLDER = "mlartifacts"


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message is one line naming the URI."""


def resolve_tracking_uri(tracking_uri: str | None) -> str:
    """``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the local sqlite store."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def is_remote(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def configure_tracking(tracking_uri: str | None = None, timeout_seconds: float = 5.0) -> str:
    """Point MLflow at ``tracking_uri`` (see :func:`resolve_tracking_uri`) after checking it.

    A server must answer its ``/health`` endpoint within ``timeout_seconds``; a sqlite
    file's folder must exist. Raises :class:`TrackingError` otherwise.
    """
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    if is_remote(uri):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_seconds) as response:
                if response.status != 200:
                    raise TrackingError(f"tracking server {uri} answered /health with HTTP {response.status}")
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise TrackingError(f"tracking server {uri} is unreachable ({reason})") from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not folder.is_dir():
            raise TrackingError(f"tracking store {uri}: folder {folder} does not exist")
    mlflow.set_tracking_uri(uri)
    return uri


def artifact_root(tracking_uri: str) -> str | None:
    """Artifact folder (file URI) for experiments of a local store; None for a server (it decides)."""
    if is_remote(tracking_uri):
        return None
    if tracking_uri.startswith("sqlite:///"):
        base = Path(tracking_uri.removeprefix("sqlite:///")).expanduser().resolve().parent
    else:
        base = Path.cwd()
    return (base / DEFAULT_ARTIFACT_FOLDER).as_uri()


def experiment_id(name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``, created (with an explicit artifact location) if missing."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    root = artifact_root(tracking_uri)
    location = f"{root}/{name}" if root else None
    return client.create_experiment(name, artifact_location=location)


def git_commit() -> str:
    """The commit of the working tree this package runs from ("unknown" outside git)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        )
        commit = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_version() -> str:
    try:
        return version("invalloc")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "unknown"


def standard_tags(scenario_hash: str) -> dict[str, str]:
    """Tags every invalloc run carries: code version and the scenario it ran on."""
    return {
        "invalloc.git_commit": git_commit(),
        "invalloc.version": package_version(),
        "invalloc.scenario_hash": scenario_hash,
    }
