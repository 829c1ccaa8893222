"""The local authority upload: a FHIR R4 ``batch`` Bundle of CarePlans -> plan records, and the
``batch-response`` that acknowledges each entry (CP-IS record code) and the file (CP-IS file code).

Entries are parsed one by one: a malformed entry is refused alone, with CPR07, and the rest of the
batch still applies. Only a body that is not a batch Bundle at all is refused as a whole (CPF01).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import orjson
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.careteam import CareTeam
from lxml import etree
from pydantic import ValidationError

from ...domain import nhs_number
from ...domain.cpis import (
    Applied,
    AuthorityContact,
    Change,
    FileCode,
    PlanAction,
    PlanRecord,
    PlanType,
    RecordCode,
)
from ..errors import AnyError, ApiError, Coding, ErrorRow
from ..formats import XML_MODEL_ERRORS, hardened_xml_parser, parse_xml
from .systems import CPIS_FILE_RESPONSE_SYSTEM, CPIS_RECORD_RESPONSE_SYSTEM, ODS_SYSTEM, SNOMED

FHIR_NS = "http://hl7.org/fhir"
_F = {"f": FHIR_NS}
ACTIONS = {"active": PlanAction.SET, "completed": PlanAction.END, "entered-in-error": PlanAction.WITHDRAW}
NAME_LIMIT = 200
E = TypeVar("E", ApiError, ErrorRow)
_PHONE = re.compile(r"^\+?[0-9]{6,20}$")


def file_coding(code: FileCode) -> Coding:
    return Coding(CPIS_FILE_RESPONSE_SYSTEM, code.value, code.display)


def file_error(error: E) -> E:
    """A refusal of the whole upload, coded as a file-level error (CPF01) too."""
    return dataclasses.replace(error, also=(file_coding(FileCode.FILE_ERROR),))


NOT_A_BATCH = file_error(ErrorRow(400, "INVALID_RESOURCE", "The request body must be a Bundle of type batch"))
NO_ENTRIES = file_error(ErrorRow(400, "INVALID_RESOURCE", "The batch Bundle has no entries"))


def entry_refusal(status: int, issue_type: str, code: RecordCode, diagnostics: str) -> ErrorRow:
    return ErrorRow(status, code.value, diagnostics, issue_type=issue_type, system=CPIS_RECORD_RESPONSE_SYSTEM,
                    display=code.display)


def _unsuccessful(diagnostics: str) -> ErrorRow:
    return entry_refusal(400, "invalid", RecordCode.UNSUCCESSFUL, diagnostics)


ENTRY_NOT_OBJECT = _unsuccessful("The entry is not a Bundle entry")
ENTRY_REQUEST = _unsuccessful("entry.request must be method POST with url CarePlan")
ENTRY_NOT_CAREPLAN = _unsuccessful("entry.resource must be a CarePlan")
ENTRY_NOT_FHIR = _unsuccessful("The entry does not conform to FHIR R4")
ENTRY_STATUS = _unsuccessful("CarePlan.status must be active, completed or entered-in-error")
ENTRY_CATEGORY = _unsuccessful(
    "CarePlan.category must hold exactly one plan type from England-ChildProtectionPlan "
    "(SNOMED 342191000000101, 764841000000100 or 818901000000100)")
ENTRY_SUBJECT = _unsuccessful("CarePlan.subject.identifier must be an NHS number (https://fhir.nhs.uk/Id/nhs-number)")
ENTRY_DATES = _unsuccessful("CarePlan.period.start and period.end must be full dates")
ENTRY_CARETEAM = _unsuccessful(
    "CarePlan.contained must hold one CareTeam whose name (at most 200 characters) is the authority's")
ENTRY_TELECOM = _unsuccessful(
    "CareTeam.telecom must be phone numbers (digits, optional leading +), at most one with use work "
    "(office hours) and one with use mobile (emergency duty)")


@dataclass
class Entry:
    """One entry of the upload: a plan record, or why the entry was refused before any rule ran."""

    record: PlanRecord | None = None
    refusal: AnyError | None = None


# The Bundle ---------------------------------------------------------------------------------------


def parse_batch(body: bytes, fmt: str) -> list[Entry]:
    """The entries of a batch Bundle in JSON or XML. Raises a file-level ``ApiError`` (CPF01) only
    when the body is not a batch Bundle with entries."""
    try:
        entries = _json_entries(body) if fmt == "json" else _xml_entries(body)
    except ApiError as error:
        raise (error if error.also else file_error(error)) from None
    if not entries:
        raise NO_ENTRIES.error()
    return entries


def _expressions(prefix: str, exc: ValidationError) -> tuple[str, ...]:
    paths = set()
    for error in exc.errors(include_input=False):
        path = prefix
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        paths.add(path)
    return tuple(sorted(paths))


def _json_entries(body: bytes) -> list[Entry]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise file_error(ApiError(400, "MESSAGE_NOT_WELL_FORMED", "The request body is not well-formed JSON",
                                  issue_type="structure")) from exc
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle" or data.get("type") != "batch":
        raise NOT_A_BATCH.error()
    raw_entries = data.get("entry", [])
    if not isinstance(raw_entries, list):
        raise NOT_A_BATCH.error()
    # The envelope must be FHIR R4 (entries are judged one by one below).
    envelope = {k: v for k, v in data.items() if k != "entry"}
    try:
        Bundle.model_validate(envelope)
    except ValidationError as exc:
        raise file_error(ApiError(400, "INVALID_RESOURCE", "The Bundle does not conform to FHIR R4",
                                  expressions=_expressions("Bundle", exc))) from exc
    return [_json_entry(index, raw) for index, raw in enumerate(raw_entries)]


def _json_entry(index: int, raw: Any) -> Entry:
    if not isinstance(raw, dict):
        return Entry(refusal=ENTRY_NOT_OBJECT)
    prefix = f"Bundle.entry[{index}]"
    try:
        entry = BundleEntry.model_validate({k: v for k, v in raw.items() if k != "resource"})
    except ValidationError as exc:
        return Entry(refusal=dataclasses.replace(ENTRY_NOT_FHIR, expressions=_expressions(prefix, exc)))
    request = entry.request
    if request is None or request.method != "POST" or request.url != "CarePlan":
        return Entry(refusal=ENTRY_REQUEST)
    resource = raw.get("resource")
    if not isinstance(resource, dict) or resource.get("resourceType") != "CarePlan":
        return Entry(refusal=ENTRY_NOT_CAREPLAN)
    try:
        plan = CarePlan.model_validate(resource)
    except ValidationError as exc:
        return Entry(refusal=dataclasses.replace(ENTRY_NOT_FHIR, expressions=_expressions(f"{prefix}.resource",
                                                                                           exc)))
    return _entry_from(plan)


def _value(element: etree._Element | None, child: str) -> str | None:
    found = element.find(f"f:{child}", _F) if element is not None else None
    return found.get("value") if found is not None else None


def _xml_entries(body: bytes) -> list[Entry]:
    root = parse_xml(body)
    if etree.QName(root).localname != "Bundle" or etree.QName(root).namespace != FHIR_NS \
            or _value(root, "type") != "batch":
        raise NOT_A_BATCH.error()
    entries = []
    for index, element in enumerate(root.findall("f:entry", _F)):
        request = element.find("f:request", _F)
        if _value(request, "method") != "POST" or _value(request, "url") != "CarePlan":
            entries.append(Entry(refusal=ENTRY_REQUEST))
            continue
        holder = element.find("f:resource", _F)
        children = [c for c in holder if isinstance(c.tag, str)] if holder is not None else []
        if len(children) != 1 or etree.QName(children[0]).localname != "CarePlan" \
                or etree.QName(children[0]).namespace != FHIR_NS:
            entries.append(Entry(refusal=ENTRY_NOT_CAREPLAN))
            continue
        try:
            plan = CarePlan.model_validate_xml(etree.tostring(children[0]), xmlparser=hardened_xml_parser())
        except ValidationError as exc:
            refusal = dataclasses.replace(ENTRY_NOT_FHIR, expressions=_expressions(f"Bundle.entry[{index}].resource",
                                                                                   exc))
            entries.append(Entry(refusal=refusal))
            continue
        except (ValueError, etree.LxmlError, *XML_MODEL_ERRORS):
            entries.append(Entry(refusal=ENTRY_NOT_FHIR))
            continue
        entries.append(_entry_from(plan))
    return entries


# One CarePlan -------------------------------------------------------------------------------------


def _entry_from(plan: CarePlan) -> Entry:
    try:
        return Entry(record=plan_record(plan))
    except ApiError as refusal:
        return Entry(refusal=refusal)


def _full_date(value: Any) -> date | None:
    """A date or dateTime as a calendar date; raises ENTRY_DATES for a partial date."""
    if value is None:
        return None
    text = str(value)
    try:
        if len(text) < 10:
            raise ValueError(text)
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ENTRY_DATES.error() from None


def _plan_type(plan: CarePlan) -> PlanType:
    codings = [c for category in plan.category or [] for c in category.coding or [] if c.system == SNOMED]
    kinds = {PlanType.for_snomed(c.code or "") for c in codings}
    kind = kinds.pop() if len(kinds) == 1 else None
    if kind is None:
        raise ENTRY_CATEGORY.error()
    return kind


def _ods_codes(references: Sequence[Any]) -> set[str]:
    return {ref.identifier.value.upper() for ref in references
            if ref is not None and ref.identifier is not None and ref.identifier.system == ODS_SYSTEM
            and ref.identifier.value}


def _phone(value: str | None) -> str:
    number = (value or "").removeprefix("tel:").replace(" ", "")
    if not _PHONE.match(number):
        raise ENTRY_TELECOM.error()
    return number


def _contact(team: CareTeam) -> AuthorityContact:
    name = (team.name or "").strip()
    if len(name) > NAME_LIMIT:
        raise ENTRY_CARETEAM.error()
    phones: dict[str, str] = {}
    for telecom in team.telecom or []:
        if telecom.system != "phone":
            continue
        if telecom.use not in ("work", "mobile") or telecom.use in phones:
            raise ENTRY_TELECOM.error()
        phones[telecom.use] = _phone(telecom.value)
    return AuthorityContact(name, phones.get("work"), phones.get("mobile"))


def plan_record(plan: CarePlan) -> PlanRecord:
    """The plan record a CarePlan carries; raises an entry refusal (CPR07) for a shape we cannot use.
    An NHS number that is present but invalid is left to the rules (CPR04)."""
    action = ACTIONS.get(plan.status or "")
    if action is None:
        raise ENTRY_STATUS.error()
    identifier = plan.subject.identifier if plan.subject else None
    if identifier is None or not nhs_number.is_system(identifier.system) or not identifier.value:
        raise ENTRY_SUBJECT.error()
    kind = _plan_type(plan)
    start = _full_date(plan.period.start if plan.period else None)
    end = _full_date(plan.period.end if plan.period else None)
    teams = [r for r in plan.contained or [] if r.get_resource_type() == "CareTeam"]
    if len(teams) > 1:
        raise ENTRY_CARETEAM.error()
    named = _ods_codes([plan.author])
    contact = None
    if teams:
        team = teams[0]
        if not isinstance(team, CareTeam):
            raise ENTRY_CARETEAM.error()
        contact = _contact(team)
        named |= _ods_codes(team.managingOrganization or [])
    return PlanRecord(nhs_number=identifier.value, plan_type=kind, action=action, start=start, end=end,
                      contact=contact, named_authorities=frozenset(named))


# The batch-response --------------------------------------------------------------------------------

_SUCCESS_TEXT = {
    Change.CREATED: "Plan created",
    Change.UPDATED: "Plan updated",
    Change.UNCHANGED: "Plan unchanged",
    Change.WITHDRAWN: "Plan withdrawn",
}
_REASON = {200: "OK", 201: "Created", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           422: "Unprocessable Entity"}


def success(applied: Applied) -> ApiError:
    """The acknowledgement of an applied record (an ``ApiError`` only as the one outcome renderer's input)."""
    status = 201 if applied.change is Change.CREATED else 200
    return ApiError(status, RecordCode.SUCCESS.value, _SUCCESS_TEXT[applied.change], issue_type="informational",
                    severity="information", system=CPIS_RECORD_RESPONSE_SYSTEM, display=RecordCode.SUCCESS.display)


def response_entry(outcome: dict[str, Any], status: int, applied: Applied | None) -> dict[str, Any]:
    response: dict[str, Any] = {"status": f"{status} {_REASON.get(status, '')}".strip(), "outcome": outcome}
    if applied is not None:
        # The plan the entry created or updated, in FHIR's form (relative: [type]/[id]/_history/[vid]). Its id is
        # the id of the CareTeam that shares it; a plan is read as that CareTeam, not as a CarePlan.
        response["location"] = f"CarePlan/{applied.plan.id}/_history/{applied.plan.version}"
        response["etag"] = f'W/"{applied.plan.version}"'
        response["lastModified"] = applied.plan.changed.at
    return {"response": response}


def batch_response(entries: list[dict[str, Any]], code: FileCode, bundle_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"tag": [{"system": CPIS_FILE_RESPONSE_SYSTEM, "code": code.value, "display": code.display}]},
        "type": "batch-response",
        "entry": entries,
    }
