"""A real PostgreSQL outage: every API answers 503 (DSTU2: its own refusal) promptly, with Retry-After; the refused
requests' audit events wait in the local spool and join the chain when the database is back; no restart needed."""

from __future__ import annotations

import json
import stat
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from safeguarding.audit.chain import verify
from safeguarding.settings import sandbox_settings

from ..api.cpis_helpers import JSON, SBC_ASID, clinician
from ..api.test_fgm_dstu2 import message
from ..pg import ADMIN_URL, create_database, drop_database
from ..support import NHS_SYSTEM, Server, flag_body, free_port

GP_ASID = "047192794544"  # the sandbox's clinical system, registered for every FGM-IS DSTU2 interaction
GIRL = "9990000018"
CPP_CHILD = "9990000123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = create_database()
    root = tmp_path_factory.mktemp("outage")
    running = Server(root / "data", free_port(), root / "server.log", database_url=url).start()
    yield running
    running.stop()
    drop_database(url)


def _allow_connections(url: str, allow: bool) -> None:
    name = make_url(url).database
    admin = make_url(ADMIN_URL)
    engine = create_engine(admin.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allow else "false"}')
            if not allow:
                conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                                     (name,))
    finally:
        engine.dispose()


def _calls(server: Server) -> dict[str, httpx.Response]:
    """One call of each kind, each with its own request id (the key is the id)."""
    answers: dict[str, httpx.Response] = {}
    query = message("query", GIRL)
    with server.client() as anyone, server.client(server.system_cert(SBC_ASID)) as authority, \
            server.client(server.system_cert(GP_ASID)) as gp:
        calls = {
            "fgm-r4": lambda rid: anyone.get(f"{server.fgm}/Flag",
                                             params={"patient:identifier": f"{NHS_SYSTEM}|{GIRL}"},
                                             headers=server.headers(**{"X-Request-ID": rid})),
            "cpis-clinician": lambda rid: anyone.get(f"{server.cpis}/CareTeam",
                                                     params={"patient:identifier": f"{NHS_SYSTEM}|{CPP_CHILD}"},
                                                     headers=clinician(server, unscheduled="false",
                                                                       **{"X-Request-ID": rid})),
            "cpis-authority": lambda rid: authority.get(f"{server.cpis}/notifications", headers={"X-Request-ID": rid}),
            "dstu2": lambda rid: gp.post(f"{server.base}/fhir/fgm/query", content=query,
                                         headers={"Content-Type": "text/xml; charset=utf-8", "X-Request-ID": rid}),
            "unauthenticated": lambda rid: anyone.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL},
                                                      headers={"X-Request-ID": rid}),
        }
        for kind, call in calls.items():
            rid = f"{kind}-{uuid.uuid4()}"
            answers[rid] = call(rid)
    return answers


def _kind(rid: str) -> str:
    return rid.rsplit("-", 5)[0]


def _audited(server: Server) -> set[str]:
    settings = sandbox_settings(server.data_dir, database_url=server.database_url)
    store = server.store()
    try:
        head = store.audit_head()
        records = list(store.audit_records())
        assert verify(settings.audit_key.value, records, *head).ok
        return {r.event.request_id for r in records}
    finally:
        store.close()


def test_an_outage_is_answered_503_audited_later_and_recovered_from(server: Server) -> None:
    assert server.database_url
    before = _calls(server)
    assert {_kind(rid): r.status_code for rid, r in before.items()} == {
        "fgm-r4": 200, "cpis-clinician": 200, "cpis-authority": 200, "dstu2": 200, "unauthenticated": 401}

    _allow_connections(server.database_url, False)
    try:
        started = time.monotonic()
        during = _calls(server)
        took = time.monotonic() - started
        spool = server.data_dir / "audit-spool"
        spooled = sorted(spool.glob("*.jsonl"))
        assert spooled and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in spooled)
        assert stat.S_IMODE(spool.stat().st_mode) == 0o700
        held = b"".join(p.read_bytes() for p in spooled)
        for rid in during:
            assert rid.encode() in held, f"{rid} was not spooled"
    finally:
        _allow_connections(server.database_url, True)

    assert took < 30, f"five refused calls took {took:.1f} s"  # no hanging on the database (generous slack)
    for rid, answer in during.items():
        kind = _kind(rid)
        if kind == "unauthenticated":
            assert answer.status_code == 401  # refusing a caller needs no database
            continue
        if kind == "dstu2":  # the messaging guide's own answer when the service cannot work: 500, transient
            assert answer.status_code == 500, answer.text
            assert b'<code value="transient-error"/>' in answer.content
            assert b'<code value="COULD_NOT_CONNECT_TO_SPINE"/>' in answer.content
            continue
        assert answer.status_code == 503, (kind, answer.text)
        assert answer.json()["issue"][0]["details"]["coding"][0]["code"] == "SERVICE_UNAVAILABLE"
        assert answer.headers["retry-after"].isdigit(), kind

    # Back by itself within seconds: the spool reaches the chain and requests are served again.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if set(during) <= _audited(server):
            break
        time.sleep(0.5)
    assert set(during) <= _audited(server), "spooled audit events did not reach the chain"
    after = _calls(server)
    assert {_kind(rid): r.status_code for rid, r in after.items()} == {
        "fgm-r4": 200, "cpis-clinician": 200, "cpis-authority": 200, "dstu2": 200, "unauthenticated": 401}
    assert not any(p.stat().st_size for p in (server.data_dir / "audit-spool").glob("*.jsonl"))




def test_an_outage_under_write_load_loses_nothing(server: Server) -> None:
    """Creates from several clients while the database goes away and comes back: every answer is 201 or 503 (never
    a 500), every acknowledged create is stored, and every request, answered either way, is in the audit chain."""
    assert server.database_url
    children = [server.add_patient() for _ in range(150)]
    token = server.token()
    answers: dict[str, tuple[str, int, str | None]] = {}  # request id -> (child, status, indicator id)
    lock = threading.Lock()
    stop = threading.Event()

    def writer(mine: list[str]) -> None:
        with server.client() as client:
            for child in mine:
                if stop.is_set():
                    return
                rid = f"load-{uuid.uuid4()}"
                response = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(child)),
                                       headers={"Authorization": f"Bearer {token}", "Content-Type": JSON,
                                                "X-Request-ID": rid})
                with lock:
                    answers[rid] = (child, response.status_code,
                                    response.json().get("id") if response.status_code == 201 else None)
                time.sleep(0.02)

    threads = [threading.Thread(target=writer, args=(children[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while sum(status == 201 for _, status, _ in list(answers.values())) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    _allow_connections(server.database_url, False)
    try:
        time.sleep(3)
    finally:
        _allow_connections(server.database_url, True)
    for thread in threads:
        thread.join(timeout=120)
    stop.set()

    statuses = [status for _, status, _ in answers.values()]
    assert set(statuses) <= {201, 503}, sorted(set(statuses))
    assert statuses.count(503) > 0 and statuses.count(201) > 20
    acknowledged = {child: ident for child, status, ident in answers.values() if status == 201}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not set(answers) <= _audited(server):
        time.sleep(0.5)
    assert set(answers) <= _audited(server), "a request's audit event was lost"
    store = server.store()
    try:
        stored = {child: [i.id for i in store.read_history(child)] for child in acknowledged}
    finally:
        store.close()
    assert all(stored[child] == [ident] for child, ident in acknowledged.items())
