"""One process owns a run folder at a time: an advisory ``flock`` on ``<run>/.lock``.

The lock is held through an open file descriptor, so the kernel drops it when its process ends
(exit, crash, SIGKILL): a dead run never blocks the next one. A second process that wants the same
folder (two ``--resume`` of one run, or a sweep that points two runs at one folder) gets a one-line
:class:`RunFolderBusy` naming the holder's pid and host. On start, temporary files that an
interrupted atomic write left behind (``.<name>.<random>.tmp``) are removed: the holder of the lock
is the only writer, so any such file is an orphan.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from ncollapse.errors import NCollapseError

LOCK_NAME = ".lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the rest works
    fcntl = None


class RunFolderBusy(NCollapseError):
    """Another live process holds the run folder."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    pid, host = info.get("pid", "?"), info.get("host", "?")
    since = info.get("since")
    when = f" since {since}" if since else ""
    return f"pid {pid} on {host}{when}"


class RunLock:
    """Exclusive, process-lifetime lock on a run folder. Use ``acquire()`` / ``release()`` or
    ``with RunLock(run_dir):``."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                raise RunFolderBusy(
                    f"run folder {self.run_dir} is in use by {_holder(self.path)}; wait for that "
                    f"process to end (or stop it), or use another folder"
                ) from exc
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # no stale holder shown after a clean end
        except OSError:
            pass
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):  # an abandoned lock object must not keep the folder for this process
        try:
            self.release()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def remove_stale_temps(run_dir: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files an interrupted atomic write left (call under the lock)."""
    removed = []
    for p in Path(run_dir).glob(".*.tmp"):
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:  # pragma: no cover
            pass
    return removed


def lock_run_dir(run_dir: str | os.PathLike) -> RunLock | None:
    """Lock ``run_dir`` for this process and clean up orphaned temporary files.

    Under DDP only rank 0 (which does all the writing) takes the lock; other ranks get ``None``.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    lock = RunLock(run_dir).acquire()
    remove_stale_temps(run_dir)
    return lock
