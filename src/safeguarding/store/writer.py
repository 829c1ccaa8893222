"""Group commit: the requests of a process share transactions, one commit (one fsync) per batch.

A request hands the writer a *unit of work* (its change and its audit event, as a function of a
transaction) and waits. The writer takes every unit queued so far, runs them one after the other in
one transaction, commits once and only then answers each of them. So:

- each unit is as atomic as if it had its own transaction: a unit whose rules refuse it rolls back to
  its own savepoint (``Auditor.run``), and a unit that raises anything rolls back the whole batch, which
  is then run again one unit per transaction, so the others still commit and only that one fails;
- nothing is acknowledged before it is durable; a failed COMMIT is retried one unit per transaction
  too, so a unit is only told of a failure that is its own (or the store's: then every unit is told);
- the audit chain is appended by one writer, in order, its head locked and written once per batch.

Two writers, for the two kinds of database:

- ``LoopWriter`` (SQLite): the units run on the event loop's own thread, where the requests run
  (``inline.run``), and only the COMMIT, which is all C and fsync with the GIL released, goes to a
  thread. A second Python thread running the units would fight the loop for the GIL after every
  SQLite call (each releases it), which measured five times slower than the work itself.
- ``ThreadWriter`` (PostgreSQL): every statement is a network round trip and the chain head may be
  locked by another process's batch, so the units run in a thread of their own, never on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .. import inline
from .writer_lock import WriterLock

log = logging.getLogger(__name__)

T = TypeVar("T")
Tx = TypeVar("Tx")

MAX_BATCH = 128


Outcome = tuple["asyncio.Future[Any]", Any, "BaseException | None"]  # a unit's future, result, error


@dataclass
class _Item:
    unit: Callable[[Any], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    prefetch: Callable[[Any], None] | None = None


class ThreadWriter(Generic[Tx]):
    """Runs units of work in its own thread for ``begin()``, a transaction context manager (commit on a
    clean exit)."""

    def __init__(self, begin: Callable[[], AbstractContextManager[Tx]], name: str = "store-writer",
                 locked: Callable[[Tx], None] | None = None) -> None:
        """``locked(tx)``: send what the batch's transaction has queued and return once it holds what orders
        the batches (PostgreSQL: BEGIN and the chain head's lock, with the units' reads queued ahead). Units
        queued meanwhile, while another process's batch held the head, then join this batch rather than wait
        for the next."""
        self._begin = begin
        self._locked = locked
        self._queue: deque[_Item] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, unit: Callable[[Tx], T], prefetch: Callable[[Tx], None] | None = None) -> T:
        """From code running inline on an event loop: ``unit``'s result once its transaction has committed.
        ``prefetch`` queues the unit's reads ahead: every unit's of a batch are sent together, before any unit
        runs (``SqlTransaction.prefetch_*``)."""
        loop = inline.running_loop()
        if loop is None:
            raise RuntimeError("ThreadWriter.run outside inline.run")
        future: asyncio.Future[T] = loop.create_future()
        with self._ready:
            if self._closed:
                raise RuntimeError("store writer closed")
            self._queue.append(_Item(unit, future, loop, prefetch))
            self._ready.notify()
        return inline.wait(future)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout=30)

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    return  # closed and drained
                batch = self._take(MAX_BATCH)
            outcomes = list(self._execute(batch, join=True))  # ``batch`` may grow: units that joined it
            self._settle(batch, outcomes)

    def _take(self, most: int) -> list[_Item]:
        """Up to ``most`` queued units (the caller holds ``_ready``)."""
        return [self._queue.popleft() for _ in range(min(len(self._queue), most))]

    def _execute(self, batch: list[_Item], *, join: bool = False) -> Iterator[tuple[Any, BaseException | None]]:
        """``join``: once the transaction is locked, the units queued since join ``batch`` (appended to it)."""
        try:
            with self._begin() as tx:
                for item in batch:
                    if item.prefetch is not None:
                        item.prefetch(tx)
                if join and self._locked is not None:
                    self._locked(tx)
                    with self._ready:
                        joined = self._take(MAX_BATCH - len(batch))
                    for item in joined:  # their reads go together, with the first of them that needs one
                        if item.prefetch is not None:
                            item.prefetch(tx)
                    batch.extend(joined)
                results = [item.unit(tx) for item in batch]
        except BaseException as exc:  # noqa: BLE001 - every failure is handed to the units' callers
            if len(batch) == 1:
                yield None, exc
                return
            # One unit (or the commit) failed: run each alone, so only the failing one fails.
            for item in batch:
                yield from self._execute([item])
            return
        for result in results:
            yield result, None

    def _settle(self, batch: list[_Item], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = defaultdict(list)
        for item, (result, error) in zip(batch, outcomes, strict=True):
            by_loop[item.loop].append((item.future, result, error))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, settled)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                log.warning("writer.loop_closed", extra={"event": "STORE_WRITER_LOOP_CLOSED", "count": len(settled)})


class Batch(Protocol[Tx]):
    """An open transaction of the store's, for ``LoopWriter``."""

    tx: Tx

    def commit(self) -> None:
        """Commit (any thread); raise ``StoreUnavailable`` if it fails. The batch is closed either way."""
        ...

    def rollback(self) -> None:
        """Roll back and close."""
        ...


class LoopWriter(Generic[Tx]):
    """Runs units of work on one event loop's thread, committing each batch in a thread.

    ``begin()`` opens a batch's transaction; ``turn`` is the store's writer mutex, shared with
    transactions opened by other threads of the process, and held here from BEGIN to the end of COMMIT.
    ``exclusive``, when given, is the lock every process writing the database takes first
    (``writer_lock.py``): taken at once when it is free, else waited for in the committer's thread
    while the loop serves on; released as soon as the batch has committed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, begin: Callable[[], Batch[Tx]], turn: threading.Lock,
                 exclusive: WriterLock | None = None) -> None:
        self._loop, self._begin, self._turn, self._exclusive = loop, begin, turn, exclusive
        self._pending: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]] = []
        self._busy = self._scheduled = False
        self._holding = False  # ``exclusive`` is ours (taken on the loop or the committer; released by either)
        self._committer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store-commit")

    def run(self, unit: Callable[[Tx], T], prefetch: Callable[[Tx], None] | None = None) -> T:
        """From code running inline on this writer's loop (``prefetch``: nothing to gain on SQLite)."""
        future: asyncio.Future[T] = self._loop.create_future()
        self._pending.append((unit, future))
        self._schedule()
        return inline.wait(future)

    def close(self) -> None:
        self._committer.shutdown(wait=True)

    def _schedule(self, delay: float = 0.0) -> None:
        # Started on the loop's next turn, not now: requests that arrive in this turn join the batch.
        if self._busy or self._scheduled or not self._pending:
            return
        self._scheduled = True
        if delay:
            self._loop.call_later(delay, self._start)
        else:
            self._loop.call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        if self._busy or not self._pending:
            return
        if not self._turn.acquire(blocking=False):  # another thread of this process is writing
            self._schedule(0.001)
            return
        self._busy = True
        exclusive = self._exclusive
        if exclusive is None:
            self._run_batch()
            return
        try:
            free = exclusive.try_acquire()
        except BaseException as exc:  # noqa: BLE001 - e.g. StoreUnavailable: every unit is told
            self._fail_pending(exc)
            return
        if free:
            self._holding = True
            self._run_batch()
        else:  # another process is writing: wait in a thread, the loop serving on (and the batch growing)
            waited = self._loop.run_in_executor(self._committer, exclusive.acquire)
            waited.add_done_callback(self._locked)

    def _locked(self, waited: asyncio.Future[None]) -> None:
        error = waited.exception()
        if error is not None:
            self._fail_pending(error)
            return
        self._holding = True
        self._run_batch()

    def _take(self) -> list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]]:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        return batch

    def _fail(self, batch: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]], error: BaseException) -> None:
        self._done([(future, None, error) for _, future in batch])

    def _fail_pending(self, error: BaseException) -> None:
        self._fail(self._take(), error)

    def _run_batch(self) -> None:
        batch = self._take()
        try:
            opened = self._begin()
        except BaseException as exc:  # noqa: BLE001 - e.g. StoreUnavailable: every unit is told
            self._fail(batch, exc)
            return
        try:
            results = [unit(opened.tx) for unit, _ in batch]
        except BaseException:  # noqa: BLE001 - one unit failed: undo the lot, then each unit alone
            opened.rollback()
            self._done([self._alone(unit, future) for unit, future in batch])
            return
        self._committer.submit(self._commit, opened, batch, results)

    def _commit(self, opened: Batch[Tx], batch: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]],
                results: list[Any]) -> None:
        """In the committer thread: COMMIT, then hand the batch straight back to the loop. (An awaited
        executor future takes two hops, each behind everything the loop has ready.)"""
        error: BaseException | None = None
        try:
            opened.commit()
        except BaseException as exc:  # noqa: BLE001 - the lock is kept for the units' second round (``_alone``)
            error = exc
        else:
            self._release_exclusive()  # the next process's batch can start before this loop hears of it
        try:
            self._loop.call_soon_threadsafe(self._committed, batch, results, error)
        except RuntimeError:  # the loop has closed: nobody is waiting any more; let other writers go
            self._release_exclusive()
            self._turn.release()

    def _release_exclusive(self) -> None:
        if self._holding:
            self._holding = False
            self._exclusive.release()  # type: ignore[union-attr]

    def _alone(self, unit: Callable[[Tx], Any], future: asyncio.Future[Any]) -> Outcome:
        # The rare path (a unit or the commit failed): a transaction of its own, committed here on the loop.
        try:
            opened = self._begin()
        except BaseException as exc:  # noqa: BLE001
            return future, None, exc
        try:
            result = unit(opened.tx)
        except BaseException as exc:  # noqa: BLE001
            opened.rollback()
            return future, None, exc
        try:
            opened.commit()
        except BaseException as exc:  # noqa: BLE001
            return future, None, exc
        return future, result, None

    def _committed(self, batch: list[tuple[Callable[[Tx], Any], asyncio.Future[Any]]], results: list[Any],
                   error: BaseException | None) -> None:
        if error is not None and len(batch) > 1:  # e.g. a deferred constraint: find whose, commit the rest
            self._done([self._alone(unit, future) for unit, future in batch])
        elif error is not None:
            self._fail(batch, error)
        else:
            self._done([(future, result, None) for (_, future), result in zip(batch, results, strict=True)])

    def _done(self, outcomes: list[Outcome]) -> None:
        self._release_exclusive()
        self._busy = False
        self._turn.release()
        # The requests first, then the next batch (on the loop's next turn): the requests that arrive while
        # these are answered join it. (Starting it before them makes smaller batches: measured ~15% fewer
        # searches a second on one busy worker.)
        _resolve(outcomes)
        self._schedule()


def _resolve(outcomes: list[Outcome]) -> None:
    """Tell each unit's caller (on its loop's thread)."""
    for future, result, error in outcomes:
        if future.done():
            continue  # its request was cancelled; the unit committed (or not) all the same
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
