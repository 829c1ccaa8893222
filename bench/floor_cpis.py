"""Scenario 4's floor: a CP-IS unscheduled access (``GET /cpis/FHIR/R4/CareTeam``) doing only what the guide
and our audit require, served by ``floor.py`` (its token check, group commit and answer) beside scenario 1's.

Per request, after the token (``floor.py``; the role must hold B0107 or B0170):

1. ``IsUnscheduledAccessEvent`` read (true, false or absent; anything else refused) and the query string's
   NHS number (``patient:identifier=https://fhir.nhs.uk/Id/nhs-number|N``, once, Modulus 11);
2. in the batch's write transaction (``floor.Chain``: ``BEGIN IMMEDIATE``, so no other access to the child
   can come between the reads and the writes), the child's plans read by the NHS-number index; if one is
   active and the access is unscheduled with B0107: the user's last listed access to the child read (the
   24-hour repeat rule), the access row inserted, one notification row per responsible authority;
3. the audit event, naming the access, appended to the chain in the same transaction and committed with
   the batch before the answer;
4. the CareTeam searchset Bundle of the active plans, in the service's shape (``api/r4/careteam.py``),
   rendered with orjson.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

import orjson

from safeguarding.api.errors import ACCESS_DENIED, ApiError, operation_outcome
from safeguarding.domain.cpis import PlanType
from safeguarding.domain.nhs_number import is_valid

API = "cpis-r4"
BASE_PATH = "/cpis/FHIR/R4"
CARETEAM_PATH = f"{BASE_PATH}/CareTeam"
PARAMETER = "patient:identifier"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SNOMED = "http://snomed.info/sct"
VIEW_UNSCHEDULED, VIEW_SCHEDULED = "B0107", "B0170"
REPEAT_WINDOW = timedelta(hours=24)  # repeats by one user within 24 hours are listed once (domain/cpis.py)
UK = ZoneInfo("Europe/London")
ORDER = {kind.value: i for i, kind in enumerate(PlanType)}
CATEGORY = {kind.value: [{"coding": [{"system": SNOMED, "code": kind.snomed, "display": kind.display}]}]
            for kind in PlanType}

PLANS_SQL = ("SELECT id, authority_ods, plan_type, start_date, end_date, authority_name, office_phone, "
             "emergency_phone, withdrawn_at, version, changed_at FROM cpis_plans WHERE nhs_number = ?")
LAST_SQL = "SELECT MAX(recorded_at) FROM cpis_accesses WHERE nhs_number = ? AND user_id = ? AND listed"
ACCESS_SQL = ("INSERT INTO cpis_accesses (id, nhs_number, recorded_at, user_id, author, listed) "
              "VALUES (?, ?, ?, ?, ?, ?)")
NOTIFY_SQL = ("INSERT INTO cpis_notifications (authority_ods, event_id, kind, queued_at, acknowledged_at) "
              "VALUES (?, ?, 'access', ?, NULL)")

Refusal = tuple[int, str, bytes, list[tuple[bytes, bytes]]]


def refusal(error: ApiError) -> Refusal:
    extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    return error.status, error.details_code, orjson.dumps(operation_outcome(error)), extra


DENIED = refusal(ACCESS_DENIED.error())
BAD_PARAMETER = refusal(ApiError(400, "INVALID_SEARCH_DATA", "Search by patient:identifier="
                                 "https://fhir.nhs.uk/Id/nhs-number|<NHS number>, given once"))
BAD_NUMBER = refusal(ApiError(400, "INVALID_NHS_NUMBER", "Invalid NHS number"))
BAD_HEADER = refusal(ApiError(400, "PRECONDITION_FAILED", "Missing or invalid head parameter"))


class Access:
    """One request's work in its batch's transaction (a ``floor.Unit``): its audit event and the active plans."""

    __slots__ = ("nhs_number", "user", "recording", "head", "wire")

    def __init__(self, nhs_number: str, user: tuple[Any, ...], recording: bool) -> None:
        self.nhs_number, self.user, self.recording = nhs_number, user, recording
        self.head: tuple[Any, ...] = ()
        self.wire = ""

    def bind(self, head: tuple[Any, ...], wire: str) -> Access:
        """The audit event's fields up to the caller's, and its ``wire``: known before the batch runs."""
        self.head, self.wire = head, wire
        return self

    def __call__(self, conn: sqlite3.Connection) -> tuple[tuple[Any, ...], tuple[str, list[tuple[Any, ...]]]]:
        number = self.nhs_number
        today = datetime.now(UK).date().isoformat()
        active = sorted((plan for plan in conn.execute(PLANS_SQL, (number,))
                         if plan[8] is None and (plan[4] is None or plan[4] >= today)),
                        key=lambda plan: (ORDER[plan[2]], plan[3], plan[1]))
        access_id = None
        if active and self.recording:
            now = datetime.now(timezone.utc)
            at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            user_id = self.user[1]
            (last,) = conn.execute(LAST_SQL, (number, user_id)).fetchone()
            listed = last is None or now - datetime.fromisoformat(last) >= REPEAT_WINDOW
            access_id = str(uuid.uuid4())
            conn.execute(ACCESS_SQL, (access_id, number, at, user_id, self.user[7], listed))
            conn.executemany(NOTIFY_SQL, [(ods, access_id, at) for ods in sorted({plan[1] for plan in active})])
        return (*self.head, number, access_id, self.wire), (number, active)


def request(query: bytes, unscheduled: bytes | None, user: tuple[Any, ...]) -> Refusal | Access:
    """The request checked (role, header, query string): a refusal, or the work for its batch."""
    activities = user[5]
    if VIEW_UNSCHEDULED not in activities and VIEW_SCHEDULED not in activities:
        return DENIED
    declared = None
    if unscheduled is not None:
        flag = unscheduled.decode("latin-1").strip().lower()
        if flag not in ("true", "false"):
            return BAD_HEADER
        declared = flag == "true"
    values = [value for name, _, value in (part.partition("=") for part in query.decode("latin-1").split("&"))
              if name == PARAMETER or ("%" in name or "+" in name) and unquote_plus(name) == PARAMETER]
    if len(values) != 1:
        return BAD_PARAMETER
    system, bar, number = unquote_plus(values[0]).rpartition("|")
    if bar and system != NHS_SYSTEM or not is_valid(number):
        return BAD_NUMBER
    return Access(number, user, declared is not False and VIEW_UNSCHEDULED in activities)


def unscheduled_fact(value: bytes) -> str:
    """``IsUnscheduledAccessEvent`` as the audit event's ``wire`` records it (api/wire.py)."""
    flag = value.decode("latin-1").strip().lower()
    return flag if flag in ("true", "false") else "other"


def render(result: tuple[str, list[tuple[Any, ...]]], origin: str) -> bytes:
    """The searchset Bundle of the active plans (api/r4/cpis.py ``searchset``, api/r4/careteam.py)."""
    number, active = result
    base = f"{origin}{BASE_PATH}"
    entries = []
    for (ident, ods, kind, start, end, name, office, emergency, _withdrawn, version, changed_at) in active:
        period = {"start": start} if end is None else {"start": start, "end": end}
        team: dict[str, Any] = {
            "resourceType": "CareTeam", "id": ident, "meta": {"versionId": str(version), "lastUpdated": changed_at},
            "status": "active", "category": CATEGORY[kind], "name": name,
            "subject": {"identifier": {"system": NHS_SYSTEM, "value": number}}, "period": period,
            "managingOrganization": [{"identifier": {"system": ODS_SYSTEM, "value": ods}, "display": name}],
        }
        telecom = [{"system": "phone", "value": value, "use": use}
                   for value, use in ((office, "work"), (emergency, "mobile")) if value]
        if telecom:
            team["telecom"] = telecom
        entries.append({"fullUrl": f"{base}/CareTeam/{ident}", "resource": team, "search": {"mode": "match"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "searchset", "total": len(entries),
        "link": [{"relation": "self", "url": f"{base}/CareTeam?{PARAMETER}={NHS_SYSTEM}|{number}"}],
    }
    if entries:
        bundle["entry"] = entries
    return orjson.dumps(bundle)
