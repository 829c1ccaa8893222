"""The floor: scenario 1's search doing only the work a compliant, audited search must do, in lean Python.

Served exactly like the ceiling (``ceiling.py``: the same ``server.uvicorn_config``, TLS, uvloop, httptools and
worker model), it answers ``GET /fgm/FHIR/R4/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|N``
doing, per request, only this:

1. the bearer token: verified once with PyJWT against the sandbox JWKS (the service's allowed algorithms,
   issuer, audience and claims), then found in a dict and its expiry checked; the role must hold B0370;
2. the query string, and the NHS number's Modulus 11 check;
3. one indexed read of the patient (traced, and a minor today) with its active indicator: stdlib ``sqlite3``,
   one read connection, the statement prepared once;
4. one audit event appended to the service's own HMAC chain (``audit.chain.link_hash``, the same table and
   head row), so ``safeguarding audit verify`` still passes and the service carries the chain on;
5. durably, as the service does it: WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``, group commit (the
   requests that arrive while a batch commits form the next batch; one COMMIT per batch, in a thread, the
   head read and written once per batch), and no answer before its batch's COMMIT has returned;
6. the search Bundle (the service's shape: ``api/r4/fgm.py`` ``search``, ``api/r4/flag.py`` ``to_fhir``)
   rendered with orjson.

No Starlette, greenlets, SQLAlchemy, logging or metrics. Scenario 1 over this row is what the service's
structure costs; this row over the ceiling is what the work itself costs in CPython.

    python bench/floor.py DATA_DIR PORT WORKERS
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import json
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from datetime import time as midnight
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

import floor_cpis
import floor_dstu2
import jwt
import orjson
from ceiling import serve

from safeguarding.api.errors import ACCESS_DENIED, SERVICE_UNAVAILABLE, ApiError, bad_token, operation_outcome
from safeguarding.api.hardening import SECURITY_HEADERS
from safeguarding.audit.chain import link_hash
from safeguarding.domain.audit import AuditEvent
from safeguarding.domain.nhs_number import is_valid
from safeguarding.security.tokens import ALLOWED_ALGORITHMS
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, Layout
from safeguarding.store.checkpointer import WalCheckpointer
from safeguarding.store.writer_lock import WriterLock

DATA_DIR_ENV = "SAFEGUARDING_FLOOR_DATA_DIR"  # how the worker processes (spawned, ``floor:app``) find it
BASE_PATH = "/fgm/FHIR/R4"
SEARCH_PATH = f"{BASE_PATH}/Flag"
PARAMETER = "patient:identifier"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
FGM_VIEW = "B0370"
LEEWAY = 30  # seconds, as the service's TokenVerifier
TOKEN_CACHE = 4096
MAX_BATCH = 128  # as store/writer.py
UK = ZoneInfo("Europe/London")
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}  # the key type each algorithm family needs (tokens.py)

# The service's answers: the same bytes its pipeline sends (api/pipeline.py ``Endpoint._send``).
CONTENT_TYPE = (b"content-type", b"application/fhir+json; charset=utf-8")
INVALID_NHS = ApiError(400, "INVALID_SEARCH_DATA", "Invalid NHS number")  # api/r4/fgm.py
SEARCH_PARAMETER = ApiError(400, "INVALID_SEARCH_DATA", "Search by patient:identifier="
                            "https://fhir.nhs.uk/Id/nhs-number|<NHS number>, given once")
FLAG_CODE = {"coding": [{"system": "http://snomed.info/sct", "code": "902961000000107",
                         "display": "Family history of FGM (female genital mutilation)"}],
             "text": "Family history of FGM (female genital mutilation)"}
NOT_FOUND_BODY = orjson.dumps({"resourceType": "OperationOutcome", "issue": [{"severity": "error",
                                                                               "code": "not-found"}]})

# The read: the patient and its active indicator in one indexed look-up (the service makes it two,
# store/rows.py ``_PATIENT_BY_NUMBER`` and ``_ACTIVE_INDICATOR``).
SEARCH_SQL = ("SELECT p.verified, p.birth_date, i.id, i.assessment_date, i.version, i.created_at FROM patients p "
              "LEFT JOIN fgm_indicators i ON i.nhs_number = p.nhs_number AND i.status = 'active' "
              "WHERE p.nhs_number = ?")
# The chain, as store/transaction.py writes it (``_LOCK_AUDIT_HEAD``, ``_INSERT_AUDIT_EVENT``, ``_MOVE_AUDIT_HEAD``).
EVENT_FIELDS = tuple(AuditEvent.__dataclass_fields__)
AUDIT_COLUMNS = ("seq", "prev_hash", "hash", *EVENT_FIELDS)
HEAD_SQL = "SELECT seq, hash FROM audit_head WHERE id = 1"
INSERT_SQL = (f"INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) "  # noqa: S608 - fixed column names
              f"VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})")
MOVE_HEAD_SQL = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"

# A verified token's user: (expires at, user id, role profile id, role code, org code, the role's activities,
# the token's client id (``azp``, for the audit event's ``wire``), the CP-IS author record as stored (JSON)).
User = tuple[float, str, str, "str | None", str, frozenset[str], "str | None", str]
Event = tuple[Any, ...]  # an audit event's values in EVENT_FIELDS order
# A request's work inside its batch's transaction (floor_cpis.py): its audit event and what it answers with.
Unit = Callable[[sqlite3.Connection], tuple[Event, Any]]
Refusal = tuple[int, str, bytes, list[tuple[bytes, bytes]]]  # status, outcome code, body, extra headers


def refusal(error: ApiError) -> Refusal:
    """An error's answer, rendered once: the service's OperationOutcome and headers."""
    extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    return error.status, error.details_code, orjson.dumps(operation_outcome(error)), extra


MISSING_TOKEN, BAD_TOKEN = refusal(bad_token(True)), refusal(bad_token(False))
DENIED, UNAVAILABLE = refusal(ACCESS_DENIED.error()), refusal(SERVICE_UNAVAILABLE.error())
BAD_PARAMETER, BAD_NUMBER = refusal(SEARCH_PARAMETER), refusal(INVALID_NHS)


def connect(database: Path, autocheckpoint: int = 10_000) -> sqlite3.Connection:
    """A connection made as the service makes them (store/engine.py ``make_engine``), in autocommit: each
    read sees the latest commit, and transactions are begun explicitly."""
    conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False, timeout=30)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000",
                   f"wal_autocheckpoint={autocheckpoint}"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


class Chain:
    """This process's writer of the audit chain: group commit on the event loop, COMMIT in a thread.

    A request's event waits in ``pending``; a batch takes all that are waiting, inserts them on the loop's
    thread inside ``BEGIN IMMEDIATE`` (the head read once, written once), and commits in the committer
    thread while the loop serves on and the next batch gathers; only then are its requests answered.
    Processes writing the same file queue on the service's writer lock (``<database>-writer``,
    store/writer_lock.py), waited for in the committer thread, never on the loop.

    The same design as the service's ``LoopWriter`` (store/writer.py), with two things it does not do: the
    COMMIT's end reaches the loop in one hop (``call_soon_threadsafe``), and the next batch starts before the
    last one's requests are resumed. Measured, they took a batch's cycle from ~3.4-4 ms to ~2.7-2.9 ms.
    """

    def __init__(self, database: Path, key: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self._conn = connect(database, autocheckpoint=0)  # the checkpointer's job, as in the service
        self._key, self._loop = key, loop
        self._pending: list[tuple[Event | Unit, asyncio.Future[Any]]] = []
        self._busy = False
        self._lock = WriterLock.beside(database)
        self._committer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="floor-commit")

    def append(self, event: Event | Unit) -> asyncio.Future[Any]:
        """A future resolved once ``event`` is durably in the chain; for a unit (a function of the batch's
        connection, run in the batch's transaction, returning its event and its result), with its result."""
        future = self._loop.create_future()
        self._pending.append((event, future))
        if not self._busy:
            self._busy = True
            self._loop.call_soon(self._start)  # the next turn: requests arriving in this one join the batch
        return future

    def _start(self) -> None:
        if not self._lock.try_acquire():  # another process is writing
            waited = self._loop.run_in_executor(self._committer, self._lock.acquire)
            waited.add_done_callback(self._locked)
            return
        self._batch()

    def _locked(self, waited: asyncio.Future[None]) -> None:
        error = waited.exception()
        if error is None:
            self._batch()
        else:
            self._settle(self._take(), error)

    def _take(self) -> list[tuple[Event | Unit, asyncio.Future[Any]]]:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        return batch

    def _batch(self) -> None:
        batch = self._take()
        conn, key, fields = self._conn, self._key, EVENT_FIELDS
        try:
            conn.execute("BEGIN IMMEDIATE")
            seq, prev = conn.execute(HEAD_SQL).fetchone()
            rows, results = [], []
            for item, _ in batch:
                event, result = item(conn) if callable(item) else (item, None)
                results.append(result)
                seq += 1
                digest = link_hash(key, seq, prev, dict(zip(fields, event, strict=True)))
                rows.append((seq, prev, digest, *event))
                prev = digest
            conn.executemany(INSERT_SQL, rows)
            conn.execute(MOVE_HEAD_SQL, (seq, prev))
        except BaseException as exc:  # noqa: BLE001 - every request of the batch is told
            self._abandon()
            self._settle(batch, exc)
            return
        self._committer.submit(self._commit, batch, results)

    def _commit(self, batch: list[tuple[Event | Unit, asyncio.Future[Any]]], results: list[Any]) -> None:
        """In the committer thread: COMMIT, then hand the batch straight back to the loop (one hop, not the two
        of an awaited executor future, each of which waits behind everything the loop has ready)."""
        error: BaseException | None = None
        try:
            self._conn.execute("COMMIT")
            self._lock.release()  # the next process's batch can start at once
        except BaseException as exc:  # noqa: BLE001 - every request of the batch is told
            error = exc
            self._abandon()
        self._loop.call_soon_threadsafe(self._settle, batch, error, results)

    def _abandon(self) -> None:
        """Roll back whatever is open (a failed COMMIT leaves the transaction open) and let the lock go."""
        try:
            with contextlib.suppress(sqlite3.Error):  # then the next BEGIN fails, and its requests are told
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
        finally:
            self._lock.release()

    def _settle(self, batch: list[tuple[Event | Unit, asyncio.Future[Any]]], error: BaseException | None,
                results: list[Any] | None = None) -> None:
        # The next batch first, so its COMMIT runs while this one's requests are answered (resolving a future
        # queues its request behind whatever the loop has ready: a batch started after them waits as long).
        if self._pending:
            self._start()
        else:
            self._busy = False
        for i, (_, future) in enumerate(batch):
            if not future.done():  # else its request was cancelled; the event committed (or not) all the same
                if error is None:
                    future.set_result(results[i] if results else None)
                else:
                    future.set_exception(error)

    def close(self) -> None:
        self._committer.shutdown(wait=True)
        self._conn.close()
        self._lock.close()


class Floor:
    """One worker process's state: the JWKS, the verified tokens, the systems registry, the read connection
    and the chain."""

    def __init__(self, data_dir: Path, loop: asyncio.AbstractEventLoop) -> None:
        layout = Layout(data_dir.resolve())
        self.keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(json.loads(layout.jwks.read_text())).keys}
        self.users: dict[bytes, User] = {}
        self.reader = connect(layout.database)
        self.chain = Chain(layout.database, layout.audit_key.read_bytes(), loop)
        self.systems = floor_dstu2.registry(layout)  # scenario 3's: the registered systems, read once
        self.checkpointer = WalCheckpointer(lambda: connect(layout.database))  # the service's: every 0.25 s
        self._cutoff = (0.0, "")

    def user(self, authorization: bytes) -> User | None:
        """The caller of an ``Authorization`` header value, or None when it is not a valid bearer token."""
        user = self.users.get(authorization)
        if user is not None:
            if time.time() <= user[0] + LEEWAY:
                return user
            del self.users[authorization]
            return None
        user = self._verify(authorization)
        if user is not None:
            if len(self.users) >= TOKEN_CACHE:
                self.users.clear()
            self.users[authorization] = user
        return user

    def _verify(self, authorization: bytes) -> User | None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            header = jwt.get_unverified_header(token)
            alg, kid = header.get("alg"), header.get("kid")
            key = self.keys.get(kid) if kid is not None else (
                next(iter(self.keys.values())) if len(self.keys) == 1 else None)
            if alg not in ALLOWED_ALGORITHMS or key is None or key.key_type != KEY_TYPES[alg[:2]]:
                return None
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=SANDBOX_AUDIENCE, issuer=SANDBOX_ISSUER,
                                leeway=LEEWAY, options={"require": ["exp", "iat", "iss", "aud"]})
        except (jwt.PyJWTError, TypeError, ValueError):  # the last two: a header of unforeseen shape
            return None
        return user_from_claims(claims)

    def cutoff(self) -> str:
        """A child is a minor today (in England) when born after this date (ISO text, as stored)."""
        now = time.time()
        if now >= self._cutoff[0]:
            today = datetime.now(UK).date()
            tomorrow = datetime.combine(today + timedelta(days=1), midnight(), UK).timestamp()
            self._cutoff = (tomorrow, f"{today.year - 18:04d}-{today.month:02d}-{today.day:02d}")
        return self._cutoff[1]

    def close(self) -> None:
        self.chain.close()
        self.checkpointer.close()
        self.reader.close()


def user_from_claims(claims: dict[str, Any]) -> User | None:
    """The acting role as security/tokens.py ``user_from_claims`` finds it (``selected_roleid``, else the only
    role), its activities, the client id and the author record CP-IS stores with an access."""
    user_id, roles, expires = claims.get("nhsid_useruid"), claims.get("nhsid_nrbac_roles"), claims.get("exp")
    selected = claims.get("selected_roleid")
    if not (isinstance(user_id, str) and user_id and isinstance(roles, list) and isinstance(expires, int | float)):
        return None
    chosen = [role for role in roles if isinstance(role, dict) and isinstance(role.get("person_roleid"), str)
              and role["person_roleid"] and (selected is None or role["person_roleid"] == selected)]
    if len(chosen) != 1:
        return None
    role = chosen[0]
    org_code, role_code, activities = role.get("org_code"), role.get("role_code"), role.get("activity_codes")
    if not isinstance(org_code, str) or not org_code:
        return None
    role_code = role_code if isinstance(role_code, str) and role_code else None
    azp = claims.get("azp")
    orgs = {o.get("org_code"): o.get("org_name") for o in claims.get("nhsid_user_orgs") or [] if isinstance(o, dict)}
    author = {"user_id": user_id, "role_profile_id": role["person_roleid"], "org_code": org_code,
              "role_code": role_code, "role_name": role.get("role_name"), "org_name": orgs.get(org_code),
              "name": claims.get("name")}
    return (float(expires), user_id, role["person_roleid"], role_code, org_code,
            frozenset(a for a in activities if isinstance(a, str)) if isinstance(activities, list) else frozenset(),
            azp if isinstance(azp, str) else None,
            orjson.dumps({k: v for k, v in author.items() if isinstance(v, str) and v}).decode())


def wire(user: User | None, **facts: str) -> str:
    """The audit event's ``wire`` as the service records it (api/wire.py): no trace-id headers (wrk sends
    none), what the interaction reads from the request, the verified token's client id."""
    found: dict[str, Any] = {"ids": [], **facts}
    if user is not None and user[6]:
        found["client_id"] = user[6]
    return orjson.dumps(found).decode()


def search_number(query: bytes) -> str | Refusal:
    """``patient:identifier=https://fhir.nhs.uk/Id/nhs-number|N`` (or a bare N), exactly once, N valid."""
    values = []
    for part in query.decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name == PARAMETER or ("%" in name or "+" in name) and unquote_plus(name) == PARAMETER:
            values.append(value)
    if len(values) != 1:
        return BAD_PARAMETER
    system, bar, number = unquote_plus(values[0]).rpartition("|")
    if bar and system != NHS_SYSTEM or not is_valid(number):
        return BAD_NUMBER
    return number


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind != "http":
        if kind == "lifespan":
            await lifespan(receive, send)
        return
    if scope["path"] == floor_dstu2.QUERY_PATH and scope["method"] == "POST":  # scenario 3 (floor_dstu2.py)
        await floor_dstu2.query(FLOOR[0], scope, receive, send)
        return
    cpis = scope["path"] == floor_cpis.CARETEAM_PATH  # scenario 4 (floor_cpis.py)
    if not cpis and scope["path"] != SEARCH_PATH or scope["method"] != "GET":  # the router: a 404, not audited
        await send({"type": "http.response.start", "status": 404,
                    "headers": [CONTENT_TYPE, (b"content-length", str(len(NOT_FOUND_BODY)).encode())]})
        await send({"type": "http.response.body", "body": NOT_FOUND_BODY})
        return
    floor = FLOOR[0]
    authorization = host = unscheduled = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = b"" if authorization is not None else value  # given twice: malformed
        elif name == b"host":
            host = value
        elif name == b"isunscheduledaccessevent":
            unscheduled = b"" if unscheduled is not None else value
    user = floor.user(authorization) if authorization else None
    nhs_number = resource_id = unit = None
    if user is None:
        status, outcome, body, extra = MISSING_TOKEN if authorization is None else BAD_TOKEN
    elif cpis:
        checked = floor_cpis.request(scope["query_string"], unscheduled, user)
        if isinstance(checked, tuple):
            status, outcome, body, extra = checked
        else:
            status, outcome, body, extra, unit = 200, "OK", b"", [], checked
    elif FGM_VIEW not in user[5]:
        status, outcome, body, extra = DENIED
    else:
        found = search_number(scope["query_string"])
        if not isinstance(found, str):
            status, outcome, body, extra = found
        else:
            nhs_number = found
            row = floor.reader.execute(SEARCH_SQL, (nhs_number,)).fetchone()
            if row is None or not row[0]:  # not traced
                status, outcome, body, extra = BAD_NUMBER
            else:
                status, outcome, extra = 200, "OK", []
                base = f"{scope['scheme']}://{host.decode('latin-1') if host else 'localhost'}{BASE_PATH}"
                ident, born = row[2], row[1]
                bundle: dict[str, Any] = {
                    "resourceType": "Bundle", "type": "searchset", "total": 0,
                    "link": [{"relation": "self", "url": f"{base}/Flag?{PARAMETER}={NHS_SYSTEM}|{nhs_number}"}],
                }
                if ident is not None and born is not None and born > floor.cutoff():  # shown while a minor
                    resource_id = ident
                    bundle["total"] = 1
                    bundle["entry"] = [{
                        "fullUrl": f"{base}/Flag/{ident}",
                        "resource": {
                            "resourceType": "Flag", "id": ident,
                            "meta": {"versionId": str(row[4]), "lastUpdated": row[5]}, "status": "active",
                            "code": FLAG_CODE,
                            "subject": {"identifier": {"system": NHS_SYSTEM, "value": nhs_number}},
                            "period": {"start": row[3]},
                        },
                        "search": {"mode": "match"},
                    }]
                body = orjson.dumps(bundle)
    request_id = str(uuid.uuid4())
    recorded_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    caller = user[1:5] if user is not None else (None, None, None, None)
    try:
        if cpis:
            head = (recorded_at, floor_cpis.API, "careteam-search", status, outcome, request_id, None, None, None,
                    None, *caller)
            facts = {"unscheduled": floor_cpis.unscheduled_fact(unscheduled)} if unscheduled is not None else {}
            event_wire = wire(user, **facts)
            if unit is None:  # refused: the refusal alone is audited
                await floor.chain.append((*head, None, None, event_wire))
            else:
                base = f"{scope['scheme']}://{host.decode('latin-1') if host else 'localhost'}"
                body = floor_cpis.render(await floor.chain.append(unit.bind(head, event_wire)), base)
        else:
            await floor.chain.append((recorded_at, "fgm-r4", "search", status, outcome, request_id, None, None,
                                      None, None, *caller, nhs_number, resource_id, wire(user)))
    except Exception:  # noqa: BLE001 - not audited, so not answered as asked
        status, outcome, body, extra = UNAVAILABLE
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"x-request-id", request_id.encode()), *extra, CONTENT_TYPE,
                            (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


FLOOR: list[Floor] = []  # this process's, made at start-up (lifespan)


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                FLOOR.append(Floor(Path(os.environ[DATA_DIR_ENV]), asyncio.get_running_loop()))
            except Exception as exc:  # noqa: BLE001 - reported to uvicorn, which exits
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            gc.collect()  # as the service's server.settled: start-up's objects out of the collector's way
            gc.freeze()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            while FLOOR:
                FLOOR.pop().close()
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    data_dir = Path(sys.argv[1])
    os.environ[DATA_DIR_ENV] = str(data_dir.resolve())
    serve(app, "floor:app", data_dir, int(sys.argv[2]), int(sys.argv[3]))


if __name__ == "__main__":
    main()
