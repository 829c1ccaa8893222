"""SQLite's WAL copied back into the database by a thread of its own, not by a request's COMMIT.

By default SQLite checkpoints inside the COMMIT that takes the WAL past a threshold: that commit (and
every request of its batch, and every batch queued behind it) waits while thousands of pages are
written into the database file and fsynced. On the large benchmark data set that was the p99 (~100 ms
against a 6 ms p50). A server's store turns the automatic checkpoint off on its writing connections
and runs a PASSIVE checkpoint here every ``interval`` seconds instead: it never takes the write lock,
so commits go on while it copies. (Other processes, the CLI, keep SQLite's automatic checkpoint.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, connect: Callable[[], Any], interval: float = 0.25) -> None:
        self._connect, self._interval = connect, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _serve(self) -> None:
        conn = None
        while not self._stop.wait(self._interval):
            try:
                if conn is None:
                    conn = self._connect()
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception as exc:  # noqa: BLE001 - tried again next time; commits are unaffected
                log.warning("checkpoint failed", extra={"event": "SQLITE_CHECKPOINT_FAILED",
                                                        "error": type(exc).__name__})
                conn = None
        if conn is not None:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # what is left, before the store closes
            conn.close()
