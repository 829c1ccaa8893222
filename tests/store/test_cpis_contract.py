"""The CP-IS part of the store contract, run against SQLite and a real PostgreSQL (``conftest.py``)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from safeguarding.domain.cpis import (
    Access,
    Alert,
    Author,
    AuthorityContact,
    Notification,
    Plan,
    PlanKey,
    PlanType,
    Provenance,
)
from safeguarding.store.interface import StoreUnavailable
from safeguarding.store.sql import SqlStore, sqlite_url

from .test_contract import _completed_on_the_wire, instant, nhs_number, run_threads, sql

SBC, TCC = "SBC01", "TCC02"
CONTACT = AuthorityContact("Sandbox City Council", "01134960000", "07700900001")
CLINICIAN = Author(user_id="555021935107", role_profile_id="555021936108", org_code="RR8",
                   role_code="S8000:G8000:R8000", role_name='"Clinical":"Clinical Provision":"Nurse Access Role"',
                   org_name="Sandbox Hospital", name="Dr Amy Sandbox")
OTHER = Author(user_id="555021939101", role_profile_id="555021940102", org_code="RA7")


def plan(number: str, authority: str = SBC, kind: PlanType = PlanType.CPP, **overrides: Any) -> Plan:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()), "key": PlanKey(authority, number, kind), "start": date(2025, 9, 1),
        "end": None, "contact": CONTACT, "created_at": instant(),
        "changed": Provenance(instant(), "300000000101", "req-1"), "withdrawn_at": None, "version": 1,
    }
    values.update(overrides)
    return Plan(**values)


def access(number: str, author: Author = CLINICIAN, listed: bool = True) -> Access:
    return Access(id=str(uuid.uuid4()), nhs_number=number, at=instant(), author=author, listed=listed)


# Plans ---------------------------------------------------------------------------------------------


def test_plan_round_trips_every_field(store: SqlStore) -> None:
    child = nhs_number()
    full = plan(child, kind=PlanType.UCP, end=date(2026, 6, 30), withdrawn_at=instant(), version=3)
    sparse = plan(child, kind=PlanType.LAC, contact=AuthorityContact("Only A Name"),
                  changed=Provenance(instant()))
    with store.transaction() as tx:
        assert tx.insert_plan(full) and tx.insert_plan(sparse)
        assert tx.plan_for_update(full.key) == full  # visible inside its own transaction
    assert sorted(store.read_plans(child), key=lambda p: p.id) == sorted([full, sparse], key=lambda p: p.id)
    with store.transaction() as tx:
        assert sorted(tx.plans_for(child, lock=True), key=lambda p: p.id) == sorted([full, sparse],
                                                                                    key=lambda p: p.id)
        assert tx.plan_for_update(PlanKey(TCC, child, PlanType.UCP)) is None
    [got] = [p for p in store.read_plans(child) if p.id == full.id]
    assert type(got.start) is date and got.end == date(2026, 6, 30) and got.key.plan_type is PlanType.UCP
    assert store.read_plans(nhs_number()) == []


def test_the_key_is_unique_and_a_refused_insert_leaves_the_transaction_usable(store: SqlStore) -> None:
    child = nhs_number()
    first = plan(child)
    with store.transaction() as tx:
        assert tx.insert_plan(first)
        assert not tx.insert_plan(plan(child))  # same authority, child and type
        # other authorities and other types for the same child are separate plans
        assert tx.insert_plan(plan(child, authority=TCC))
        assert tx.insert_plan(plan(child, kind=PlanType.LAC))
    assert len(store.read_plans(child)) == 3
    assert sql(store, "SELECT count(*) FROM cpis_plans WHERE nhs_number = :n AND authority_ods = :a "
                      "AND plan_type = 'CPP'", n=child, a=SBC) == [(1,)]


def test_update_plan_is_compare_and_set(store: SqlStore) -> None:
    child = nhs_number()
    first = plan(child)
    with store.transaction() as tx:
        tx.insert_plan(first)
    ended = replace(first, end=date(2026, 1, 31), version=2, changed=Provenance(instant(), "300000000101", "req-2"))
    with store.transaction() as tx:
        assert tx.update_plan(ended)
        assert not tx.update_plan(ended)  # the stored plan is no longer at version 1
    assert store.read_plans(child) == [ended]
    stale = replace(first, end=date(2026, 2, 28), version=2)
    with store.transaction() as tx:
        assert not tx.update_plan(stale)
    assert store.read_plans(child) == [ended]


def test_concurrent_inserts_of_one_new_key_exactly_one_wins(store: SqlStore) -> None:
    child = nhs_number()

    def insert(i: int) -> bool:
        with store.transaction() as tx:
            return tx.insert_plan(plan(child, start=date(2025, 1, 1 + i)))

    results = run_threads(8, insert)
    assert sorted(results) == [False] * 7 + [True]
    assert len(store.read_plans(child)) == 1


# Access history ------------------------------------------------------------------------------------


def test_access_history_is_newest_first_listed_only_and_limited(store: SqlStore) -> None:
    child = nhs_number()
    recorded = [access(child, author=replace(CLINICIAN, user_id=f"55502193{i:04d}")) for i in range(3)]
    repeat = access(child, listed=False)
    recorded += [access(child, author=replace(CLINICIAN, user_id=f"55502194{i:04d}")) for i in range(3)]
    with store.transaction() as tx:
        for item in reversed(recorded[:3] + [repeat] + recorded[3:]):  # insertion order does not matter
            tx.record_access(item)
        assert tx.access_history(child, 25) == list(reversed(recorded))
        assert tx.access_history(child, 4) == list(reversed(recorded))[:4]
        assert tx.access_history(nhs_number(), 25) == []
    assert store.read_accesses(child) == recorded[:3] + [repeat] + recorded[3:]


def test_last_listed_access_is_per_child_and_user(store: SqlStore) -> None:
    child, other_child = nhs_number(), nhs_number()
    first, later = access(child), access(child)
    unlisted = access(child, listed=False)
    with store.transaction() as tx:
        assert tx.last_listed_access(child, CLINICIAN.user_id) is None
        for item in (first, later, unlisted, access(other_child), access(child, author=OTHER)):
            tx.record_access(item)
        assert tx.last_listed_access(child, CLINICIAN.user_id) == later.at
        assert tx.last_listed_access(child, OTHER.user_id) is not None
        assert tx.last_listed_access(child, "nobody") is None


def test_plans_are_read_locked_with_the_users_last_listed_access(store: SqlStore) -> None:
    child, other_child = nhs_number(), nhs_number()
    plans = sorted([plan(child), plan(child, authority=TCC)], key=lambda p: p.id)
    first, later = access(child), access(child)
    with store.transaction() as tx:
        for item in plans:
            assert tx.insert_plan(item)
        assert tx.plans_with_last_access(child, CLINICIAN.user_id) == (plans, None)
        for item in (first, later, access(child, listed=False), access(other_child), access(child, author=OTHER)):
            tx.record_access(item)
        assert tx.plans_with_last_access(child, CLINICIAN.user_id) == (plans, later.at)
        assert tx.plans_with_last_access(other_child, OTHER.user_id) == ([], None)
        assert tx.plans_with_last_access(child, "nobody") == (plans, None)


def test_a_childs_plans_come_in_id_order_however_they_were_written(store: SqlStore) -> None:
    # SQLite's locked read has no ORDER BY (no row locks to order; its sorter costs more than the store's sort):
    # the plans still come in id order, as PostgreSQL's ORDER BY id gives them, whatever the order of insertion.
    child = nhs_number()
    ids = sorted(str(uuid.uuid4()) for _ in range(3))
    plans = [plan(child, authority=authority, id=ident) for authority, ident in zip((SBC, TCC, "LBB03"), ids,
                                                                                      strict=True)]
    with store.transaction() as tx:
        for item in reversed(plans):
            assert tx.insert_plan(item)
    with store.transaction() as tx:
        assert tx.plans_for(child, lock=True) == plans
        assert tx.plans_with_last_access(child, CLINICIAN.user_id) == (plans, None)
        assert tx.plans_for(child) == plans
    with store.transaction() as tx:
        tx.prefetch_plans_with_last_access(child, CLINICIAN.user_id)
        assert tx.plans_with_last_access(child, CLINICIAN.user_id) == (plans, None)
    assert store.read_plans(child) == plans


def test_reads_queued_ahead_answer_as_reads_made_then_unless_the_child_was_written_since(store: SqlStore) -> None:
    child, other = nhs_number(), nhs_number()
    plans = [plan(child)]
    first = access(child)
    with store.transaction() as tx:
        assert tx.insert_plan(plans[0])
        tx.record_access(first)
    with store.transaction() as tx:
        tx.prefetch_plans_with_last_access(child, CLINICIAN.user_id)
        tx.prefetch_plans_with_last_access(other, CLINICIAN.user_id)
        assert tx.plans_with_last_access(other, CLINICIAN.user_id) == ([], None)
        assert tx.plans_with_last_access(child, CLINICIAN.user_id) == (plans, first.at)
        later = access(child)
        tx.record_access(later)
        tx.prefetch_plans_with_last_access(child, CLINICIAN.user_id)  # read ahead before the write was sent
        assert tx.plans_with_last_access(child, CLINICIAN.user_id) == (plans, later.at)


def test_reads_queued_ahead_together_answer_each_child_and_user_as_reads_made_alone(
        store: SqlStore, tmp_path: Path) -> None:
    """A batch's CP-IS searches queue their reads together: on PostgreSQL every child's plans go as one SELECT and
    every (child, user)'s last listed access as another, and each search still gets exactly what its own reads
    would have answered (its child's plans in order, its own user's last listed access)."""
    a, b, c, d, e = (nhs_number() for _ in range(5))
    plans = {a: sorted([plan(a), plan(a, authority=TCC)], key=lambda p: p.id), b: [plan(b)], c: [], d: [],
             e: [plan(e, kind=PlanType.LAC)]}
    earlier, mine = access(a), access(a)
    with store.transaction() as tx:
        for item in plans[a] + plans[b] + plans[e]:
            assert tx.insert_plan(item)
        for item in (earlier, mine, access(a, author=OTHER), access(a, listed=False), access(c), access(e)):
            tx.record_access(item)
    # one search a child (a second of the same child in a batch reads again: the first recorded an access)
    wanted = [(a, CLINICIAN.user_id), (b, CLINICIAN.user_id), (c, CLINICIAN.user_id), (d, OTHER.user_id),
              (e, OTHER.user_id)]
    with store.transaction() as tx:
        alone = [tx.plans_with_last_access(child, user) for child, user in wanted]
    assert [found for found, _ in alone] == [plans[child] for child, _ in wanted]
    assert alone[0][1] == mine.at
    assert [last is not None for _, last in alone] == [True, False, True, False, False]
    trace_file = tmp_path / "libpq.trace"
    with store.transaction() as tx:
        postgresql = store.engine.dialect.name == "postgresql"
        for child, user in wanted:
            tx.prefetch_plans_with_last_access(child, user)
        if postgresql:
            driver = tx._driver_connection()
            with trace_file.open("w") as trace:
                driver.pgconn.trace(trace.fileno())
                together = [tx.plans_with_last_access(child, user) for child, user in wanted]
                driver.pgconn.untrace()
        else:
            together = [tx.plans_with_last_access(child, user) for child, user in wanted]
    assert together == alone
    if postgresql:  # BEGIN, then the two reads for all five
        assert _completed_on_the_wire(trace_file.read_text()) == ["BEGIN", "SELECT", "SELECT"]


def test_plans_read_ahead_are_read_again_once_the_transaction_stored_a_plan_for_the_child(store: SqlStore) -> None:
    """An upload and an access to the same child in one batch: the access, after the upload in the chain, must
    see the uploaded plan although its read was queued, and sent, before the upload ran."""
    child, other = nhs_number(), nhs_number()
    first, second = plan(child), plan(child, kind=PlanType.LAC)
    with store.transaction() as tx:
        assert tx.insert_plan(first)
    with store.transaction() as tx:
        tx.prefetch_plans_with_last_access(child, CLINICIAN.user_id)
        assert tx.plans_for(other) == []  # the reads queued ahead are sent now, before the upload below
        assert tx.insert_plan(second)
        assert sorted(p.id for p in tx.plans_with_last_access(child, CLINICIAN.user_id)[0]) == sorted(
            [first.id, second.id])


def test_author_round_trips_with_and_without_optional_fields(store: SqlStore) -> None:
    child = nhs_number()
    with store.transaction() as tx:
        tx.record_access(access(child, CLINICIAN))
        tx.record_access(access(child, OTHER))
    assert [a.author for a in store.read_accesses(child)] == [CLINICIAN, OTHER]


# Notifications ---------------------------------------------------------------------------------------


def test_notifications_are_per_authority_oldest_first_until_acknowledged(store: SqlStore) -> None:
    child = nhs_number()
    seen = access(child)
    alert = Alert(id=str(uuid.uuid4()), nhs_number=child, at=instant(), author=CLINICIAN, note="Missed clinic")
    with store.transaction() as tx:
        tx.record_access(seen)
        tx.record_alert(alert)
        for authority in (SBC, TCC):
            tx.queue_notification(Notification(authority, seen.at, seen))
        tx.queue_notification(Notification(SBC, alert.at, alert))
    with store.transaction() as tx:
        pending = tx.pending_notifications(SBC, 10)
        assert [(n.event, n.authority_ods, n.acknowledged_at) for n in pending] == [(seen, SBC, None),
                                                                                    (alert, SBC, None)]
        assert tx.pending_notifications(SBC, 1) == pending[:1]
        assert [n.event for n in tx.pending_notifications(TCC, 10)] == [seen]
        assert tx.pending_notifications("NOBODY", 10) == []
        assert (tx.count_pending(SBC), tx.count_pending(TCC)) == (2, 1)

    acked_at = instant()
    with store.transaction() as tx:
        # another authority's id and unknown ids are ignored; only what was pending is returned
        assert tx.acknowledge(TCC, [alert.id, str(uuid.uuid4())], acked_at) == []
        assert tx.acknowledge(SBC, [seen.id], acked_at) == [seen.id]
        assert tx.acknowledge(SBC, [seen.id], instant()) == []  # acknowledging again changes nothing
        assert tx.acknowledge(SBC, [], instant()) == []
    with store.transaction() as tx:
        assert [n.event for n in tx.pending_notifications(SBC, 10)] == [alert]
        assert [n.event for n in tx.pending_notifications(TCC, 10)] == [seen]  # TCC's own copy is untouched
        assert (tx.count_pending(SBC), tx.count_pending(TCC)) == (1, 1)
    everything = store.read_notifications(SBC)
    assert [(n.event_id, n.acknowledged_at) for n in everything] == [(seen.id, acked_at), (alert.id, None)]


def test_an_event_is_queued_once_per_authority(store: SqlStore) -> None:
    child = nhs_number()
    seen = access(child)
    with store.transaction() as tx:
        tx.record_access(seen)
        tx.queue_notification(Notification(SBC, seen.at, seen))
    with pytest.raises(StoreUnavailable), store.transaction() as tx:  # the primary key refuses a duplicate
        tx.queue_notification(Notification(SBC, seen.at, seen))
    assert len(store.read_notifications(SBC)) == 1


def test_access_and_notification_commit_together_or_not_at_all(store: SqlStore) -> None:
    child = nhs_number()
    seen = access(child)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as tx:
        tx.record_access(seen)
        tx.queue_notification(Notification(SBC, seen.at, seen))
        raise Boom()
    assert store.read_accesses(child) == []
    assert [n for n in store.read_notifications(SBC) if n.event_id == seen.id] == []


def test_concurrent_acknowledgements_take_each_notification_once(store: SqlStore) -> None:
    child = nhs_number()
    events = [access(child) for _ in range(5)]
    with store.transaction() as tx:
        for item in events:
            tx.record_access(item)
            tx.queue_notification(Notification(TCC, item.at, item))
    ids = [e.id for e in events]

    def ack(i: int) -> list[str]:
        with store.transaction() as tx:
            return tx.acknowledge(TCC, ids, instant())

    taken = run_threads(6, ack)
    assert sorted(i for batch in taken for i in batch) == sorted(ids)
    with store.transaction() as tx:
        assert tx.count_pending(TCC) == 0


@pytest.fixture(params=["postgresql", "sqlite"])
def unreachable(request: pytest.FixtureRequest, tmp_path: Path, audit_key: bytes) -> Any:
    url = ("postgresql://postgres@127.0.0.1:1/postgres" if request.param == "postgresql"
           else sqlite_url(tmp_path / "no" / "such" / "dir" / "store.db"))
    opened = SqlStore.open(url, audit_key)
    yield opened
    opened.close()


def test_unreachable_store_raises_store_unavailable_for_cpis_reads(unreachable: SqlStore) -> None:
    for read in (unreachable.read_plans, unreachable.read_accesses, unreachable.read_notifications):
        with pytest.raises(StoreUnavailable):
            read("9991000002")


def test_a_plan_and_an_alert_are_found_by_id(store: SqlStore) -> None:
    child = nhs_number()
    held = plan(child, withdrawn_at=instant())
    alert = Alert(id=str(uuid.uuid4()), nhs_number=child, at=instant(), author=CLINICIAN, note="Did not attend")
    with store.transaction() as tx:
        assert tx.insert_plan(held)
        tx.record_alert(alert)
        for authority in (TCC, SBC):
            tx.queue_notification(Notification(authority, alert.at, alert))
        tx.queue_notification(Notification(SBC, instant(), access(child)))
    with store.transaction() as tx:
        assert tx.plan_by_id(held.id) == held
        assert tx.plan_by_id(str(uuid.uuid4())) is None
        assert tx.alert_by_id(alert.id) == (alert, [SBC, TCC])
        assert tx.alert_by_id(str(uuid.uuid4())) is None
