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
import urllib.parse
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


#: Database schemes MLflow's SQL store takes (besides sqlite); checked by connecting to the host.
_SQL_SCHEMES = ("postgresql", "mysql", "mssql")


def configure_tracking(tracking_uri: str | None = None, timeout_seconds: float = 5.0, must_exist: bool = False) -> str:
    """Point MLflow at ``tracking_uri`` (see :func:`resolve_tracking_uri`) after checking it.

    Checked in well under a second, before any work and before MLflow touches the store
    (MLflow itself retries an unusable store for minutes): a server must answer ``/health``
    within ``timeout_seconds``; a database host must accept a connection; a sqlite file must be
    an MLflow store (or not exist yet, in a writable folder); a store folder must exist. With
    ``must_exist`` (commands that only read runs) a store that does not exist yet is refused
    rather than created. Raises :class:`TrackingError` otherwise.
    """
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri, timeout_seconds, must_exist)
    mlflow.set_tracking_uri(uri)
    return uri


def check_tracking_uri(uri: str, timeout_seconds: float = 5.0, must_exist: bool = False) -> None:
    """Raise :class:`TrackingError` (one line naming ``uri``) if ``uri`` is not a usable store."""

    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if uri == "databricks" or uri.startswith("databricks:"):
        return
    if is_remote(uri):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_seconds) as response:
                if response.status != 200:
                    raise TrackingError(f"tracking server {uri} answered /health with HTTP {response.status}")
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise TrackingError(f"tracking server {uri} is unreachable ({reason})") from None
    elif scheme == "sqlite":
        _check_sqlite(uri, must_exist)
    elif scheme.split("+")[0] in _SQL_SCHEMES:
        import socket

        try:
            parts = urllib.parse.urlsplit(uri)
            host, port = parts.hostname, parts.port
        except ValueError as error:
            raise TrackingError(f"tracking store {uri}: malformed URI ({error})") from None
        if not host:
            raise TrackingError(f"tracking store {uri}: no database host")
        defaults = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
        try:
            socket.create_connection((host, port or defaults[scheme.split("+")[0]]), timeout=timeout_seconds).close()
        except OSError as error:
            raise TrackingError(
                f"tracking store {uri}: database host unreachable ({error.strerror or error})"
            ) from None
    elif scheme in ("file", ""):
        path = Path(urllib.parse.urlsplit(uri).path if scheme else uri).expanduser()
        if path.exists() and not path.is_dir():
            raise TrackingError(f"tracking store {uri}: {path} is a file; use sqlite:///{path} for an sqlite store")
        if not path.exists():
            raise TrackingError(
                f"tracking store {uri}: folder {path} does not exist (use sqlite:///PATH, a store folder or http(s)://HOST)"
            )
    elif scheme != "databricks":
        raise TrackingError(
            f"tracking store {uri}: unsupported scheme '{scheme}' "
            "(use sqlite:///PATH, a store folder, http(s)://HOST or postgresql://…)"
        )


def _check_sqlite(uri: str, must_exist: bool) -> None:
    import sqlite3
    import tempfile

    if not uri.startswith("sqlite:///") or uri == "sqlite:///":
        raise TrackingError(f"tracking store {uri}: expected sqlite:///PATH (a file path after three slashes)")
    path = Path(uri.removeprefix("sqlite:///")).expanduser()
    folder = path.resolve().parent
    if not folder.is_dir():
        raise TrackingError(f"tracking store {uri}: folder {folder} does not exist")
    if path.is_dir():
        raise TrackingError(f"tracking store {uri}: {path} is a folder, not an sqlite file")
    if not path.exists():
        if must_exist:
            raise TrackingError(f"tracking store {uri}: no such store (nothing has been tracked in {path} yet)")
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            raise TrackingError(
                f"tracking store {uri}: folder {folder} is not writable ({error.strerror or error})"
            ) from None
        return
    if not os.access(path, os.R_OK):
        raise TrackingError(f"tracking store {uri}: {path} cannot be read")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise TrackingError(f"tracking store {uri}: {path} is not an sqlite database ({error})") from None
    if tables and not {"alembic_version", "experiments", "runs"} <= tables:
        raise TrackingError(f"tracking store {uri}: {path} is an sqlite database but not an MLflow store")
    if not tables and must_exist:
        raise TrackingError(f"tracking store {uri}: {path} is empty (nothing has been tracked in it yet)")
    if not os.access(path, os.W_OK) and not must_exist:
        raise TrackingError(f"tracking store {uri}: {path} is read-only")


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
