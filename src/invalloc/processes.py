"""Which process owns what: process identity and liveness, owned temporary folders, file locks.

A long command (``train``, ``export``) can die without running any cleanup (``kill -9``, an
out-of-memory kill, a power cut). What it leaves behind — a temporary folder, a tracking run
still marked RUNNING — records its owner as a :class:`ProcessIdentity`, so that a later command
can tell whether that owner still runs:

- on the same host (and the same boot), the owner runs while a process with its pid exists
  *and* started at the same time (a reused pid is another process);
- on another host it cannot be checked; the tracking layer uses a lease renewed by a
  heartbeat instead (:mod:`invalloc.tracking`).

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Temporary folders of invalloc commands are named ``invalloc-KIND.PID.START.RANDOM``.
TEMP_PREFIX = "invalloc-"

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This boot of this machine (Linux); "" where the system does not say."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def pid_namespace() -> str:
    """This process's pid namespace (Linux, e.g. ``pid:[4026531836]``); "" where there is none.

    Two containers can share a host name and a store; a pid means something only in its namespace.
    """
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, as an opaque token; None if there is no such process.

    Linux: the ``starttime`` field of ``/proc/PID/stat`` (clock ticks after boot). Elsewhere
    psutil's ``create_time`` if psutil is installed; else "" (the process exists, its start
    time is unknown, so a reused pid cannot be told apart).
    """
    if pid <= 0:
        return None
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            text = stat.read_text()
        except OSError:
            return None
        # "pid (comm) state ppid …": comm may hold spaces and parentheses; starttime is field 22.
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            return None  # exited, not yet reaped by its parent: gone all the same
        return fields[19]
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return f"{psutil.Process(pid).create_time():.2f}".replace(".", "")
        except psutil.Error:
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, told apart from a later process that reuses its pid."""

    host: str
    boot: str
    pid: int
    start: str
    namespace: str = ""  # the pid namespace ("" if unknown: taken to be this one)

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        return cls(socket.gethostname(), boot_id(), pid, process_start(pid) or "", pid_namespace())

    def is_local(self) -> bool:
        """Whether this is a process that can be checked from here: this host, this pid namespace."""
        here = pid_namespace()
        return self.host == socket.gethostname() and not (self.namespace and here and self.namespace != here)

    def is_alive(self) -> bool:
        """Whether the process still runs; only meaningful when :meth:`is_local`."""
        here = boot_id()
        if self.boot and here and self.boot != here:
            return False  # the machine rebooted since
        start = process_start(self.pid)
        if start is None:
            return False
        return not (self.start and start and start != self.start)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


# ---------------------------------------------------------------------------------------------
# Temporary folders
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def temporary_folder(kind: str) -> Iterator[Path]:
    """A private temporary folder, removed on every exit of the block (return, exception,
    Ctrl-C, and SIGTERM where :func:`exit_on_sigterm` is in force).

    Its name records the owner (``invalloc-KIND.PID.START.…``) so that after a ``kill -9``
    :func:`remove_stale_temporary_folders` can tell it is nobody's any more.
    """
    me = ProcessIdentity.current()
    folder = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{kind}.{me.pid}.{me.start or 0}."))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_temporary_folders() -> list[Path]:
    """Remove this user's invalloc temporary folders whose owning process is gone; returns them."""
    removed = []
    root = Path(tempfile.gettempdir())
    try:
        candidates = list(root.glob(f"{TEMP_PREFIX}*.*.*.*"))
    except OSError:
        return removed
    for folder in candidates:
        parts = folder.name.split(".")
        try:
            pid = int(parts[1])
            status = folder.lstat()
        except (ValueError, OSError):
            continue
        if not folder.is_dir() or folder.is_symlink() or status.st_uid != os.getuid():
            continue
        owner = ProcessIdentity(host=socket.gethostname(), boot="", pid=pid, start="" if parts[2] == "0" else parts[2])
        if not owner.is_alive():
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
    return removed


# ---------------------------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` inside the block, so ``finally`` clauses run.

    Only in the main thread and only where SIGTERM still has its default action (a caller's
    own handler is left alone).
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise SystemExit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# ---------------------------------------------------------------------------------------------
# File locks
# ---------------------------------------------------------------------------------------------


class FileLock:
    """An exclusive, non-blocking OS lock on a file (``flock``), released when the process
    ends however it ends. Where the OS has no ``fcntl`` every acquire succeeds."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._handle: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False if another process holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                return False
            # The holder before us may have unlinked the file after we opened it: lock the
            # file that is at the path now, or two processes would each hold "the" lock.
            try:
                same = os.path.samestat(os.fstat(handle), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._handle = handle
                return True
            os.close(handle)

    def release(self) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._handle)
        self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None
