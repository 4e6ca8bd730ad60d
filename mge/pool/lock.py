"""One writer at a time: an exclusive lock on a pool folder for the whole run that writes it.

The lock is an advisory ``flock`` on ``<folder>/.lock``. The kernel releases it when its process
exits, however it exits, so a lock left by a killed run never blocks a resume; the file itself
stays and only records who held it last (pid, host, time), for the message a second writer gets.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from mge.errors import PoolLockedError

LOCK_FILE = ".lock"


class FolderLock:
    """Exclusive lock on a folder, held from :meth:`acquire` until :meth:`release` (or process exit)."""

    def __init__(self, folder: Path, *, wait: bool = False) -> None:
        """
        Args:
            folder: the folder to lock (it must exist).
            wait: block until the holder is done instead of failing at once.
        """
        self.path = folder / LOCK_FILE
        self.wait = wait
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock; without ``wait``, raise :class:`PoolLockedError` at once, naming the holder."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if self.wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise PoolLockedError(
                f"{self.path.parent} is being written by another run ({holder}). Wait for it to finish, or give "
                "this run another pool_dir."
            ) from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": dt.datetime.now().isoformat(" ", "seconds")}
        os.write(fd, json.dumps(info).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (ValueError, KeyError, TypeError, OSError):
        return "holder unknown"
