"""PostgreSQL reads for requests running inline on an event loop, sent by one thread in pipelines.

A read made on the loop's thread would hold the loop for its round trip, and on a busy host the database's
answer can wait milliseconds for a core: every other request of the worker waits with it. Here the request
hands its read to the reader thread and the loop serves others meanwhile (``inline.wait``); the thread sends
every read queued since its last pipeline went out in the next one (psycopg pipeline mode, autocommit: each
read its own statement, as on ``_Readers``), so the reads of many requests cost one round trip.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from .. import inline
from ..metrics import STORE_ERRORS
from .interface import StoreUnavailable

log = logging.getLogger(__name__)

MAX_PIPELINE = 128

_Read = tuple[str, dict[str, Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class PipelinedReads:
    """``one`` from a request running inline; ``connect`` makes an autocommit driver connection."""

    def __init__(self, connect: Callable[[], Any], errors: tuple[type[Exception], ...]) -> None:
        self._connect = connect
        self._failures: tuple[type[Exception], ...] = (*errors, StoreUnavailable)
        self._queue: deque[_Read] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._closed = False
        self._conn: Any = None
        self._thread = threading.Thread(target=self._serve, name="store-reader", daemon=True)
        self._thread.start()

    def one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        loop = inline.running_loop()
        if loop is None:
            raise RuntimeError("PipelinedReads.one outside inline.run")
        future: asyncio.Future[tuple[Any, ...] | None] = loop.create_future()
        with self._ready:
            if self._closed:
                raise StoreUnavailable("store closed")
            self._queue.append((sql, params, future, loop))
            self._ready.notify()
        return inline.wait(future)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout=30)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    return  # closed and drained
                reads = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_PIPELINE))]
            self._settle(reads, self._send(reads))

    def _send(self, reads: list[_Read]) -> list[tuple[Any, BaseException | None]]:
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            with conn.pipeline():
                cursors = [conn.execute(sql, params) for sql, params, _, _ in reads]
            return [(cursor.fetchone(), None) for cursor in cursors]
        except self._failures as exc:
            if self._conn is not None:
                try:
                    self._conn.close()
                except Exception:  # noqa: BLE001, S110 - a broken connection is being thrown away anyway
                    pass
                self._conn = None
            STORE_ERRORS.inc()
            log.error("store.error", extra={"event": "STORE_ERROR", "error": type(exc).__name__})
            unavailable = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable()
            return [(None, unavailable) for _ in reads]

    @staticmethod
    def _settle(reads: list[_Read], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]] = (
            defaultdict(list))
        for (_, _, future, loop), (row, error) in zip(reads, outcomes, strict=True):
            by_loop[loop].append((future, row, error))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, settled)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass


def _resolve(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, row, error in settled:
        if future.done():
            continue  # its request was cancelled
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(row)
