"""A CP-IS unscheduled access as one unit of a group-commit batch (``CpisService.care_teams``), on SQLite and a
real PostgreSQL: the access row, its notifications and its audit event commit together or not at all.

The search's unit takes no savepoint (its one refusal, an invalid NHS number, comes before the transaction),
so what undoes a unit that fails after its first write is the batch's rollback and rerun (``writer.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from safeguarding.api.errors import ErrorRow
from safeguarding.demographics import LocalDemographics
from safeguarding.domain.caller import Caller, User
from safeguarding.domain.clock import SystemClock
from safeguarding.domain.errors import InvalidNhsNumber
from safeguarding.services.auditing import Auditor
from safeguarding.services.context import Outcomes, RequestContext
from safeguarding.services.cpis import CpisService
from safeguarding.store.event_loop import EventLoopStore
from safeguarding.store.sql import SqlStore, SqlTransaction

from .test_contract import nhs_number
from .test_cpis_contract import SBC, TCC, plan
from .test_group_commit import chain_ok, concurrently

CLINICIAN = User(user_id="555021941103", role_profile_id="555021942104", org_code="RR8",
                 activities=frozenset({"B0107"}))
OUTCOMES = Outcomes((200, "OK"), {InvalidNhsNumber: ErrorRow(400, "INVALID_SEARCH_DATA", "Invalid NHS number")},
                    unnamed=None)


def service(store: SqlStore) -> CpisService:
    clock, loop_store = SystemClock(), EventLoopStore(store)
    return CpisService(loop_store, LocalDemographics(store), clock, Auditor(loop_store, clock))


def history(store: SqlStore, number: str, limit: int) -> list[Any]:
    with store.transaction() as tx:
        return tx.access_history(number, limit)


def pending(store: SqlStore, authority: str) -> list[Any]:
    with store.transaction() as tx:
        return tx.pending_notifications(authority, 100)


def search(cpis: CpisService, number: str) -> Callable[[], Any]:
    def call() -> Any:
        ctx = RequestContext(api="cpis-r4", interaction="careteam-search", request_id=str(uuid.uuid4()),
                             caller=Caller(user=CLINICIAN), outcomes=OUTCOMES)
        return [p.id for p in cpis.care_teams(ctx, number, True)]
    return call


def test_an_access_failing_after_its_first_write_leaves_nothing_and_the_others_commit(
        store: SqlStore, audit_key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    children = [nhs_number() for _ in range(6)]
    plans = {child: [plan(child), plan(child, authority=TCC)] for child in children}
    with store.transaction() as tx:
        for pair in plans.values():
            for each in pair:
                assert tx.insert_plan(each)
    doomed = children[2]
    queue = SqlTransaction.queue_notification

    def failing(tx: SqlTransaction, notification: Any) -> None:
        queue(tx, notification)
        if notification.event.nhs_number == doomed:  # after the access row and a notification are written
            raise RuntimeError("a bug after the first write")

    monkeypatch.setattr(SqlTransaction, "queue_notification", failing)
    cpis = service(store)
    results = concurrently([search(cpis, child) for child in children])

    assert isinstance(results[2], RuntimeError)
    for child, result in zip(children, results, strict=True):
        if child != doomed:
            assert sorted(result) == sorted(p.id for p in plans[child])
    assert history(store, doomed, 25) == []
    assert all(len(history(store, child, 25)) == 1 for child in children if child != doomed)
    for authority in (SBC, TCC):
        notified = [n.event.nhs_number for n in pending(store, authority)]
        assert sorted(notified) == sorted(child for child in children if child != doomed)
    assert chain_ok(store, audit_key) == (True, 5)  # the failed unit's audit event went with it


def test_an_invalid_number_is_refused_and_audited_with_nothing_written(store: SqlStore, audit_key: bytes) -> None:
    [result] = concurrently([search(service(store), "9990000124")])
    assert isinstance(result, InvalidNhsNumber)
    assert history(store, "9990000124", 25) == []
    assert chain_ok(store, audit_key) == (True, 1)
