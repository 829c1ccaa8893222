"""The contract every ``Store`` implementation meets, run against SQLite and a real PostgreSQL.

Each test gets a fresh, migrated, empty database (see ``conftest.py``). Tamper tests reach past the
interface with raw SQL, exactly as someone with write access to the database could.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from safeguarding import inline
from safeguarding.audit.chain import GENESIS, link_hash, verify
from safeguarding.domain.audit import AuditEvent, AuditRecord
from safeguarding.domain.clock import iso_instant
from safeguarding.domain.errors import IndicatorAlreadySet
from safeguarding.domain.fgm import Actor, Indicator, IndicatorStatus, Removal, RemovalReason
from safeguarding.domain.nhs_number import check_digit
from safeguarding.domain.patients import Gender, Patient, SecurityLabel
from safeguarding.store.interface import StoreUnavailable
from safeguarding.store.schema import audit_events, audit_head
from safeguarding.store.sql import SqlStore, sqlite_url

_numbers = itertools.count(999_100_000)
_clock = itertools.count()
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
TODAY = date(2026, 3, 1)


def nhs_number() -> str:
    """A valid (Modulus 11) NHS number in the test range, different on every call."""
    while True:
        stem = str(next(_numbers))
        digit = check_digit(stem)
        if digit is not None:
            return stem + str(digit)


def instant() -> str:
    """A strictly increasing timestamp, stored format, so ordering by time is deterministic."""
    return iso_instant(T0 + timedelta(seconds=next(_clock)))


def patient(number: str | None = None, **overrides: Any) -> Patient:
    values: dict[str, Any] = {
        "nhs_number": number or nhs_number(), "verified": True, "birth_date": date(2016, 5, 17),
        "gender": Gender.FEMALE, "security": SecurityLabel.UNRESTRICTED, "gp_ods_code": "Y12345", "deceased": False,
        "superseded_by": None,
    }
    values.update(overrides)
    return Patient(**values)


CLINICIAN = Actor(user_id="555021935107", role_profile_id="555021936108", org_code="RR8", asid="200000001234")
OTHER_CLINICIAN = Actor(user_id="555021935999", role_profile_id="555021936999", org_code="RA7", asid=None)


def indicator(number: str, **overrides: Any) -> Indicator:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()), "nhs_number": number, "assessment_date": date(2025, 11, 23),
        "status": IndicatorStatus.ACTIVE, "created_at": instant(), "created_by": CLINICIAN, "removal": None,
        "version": 1,
    }
    values.update(overrides)
    return Indicator(**values)


def removed(found: Indicator, reason: RemovalReason = RemovalReason.HAS_HAD_FGM, by: Actor = OTHER_CLINICIAN,
            status: IndicatorStatus | None = None) -> Indicator:
    return found.removed(instant(), by, reason, status or reason.status)


def event(n: int = 0, **overrides: Any) -> AuditEvent:
    """An audit event with every field set (overrides may clear some)."""
    values: dict[str, Any] = {
        "recorded_at": instant(), "api": "fgm-r4", "interaction": "Flag.create", "status": 201, "outcome": "CREATED",
        "request_id": f"req-{n}-{uuid.uuid4()}", "correlation_id": f"corr-{n}", "trace_id": f"trace-{n}",
        "system_asid": "200000001234", "system_ods": "RR8", "user_id": "555021935107",
        "role_profile_id": "555021936108", "role_code": "R8000", "org_code": "RR8", "nhs_number": "9991000002",
        "resource_id": str(uuid.uuid4()),
    }
    values.update(overrides)
    return AuditEvent(**values)


def sql(store: SqlStore, statement: str, **params: Any) -> Any:
    """Raw SQL past the interface (tampering, counting)."""
    with store.engine.begin() as conn:
        result = conn.execute(text(statement), params)
        return result.all() if result.returns_rows else result.rowcount


def assert_chain_ok(store: SqlStore, key: bytes, count: int) -> list[AuditRecord]:
    records = list(store.audit_records())
    head_seq, head_hash = store.audit_head()
    result = verify(key, records, head_seq, head_hash)
    assert result.ok, result
    assert result.checked == count
    assert [r.seq for r in records] == list(range(1, count + 1))
    assert head_seq == count
    assert head_hash == (records[-1].hash if records else GENESIS)
    return records


def run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; return each result or the exception raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def target(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - collected; the test asserts on it
            results[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "threads still running: deadlock?"
    return results


# Patients ------------------------------------------------------------------------------------------


def test_put_patient_then_read_round_trips_every_field(store: SqlStore) -> None:
    full = patient(verified=True, birth_date=date(2012, 2, 29), gender=Gender.OTHER, security=SecurityLabel.RESTRICTED,
                   gp_ods_code="B86016", deceased=True, superseded_by="9991000013")
    sparse = patient(verified=False, birth_date=None, gender=None, security=SecurityLabel.REDACTED, gp_ods_code=None,
                     deceased=False, superseded_by=None)
    with store.transaction() as tx:
        tx.put_patient(full)
        tx.put_patient(sparse)
        assert tx.get_patient(full.nhs_number) == full  # visible inside its own transaction

    for expected in (full, sparse):
        with store.transaction() as tx:
            got = tx.get_patient(expected.nhs_number)
        assert got == expected
        assert store.read_patient(expected.nhs_number) == expected
    got = store.read_patient(full.nhs_number)
    assert got is not None
    assert type(got.verified) is bool and type(got.deceased) is bool
    assert type(got.birth_date) is date and got.birth_date == date(2012, 2, 29)
    assert got.gender is Gender.OTHER and got.security is SecurityLabel.RESTRICTED


def test_put_patient_again_updates_in_place(store: SqlStore) -> None:
    first = patient(gender=Gender.FEMALE, gp_ods_code="Y12345")
    with store.transaction() as tx:
        tx.put_patient(first)
    second = replace(first, verified=False, birth_date=date(2010, 1, 1), gender=Gender.UNKNOWN,
                     security=SecurityLabel.VERY_RESTRICTED, gp_ods_code=None, deceased=True,
                     superseded_by="9991000021")
    with store.transaction() as tx:
        tx.put_patient(second)
        assert tx.get_patient(first.nhs_number) == second
    assert store.read_patient(first.nhs_number) == second
    assert sql(store, "SELECT count(*) FROM patients WHERE nhs_number = :n", n=first.nhs_number) == [(1,)]


def test_unknown_patient_is_none(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.put_patient(patient())
        assert tx.get_patient("9991999999") is None
    assert store.read_patient("9991999999") is None


def test_reads_outside_transactions_see_committed_data_only_and_do_not_block(store: SqlStore) -> None:
    child = patient()
    with store.transaction() as tx:
        tx.put_patient(child)
        # An open write transaction (SQLite: holding the write lock) neither blocks nor leaks to readers.
        assert store.read_patient(child.nhs_number) is None
    assert store.read_patient(child.nhs_number) == child

    changed = replace(child, gp_ods_code="A81001")
    with store.transaction() as tx:
        tx.put_patient(changed)
        assert store.read_patient(child.nhs_number) == child
    assert store.read_patient(child.nhs_number) == changed


def test_concurrent_puts_of_the_same_new_patient_all_succeed(store: SqlStore) -> None:
    number = nhs_number()

    def put(i: int) -> str:
        with store.transaction() as tx:
            tx.put_patient(patient(number, gp_ods_code=f"Y{i:05d}"))
        return "ok"

    results = run_threads(10, put)
    assert results == ["ok"] * 10
    stored = store.read_patient(number)
    assert stored is not None and stored.gp_ods_code in {f"Y{i:05d}" for i in range(10)}
    assert sql(store, "SELECT count(*) FROM patients WHERE nhs_number = :n", n=number) == [(1,)]


# Indicators -----------------------------------------------------------------------------------------


def test_indicator_round_trips_every_field(store: SqlStore) -> None:
    child = patient()
    sparse_actor = Actor(user_id=None, role_profile_id=None, org_code="RR8", asid="200000009999")
    full = indicator(child.nhs_number, assessment_date=date(2024, 2, 29), created_by=CLINICIAN)
    other = indicator(nhs_number(), created_by=sparse_actor)
    nobody = indicator(nhs_number(), created_by=Actor())
    with store.transaction() as tx:
        tx.put_patient(child)
        for ind in (full, other, nobody):
            tx.insert_indicator(ind)
        assert tx.get_indicator(full.id) == full

    with store.transaction() as tx:
        assert tx.get_indicator(full.id) == full
        assert tx.active_indicator(child.nhs_number) == full
        assert tx.indicator_history(child.nhs_number) == [full]
        assert tx.get_indicator(other.id) == other
        assert tx.get_indicator(nobody.id) == nobody
    assert store.read_indicator(full.id) == full
    assert store.read_history(child.nhs_number) == [full]
    got = store.read_indicator(other.id)
    assert got is not None and got.created_by == sparse_actor
    assert got.status is IndicatorStatus.ACTIVE and got.removal is None and got.version == 1
    assert type(got.assessment_date) is date


def test_unknown_indicator_lookups_are_empty(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.get_indicator(str(uuid.uuid4())) is None
        assert tx.active_indicator("9991999999") is None
        assert tx.indicator_history("9991999999") == []
    assert store.read_indicator(str(uuid.uuid4())) is None
    assert store.read_history("9991999999") == []


def test_second_active_indicator_refused_and_transaction_stays_usable(store: SqlStore, audit_key: bytes) -> None:
    number = nhs_number()
    first = indicator(number)
    with store.transaction() as tx:
        tx.insert_indicator(first)

    second, elsewhere, bystander = indicator(number), indicator(nhs_number()), patient()
    with store.transaction() as tx:
        tx.put_patient(bystander)  # work before the refusal ...
        with pytest.raises(IndicatorAlreadySet):
            tx.insert_indicator(second)
        tx.insert_indicator(elsewhere)  # ... and after it, all in the same transaction
        record = tx.append_audit(event(outcome="INDICATOR_ALREADY_SET", status=422))
        assert tx.active_indicator(number) == first

    assert store.read_patient(bystander.nhs_number) == bystander
    assert store.read_indicator(elsewhere.id) == elsewhere
    assert store.read_indicator(second.id) is None
    assert store.read_history(number) == [first]
    assert assert_chain_ok(store, audit_key, 1) == [record]


def test_second_active_indicator_in_the_same_transaction_is_refused(store: SqlStore) -> None:
    number = nhs_number()
    first, second = indicator(number), indicator(number)
    with store.transaction() as tx:
        tx.insert_indicator(first)
        with pytest.raises(IndicatorAlreadySet):
            tx.insert_indicator(second)
        assert tx.active_indicator(number) == first
    assert store.read_history(number) == [first]


def test_domain_error_escaping_a_transaction_rolls_it_back_and_is_not_wrapped(store: SqlStore) -> None:
    number = nhs_number()
    with store.transaction() as tx:
        tx.insert_indicator(indicator(number))
    bystander = patient()
    with pytest.raises(IndicatorAlreadySet), store.transaction() as tx:
        tx.put_patient(bystander)
        tx.insert_indicator(indicator(number))
    assert store.read_patient(bystander.nhs_number) is None


def test_removal_then_a_new_active_indicator(store: SqlStore) -> None:
    number = nhs_number()
    first = indicator(number)
    with store.transaction() as tx:
        tx.insert_indicator(first)
    gone = removed(first, RemovalReason.ADDED_IN_ERROR)
    assert gone.version == 2 and gone.status is IndicatorStatus.ENTERED_IN_ERROR
    with store.transaction() as tx:
        assert tx.save_removal(gone) is True
        assert tx.active_indicator(number) is None
        assert tx.get_indicator(first.id) == gone
    second = indicator(number)
    with store.transaction() as tx:
        tx.insert_indicator(second)
    with store.transaction() as tx:
        assert tx.active_indicator(number) == second
        assert tx.indicator_history(number) == [gone, second]
    assert store.read_history(number) == [gone, second]

    # The removal keeps who, when and why, with the actor's JSON intact.
    kept = store.read_indicator(first.id)
    assert kept is not None and kept.removal is not None
    assert gone.removal is not None
    assert kept.removal == Removal(gone.removal.at, OTHER_CLINICIAN, RemovalReason.ADDED_IN_ERROR)
    assert kept.created_by == CLINICIAN and kept.created_at == first.created_at and kept.version == 2


def test_every_removal_reason_and_status_round_trips(store: SqlStore) -> None:
    expected = []
    with store.transaction() as tx:
        for reason in RemovalReason:
            for status in (IndicatorStatus.INACTIVE, IndicatorStatus.ENTERED_IN_ERROR):
                found = indicator(nhs_number())
                tx.insert_indicator(found)
                gone = removed(found, reason, by=Actor(asid="200000001234", org_code="RR8"), status=status)
                assert tx.save_removal(gone) is True
                expected.append(gone)
    for gone in expected:
        assert store.read_indicator(gone.id) == gone
        assert store.read_history(gone.nhs_number) == [gone]


def test_save_removal_is_compare_and_set(store: SqlStore) -> None:
    number = nhs_number()
    found = indicator(number)
    with store.transaction() as tx:
        tx.insert_indicator(found)

    stale = removed(replace(found, version=2))  # says the stored one is at version 2; it is at 1
    assert stale.version == 3
    with store.transaction() as tx:
        assert tx.save_removal(stale) is False
        assert tx.save_removal(removed(replace(found, id=str(uuid.uuid4())))) is False  # no such indicator
    assert store.read_indicator(found.id) == found

    winner = removed(found, RemovalReason.HAS_HAD_FGM, by=CLINICIAN)
    with store.transaction() as tx:
        assert tx.save_removal(winner) is True
    late = removed(found, RemovalReason.ADDED_IN_ERROR, by=OTHER_CLINICIAN)  # same version, already removed
    with store.transaction() as tx:
        assert tx.save_removal(late) is False
        again = removed(winner, RemovalReason.ADDED_IN_ERROR)  # the right version, but no longer active
        assert tx.save_removal(again) is False
    assert store.read_indicator(found.id) == winner
    assert store.read_history(number) == [winner]


def test_indicators_to_expire(store: SqlStore) -> None:
    cutoff = date(2008, 3, 1)
    old = patient(birth_date=date(2005, 7, 9))
    exactly = patient(birth_date=cutoff)
    young = patient(birth_date=cutoff + timedelta(days=1))
    old_removed = patient(birth_date=date(2004, 1, 1))
    unknown_birth = patient(birth_date=None)
    no_demographics = nhs_number()
    due = {old.nhs_number: indicator(old.nhs_number), exactly.nhs_number: indicator(exactly.nhs_number)}
    with store.transaction() as tx:
        for p in (old, exactly, young, old_removed, unknown_birth):
            tx.put_patient(p)
        for ind in due.values():
            tx.insert_indicator(ind)
        tx.insert_indicator(indicator(young.nhs_number))
        tx.insert_indicator(indicator(unknown_birth.nhs_number))
        tx.insert_indicator(indicator(no_demographics))
        gone = indicator(old_removed.nhs_number)
        tx.insert_indicator(gone)
        assert tx.save_removal(removed(gone)) is True

    with store.transaction() as tx:
        found = tx.indicators_to_expire(cutoff)
        assert tx.indicators_to_expire(date(1990, 1, 1)) == []
    assert sorted(found, key=lambda pair: pair[0].nhs_number) == sorted(
        [(due[old.nhs_number], old), (due[exactly.nhs_number], exactly)], key=lambda pair: pair[0].nhs_number
    )


# Audit ------------------------------------------------------------------------------------------------


def test_empty_audit_chain(store: SqlStore, audit_key: bytes) -> None:
    assert store.audit_head() == (0, GENESIS)
    assert list(store.audit_records()) == []
    assert verify(audit_key, store.audit_records(), *store.audit_head()).ok


def test_append_audit_chains_records(store: SqlStore, audit_key: bytes) -> None:
    sparse = event(1, correlation_id=None, trace_id=None, system_asid=None, system_ods=None, user_id=None,
                   role_profile_id=None, role_code=None, org_code=None, nhs_number=None, resource_id=None)
    with store.transaction() as tx:
        r1 = tx.append_audit(event(0))
        r2 = tx.append_audit(sparse)
    with store.transaction() as tx:
        r3 = tx.append_audit(event(2, status=403, outcome="ACCESS_DENIED"))

    assert [r.seq for r in (r1, r2, r3)] == [1, 2, 3]
    assert r1.prev_hash == GENESIS and r2.prev_hash == r1.hash and r3.prev_hash == r2.hash
    prev = GENESIS
    for record in (r1, r2, r3):
        assert record.hash == link_hash(audit_key, record.seq, prev, record.event)
        prev = record.hash
    assert len({r1.hash, r2.hash, r3.hash}) == 3
    assert store.audit_head() == (3, r3.hash)
    stored = assert_chain_ok(store, audit_key, 3)
    assert stored == [r1, r2, r3]  # every event field round-trips, None included
    assert stored[1].event == sparse and type(stored[2].event.status) is int


def test_audit_appends_in_a_rolled_back_savepoint_are_undone_and_the_others_kept(
        store: SqlStore, audit_key: bytes) -> None:
    """Appends are inserted together at commit: a savepoint must still undo exactly its own."""
    with store.transaction() as tx:
        kept = tx.append_audit(event(0, outcome="BEFORE"))
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.append_audit(event(1, outcome="UNDONE"))
            with tx.savepoint():  # an inner savepoint that succeeds is undone with its outer one
                tx.append_audit(event(2, outcome="UNDONE-INNER"))
            raise RuntimeError("rule broken")
        with tx.savepoint():
            tx.append_audit(event(3, outcome="INSIDE"))
            with pytest.raises(RuntimeError), tx.savepoint():
                tx.append_audit(event(4, outcome="UNDONE-NESTED"))
                raise RuntimeError("rule broken")
        after = tx.append_audit(event(5, outcome="AFTER"))
        in_tx = tx.audit_page(after=0, limit=10)  # the transaction reads its own appends
    assert [r.event.outcome for r in in_tx] == ["BEFORE", "INSIDE", "AFTER"]
    assert (kept.seq, after.seq) == (1, 3)
    stored = assert_chain_ok(store, audit_key, 3)
    assert [r.event.outcome for r in stored] == ["BEFORE", "INSIDE", "AFTER"]
    assert stored == in_tx


def test_a_savepoint_rolled_back_after_a_read_inside_it_undoes_exactly_its_own(
        store: SqlStore, audit_key: bytes) -> None:
    """On PostgreSQL writes wait to go with the next read or the commit: a read inside a savepoint sends
    them (and the SAVEPOINT) first, and a rollback after it must still undo exactly the block."""
    number = nhs_number()
    with store.transaction() as tx:
        tx.put_patient(patient(number))
        kept = tx.append_audit(event(0, outcome="BEFORE"))
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.append_audit(event(1, outcome="UNDONE"))
            assert tx.active_indicator(number) is None  # a read: what waits reaches the database
            with tx.savepoint():
                tx.append_audit(event(2, outcome="UNDONE-INNER"))
            tx.insert_indicator(indicator(number))
            raise RuntimeError("rule broken")
        assert tx.active_indicator(number) is None  # the indicator went with the block
        with tx.savepoint():
            tx.append_audit(event(3, outcome="INSIDE"))
            with pytest.raises(IndicatorAlreadySet), tx.savepoint():
                tx.append_audit(event(4, outcome="UNDONE-NESTED"))
                tx.insert_indicator(indicator(number))
                tx.insert_indicator(indicator(number))
        after = tx.append_audit(event(5, outcome="AFTER"))
    assert (kept.seq, after.seq) == (1, 3)
    stored = assert_chain_ok(store, audit_key, 3)
    assert [r.event.outcome for r in stored] == ["BEFORE", "INSIDE", "AFTER"]
    assert store.read_active_indicator(number) is None


def _completed_on_the_wire(trace: str) -> list[str]:
    """The commands the PostgreSQL server completed, in order, from a libpq protocol trace."""
    return [line.split('"')[1].split()[0] for line in trace.splitlines()
            if "\tB\t" in line and "CommandComplete" in line]


def test_a_savepoint_nothing_of_which_reached_postgresql_is_never_sent(
        store: SqlStore, audit_key: bytes, tmp_path: Path) -> None:
    """A unit's savepoint (``Auditor.run``) whose writes all still wait for the commit costs no statement: the
    SAVEPOINT is dropped from the queue and no RELEASE follows; a block that sent something keeps both, and a
    failed block is still undone (the chain shows exactly the kept events)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs every statement at once: there is no queue to keep a savepoint in")
    number = nhs_number()
    trace_file = tmp_path / "libpq.trace"
    with trace_file.open("w") as trace, store.transaction() as tx:
        tx.put_patient(patient(number))
        tx.append_audit(event(0, outcome="BEFORE"))  # the chain head, locked by the first append (a read)
        tx.flush()
        driver = tx._driver_connection()
        driver.pgconn.trace(trace.fileno())
        with tx.savepoint():  # writes only, as a search's unit: nothing sent
            tx.append_audit(event(1, outcome="KEPT"))
        with pytest.raises(RuntimeError), tx.savepoint():  # nothing sent, then undone
            tx.append_audit(event(2, outcome="UNDONE"))
            raise RuntimeError("rule broken")
        with tx.savepoint():  # a read inside: the SAVEPOINT goes with it, and the RELEASE follows
            tx.append_audit(event(3, outcome="READ-INSIDE"))
            assert tx.active_indicator(number) is None
        tx.flush()
        trace.flush()
        driver.pgconn.untrace()
    completed = _completed_on_the_wire(trace_file.read_text())
    assert completed == ["INSERT", "SAVEPOINT", "INSERT", "SELECT", "RELEASE"]
    stored = assert_chain_ok(store, audit_key, 3)
    assert [r.event.outcome for r in stored] == ["BEFORE", "KEPT", "READ-INSIDE"]


def test_the_child_and_its_active_indicator_are_read_in_one(store: SqlStore) -> None:
    """The FGM search's read, in its transaction: made at once, or queued ahead (``prefetch_*``) and answered
    from the transaction's next round trip (PostgreSQL); the same answers either way."""
    child, without, gone, unknown = nhs_number(), nhs_number(), nhs_number(), nhs_number()
    active, old = indicator(child), indicator(gone)
    with store.transaction() as tx:
        for number in (child, without, gone):
            tx.put_patient(patient(number))
        tx.insert_indicator(active)
        tx.insert_indicator(old)
        assert tx.save_removal(removed(old)) is True
    expected = {child: (patient(child), active), without: (patient(without), None), gone: (patient(gone), None),
                unknown: (None, None)}
    for ahead in (False, True):
        with store.transaction() as tx:
            if ahead:
                for number in expected:
                    tx.prefetch_patient_and_active_indicator(number)
                tx.get_patient(unknown)  # a round trip: the reads queued ahead go with it
            assert {number: tx.patient_and_active_indicator(number) for number in expected} == expected
    assert store.read_active_indicator(child) == active
    assert store.read_active_indicator(gone) is None
    assert store.read_active_indicator(unknown) is None


def test_a_read_queued_ahead_is_made_again_once_the_transaction_wrote_the_childs_rows(store: SqlStore) -> None:
    """Units of one batch are ordered by the chain: a search after a create of the same child (in the same
    transaction) must see the indicator, although its read was queued, and sent, before the create ran."""
    child, other = nhs_number(), nhs_number()
    with store.transaction() as tx:
        tx.put_patient(patient(child))
    created = indicator(child)
    with store.transaction() as tx:
        tx.prefetch_patient_and_active_indicator(child)
        assert tx.get_patient(other) is None  # the read queued ahead is sent now, before the create below
        tx.insert_indicator(created)
        assert tx.patient_and_active_indicator(child) == (patient(child), created)


def test_audit_records_pages_through_long_chains(store: SqlStore, audit_key: bytes) -> None:
    """More than one page (5,000) of records, in order, and the chain verifies across page boundaries.

    5,000 ``append_audit`` calls take 5-15 s, so the middle of the chain is written in bulk, in one
    transaction, exactly as ``append_audit`` would write it (same columns, ``link_hash``); the real
    ``append_audit`` writes the first records and carries on from the bulk-written head.
    """
    with store.transaction() as tx:
        appended = [tx.append_audit(event(i)) for i in range(3)]
    bulk: list[AuditRecord] = []
    prev = appended[-1].hash
    for seq in range(4, 5_004):
        ev = event(seq)
        digest = link_hash(audit_key, seq, prev, ev)
        bulk.append(AuditRecord(seq=seq, event=ev, prev_hash=prev, hash=digest))
        prev = digest
    with store.engine.begin() as conn:
        conn.execute(
            audit_events.insert(),
            [dict(seq=r.seq, prev_hash=r.prev_hash, hash=r.hash, **r.event.fields()) for r in bulk],
        )
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=bulk[-1].seq, hash=bulk[-1].hash))
    with store.transaction() as tx:
        appended += bulk
        appended += [tx.append_audit(event(i)) for i in range(5_004, 5_007)]

    count = 5_006
    stored = assert_chain_ok(store, audit_key, count)
    assert stored == appended  # in order, every field, across the page boundary


@pytest.fixture()
def chain(store: SqlStore) -> list[AuditRecord]:
    with store.transaction() as tx:
        return [tx.append_audit(event(i)) for i in range(4)]


EDITS: list[tuple[str, Any]] = [
    ("outcome", "X"), ("nhs_number", "9991999999"), ("status", 200), ("correlation_id", None),
    ("recorded_at", "2026-03-01T09:30:00.000001Z"), ("prev_hash", "e" * 64), ("hash", "f" * 64),
]


def test_edited_audit_row_is_detected(store: SqlStore, audit_key: bytes, chain: list[AuditRecord]) -> None:
    assert verify(audit_key, store.audit_records(), *store.audit_head()).ok
    for column, value in EDITS:
        [(original,)] = sql(store, f"SELECT {column} FROM audit_events WHERE seq = 2")
        assert sql(store, f"UPDATE audit_events SET {column} = :v WHERE seq = 2", v=value) == 1
        result = verify(audit_key, store.audit_records(), *store.audit_head())
        assert not result.ok, column
        assert (result.seq, result.checked) == (2, 1), (column, result)
        assert sql(store, f"UPDATE audit_events SET {column} = :v WHERE seq = 2", v=original) == 1
        assert verify(audit_key, store.audit_records(), *store.audit_head()).ok, column  # restored: intact again


def test_deleted_last_audit_row_is_detected(store: SqlStore, audit_key: bytes, chain: list[AuditRecord]) -> None:
    assert sql(store, "DELETE FROM audit_events WHERE seq = 4") == 1
    result = verify(audit_key, store.audit_records(), *store.audit_head())
    assert not result.ok
    assert result.checked == 3 and result.seq == 4
    assert "head" in (result.problem or "")


def test_deleted_middle_audit_row_is_detected(store: SqlStore, audit_key: bytes, chain: list[AuditRecord]) -> None:
    assert sql(store, "DELETE FROM audit_events WHERE seq = 2") == 1
    result = verify(audit_key, store.audit_records(), *store.audit_head())
    assert not result.ok
    assert result.checked == 1 and result.seq == 2
    assert result.problem == "record 2 is missing"


# Atomicity --------------------------------------------------------------------------------------------


def test_failed_transaction_leaves_nothing(store: SqlStore, audit_key: bytes) -> None:
    with store.transaction() as tx:
        kept = tx.append_audit(event(0))
    head = store.audit_head()
    number = nhs_number()
    child = patient(number)
    doomed = indicator(number)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as tx:
        tx.put_patient(child)
        tx.insert_indicator(doomed)
        tx.append_audit(event(1))
        raise Boom()

    assert store.read_indicator(doomed.id) is None
    assert store.read_history(number) == []
    assert store.read_patient(number) is None
    assert store.audit_head() == head
    assert assert_chain_ok(store, audit_key, 1) == [kept]

    with store.transaction() as tx:  # the chain carries on from the surviving head
        after = tx.append_audit(event(2))
    assert after.seq == 2 and after.prev_hash == kept.hash
    assert_chain_ok(store, audit_key, 2)


# Concurrency ------------------------------------------------------------------------------------------


def test_concurrent_creates_for_one_child_exactly_one_wins(store: SqlStore, audit_key: bytes) -> None:
    number = nhs_number()
    with store.transaction() as tx:
        tx.put_patient(patient(number))
    attempts = [indicator(number) for _ in range(50)]

    def create(i: int) -> str:
        if i % 2:
            # Like the services: the refusal escapes (rolling the transaction back) and is audited on its own.
            try:
                with store.transaction() as tx:
                    tx.insert_indicator(attempts[i])
                    tx.append_audit(event(i, outcome="CREATED", resource_id=attempts[i].id))
            except IndicatorAlreadySet:
                with store.transaction() as tx:
                    tx.append_audit(event(i, status=422, outcome="INDICATOR_ALREADY_SET", resource_id=None))
                return "refused"
            return "created"
        # The refusal is caught inside the transaction (savepoint) and audited in it.
        with store.transaction() as tx:
            try:
                tx.insert_indicator(attempts[i])
            except IndicatorAlreadySet:
                tx.append_audit(event(i, status=422, outcome="INDICATOR_ALREADY_SET", resource_id=None))
                return "refused"
            tx.append_audit(event(i, outcome="CREATED", resource_id=attempts[i].id))
            return "created"

    results = run_threads(50, create)
    assert sorted(map(str, results)) == ["created"] + ["refused"] * 49, results
    winner = attempts[results.index("created")]
    assert store.read_history(number) == [winner]
    with store.transaction() as tx:
        assert tx.active_indicator(number) == winner

    records = assert_chain_ok(store, audit_key, 50)  # one record per committed transaction, chain intact
    outcomes = sorted(r.event.outcome for r in records)
    assert outcomes == ["CREATED"] + ["INDICATOR_ALREADY_SET"] * 49
    assert [r.event.resource_id for r in records if r.event.outcome == "CREATED"] == [winner.id]


def test_concurrent_removals_of_one_version_exactly_one_wins(store: SqlStore, audit_key: bytes) -> None:
    number = nhs_number()
    found = indicator(number)
    with store.transaction() as tx:
        tx.insert_indicator(found)
    reasons = [RemovalReason.ADDED_IN_ERROR, RemovalReason.NO_LONGER_AT_RISK, RemovalReason.HAS_HAD_FGM]
    attempts = [removed(found, reasons[i % 3], by=Actor(user_id=f"user-{i}")) for i in range(20)]

    def remove(i: int) -> bool:
        with store.transaction() as tx:
            ok = tx.save_removal(attempts[i])
            tx.append_audit(event(i, outcome="REMOVED" if ok else "INDICATOR_ALREADY_REMOVED"))
            return ok

    results = run_threads(20, remove)
    assert all(type(r) is bool for r in results), results
    assert results.count(True) == 1
    winner = attempts[results.index(True)]
    assert store.read_indicator(found.id) == winner
    records = assert_chain_ok(store, audit_key, 20)
    assert sorted(r.event.outcome for r in records) == ["INDICATOR_ALREADY_REMOVED"] * 19 + ["REMOVED"]


def test_concurrent_audit_appends_keep_one_chain(store: SqlStore, audit_key: bytes) -> None:
    def append(i: int) -> list[int]:
        seqs = []
        for j in range(5):
            with store.transaction() as tx:
                seqs.append(tx.append_audit(event(i * 100 + j)).seq)
        return seqs

    results = run_threads(12, append)
    assert sorted(seq for seqs in results for seq in seqs) == list(range(1, 61)), results
    assert_chain_ok(store, audit_key, 60)


# Availability -----------------------------------------------------------------------------------------


def test_ping(store: SqlStore) -> None:
    store.ping()  # answers: no exception


@pytest.fixture(params=["postgresql", "sqlite"])
def unreachable(request: pytest.FixtureRequest, tmp_path: Path, audit_key: bytes) -> Any:
    if request.param == "postgresql":
        url = "postgresql://postgres@127.0.0.1:1/postgres"  # nothing listens on port 1
    else:
        url = sqlite_url(tmp_path / "no" / "such" / "dir" / "store.db")
    opened = SqlStore.open(url, audit_key)
    yield opened
    opened.close()


def test_reads_on_an_event_loop_from_an_unreachable_store_are_unavailable(unreachable: SqlStore) -> None:
    """Requests running inline read through the store's reader thread on PostgreSQL: its failure reaches each."""

    async def main() -> list[Any]:
        return await asyncio.gather(*(inline.run(lambda: unreachable.read_patient("9990000018")) for _ in range(3)),
                                    return_exceptions=True)

    assert all(isinstance(result, StoreUnavailable) for result in asyncio.run(main()))


def test_unreachable_store_raises_store_unavailable(unreachable: SqlStore) -> None:
    with pytest.raises(StoreUnavailable):
        unreachable.ping()
    with pytest.raises(StoreUnavailable), unreachable.transaction():
        pass
    with pytest.raises(StoreUnavailable):
        unreachable.read_patient("9991000002")
    with pytest.raises(StoreUnavailable):
        unreachable.read_history("9991000002")
    with pytest.raises(StoreUnavailable):
        unreachable.audit_head()
    with pytest.raises(StoreUnavailable):
        list(unreachable.audit_records())


# Signed-out web sessions ------------------------------------------------------------------------------

LATER = 2_000_000_000  # epoch seconds, in 2033: a lifetime that has not ended
NOW = 1_900_000_000


def test_a_revoked_web_session_is_seen_by_every_store_on_the_database(store: SqlStore, store_url: str,
                                                                       audit_key: bytes) -> None:
    other = SqlStore.open(store_url, audit_key)  # another worker process, or another node
    try:
        assert not store.web_session_revoked("a" * 64) and not other.web_session_revoked("a" * 64)
        store.run(lambda tx: tx.revoke_web_session("a" * 64, LATER, NOW))
        assert other.web_session_revoked("a" * 64) and store.web_session_revoked("a" * 64)
        assert not other.web_session_revoked("b" * 64)
    finally:
        other.close()


def test_revoking_twice_is_harmless_and_ended_sessions_are_forgotten(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.revoke_web_session("a" * 64, LATER, NOW)
        tx.revoke_web_session("a" * 64, LATER, NOW)  # signed out twice, or from two tabs
        tx.revoke_web_session("c" * 64, NOW - 1, NOW - 10)  # its lifetime ends just before the next sign-out
        tx.revoke_web_session("d" * 64, NOW, NOW - 10)  # ends exactly then: kept
    assert store.web_session_revoked("a" * 64) and store.web_session_revoked("c" * 64)
    store.run(lambda tx: tx.revoke_web_session("b" * 64, LATER, NOW))
    assert not store.web_session_revoked("c" * 64)
    assert all(store.web_session_revoked(h * 64) for h in "abd")


def test_a_revocation_in_a_failed_transaction_is_not_kept(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.revoke_web_session("a" * 64, LATER, NOW)
        raise RuntimeError("after the revocation")
    assert not store.web_session_revoked("a" * 64)


def test_concurrent_revocations_of_one_session_all_succeed(store: SqlStore) -> None:
    results = run_threads(8, lambda i: store.run(lambda tx: tx.revoke_web_session("a" * 64, LATER, NOW + i)))
    assert results == [None] * 8
    assert store.web_session_revoked("a" * 64)


def test_an_unreachable_store_cannot_say_whether_a_session_was_revoked(unreachable: SqlStore) -> None:
    with pytest.raises(StoreUnavailable):
        unreachable.web_session_revoked("a" * 64)
    with pytest.raises(StoreUnavailable):
        unreachable.run(lambda tx: tx.revoke_web_session("a" * 64, LATER, NOW))


def test_revocations_from_requests_on_an_event_loop_commit_with_the_others_in_group_commit(
        store: SqlStore, audit_key: bytes) -> None:
    def sign_out(i: int) -> None:
        store.run(lambda tx: tx.revoke_web_session(f"{i:064x}", LATER, NOW))

    def audited(i: int) -> int:
        event = AuditEvent(recorded_at=instant(), api="web", interaction="sign-out", status=303, outcome="OK",
                           request_id=f"r{i}")
        return store.run(lambda tx: tx.append_audit(event).seq)

    async def main() -> list[Any]:
        calls = [inline.run(sign_out, i) for i in range(10)] + [inline.run(audited, i) for i in range(10)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    assert results[:10] == [None] * 10 and sorted(results[10:]) == list(range(1, 11)), results
    assert all(store.web_session_revoked(f"{i:064x}") for i in range(10))
    assert_chain_ok(store, audit_key, 10)
