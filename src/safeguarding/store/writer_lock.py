"""One writer at a time across the processes that write one SQLite database.

SQLite lets one connection write at a time. A second writer waits in SQLite's busy handler, which
sleeps with growing back-off (1, 2, 5 ... 100 ms) and leaves the lock idle between its tries. With
several server processes (``serve --workers N``), that sleep would land on an event loop's thread and
stop the whole process. So every writer of this project first takes an exclusive ``flock`` on a file
beside the database (``<database>-writer``): a waiter is woken the moment the lock is free, and a
server waits for it in a thread, never on its loop (``writer.LoopWriter``). SQLite's own lock stays
the guarantee; this one only makes the waiting orderly and cheap.

A ``flock`` belongs to the open file, so the lock is held by at most one thread of a process at a time
only because the store's own writer mutex is always taken first; it is released by the kernel if the
process dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from .failures import unavailable_on


class WriterLock:
    """The lock, taken with ``acquire`` (or as a context manager) and given back with ``release``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None  # opened on first use: a store that cannot be reached fails when used

    @classmethod
    def beside(cls, database: Path) -> WriterLock:
        return cls(database.with_name(database.name + "-writer"))

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; never waits."""
        with unavailable_on(OSError):
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        return True

    def acquire(self) -> None:
        """Wait until the lock is ours (from a thread that may block)."""
        with unavailable_on(OSError):
            fcntl.flock(self._file(), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd
