"""What one client's recorded requests show, requirement by requirement.

Input: the audit events of the client's requests (``AuditEvent`` with its ``wire`` facts) and the
demographics the sandbox holds. Output: one ``Finding`` per requirement: evidenced, missing (not seen,
or seen done wrongly), not observable on the wire, or not applicable (an API the client never used).
Findings name requests by their request ids, never by patient data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from ..domain.audit import AuditEvent
from ..domain.patients import Patient
from ..sandbox import scenarios as sim
from ..sandbox.catalogue import DSTU2_ACTIONS, scenario_for
from . import requirements as r

EVIDENCED, MISSING, NOT_OBSERVABLE, NOT_APPLICABLE = "evidenced", "missing", "not observable", "not applicable"
TIGHT_LOOP_ATTEMPTS, TIGHT_LOOP_WINDOW, MIN_RETRY_GAP = 3, 10.0, 1.0
_FGM_QUERIES = {("fgm-r4", "search"), ("fgm-dstu2", "query")}
_FGM_CREATES = {("fgm-r4", "create"), ("fgm-dstu2", "create")}
_FGM_REMOVES = {("fgm-r4", "remove"), ("fgm-dstu2", "delete")}
_UNAVAILABLE = {"SERVICE_UNAVAILABLE", "COULD_NOT_CONNECT_TO_SPINE"}
_SCENARIO_FAILURES = {sim.DEMOGRAPHICS_UNAVAILABLE, sim.STORE_UNAVAILABLE}  # the service failing, not the client


@dataclass(frozen=True)
class Observed:
    event: AuditEvent
    at: datetime
    wire: dict[str, Any] | None

    @property
    def key(self) -> tuple[str, str, str | None, str | None]:
        """What makes two requests 'the same request' for retry checks."""
        return (self.event.api, self.event.interaction, self.event.nhs_number, self.event.resource_id)


@dataclass
class Finding:
    requirement: r.Requirement
    status: str
    summary: str
    details: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        source = self.requirement.source
        return {"id": self.requirement.id, "text": self.requirement.text,
                "source": {"document": source.document, "section": source.section, "link": source.link},
                "status": self.status, "summary": self.summary, "details": self.details,
                "requests": self.requests}


def observed(events: Iterable[AuditEvent]) -> list[Observed]:
    found = []
    for event in events:
        wire = orjson.loads(event.wire) if event.wire else None
        found.append(Observed(event, datetime.fromisoformat(event.recorded_at.replace("Z", "+00:00")), wire))
    return sorted(found, key=lambda o: o.at)


def _ids(items: Iterable[Observed], limit: int = 10) -> list[str]:
    return [o.event.request_id for o in items][:limit]


def assess(requests: Sequence[Observed], patient: Callable[[str], Patient | None],
           care_setting: str | None = None) -> list[Finding]:
    """``care_setting`` (``scheduled`` or ``unscheduled``): the setting the supplier says its system serves,
    which every CP-IS search's IsUnscheduledAccessEvent must then say."""
    used = {o.event.api for o in requests}
    checks: dict[str, Callable[[], Finding]] = {
        r.TRACE_IDS.id: lambda: _trace_ids(requests),
        r.VERIFIED.id: lambda: _verified(requests, patient),
        r.UNDER_18.id: lambda: _under_18(requests, patient),
        r.NO_RECORD.id: lambda: _no_record(requests),
        r.ERRORS_REPORTED.id: lambda: _refusals(requests),
        r.UNAVAILABLE.id: lambda: _unavailable(requests),
        r.SLOW.id: lambda: _slow(requests),
        r.SOAP_ACTION.id: lambda: _soap_action(requests),
        r.ASIDS.id: lambda: _asids(requests),
        r.UNSCHEDULED.id: lambda: _unscheduled(requests, care_setting),
        r.CREATE_REMOVE.id: lambda: _create_remove(requests),
    }
    findings = []
    for requirement in r.REQUIREMENTS:
        if not used & set(requirement.apis):
            findings.append(Finding(requirement, NOT_APPLICABLE, "The client sent no request to "
                                    + " or ".join(requirement.apis) + "."))
        elif requirement.id in r.NOT_OBSERVABLE:
            findings.append(Finding(requirement, NOT_OBSERVABLE, r.NOT_OBSERVABLE[requirement.id]))
        else:
            findings.append(checks[requirement.id]())
    return findings


def _trace_ids(requests: Sequence[Observed]) -> Finding:
    known = [o for o in requests if o.wire is not None]
    without = [o for o in known if not o.wire or not o.wire.get("ids")]
    if not known:
        return Finding(r.TRACE_IDS, NOT_OBSERVABLE, "These requests were recorded before the service kept the "
                       "headers a client sent.")
    if without:
        return Finding(r.TRACE_IDS, MISSING, f"{len(without)} of {len(known)} requests carried no TraceID, "
                       "X-Request-ID or X-Correlation-ID.", requests=_ids(without))
    return Finding(r.TRACE_IDS, EVIDENCED, f"All {len(known)} requests carried a trace id header.")


def _fgm_numbers(requests: Sequence[Observed]) -> list[Observed]:
    return [o for o in requests if (o.event.api, o.event.interaction) in _FGM_QUERIES | _FGM_CREATES | _FGM_REMOVES
            and o.event.nhs_number and o.event.nhs_number not in _SCENARIO_FAILURES]


def _verified(requests: Sequence[Observed], patient: Callable[[str], Patient | None]) -> Finding:
    sent = _fgm_numbers(requests)
    if not sent:
        return Finding(r.VERIFIED, MISSING, "No FGM-IS request with an NHS number was seen.")
    unverified = [o for o in sent if not _is_verified(patient(o.event.nhs_number or ""))]
    if unverified:
        return Finding(r.VERIFIED, MISSING, f"{len(unverified)} of {len(sent)} FGM-IS requests named an NHS number "
                       "that is not verified (not traced, not verified, or not a valid number).",
                       requests=_ids(unverified))
    return Finding(r.VERIFIED, EVIDENCED, f"All {len(sent)} FGM-IS requests named a verified NHS number.")


def _is_verified(found: Patient | None) -> bool:
    return found is not None and found.verified


def _under_18(requests: Sequence[Observed], patient: Callable[[str], Patient | None]) -> Finding:
    queries = [o for o in _fgm_numbers(requests) if (o.event.api, o.event.interaction) in _FGM_QUERIES]
    if not queries:
        return Finding(r.UNDER_18, MISSING, "No FGM-IS query was seen.")
    adults = [o for o in queries if not _minor(patient(o.event.nhs_number or ""), o.at.date())]
    if adults:
        return Finding(r.UNDER_18, MISSING, f"{len(adults)} of {len(queries)} queries were for a person who was not "
                       "under 18 (or whose age is not known).", requests=_ids(adults))
    return Finding(r.UNDER_18, EVIDENCED, f"All {len(queries)} queries were for children under 18.")


def _minor(found: Patient | None, day: date) -> bool:
    return found is not None and found.is_minor_on(day)


def _no_record(requests: Sequence[Observed]) -> Finding:
    seen = [o for o in requests if o.event.outcome == "NO_RECORD_FOUND"
            or ((o.event.api, o.event.interaction) == ("fgm-r4", "search") and o.event.status == 200
                and o.event.resource_id is None)]
    if not seen:
        return Finding(r.NO_RECORD, MISSING, "The client never received a 'no record' answer (DSTU2 404 "
                       "NO_RECORD_FOUND, or an empty R4 searchset): query 9990000026 to exercise it.")
    return Finding(r.NO_RECORD, EVIDENCED, f"The client received {len(seen)} 'no record' answers and carried on. "
                   "Not observable on the wire: that no message was shown to the user.", requests=_ids(seen))


def _repeats_after(requests: Sequence[Observed], first: Observed) -> list[Observed]:
    return [o for o in requests if o.key == first.key and first.at < o.at <= _plus(first.at, TIGHT_LOOP_WINDOW)]


def _plus(at: datetime, seconds: float) -> datetime:
    return at + timedelta(seconds=seconds)


def _refusals(requests: Sequence[Observed]) -> Finding:
    refused = [o for o in requests if o.event.status >= 400 and o.event.outcome not in _UNAVAILABLE]
    if not refused:
        return Finding(r.ERRORS_REPORTED, MISSING, "The client never received an error answer: send one of the "
                       "sandbox's error scenarios (e.g. a search as the refused user, for ACCESS_DENIED).")
    repeated = [o for o in _firsts(refused) if len(_repeats_after(requests, o)) >= 2]
    codes = ", ".join(sorted({o.event.outcome for o in refused}))
    if repeated:
        return Finding(r.ERRORS_REPORTED, MISSING, f"{len(repeated)} error answers were followed by the same request "
                       f"at least twice within {TIGHT_LOOP_WINDOW:g} s: these errors are not transient.",
                       [f"codes received: {codes}"], _ids(repeated))
    return Finding(r.ERRORS_REPORTED, EVIDENCED, f"{len(refused)} error answers received ({codes}), none sent again "
                   "in a loop. Not observable on the wire: how they were reported to staff.", requests=_ids(refused))


def _retry_problems(requests: Sequence[Observed], first: Observed, wait: float) -> list[str]:
    later = _repeats_after(requests, first)
    problems = []
    if later and (later[0].at - first.at).total_seconds() < wait:
        problems.append(f"request {first.event.request_id}: sent again after "
                        f"{(later[0].at - first.at).total_seconds():.2f} s, sooner than {wait:g} s")
    if len(later) + 1 > TIGHT_LOOP_ATTEMPTS:
        problems.append(f"request {first.event.request_id}: {len(later) + 1} attempts within "
                        f"{TIGHT_LOOP_WINDOW:g} s")
    return problems


def _unavailable(requests: Sequence[Observed]) -> Finding:
    failed = [o for o in requests if o.event.outcome in _UNAVAILABLE]
    if not failed:
        return Finding(r.UNAVAILABLE, MISSING, "The client never received a 503 (or DSTU2 COULD_NOT_CONNECT_TO_SPINE):"
                       f" query {sim.STORE_UNAVAILABLE} or {sim.DEMOGRAPHICS_UNAVAILABLE} to exercise it.")
    problems = [p for o in _firsts(failed) for p in _retry_problems(requests, o, sim.RETRY_AFTER_SECONDS)]
    if problems:
        return Finding(r.UNAVAILABLE, MISSING, "The client did not wait as Retry-After asked, or retried in a "
                       "tight loop.", problems[:10], _ids(failed))
    return Finding(r.UNAVAILABLE, EVIDENCED, f"{len(failed)} unavailable answers; every follow-up waited at least "
                   f"Retry-After ({sim.RETRY_AFTER_SECONDS} s) and none looped.", requests=_ids(failed))


def _firsts(items: Sequence[Observed]) -> list[Observed]:
    """The first of each run of the same request (later ones are its retries)."""
    firsts: list[Observed] = []
    last: dict[Any, Observed] = {}
    for o in items:
        previous = last.get(o.key)
        if previous is None or (o.at - previous.at).total_seconds() > TIGHT_LOOP_WINDOW:
            firsts.append(o)
        last[o.key] = o
    return firsts


def _slow(requests: Sequence[Observed]) -> Finding:
    slow = [o for o in requests if (o.wire or {}).get("scenario") == sim.SLOW_SCENARIO
            or o.event.nhs_number == sim.SLOW_ANSWER]
    if not slow:
        return Finding(r.SLOW, MISSING, "The client never met the slow answer: send X-Sandbox-Scenario: slow-answer "
                       f"or query {sim.SLOW_ANSWER}.")
    problems = [p for o in _firsts(slow) for p in _retry_problems(requests, o, MIN_RETRY_GAP)]
    abandoned = sum(1 for o in slow if (o.wire or {}).get("abandoned"))
    waited = f"gave up on {abandoned} and waited for {len(slow) - abandoned}"
    if problems:
        return Finding(r.SLOW, MISSING, f"The client {waited} of {len(slow)} slow answers, and sent requests again "
                       "in a tight loop.", problems[:10], _ids(slow))
    return Finding(r.SLOW, EVIDENCED, f"The client {waited} of {len(slow)} slow answers, without a tight loop.",
                   requests=_ids(slow))


def _soap_action(requests: Sequence[Observed]) -> Finding:
    messages = [o for o in requests if o.event.api == "fgm-dstu2" and o.wire is not None]
    wrong = [o for o in messages if (o.wire or {}).get("soap_action") != DSTU2_ACTIONS.get(o.event.interaction)]
    if not messages:
        return Finding(r.SOAP_ACTION, NOT_OBSERVABLE, "No DSTU2 message was recorded with its headers.")
    if wrong:
        return Finding(r.SOAP_ACTION, MISSING, f"{len(wrong)} of {len(messages)} messages had no SOAPAction or "
                       "another interaction's.", requests=_ids(wrong))
    return Finding(r.SOAP_ACTION, EVIDENCED, f"All {len(messages)} messages carried their interaction's SOAPAction.")


def _asids(requests: Sequence[Observed]) -> Finding:
    messages = [o for o in requests if o.event.api == "fgm-dstu2"]
    refused = [o for o in messages if o.event.outcome == "ASID_CHECK_FAILED"]
    if refused:
        return Finding(r.ASIDS, MISSING, f"{len(refused)} of {len(messages)} messages were refused with "
                       "ASID_CHECK_FAILED.", requests=_ids(refused))
    return Finding(r.ASIDS, EVIDENCED, f"All {len(messages)} messages passed the ASID checks.")


def _unscheduled(requests: Sequence[Observed], care_setting: str | None) -> Finding:
    reads = [o for o in requests if o.event.api == "cpis-r4"
             and o.event.interaction in ("careteam-search", "auditevent-search") and o.wire is not None]
    if not reads:
        return Finding(r.UNSCHEDULED, MISSING, "No CP-IS CareTeam or AuditEvent search was seen.")
    bad = [o for o in reads if (o.wire or {}).get("unscheduled") not in ("true", "false")]
    values: dict[str | None, set[str]] = defaultdict(set)
    for o in reads:
        if (o.wire or {}).get("unscheduled") in ("true", "false"):
            values[o.event.user_id].add(str((o.wire or {})["unscheduled"]))
    mixed = [user for user, seen in values.items() if len(seen) > 1]
    expected = {"scheduled": "false", "unscheduled": "true"}.get(care_setting or "")
    wrong = [o for o in reads if expected and (o.wire or {}).get("unscheduled") not in (expected, None, "other")]
    if bad or mixed or wrong:
        details = [f"{len(mixed)} users sent both true and false"] if mixed else []
        if wrong:
            details.append(f"{len(wrong)} searches said {'false' if expected == 'true' else 'true'} from a "
                           f"{care_setting} care setting")
        return Finding(r.UNSCHEDULED, MISSING, f"{len(bad)} of {len(reads)} searches had no usable "
                       "IsUnscheduledAccessEvent (absent counts as unscheduled care); "
                       f"{len(wrong)} said the wrong care setting.", details, _ids(bad + wrong))
    if expected:
        return Finding(r.UNSCHEDULED, EVIDENCED, f"All {len(reads)} searches said {expected}, as the {care_setting} "
                       "care setting the system serves.")
    return Finding(r.UNSCHEDULED, EVIDENCED, f"All {len(reads)} searches said their care setting, one value per user "
                   "(give --care-setting to check the value itself).")


def _create_remove(requests: Sequence[Observed]) -> Finding:
    created = [o for o in requests if (o.event.api, o.event.interaction) in _FGM_CREATES and o.event.status == 201]
    removed = [o for o in requests if (o.event.api, o.event.interaction) in _FGM_REMOVES and o.event.status == 200]
    if created and removed:
        return Finding(r.CREATE_REMOVE, EVIDENCED, f"{len(created)} indicators created and {len(removed)} removed.",
                       requests=_ids(created + removed))
    missing = [name for name, seen in (("create", created), ("remove", removed)) if not seen]
    return Finding(r.CREATE_REMOVE, MISSING, "No successful " + " or ".join(missing) + " was seen.")


def scenarios_exercised(requests: Sequence[Observed]) -> list[str]:
    found: set[str] = set()
    for o in requests:
        found.update(scenario_for(o.event.api, o.event.interaction, o.event.nhs_number,
                                  (o.wire or {}).get("scenario")))
    return sorted(found)
