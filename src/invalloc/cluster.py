"""Ray, the optional engine that spreads episodes, tuning candidates and trials over machines.

Installed with the extra ``invalloc[ray]``; nothing here imports :mod:`ray` until a cluster is
used, so ``import invalloc`` and the commands that run locally never load it.

- **Which cluster** (:func:`resolve_address`): ``--ray-address``, else ``$RAY_ADDRESS``, else a
  new local cluster on this machine (stopped again when the command ends).
- **Authentication:** Ray 2.60 turns token authentication on, and it binds the machine's
  address (not loopback), so it stays on. ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN_PATH`` must be set
  before ``import ray`` (:func:`ray_cluster` does it): a local cluster gets a fresh token (one
  per process) in a private temporary folder; an existing cluster is reached with ``$RAY_AUTH_TOKEN``,
  ``$RAY_AUTH_TOKEN_PATH`` or Ray's own ``~/.ray/auth_token`` (written by ``ray start``).
- **Workers** (:func:`worker_env`): one math thread each, a persistent numba cache (a cold one
  costs about 70 s per new worker process) and this checkout's ``src`` on their path.
- **Work** (:class:`WorkerPool`): Ray actors of one CPU each build their worker (a simulator
  and its policies) once and take inputs as they become free (as Ray's ``ActorPool`` does);
  results come back in input order, so they do not depend on which node ran what. A worker
  lost with its process or node is one :class:`WorkerLostError` line naming the node and the
  input (commands exit 1 and write nothing); Ray's own notices of it stay off standard output.
- **Tracking** (:func:`check_shared_tracking`): the nodes of a multi-node cluster cannot share
  an sqlite file or a store folder; an MLflow server is required.

Never call ``ray stop``: it stops every cluster on the machine, other users' included.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: How long a ``HOST:PORT`` address has to accept a connection before it counts as unreachable.
CONNECT_TIMEOUT_SECONDS = 5.0
#: What to install for ``--executor ray`` (and ``invalloc sweep``).
RAY_EXTRA = "pip install 'invalloc[ray]'"
#: Environment variables every worker gets besides the numba cache and the path: one thread each.
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
#: The server command the tracking error suggests (README, "Shared tracking").
MLFLOW_SERVER_HINT = (
    "mlflow server --backend-store-uri sqlite:///mlflow.db --artifacts-destination ./mlartifacts "
    "--host 0.0.0.0 --port 5000"
)


#: Help of the ``--executor`` and ``--ray-address`` options (compare, tune, simulate).
EXECUTOR_HELP = "local (this machine's processes) or ray (a Ray cluster; results are identical)."
ADDRESS_HELP = "Ray head HOST:PORT or auto, with --executor ray (default: $RAY_ADDRESS, else a local cluster)."
EXECUTORS = ("local", "ray")


class ClusterError(ValueError):
    """A cluster that cannot be used as asked; the message is one line naming the option."""


class WorkerLostError(ClusterError):
    """A Ray worker (or its whole node) died while running a call: one line naming the node and
    the call. Not bad input: commands exit with :attr:`exit_code` 1, having written nothing."""

    exit_code = 1


def check_executor(executor: str, address: str | None) -> None:
    """Raise :class:`ClusterError` for an unknown executor, a ``--ray-address`` without ``ray``, or
    (with ``ray``) an address that is malformed or where no Ray head answers."""
    if executor not in EXECUTORS:
        raise ClusterError(f"--executor {executor}: must be local or ray")
    if address is not None and executor != "ray":
        raise ClusterError(f"--ray-address {address}: only used with --executor ray")
    if executor == "ray":  # a malformed or unreachable address fails here, before any work
        chosen, source = resolve_address(address)
        if chosen is not None:
            check_reachable(chosen, source)


@dataclass(frozen=True)
class ClusterInfo:
    """The cluster a :func:`ray_cluster` block runs on.

    :param address: the cluster's address (``HOST:PORT`` of its head).
    :param nodes: nodes alive when the block began (a head with no CPUs counts).
    :param cpus: CPUs of the whole cluster (the most tasks that run at once).
    :param started: True if this process started it (a local cluster it also stops).
    """

    address: str
    nodes: int
    cpus: int
    started: bool


def resolve_address(address: str | None, option: str = "--ray-address") -> tuple[str | None, str]:
    """The cluster to use and where it came from: ``address`` (given as ``option``: compare, tune
    and simulate's ``--ray-address``, sweep's ``--address``), ``$RAY_ADDRESS`` or neither.

    Returns ``(address, source)``; ``address`` None means "start a local cluster". ``auto`` (the
    cluster started on this machine by ``ray start``) and ``HOST:PORT`` are accepted. Errors
    about the cluster name ``source``.
    :raises ClusterError: a malformed address (one line naming the option or variable).
    """
    source = option if address else "RAY_ADDRESS"
    chosen = (address if address else os.environ.get("RAY_ADDRESS", "")).strip()
    if not chosen:
        return None, source
    if chosen == "auto":
        return chosen, source
    if chosen.startswith("ray://"):
        raise ClusterError(f"{source} {chosen}: Ray Client addresses are not supported; give the head's HOST:PORT")
    host, _, port = chosen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"{source} {chosen}: expected HOST:PORT of a Ray head (e.g. 10.0.0.5:6379) or auto")
    return chosen, source


#: The opening of an HTTP/2 connection (the client preface and an empty SETTINGS frame): a Ray
#: head's GCS is a gRPC server and answers with a SETTINGS frame (type 4); other servers do not.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def check_reachable(address: str, source: str, timeout_seconds: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """Raise :class:`ClusterError` unless ``HOST:PORT`` answers like a Ray head within the timeout.

    Checked before Ray is asked: Ray itself retries an unreachable head, or a port where another
    server listens, for minutes. The port must accept a connection and answer an HTTP/2 opening
    with HTTP/2 (the GCS is a gRPC server); with ``RAY_USE_TLS`` only the connection is checked.
    """
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_seconds) as connection:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            connection.sendall(_HTTP2_PREFACE)
            reply = connection.recv(9)
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ClusterError(
            f"{source} {address}: no Ray cluster answers there ({reason}); start one with `ray start --head` "
            "or leave the address out for a local cluster"
        ) from None
    if len(reply) < 4 or reply[3] != 4:
        raise ClusterError(
            f"{source} {address}: a server answers there but it is not a Ray head (give the address "
            "`ray start --head` printed, HOST:6379 by default)"
        )


def numba_cache_dir() -> str:
    """Workers' numba cache: ``$NUMBA_CACHE_DIR``, else ``~/.cache/invalloc/numba`` (kept between runs)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return str(base / "invalloc" / "numba")


def _source_root() -> str | None:
    """The folder ``invalloc`` was imported from when it is a source checkout (not site-packages)."""
    root = Path(__file__).resolve().parent.parent
    return None if root.name in ("site-packages", "dist-packages") else str(root)


def worker_env() -> dict[str, str]:
    """Environment of every Ray worker: one thread, a persistent numba cache, this ``src`` first on the path."""
    env = {"NUMBA_CACHE_DIR": numba_cache_dir(), **ONE_THREAD}
    root = _source_root()
    if root is not None:
        rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
        env["PYTHONPATH"] = os.pathsep.join([root, *rest])
    return env


def is_local_store(tracking_uri: str) -> bool:
    """True for an sqlite file or a store folder: a store only the machine holding it can reach."""
    scheme = tracking_uri.split("://", 1)[0].lower() if "://" in tracking_uri else ""
    return scheme in ("sqlite", "file", "")


def check_shared_tracking(tracking_uri: str, nodes: int, option: str = "--tracking-uri") -> None:
    """Refuse a local store (sqlite file, folder) on a cluster of more than one node.

    :raises ClusterError: one line naming ``option`` and the MLflow server to start instead.
    """
    if nodes > 1 and is_local_store(tracking_uri):
        raise ClusterError(
            f"{option} {tracking_uri}: the {nodes} nodes of the Ray cluster cannot share a local store; "
            f"start an MLflow server ({MLFLOW_SERVER_HINT}) and pass --tracking-uri http://HOST:5000"
        )


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--executor ray: Ray is not installed ({RAY_EXTRA})") from None
    return ray


#: This process's token for the local clusters it starts, in a private folder removed at exit.
#: One per process: Ray caches the token it read, so a second local cluster must reuse it.
_LOCAL_TOKEN: list[tempfile.TemporaryDirectory[str]] = []


def _local_token() -> str:
    if not _LOCAL_TOKEN:
        _LOCAL_TOKEN.append(tempfile.TemporaryDirectory(prefix="invalloc-ray-"))
        token = Path(_LOCAL_TOKEN[0].name) / "auth_token"
        token.touch(mode=0o600)
        token.write_text(secrets.token_hex(32))
    return str(Path(_LOCAL_TOKEN[0].name) / "auth_token")


@contextlib.contextmanager
def _auth_env(start_local: bool, source: str, address: str | None) -> Iterator[None]:
    """Token authentication for this process and the cluster it starts, restored afterwards."""
    saved = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    has_token = bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"))
    try:
        if os.environ["RAY_AUTH_MODE"] == "token" and not has_token:
            if start_local:
                os.environ["RAY_AUTH_TOKEN_PATH"] = _local_token()
            elif not (Path.home() / ".ray" / "auth_token").is_file():
                raise ClusterError(
                    f"{source} {address}: the cluster needs its auth token; set RAY_AUTH_TOKEN_PATH to the "
                    "token file (`ray get-auth-token` on the head prints it)"
                )
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def alive_nodes() -> int:
    """Nodes of the connected cluster that are alive."""
    ray = _import_ray()
    return sum(1 for node in ray.nodes() if node.get("Alive"))


@contextlib.contextmanager
def ray_cluster(
    address: str | None = None, *, num_cpus: int | None = None, option: str = "--ray-address"
) -> Iterator[ClusterInfo]:
    """Connect to the cluster :func:`resolve_address` names, or start a local one, for the block.

    Workers get :func:`worker_env`. On leaving, this process disconnects, and a local cluster it
    started is stopped (its processes end with it); a cluster this process was already connected
    to is left connected. ``num_cpus`` caps a new local cluster's CPUs (default: all). Errors
    name the address as ``option`` (see :func:`resolve_address`).

    :raises ClusterError: a malformed or unreachable address, a missing token, Ray not installed.

    >>> with ray_cluster() as cluster:  # doctest: +SKIP
    ...     print(cluster.nodes, cluster.cpus)
    1 2
    """
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        yield _info(sys.modules["ray"], started=False)
        return
    chosen, source = resolve_address(address, option)
    if chosen is not None:
        check_reachable(chosen, source)
    with _auth_env(chosen is None, source, chosen):
        ray = _import_ray()
        _quiet_cluster_notices()
        options: dict[str, Any] = {
            "runtime_env": {"env_vars": worker_env()},
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": True,
            "logging_level": logging.ERROR,
        }
        try:
            if chosen is None:
                ray.init(address="local", num_cpus=num_cpus, **options)  # never another user's cluster
            else:
                ray.init(address=chosen, **options)
        except Exception as error:  # Ray raises bare Exceptions too (a node that does not start in 30 s)
            text = " ".join(str(error).split()) or type(error).__name__
            where = f"{source} {chosen}" if chosen else "local Ray cluster"
            raise ClusterError(f"{where}: cannot connect ({text[:300]})") from None
        try:
            yield _info(ray, started=chosen is None)
        finally:
            ray.shutdown()


def _quiet_cluster_notices() -> None:
    """Send the cluster's error notices to Ray's logger instead of this process's standard output.

    Ray's driver prints what the cluster publishes (``(raylet) Raylet is terminated…`` when a
    node dies) on *standard output*, where it would corrupt a command's ``--json``; the command
    reports lost work itself (:class:`WorkerLostError`). Ray's logger is set to ERROR at
    :func:`ray_cluster`'s ``ray.init``, so the notices are dropped unless it is made louder.
    Ray's driver looks the printer up by name each time; once per process, best effort.
    """
    module = sys.modules.get("ray._private.worker")
    printer = getattr(module, "print_to_stdstream", None)
    if printer is None or getattr(printer, "quiet_notices", False):
        return

    def print_to_stdstream(data: dict, ignore_prefix: bool) -> None:
        if data.get("pid") == "raylet":  # the notices; workers' own output (log_to_driver) is off anyway
            logging.getLogger("ray").info("cluster notice: %s", " ".join(map(str, data.get("lines", []))))
            return
        printer(data, ignore_prefix)

    print_to_stdstream.quiet_notices = True  # type: ignore[attr-defined]
    module.print_to_stdstream = print_to_stdstream  # type: ignore[union-attr]


class _Actor:
    """One Ray actor: ``build()`` once, then ``call(index, args)`` returns ``(index, node id, worker(*args))``."""

    def __init__(self, build: Callable[[], Callable[..., Any]]) -> None:
        self.worker = build()

    def call(self, index: int, args: tuple[Any, ...]) -> tuple[int, str, Any]:
        import ray

        return index, ray.get_runtime_context().get_node_id(), self.worker(*args)

    def node(self) -> str:
        """The id of the node this actor runs on."""
        import ray

        return ray.get_runtime_context().get_node_id()


class WorkerPool:
    """Ray actors (one CPU each) that build a worker once and call it on many inputs.

    Use inside :func:`ray_cluster`. An error raised by a worker is raised again here as itself
    (not wrapped by Ray), so callers catch the same errors as with local processes.

    :param build: a picklable callable, called once in each actor, returning the callable that
        each input's arguments are passed to (e.g. ``functools.partial(Runner, scenario)`` for a
        class whose instances are callable).
    :param size: most actors; at most one per CPU of the cluster.
    :ivar nodes: ids of the nodes whose actors returned results so far.
    """

    def __init__(self, build: Callable[[], Callable[..., Any]], size: int | None = None) -> None:
        ray = _import_ray()
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise ClusterError("the Ray cluster has no CPUs for workers (add a node with `ray start --address …`)")
        self.size = max(1, min(cpus, size or cpus))
        actor = ray.remote(num_cpus=1)(_Actor)
        self.actors = [actor.remote(build) for _ in range(self.size)]
        # Each actor's node, asked first (answered once it is built, before its first call): an
        # actor lost in its first call is still named by its node.
        self._node_refs = [handle.node.remote() for handle in self.actors]
        self.nodes: set[str] = set()

    def map(
        self,
        calls: Sequence[tuple[Any, ...]],
        advance: Callable[[], None] | None = None,
        describe: Callable[[tuple[Any, ...]], str] | None = None,
    ) -> list[Any]:
        """``worker(*call)`` for each call, in the order of ``calls``; ``advance()`` after each one ends.

        Each free actor takes the next call (as Ray's ``ActorPool`` does), so the results do not
        depend on which node ran what.

        :param describe: names a call in the error when its worker is lost (e.g. ``episode 3``;
            default: ``call 4 of 10``).
        :raises WorkerLostError: an actor's process or its node died (Ray's ``RayActorError``,
            ``WorkerCrashedError``, ``NodeDiedError``, ``ObjectLostError``): one line naming the
            node and the call; the other actors' calls are abandoned.
        """
        import ray

        results: list[Any] = [None] * len(calls)
        pending: dict[Any, tuple[int, int]] = {}  # result ref → (call index, actor's slot)
        waiting = iter(range(len(calls)))

        def submit(slot: int) -> None:
            index = next(waiting, None)
            if index is not None:
                pending[self.actors[slot].call.remote(index, calls[index])] = (index, slot)

        for slot in range(len(self.actors)):
            submit(slot)
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            index, slot = pending.pop(ready)
            try:
                _, node, value = ray.get(ready)
            except ray.exceptions.RayTaskError as error:  # the worker raised: raise it here as itself
                cause = error.cause
                if isinstance(cause, Exception):
                    raise cause from None
                raise
            except _lost_errors(ray) as error:
                what = describe(calls[index]) if describe is not None else f"call {index + 1} of {len(calls)}"
                raise WorkerLostError(_lost_line(error, self._node_of(slot), what)) from None
            results[index] = value
            self.nodes.add(node)
            if advance is not None:
                advance()
            submit(slot)
        return results

    def _node_of(self, slot: int) -> str | None:
        """The node of the actor in ``slot`` if it told it before it was lost, else None."""
        import ray

        ref = self._node_refs[slot]
        try:
            if ray.wait([ref], timeout=0)[0]:
                return ray.get(ref, timeout=1)
        except Exception:  # the actor was lost before it answered  # noqa: BLE001
            pass
        return None

    def close(self) -> None:
        """End the actors (their processes exit; the cluster stays)."""
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors for work lost with its process or node (not an error the work raised)."""
    errors = ray.exceptions
    return (
        errors.RayActorError,  # ActorDiedError, ActorUnavailableError
        errors.WorkerCrashedError,
        errors.NodeDiedError,
        errors.ObjectLostError,
        errors.LocalRayletDiedError,
    )


def _lost_line(error: BaseException, node: str | None, what: str) -> str:
    """One line for a lost worker: the node (its id, and address where Ray gives one), the call, why."""
    text = str(error)
    found = re.search(r"Node Id: ([0-9a-f]+)", text)
    node = found.group(1) if found else node
    address = re.search(r"\bip: (\S+)", text)
    where = f"node {node or '(unknown)'}" + (f" ({address.group(1)})" if address else "")
    kind = type(error).__name__
    if "node has died" in text or "raylet died" in text or kind == "NodeDiedError":
        why = "its node died"
    elif "worker process has died" in text or kind == "WorkerCrashedError":
        why = "its worker process died"
    elif kind == "ActorUnavailableError":
        why = "it stopped answering (its process or node went down)"
    elif getattr(error, "actor_init_failed", False):
        why = "it failed to start: " + " ".join(text.split())[:200]
    else:
        why = " ".join(text.split())[:200] or kind
    return f"ray: lost the worker on {where} while it ran {what}: {why}; stopped, nothing written"


def ray_line(workers: int, nodes: Sequence[str]) -> str:
    """The line a command prints (on standard error) after running on Ray: workers and node ids."""
    return f"ray: {workers} worker(s) on {len(nodes)} node(s): {', '.join(sorted(nodes))}"


def _info(ray: Any, started: bool) -> ClusterInfo:
    context = ray.get_runtime_context()
    address = getattr(context, "gcs_address", "") or ""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    return ClusterInfo(address=address, nodes=alive_nodes(), cpus=cpus, started=started)


__all__ = [
    "ClusterError",
    "ClusterInfo",
    "WorkerLostError",
    "WorkerPool",
    "alive_nodes",
    "check_executor",
    "check_reachable",
    "check_shared_tracking",
    "is_local_store",
    "numba_cache_dir",
    "ray_cluster",
    "ray_line",
    "resolve_address",
    "worker_env",
]
