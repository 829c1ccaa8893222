"""Group commit (``store/writer.py``) on SQLite and a real PostgreSQL: requests running inline on an event
loop share transactions, and each is still as atomic as if it had its own.

Every test drives the store the way the server does: through its event-loop view (``EventLoopStore``, which
the composition root gives the services), many requests at once, each in ``inline.run`` on one event loop,
so their units of work meet in the writer's batches.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from sqlalchemy import text

from safeguarding import inline
from safeguarding.api.errors import ErrorRow
from safeguarding.audit.chain import verify
from safeguarding.demographics import LocalDemographics
from safeguarding.domain.audit import AuditEvent
from safeguarding.domain.clock import SystemClock
from safeguarding.domain.cpis import Access, Author, Notification
from safeguarding.domain.errors import IndicatorAlreadySet, PatientNotTraced
from safeguarding.domain.fgm import Indicator
from safeguarding.services.auditing import Auditor
from safeguarding.services.context import Outcomes, RequestContext
from safeguarding.services.fgm import FgmService
from safeguarding.store.event_loop import EventLoopStore
from safeguarding.store.interface import StoreUnavailable
from safeguarding.store.rows import _Sql
from safeguarding.store.sql import SqlStore, SqlTransaction

from .test_contract import _completed_on_the_wire, indicator, instant, patient

VALIDATION_ERROR = ErrorRow(400, "VALIDATION_ERROR", "Flag value was already set")  # an API table's row
AUTHOR = Author(user_id="555021935107", role_profile_id="555021936108", org_code="RR8")
NOT_TRACED = ErrorRow(404, "PATIENT_NOT_FOUND", "Patient not found")


def event(request_id: str, number: str | None = None) -> AuditEvent:
    return AuditEvent(recorded_at=instant(), api="fgm-r4", interaction="search", status=200, outcome="OK",
                      request_id=request_id, nhs_number=number)


def concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call inline on one event loop, all at once; each result, or the exception it raised."""

    async def main() -> list[Any]:
        return await asyncio.gather(*(inline.run(call) for call in calls), return_exceptions=True)

    return asyncio.run(main())


def counting_transactions(store: SqlStore) -> list[int]:
    """Counts the transactions the store's writer opens (SQLite: a batch each; PostgreSQL: a batch transaction
    each, on the writer's own connection; transaction() elsewhere)."""
    opened: list[int] = []
    batch, transaction, batch_transaction = store._open_batch, store.transaction, store._batch_transaction

    def open_batch() -> Any:
        opened.append(1)
        return batch()

    def counted_batch_transaction() -> Any:
        opened.append(1)
        return batch_transaction()

    def counted_transaction() -> Any:
        opened.append(1)
        return transaction()

    store._open_batch = open_batch  # type: ignore[method-assign]
    store.transaction = counted_transaction  # type: ignore[method-assign]
    store._batch_transaction = counted_batch_transaction  # type: ignore[method-assign]
    return opened


def audited_put(store: SqlStore, child: Any, then: Callable[[SqlTransaction], None] | None = None
                ) -> Callable[[], str]:
    """A request whose unit stores the child and audits it, then does ``then`` (to fail, say)."""
    def request() -> str:
        def unit(tx: SqlTransaction) -> str:
            tx.put_patient(child)
            tx.append_audit(event(f"req-{child.nhs_number}", child.nhs_number))
            if then is not None:
                then(tx)
            return str(child.nhs_number)
        return EventLoopStore(store).run(unit)
    return request


def fails(tx: SqlTransaction) -> None:
    raise RuntimeError("a bug in one unit")


def deferred_foreign_key(store: SqlStore) -> Callable[[SqlTransaction], None]:
    """Tables with a deferred foreign key, checked at COMMIT: a real commit failure on either database.
    Returns what makes a unit break it."""
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t_parent (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE t_child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                          "REFERENCES t_parent (id) DEFERRABLE INITIALLY DEFERRED)"))

    def orphan(tx: SqlTransaction) -> None:
        tx._conn.execute(text("INSERT INTO t_child (id, parent_id) VALUES (1, 42)"))

    return orphan


def chain_ok(store: SqlStore, audit_key: bytes) -> tuple[bool, int]:
    seq, digest = store.audit_head()
    result = verify(audit_key, store.audit_records(), seq, digest)
    return result.ok, result.checked


def test_concurrent_units_share_transactions_and_all_commit(store: SqlStore, audit_key: bytes) -> None:
    opened = counting_transactions(store)
    children = [patient() for _ in range(40)]

    results = concurrently([audited_put(store, child) for child in children])

    assert results == [child.nhs_number for child in children]  # each caller gets its own unit's result
    assert [store.read_patient(child.nhs_number) for child in children] == children
    assert chain_ok(store, audit_key) == (True, 40)
    assert 1 <= len(opened) < 40  # grouped: fewer transactions than units


def test_a_unit_that_raises_fails_alone_and_leaves_nothing(store: SqlStore, audit_key: bytes) -> None:
    good, bad = [patient() for _ in range(9)], patient()

    calls = [audited_put(store, child) for child in good[:5]] + [audited_put(store, bad, fails)] + [
        audited_put(store, child) for child in good[5:]]
    results = concurrently(calls)

    assert isinstance(results[5], RuntimeError) and str(results[5]) == "a bug in one unit"
    assert results[:5] + results[6:] == [child.nhs_number for child in good]
    assert store.read_patient(bad.nhs_number) is None
    assert all(store.read_patient(child.nhs_number) == child for child in good)
    assert chain_ok(store, audit_key) == (True, 9)  # the failed unit's audit event went with it


def test_a_failed_commit_fails_only_the_unit_that_caused_it(store: SqlStore, audit_key: bytes) -> None:
    breaks_at_commit = deferred_foreign_key(store)
    good, orphan = [patient() for _ in range(6)], patient()
    results = concurrently([audited_put(store, child) for child in good[:3]] + [
        audited_put(store, orphan, breaks_at_commit)] + [audited_put(store, child) for child in good[3:]])

    assert isinstance(results[3], StoreUnavailable)
    assert results[:3] + results[4:] == [child.nhs_number for child in good]
    assert store.read_patient(orphan.nhs_number) is None
    assert all(store.read_patient(child.nhs_number) == child for child in good)
    assert chain_ok(store, audit_key) == (True, 6)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM t_child")).scalar() == 0


def test_a_refused_unit_is_undone_and_its_refusal_audited(store: SqlStore, audit_key: bytes) -> None:
    auditor = Auditor(store, SystemClock())
    refused_child, others = patient(), [patient() for _ in range(5)]

    def request(child: Any, refuse: bool) -> Callable[[], str]:
        def call() -> str:
            ctx = RequestContext(api="fgm-r4", interaction="create", request_id=f"req-{child.nhs_number}",
                                 outcomes=Outcomes((201, "OK"), {IndicatorAlreadySet: VALIDATION_ERROR}))
            ctx.nhs_number = child.nhs_number

            def work(tx: Any, _: None) -> str:
                tx.put_patient(child)
                tx.append_audit(event("written-inside-the-refused-work", child.nhs_number))
                if refuse:
                    raise IndicatorAlreadySet()
                return child.nhs_number

            return auditor.run(ctx, lambda: None, work)
        return call

    results = concurrently([request(others[0], False), request(refused_child, True),
                            *(request(child, False) for child in others[1:])])

    assert isinstance(results[1], IndicatorAlreadySet)
    assert results[:1] + results[2:] == [child.nhs_number for child in others]
    assert store.read_patient(refused_child.nhs_number) is None  # its work was rolled back to its savepoint
    records = list(store.audit_records())
    by_request = {(r.event.request_id, r.event.status, r.event.outcome) for r in records}
    assert (f"req-{refused_child.nhs_number}", 400, "VALIDATION_ERROR") in by_request
    assert {r.event.request_id for r in records if r.event.nhs_number == refused_child.nhs_number} == {
        f"req-{refused_child.nhs_number}"}  # the event written inside the refused work is gone
    # The in-memory chain head went back with the savepoint: the chain still verifies.
    assert chain_ok(store, audit_key) == (True, 5 * 2 + 1)


def test_outside_an_event_loop_a_unit_gets_its_own_transaction(store: SqlStore, audit_key: bytes) -> None:
    opened = counting_transactions(store)
    children = [patient() for _ in range(4)]
    threads = [threading.Thread(target=store.run, args=(
        lambda tx, child=child: (tx.put_patient(child), tx.append_audit(event("t", child.nhs_number))),))
        for child in children]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(store.read_patient(child.nhs_number) == child for child in children)
    assert len(opened) == 4
    assert chain_ok(store, audit_key) == (True, 4)


def test_the_store_itself_gives_each_unit_its_own_transaction_even_on_the_loop(store: SqlStore,
                                                                               audit_key: bytes) -> None:
    """Which way units run is chosen by who builds the services, not guessed from where the caller runs: the
    store itself, called from requests running inline, still opens a transaction per unit."""
    opened = counting_transactions(store)
    children = [patient() for _ in range(6)]
    results = concurrently([lambda child=child: store.run(lambda tx: tx.put_patient(child)) for child in children])
    assert results == [None] * 6
    assert len(opened) == 6
    assert all(store.read_patient(child.nhs_number) == child for child in children)


def test_group_commit_outside_a_request_on_the_loop_is_refused_and_changes_nothing(store: SqlStore) -> None:
    child = patient()
    with pytest.raises(RuntimeError, match="group commit is for requests running inline on the event loop"):
        EventLoopStore(store).run(lambda tx: tx.put_patient(child))
    assert store.read_patient(child.nhs_number) is None


def test_a_store_that_is_down_fails_every_unit_with_store_unavailable(tmp_path: Any, audit_key: bytes) -> None:
    from safeguarding.store.sql import sqlite_url

    down = SqlStore.open(sqlite_url(tmp_path / "no" / "such" / "dir" / "store.db"), audit_key)
    try:
        serving = EventLoopStore(down)
        results = concurrently([lambda: serving.run(lambda tx: tx.append_audit(event("x"))) for _ in range(3)])
    finally:
        down.close()
    assert [type(result) for result in results] == [StoreUnavailable] * 3


@pytest.mark.parametrize("units", [1, 3])
def test_results_wait_for_the_commit(store: SqlStore, units: int) -> None:
    """What a unit returns reaches its caller only after its transaction is committed: the caller can
    read its own write through another connection at once."""
    children = [patient() for _ in range(units)]

    def call(child: Any) -> Callable[[], bool]:
        def request() -> bool:
            EventLoopStore(store).run(lambda tx: tx.put_patient(child))
            return store.read_patient(child.nhs_number) == child  # a separate (reader) connection
        return request

    assert concurrently([call(child) for child in children]) == [True] * units



def test_after_a_failed_commit_the_next_transaction_works(store: SqlStore) -> None:
    """SQLite leaves the transaction open when COMMIT fails: the connection must not be reused with it."""
    breaks_at_commit = deferred_foreign_key(store)
    with pytest.raises(StoreUnavailable), store.transaction() as tx:
        breaks_at_commit(tx)
    child = patient()
    for _ in range(3):  # whichever pooled connection comes next
        store.run(lambda tx: tx.put_patient(child))
    assert store.read_patient(child.nhs_number) == child


def test_verifying_up_to_the_head_ignores_events_appended_meanwhile(store: SqlStore, audit_key: bytes) -> None:
    """``audit verify`` reads the head, then the chain up to it: a running server's later appends are not
    "records beyond the head"."""
    for i in range(5):
        store.run(lambda tx, i=i: tx.append_audit(event(f"before-{i}")))
    seq, digest = store.audit_head()
    for i in range(3):  # appended after the head was read
        store.run(lambda tx, i=i: tx.append_audit(event(f"after-{i}")))
    assert verify(audit_key, store.audit_records(up_to=seq), seq, digest).ok
    assert not verify(audit_key, store.audit_records(), seq, digest).ok  # the whole chain is longer than that head
    assert [r.seq for r in store.audit_records(up_to=seq)] == [1, 2, 3, 4, 5]


def test_on_sqlite_a_batch_waits_for_another_processs_writer_off_the_loop(tmp_path: Any, audit_key: bytes) -> None:
    """Two stores on one SQLite file write as two server processes would (a ``flock`` is held per open file,
    so the second store's writer lock conflicts with the first's). While the other holds the writer lock,
    a batch waits for it in a thread: the event loop serves on, and the batch commits once it is free."""
    from safeguarding.store.sql import make_engine, sqlite_url, upgrade_schema

    url = sqlite_url(tmp_path / "shared.db")
    engine = make_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    other, ours = SqlStore.open(url, audit_key), SqlStore.open(url, audit_key)
    held, release = threading.Event(), threading.Event()

    def other_process_writes() -> None:
        with other.transaction() as tx:  # takes the writer lock, then SQLite's
            tx.append_audit(event("other"))
            held.set()
            release.wait(10)

    async def main() -> tuple[bool, str, bool]:
        writer = threading.Thread(target=other_process_writes)
        writer.start()
        assert held.wait(10)
        serving = EventLoopStore(ours)
        request = asyncio.ensure_future(inline.run(serving.run, lambda tx: tx.append_audit(event("ours")).seq))
        started = time.monotonic()
        for _ in range(20):  # 0.2 s in which the loop must keep turning while the batch waits
            await asyncio.sleep(0.01)
        loop_turned = time.monotonic() - started < 5  # not held in SQLite's busy handler (until release's 10 s)
        waiting = not request.done()
        release.set()
        seq = await request
        writer.join()
        return loop_turned, f"seq {seq}", waiting

    try:
        loop_turned, seq, waiting = asyncio.run(main())
        assert (loop_turned, seq, waiting) == (True, "seq 2", True)  # the other's event first, ours after it
        assert chain_ok(ours, audit_key) == (True, 2)
        assert [record.event.request_id for record in ours.audit_records()] == ["other", "ours"]
    finally:
        other.close()
        ours.close()


def test_reads_from_requests_on_a_loop_each_get_their_own_row(store: SqlStore) -> None:
    """On PostgreSQL the reads of requests running inline go to one thread, which sends those waiting together
    (one pipeline); each request must still get its own answer, and a child nobody has none."""
    children = [patient() for _ in range(30)]
    with store.transaction() as tx:
        for child in children[:20]:
            tx.put_patient(child)
    serving = EventLoopStore(store)
    calls = [lambda child=child: serving.read_patient(child.nhs_number) for child in children]
    results = concurrently(calls)
    assert results == children[:20] + [None] * 10


def test_on_postgresql_units_queued_while_the_head_is_held_join_the_waiting_batch(
        store: SqlStore, audit_key: bytes) -> None:
    """A batch waiting for the chain head (another process's batch holds it) takes, once it has the lock, the
    units queued meanwhile: they commit in its transaction rather than wait for the next batch's turn."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("on SQLite a batch waits for the writer lock before it begins (writer_lock.py)")
    children = [patient() for _ in range(6)]
    holder = store.engine.connect()  # another process's batch, holding the head
    holder.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))

    async def main() -> list[Any]:
        first = asyncio.ensure_future(inline.run(audited_put(store, children[0])))
        await asyncio.sleep(0.5)  # its batch has begun and waits for the head
        later = [asyncio.ensure_future(inline.run(audited_put(store, child))) for child in children[1:]]
        await asyncio.sleep(0.5)
        assert not first.done() and not any(f.done() for f in later)
        holder.rollback()
        return await asyncio.gather(first, *later)

    try:
        assert asyncio.run(main()) == [child.nhs_number for child in children]
    finally:
        holder.close()
    with store.engine.connect() as conn:
        transactions = conn.execute(text(
            "SELECT COUNT(DISTINCT xmin::text) FROM audit_events WHERE request_id LIKE 'req-%'")).scalar_one()
    assert transactions == 1  # all six in the waiting batch's one transaction
    assert chain_ok(store, audit_key) == (True, 6)


def fgm_searches(store: SqlStore) -> Callable[[str], Callable[[], Indicator | None]]:
    """A request searching for a child through the FGM service on this store (its refusals audited), once the
    writer's connection is made (so that a trace shows only the search's statements)."""
    serving = EventLoopStore(store)
    service = FgmService(serving, LocalDemographics(serving), SystemClock(), Auditor(serving, SystemClock()))
    assert concurrently([audited_put(store, patient())]) == [ANY]

    def search(number: str) -> Callable[[], Indicator | None]:
        def call() -> Indicator | None:
            ctx = RequestContext(api="fgm-r4", interaction="search", request_id=f"search-{number}",
                                 outcomes=Outcomes((200, "OK"), {PatientNotTraced: NOT_TRACED}))
            return service.search(ctx, number)
        return call
    return search


def joining_a_held_batch(store: SqlStore, trace_file: Path, first: Callable[[], Any],
                         later: list[Callable[[], Any]]) -> list[Any]:
    """``first``'s batch sends BEGIN, the head's lock and its reads, and waits: another process's batch holds the
    head; ``later`` queue meanwhile and join it once the head is free. Every result (or error), and a libpq trace
    of the writer's connection in ``trace_file``."""
    holder = store.engine.connect()

    async def main() -> list[Any]:
        started = asyncio.ensure_future(inline.run(first))
        await asyncio.sleep(0.5)
        queued = [asyncio.ensure_future(inline.run(call)) for call in later]
        await asyncio.sleep(0.5)
        holder.rollback()
        return await asyncio.gather(started, *queued, return_exceptions=True)

    driver = store._batch_conn.connection.driver_connection  # type: ignore[union-attr]
    holder.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
    try:
        with trace_file.open("w") as trace:
            driver.pgconn.trace(trace.fileno())
            try:
                return asyncio.run(main())
            finally:
                driver.pgconn.untrace()
    finally:
        holder.close()


def test_on_postgresql_a_search_reads_in_its_batchs_first_round_trip(store: SqlStore, audit_key: bytes,
                                                                      tmp_path: Path) -> None:
    """The FGM search's one read (the child and its active indicator) goes with the batch's BEGIN and the chain
    head's lock, and its audit event with the COMMIT: two round trips in all, none of its own; an unknown child
    is refused, and audited, in the same way."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads on the loop's own thread: there is no round trip to save")
    child, unknown = patient(), patient()
    active = indicator(child.nhs_number)
    with store.transaction() as tx:
        tx.put_patient(child)
        tx.insert_indicator(active)
    search = fgm_searches(store)
    trace_file = tmp_path / "libpq.trace"
    driver = store._batch_conn.connection.driver_connection  # type: ignore[union-attr]
    completed: list[list[str]] = []
    for number in (child.nhs_number, unknown.nhs_number):
        with trace_file.open("w") as trace:
            driver.pgconn.trace(trace.fileno())
            found = concurrently([search(number)])[0]
            driver.pgconn.untrace()
        if number == child.nhs_number:
            assert found == active
        else:
            assert isinstance(found, PatientNotTraced)
        text_of_trace = trace_file.read_text()
        completed.append(_completed_on_the_wire(text_of_trace))
        assert text_of_trace.count("\tSync") == 2  # two round trips
    # BEGIN, the head's lock and the search's read; then its audit event, the head moved and COMMIT.
    assert completed == [["BEGIN", "SELECT", "SELECT", "INSERT", "UPDATE", "COMMIT"]] * 2
    assert not [t for t in threading.enumerate() if t.name == "store-reader"]  # no read went by another way
    outcomes = {r.event.request_id: (r.event.status, r.event.outcome) for r in store.audit_records()}
    assert outcomes[f"search-{child.nhs_number}"] == (200, "OK")
    assert outcomes[f"search-{unknown.nhs_number}"] == NOT_TRACED.outcome
    assert chain_ok(store, audit_key) == (True, 3)


def test_on_postgresql_a_batchs_searches_read_their_children_in_one_statement(
        store: SqlStore, audit_key: bytes, tmp_path: Path) -> None:
    """Searches that join a batch together read their children (each with its active indicator) in one SELECT,
    not one each; each search is answered with its own child (found with an indicator, found without one, or not
    traced) and audited with its own outcome, in one chain."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads on the loop's own thread: there is no round trip to save")
    first, with_flag, without_flag, also_flagged, unknown = (patient() for _ in range(5))
    flags = {child.nhs_number: indicator(child.nhs_number) for child in (first, with_flag, also_flagged)}
    with store.transaction() as tx:
        for child in (first, with_flag, without_flag, also_flagged):
            tx.put_patient(child)
        for flag in flags.values():
            tx.insert_indicator(flag)
    search = fgm_searches(store)
    joined = [with_flag, without_flag, unknown, also_flagged]
    trace_file = tmp_path / "libpq.trace"
    found = joining_a_held_batch(store, trace_file, search(first.nhs_number),
                                 [search(child.nhs_number) for child in joined])
    assert found[:2] == [flags[first.nhs_number], flags[with_flag.nhs_number]]
    assert found[2] is None
    assert isinstance(found[3], PatientNotTraced)
    assert found[4] == flags[also_flagged.nhs_number]
    # BEGIN, the head's lock and the first search's read; the four that joined, in one SELECT (three known), with
    # the first's audit event; then the other four's events, the head moved and COMMIT.
    completed = [line.split('"')[1] for line in trace_file.read_text().splitlines()
                 if "\tB\t" in line and "CommandComplete" in line]
    assert completed == ["BEGIN", "SELECT 1", "SELECT 1", "SELECT 3", *["INSERT 0 1"] * 5, "UPDATE 1",
                         "COMMIT"]
    outcomes = {r.event.request_id: (r.event.status, r.event.outcome) for r in store.audit_records()}
    assert outcomes[f"search-{unknown.nhs_number}"] == NOT_TRACED.outcome
    assert [outcomes[f"search-{child.nhs_number}"] for child in (first, *joined) if child is not unknown] == [
        (200, "OK")] * 4
    assert chain_ok(store, audit_key) == (True, 6)


def _statements_bound(trace: str) -> list[str]:
    """The statements the client bound (ran), in order, from a libpq trace: each by its first three words."""
    parsed: dict[str, str] = {}
    bound = []
    for line in trace.splitlines():
        fields = line.split("\t")
        if len(fields) < 5 or fields[1] != "F":
            continue
        if fields[3] == "Parse":  # "name" "text" types...
            name, statement = re.match(r'"([^"]*)" "(.*)" \d+', fields[4].strip()).groups()  # type: ignore[union-attr]
            parsed[name] = " ".join(statement.split()[:3])
        elif fields[3] == "Bind":  # "portal" "statement" ...
            bound.append(parsed[fields[4].split()[1].strip('"')])
    return bound


def test_on_postgresql_a_batchs_access_notification_and_audit_rows_go_grouped_by_table(
        store: SqlStore, audit_key: bytes, tmp_path: Path) -> None:
    """CP-IS accesses joining a batch each queue an access row, a notification and an audit event: they go to
    PostgreSQL as one run a table (one ``executemany`` each), not interleaved unit by unit, and every row of
    every unit is there afterwards, the chain whole."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs every statement at once: there is no queue to group")
    children = [patient().nhs_number for _ in range(5)]
    seen = {child: Access(id=str(uuid.uuid4()), nhs_number=child, at=instant(), author=AUTHOR, listed=True)
            for child in children}

    def request(child: str) -> Callable[[], str]:
        def call() -> str:
            def unit(tx: SqlTransaction) -> str:
                tx.record_access(seen[child])
                tx.queue_notification(Notification("SBC01", seen[child].at, seen[child]))
                tx.append_audit(event(f"access-{child}", child))
                return child
            return EventLoopStore(store).run(unit)
        return call

    assert concurrently([audited_put(store, patient())]) == [ANY]  # the writer's connection, made beforehand
    trace_file = tmp_path / "libpq.trace"
    assert joining_a_held_batch(store, trace_file, request(children[0]), [request(c) for c in children[1:]]) == children
    bound = _statements_bound(trace_file.read_text())
    runs = [name for i, name in enumerate(bound) if i == 0 or bound[i - 1] != name]
    assert runs == ["BEGIN", "SELECT seq, hash", "INSERT INTO cpis_accesses", "INSERT INTO cpis_notifications",
                    "INSERT INTO audit_events", "UPDATE audit_head SET", "COMMIT"]
    assert bound.count("INSERT INTO audit_events") == 5
    for child in children:
        assert store.read_accesses(child) == [seen[child]]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM cpis_notifications WHERE authority_ods = 'SBC01'")
                            ).scalar_one() == 5
    assert chain_ok(store, audit_key) == (True, 6)


def test_a_queued_row_the_database_refuses_fails_only_its_unit(store: SqlStore) -> None:
    """Rows queued for the commit by several units (on PostgreSQL a run of the same statement goes as one
    ``executemany``): the one the database refuses fails its own unit, and every other row commits."""
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t_unique (k INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t_unique (k) VALUES (3)"))
    insert = _Sql("INSERT INTO t_unique (k) VALUES (:k)")

    def request(k: int) -> Callable[[], int]:
        def call() -> int:
            def unit(tx: SqlTransaction) -> int:
                tx._execute(insert, {"k": k})  # queued on PostgreSQL: its answer is the commit's
                return k
            return EventLoopStore(store).run(unit)
        return call

    results = concurrently([request(k) for k in range(8)])
    assert isinstance(results[3], StoreUnavailable)
    assert results[:3] + results[4:] == [0, 1, 2, 4, 5, 6, 7]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT k FROM t_unique ORDER BY k")).scalars().all() == list(range(8))
