"""Where runs are tracked: an embedded MLflow sqlite store by default, or an MLflow server.

Every command that logs (``train``, ``compare``, ``export``, ``rules approve``) calls
:func:`configure_tracking` first, so an unreachable server is reported in one line before
any work starts, and :func:`experiment_id` so that runs of a local store keep their
artifacts in a folder beside the database rather than wherever MLflow would default to.

A run being trained, compared or exported records its owner process and a lease
(:class:`RunLease`, :func:`owned_run`), so that a run whose process died without ending it can
be told from one still running (:func:`clean_stale_runs`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

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
    # With a server MLflow prints "View run … at: URL" on standard output as each run ends,
    # which would break the commands' --json output (the run's id is in it anyway).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
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


# ---------------------------------------------------------------------------------------------
# Run ownership: which process trains a run, and whether it still does
# ---------------------------------------------------------------------------------------------
#
# A run that a process is writing to carries its owner (``invalloc.owner.*`` tags: host, boot,
# pid namespace, pid, process start time) and a lease (``invalloc.owner.heartbeat``, renewed every
# HEARTBEAT_SECONDS by a background thread, valid LEASE_SECONDS). For a store of this machine
# the owner also holds an OS lock on a lock file beside the store. A RUNNING run is *stale* when
#
# - its owner is a process of this host (and pid namespace) that is gone (pid dead, or reused by
#   a process that started at another time, or the machine rebooted), or
# - its owner is on another host (or in another container) and its lease expired.
#
# :func:`clean_stale_runs` marks stale runs KILLED with the reason in ``invalloc.killed_reason``.
# A RUNNING run without owner tags (logged before owners were recorded, or by another tool) is
# never touched.

#: Seconds between heartbeats of a run's owner.
HEARTBEAT_SECONDS = 60.0
#: Seconds without a heartbeat after which a run owned by another host counts as abandoned.
LEASE_SECONDS = 600.0
#: Tag saying why invalloc marked a run KILLED.
KILLED_REASON_TAG = "invalloc.killed_reason"
_OWNER = "invalloc.owner."
_LOCK_FOLDER = ".invalloc-locks"


class RunBusy(RuntimeError):
    """The run is being written by another live process; the message is one line."""


def lock_folder(tracking_uri: str) -> Path:
    """Where the lock files of a store's runs live: beside a local store, else in the user's cache."""
    import hashlib

    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).expanduser().resolve().parent / _LOCK_FOLDER
    if not is_remote(tracking_uri) and "://" not in tracking_uri.removeprefix("file://"):
        return Path(tracking_uri.removeprefix("file://")).expanduser().resolve() / _LOCK_FOLDER
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "invalloc" / "locks" / hashlib.sha256(tracking_uri.encode()).hexdigest()[:16]


def _owner_of(tags: dict[str, str]):
    from invalloc.processes import ProcessIdentity

    try:
        return ProcessIdentity(
            host=tags[_OWNER + "host"],
            boot=tags.get(_OWNER + "boot", ""),
            pid=int(tags[_OWNER + "pid"]),
            start=tags.get(_OWNER + "start", ""),
            namespace=tags.get(_OWNER + "pid_namespace", ""),
        )
    except (KeyError, ValueError):
        return None


def _silence(tags: dict[str, str], now: float | None = None) -> tuple[float, float] | None:
    """Seconds since the owner's last heartbeat and its lease; None if it records none."""
    try:
        heartbeat = float(tags[_OWNER + "heartbeat"])
        lease = float(tags.get(_OWNER + "lease_seconds", LEASE_SECONDS))
    except (KeyError, ValueError):
        return None
    return (_now() if now is None else now) - heartbeat, lease


def staleness(run, now: float | None = None) -> str | None:
    """Why a RUNNING run is abandoned by its owner, or None if it is live (or cannot be told)."""
    owner = _owner_of(run.data.tags)
    if run.info.status != "RUNNING" or owner is None:
        return None
    if owner.is_local():
        return None if owner.is_alive() else f"owner process {owner.describe()} is gone"
    silence = _silence(run.data.tags, now)
    if silence is not None and not silence[0] <= silence[1]:
        return f"no heartbeat from its owner {owner.describe()} for {silence[0]:,.0f} s (lease {silence[1]:,.0f} s)"
    return None


def live_owner(run) -> str | None:
    """The owner (``pid N on HOST``) still training ``run``, or None.

    A process of this host trains it while the run is RUNNING and the process runs; a process
    elsewhere, while its lease holds (an owner that ends cleanly gives its lease up, so a run it
    stopped can be resumed at once from anywhere).
    """
    owner = _owner_of(run.data.tags)
    if owner is None:
        return None
    if owner.is_local():
        return owner.describe() if run.info.status == "RUNNING" and owner.is_alive() else None
    silence = _silence(run.data.tags)
    return owner.describe() if silence is not None and silence[0] <= silence[1] else None


def mark_killed(client, run_id: str, reason: str) -> None:
    """End a run as KILLED, saying why in the ``invalloc.killed_reason`` tag."""
    client.set_tag(run_id, KILLED_REASON_TAG, reason)
    client.set_terminated(run_id, "KILLED")


def clean_stale_runs(client) -> list[tuple[str, str]]:
    """Mark every stale RUNNING run of the store KILLED; returns ``(run_id, reason)`` pairs."""
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    cleaned = []
    for start in range(0, len(experiments), 100):
        token = None
        while True:
            page = client.search_runs(
                experiments[start : start + 100],
                filter_string="attributes.status = 'RUNNING'",
                run_view_type=ViewType.ALL,
                max_results=1000,
                page_token=token,
            )
            for run in page:
                reason = staleness(run)
                if reason is not None:
                    mark_killed(client, run.info.run_id, reason)
                    cleaned.append((run.info.run_id, reason))
            token = page.token
            if not token:
                break
    return cleaned


class RunLease:
    """This process's claim on a run: owner tags, a heartbeat thread, and (for a store of this
    machine) an OS lock on ``lock_folder(uri)/RUN_ID.lock``.

    >>> lease = RunLease(client, uri)            # doctest: +SKIP
    >>> lease.acquire(run_id)                    # raises RunBusy if another process trains it
    >>> ...; lease.release()
    """

    def __init__(
        self,
        client,
        tracking_uri: str,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
    ):
        self.client = client
        self.tracking_uri = tracking_uri
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_seconds = lease_seconds
        self.run_id: str | None = None
        self._lock = None
        self._stop = None
        self._thread = None

    def acquire(self, run_id: str) -> None:
        """Claim ``run_id``; a RUNNING run whose owner is gone is first marked KILLED.

        :raises RunBusy: another live process owns the run.
        """
        import threading

        from invalloc.processes import FileLock, ProcessIdentity

        lock = FileLock(lock_folder(self.tracking_uri) / f"{run_id}.lock")
        try:
            locked = lock.acquire()
        except OSError:
            locked = True  # a read-only folder beside the store: rely on the owner tags alone
            lock = None
        if not locked:
            run = self.client.get_run(run_id)
            owner = _owner_of(run.data.tags)
            raise RunBusy(
                f"run {run_id} is being trained by another process"
                + (f" ({owner.describe()})" if owner else "")
                + "; wait for it to finish or stop it first"
            )
        try:
            run = self.client.get_run(run_id)
            owner = live_owner(run)
            # Our own process holding the lock free: an earlier call here left the run open.
            if owner is not None and _owner_of(run.data.tags) != ProcessIdentity.current():
                raise RunBusy(f"run {run_id} is being trained by {owner}; wait for it to finish or stop it first")
            reason = staleness(run)
            if reason is not None:
                mark_killed(self.client, run_id, reason)
            me = ProcessIdentity.current()
            tags = {
                "host": me.host,
                "boot": me.boot,
                "pid": str(me.pid),
                "start": me.start,
                "pid_namespace": me.namespace,
                "heartbeat": f"{_now():.0f}",
                "lease_seconds": f"{self.lease_seconds:g}",
            }
            for key, value in tags.items():
                self.client.set_tag(run_id, _OWNER + key, value)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self._lock = lock
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"invalloc-lease-{run_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.client.set_tag(self.run_id, _OWNER + "heartbeat", f"{_now():.0f}")
            except Exception:  # noqa: BLE001 - a missed heartbeat is retried; it must not stop training
                pass

    def release(self) -> None:
        """Stop the heartbeat and drop the lock (the owner tags stay as a record)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self.run_id is not None:
            try:  # give the lease up: the run may be resumed elsewhere at once
                self.client.set_tag(self.run_id, _OWNER + "heartbeat", "0")
            except Exception:  # noqa: BLE001 - best effort; the lease then simply expires
                pass
            self.run_id = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


@contextlib.contextmanager
def owned_run(client, tracking_uri: str, experiment: str, name: str, tags: dict[str, str]) -> Iterator[Any]:
    """A new run of ``experiment``, owned by this process (:class:`RunLease`) while the block runs.

    Ends ``FINISHED``, ``FAILED`` on an exception, ``KILLED`` on Ctrl-C; killed with ``kill -9``
    it is marked ``KILLED`` by the next training or ``invalloc runs clean`` (its owner is gone).
    Yields the created :class:`mlflow.entities.Run`.
    """
    run = client.create_run(experiment, run_name=name, tags=tags)
    lease = RunLease(client, tracking_uri)
    try:
        lease.acquire(run.info.run_id)
        yield run
    except KeyboardInterrupt:
        client.set_terminated(run.info.run_id, "KILLED")
        raise
    except BaseException:
        client.set_terminated(run.info.run_id, "FAILED")
        raise
    else:
        client.set_terminated(run.info.run_id, "FINISHED")
    finally:
        lease.release()


def _now() -> float:
    import time

    return time.time()
