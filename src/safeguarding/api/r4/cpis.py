"""CP-IS FHIR R4 REST API, base ``/cpis/FHIR/R4``:

clinicians (bearer tokens)                 local authority systems (client certificates)
  GET  /CareTeam?patient:identifier=...      POST /                               batch upload of CarePlans
  GET  /AuditEvent?patient:identifier=...    GET  /notifications                  their notification feed
  POST /Communication (missed appointment)   POST /notifications/$acknowledge     what they have taken
  GET  /metadata (anyone)

Error rows are the IG's search table (DIGEST §3.1) exactly; where the IG is silent the choice is
documented in docs/api-cpis.md.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.parameters import Parameters
from starlette.routing import Route

from ...domain import errors as d
from ...domain import nhs_number as nhs
from ...domain.caller import System
from ...domain.cpis import Access, Alert, Applied, Event, FileCode, RecordCode
from ...domain.ids import uuid4_text
from ...security.rbac import Operation
from ...services.auditing import Auditor
from ...services.context import RequestContext
from ...services.cpis import FEED_LIMIT, CpisService, RecordResult
from ...store.interface import StoreUnavailable
from .. import errors as e
from ..authentication import allowed
from ..formats import parse_resource, request_format
from ..pipeline import (
    ApiRequest,
    ApiResponse,
    Authenticator,
    Dialect,
    Endpoint,
    ErrorTable,
    Handler,
    map_domain_error,
)
from ..steps import header_values
from . import careplan, communication
from .auditevent import audit_event, practitioner_role, practitioner_role_id
from .capability import cpis_capability_statement
from .careteam import care_team
from .flag import FHIR_ID
from .search import nhs_number_parameter
from .systems import NHS_NUMBER_SYSTEM

API = "cpis-r4"
BASE_PATH = "/cpis/FHIR/R4"

# The IG's search table (DIGEST §3.1), row for row.
INVALID_NHS_SEARCH = e.ErrorRow(400, "INVALID_SEARCH_DATA", "Invalid NHS number")
PRECONDITION_FAILED = e.PRECONDITION_FAILED  # "Missing or invalid head parameter"
ACCESS_DENIED = e.ErrorRow(403, "ACCESS_DENIED", "Access has been denied to process this request",
                           issue_type="forbidden")

# Where the IG is silent (docs/api-cpis.md).
SEARCH_PARAMETER = e.ErrorRow(
    400, "INVALID_SEARCH_DATA",
    "Search by patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<NHS number> or patient=<NHS number>, given once",
)
INVALID_NHS_VALUE = e.ErrorRow(400, "INVALID_VALUE", "Invalid NHS number")
NOT_COMPLETED = e.ErrorRow(400, "UNSUPPORTED_VALUE", "Status must be completed")
WRONG_CATEGORY = e.ErrorRow(400, "UNSUPPORTED_VALUE",
                            f"Category must be {communication.MISSED_APPOINTMENT} of {communication.ALERT_SYSTEM}")
BAD_NOTE = e.ErrorRow(400, "VALIDATION_ERROR",
                      f"payload must be at most one contentString of up to {communication.NOTE_LIMIT} characters")
NO_PLAN = e.ErrorRow(400, "VALIDATION_ERROR", "The child has no active child protection plan")
BAD_COUNT = e.ErrorRow(400, "INVALID_SEARCH_DATA", f"_count must be a whole number from 1 to {FEED_LIMIT}")
BAD_ACKNOWLEDGEMENT = e.ErrorRow(
    400, "INVALID_RESOURCE",
    f"Parameters must hold 1 to {FEED_LIMIT} parameters named notification, each a valueReference to an "
    "AuditEvent or Communication from the feed",
)
ENTRY_NOT_APPLIED = careplan.entry_refusal(500, "exception", RecordCode.UNSUCCESSFUL, "The record was not applied")
PDS_UNAVAILABLE = e.ErrorRow(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable",
                             issue_type="transient", also=(careplan.file_coding(FileCode.PDS_UNAVAILABLE),))

SEARCH_ERRORS: ErrorTable = {d.InvalidNhsNumber: INVALID_NHS_SEARCH}
# Reads by id, where the IG is silent: what is not shared (or not the caller's alert) is not found.
NOT_FOUND_READ = e.ErrorRow(404, "RESOURCE_NOT_FOUND", "Resource not found", issue_type="not-found")
CARETEAM_READ_ERRORS: ErrorTable = {d.PlanNotFound: NOT_FOUND_READ}
ALERT_READ_ERRORS: ErrorTable = {d.AlertNotFound: NOT_FOUND_READ}
ALERT_ERRORS: ErrorTable = {d.InvalidNhsNumber: INVALID_NHS_VALUE,
                                                        d.NoActivePlan: NO_PLAN}

# Per-entry acknowledgements of the upload: the rule broken -> the entry's status and CP-IS record code.
_PDS = "business-rule"
ENTRY_ERRORS: ErrorTable = {
    d.InvalidNhsNumber: careplan.entry_refusal(400, "value", RecordCode.FORMAT_INCORRECT,
                                               "Invalid NHS number"),
    d.PatientNotFound: careplan.entry_refusal(422, "not-found", RecordCode.NO_MATCH,
                                              "No patient was found for this NHS number"),
    d.SensitiveRecord: careplan.entry_refusal(422, _PDS, RecordCode.SENSITIVE,
                                              "The patient's record is sensitive: the plan cannot be shared"),
    d.NhsNumberNotVerified: careplan.entry_refusal(422, _PDS, RecordCode.NOT_VERIFIED,
                                                   "The NHS number is not verified"),
    d.NhsNumberSuperseded: careplan.entry_refusal(422, _PDS, RecordCode.SUPERSEDED,
                                                  "The NHS number has been superseded"),
    # PlanInvalid's diagnostics are the broken rule's own fixed text (domain/cpis.py).
    d.PlanInvalid: careplan.entry_refusal(422, _PDS, RecordCode.UNSUCCESSFUL, "The plan is not valid"),
    d.PlanNotFound: careplan.entry_refusal(404, "not-found", RecordCode.UNSUCCESSFUL,
                                           "No such plan is held for this authority to withdraw"),
    d.PlanOfAnotherAuthority: careplan.entry_refusal(
        403, "forbidden", RecordCode.UNSUCCESSFUL,
        "The plan names another local authority: an authority uploads only its own plans"),
}

# "AuditEvent/<id>" or "Communication/<id>", relative or as the feed's fullUrl.
_ACK_REFERENCE = re.compile(
    r"^(?:https?://[^\s]*/)?(AuditEvent|Communication)/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def search_nhs_number(request: ApiRequest) -> str:
    """``patient:identifier=[system|]N`` or ``patient=[system|]N`` (DIGEST A12), exactly once."""
    return nhs_number_parameter(request, ("patient:identifier", "patient"),
                                SEARCH_PARAMETER.error)


def invalid_head_parameter() -> e.ApiError:
    return e.ApiError(400, "PRECONDITION_FAILED", "Missing or invalid head parameter")


# The IG's header page names the header once as IsUnscheduledEvent: read as the same header.
UNSCHEDULED_HEADERS = ("isunscheduledaccessevent", "isunscheduledevent")
_UNSCHEDULED_KEYS = {name.encode("latin-1"): name for name in UNSCHEDULED_HEADERS}


def declared_unscheduled(request: ApiRequest) -> bool | None:
    """``IsUnscheduledAccessEvent`` (or its alias ``IsUnscheduledEvent``): true or false in any case; absent is
    None (treated as unscheduled). Each given at most once; both given, they must say the same."""
    sent = header_values(request.headers.raw, _UNSCHEDULED_KEYS)  # one pass, not one for each name
    if not sent:
        return None
    declared: set[bool] = set()
    for name in UNSCHEDULED_HEADERS:
        values = sent.get(name)
        if not values:
            continue
        value = values[0].strip().lower()
        if len(values) > 1 or value not in ("true", "false"):
            raise invalid_head_parameter()
        declared.add(value == "true")
    if len(declared) > 1:
        raise invalid_head_parameter()
    return declared.pop() if declared else None


def not_found() -> e.ApiError:
    return e.ApiError(404, "RESOURCE_NOT_FOUND", "Resource not found", issue_type="not-found")


def path_id(request: ApiRequest) -> str:
    """The ``{id}`` of a read; one that is not a FHIR id names nothing (never reaches the store)."""
    resource_id = request.path_params["id"]
    if not FHIR_ID.fullmatch(resource_id):
        raise not_found()
    return resource_id


def _entry_outcome(result: RecordResult, refusal: e.AnyError | None) -> tuple[e.AnyError, Applied | None]:
    """The acknowledgement of one entry: refused by the adapter, refused by a rule, or applied."""
    if refusal is None and result.error is not None:
        refusal = map_domain_error(ENTRY_ERRORS, result.error)
        if isinstance(result.error, d.PlanInvalid):
            refusal = dataclasses.replace(refusal, diagnostics=result.error.rule)
    if refusal is not None or result.applied is None:
        return refusal or ENTRY_NOT_APPLIED, None
    return careplan.success(result.applied), result.applied


class CpisR4:
    def __init__(self, service: CpisService) -> None:
        self.service = service

    # --- clinicians ---

    def care_teams(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        declared = declared_unscheduled(request)
        nhs_number = search_nhs_number(request)
        plans = self.service.care_teams(ctx, nhs_number, declared)
        today = self.service.today()
        self_url = f"{request.base_url}/CareTeam?patient:identifier={NHS_NUMBER_SYSTEM}|{nhs_number}"
        return ApiResponse(200, searchset(request, self_url, [care_team(p, today) for p in plans], len(plans)))

    def access_history(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        declared_unscheduled(request)  # validated on every clinician search; only CareTeam records
        nhs_number = search_nhs_number(request)
        accesses = self.service.access_history(ctx, nhs_number)
        self_url = f"{request.base_url}/AuditEvent?patient:identifier={NHS_NUMBER_SYSTEM}|{nhs_number}"
        return ApiResponse(200, searchset(request, self_url, [audit_event(a) for a in accesses], len(accesses),
                                          _roles(accesses)))

    def care_team(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        """``GET /CareTeam/{id}``: one shared plan, with the access rules and recording of the search."""
        declared = declared_unscheduled(request)
        plan = self.service.care_team(ctx, path_id(request), declared)
        return ApiResponse(200, care_team(plan, self.service.today()), headers={"ETag": f'W/"{plan.version}"'})

    def read_alert(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        """``GET /Communication/{id}`` (and ``/_history/1``, its only version): an alert, for the clinician
        who raised it."""
        alert_id = path_id(request)
        if request.path_params.get("vid", "1") != "1":
            raise not_found()
        alert, recipients = self.service.alert(ctx, alert_id)
        return ApiResponse(200, communication.communication(alert, recipients), headers={"ETag": 'W/"1"'})

    def raise_alert(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        resource = parse_resource(request.body, request_format(request.headers.get("content-type")), Communication)
        nhs_number = communication.subject_nhs_number(resource)
        if nhs_number is None or not nhs.is_valid(nhs_number):
            raise INVALID_NHS_VALUE.error()
        ctx.nhs_number = nhs_number
        if resource.status != "completed":
            raise NOT_COMPLETED.error()
        if not communication.category_ok(resource):
            raise WRONG_CATEGORY.error()
        ok, note = communication.note(resource)
        if not ok:
            raise BAD_NOTE.error()
        alert, recipients = self.service.raise_alert(ctx, nhs_number, note)
        return ApiResponse(201, communication.communication(alert, recipients),
                           headers={"Location": f"{request.base_url}/Communication/{alert.id}/_history/1",
                                    "ETag": 'W/"1"'})

    # --- local authority systems ---

    def upload(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        system = _authority(ctx)
        try:
            fmt = request_format(request.headers.get("content-type"))
        except e.ApiError as error:
            raise careplan.file_error(error) from None
        entries = careplan.parse_batch(request.body, fmt)
        records = [entry.record for entry in entries if entry.record is not None]
        try:
            result = self.service.upload(ctx, system, records, refused=len(entries) - len(records))
        except StoreUnavailable:
            raise PDS_UNAVAILABLE.error() from None  # the demographics lookups could not be made
        applied = iter(result.results)
        rendered = []
        for entry in entries:
            outcome, done = _entry_outcome(next(applied) if entry.record else RecordResult(), entry.refusal)
            rendered.append(careplan.response_entry(e.operation_outcome(outcome), outcome.status, done))
        return ApiResponse(200, careplan.batch_response(rendered, result.file_code, str(uuid.uuid4())))

    def feed(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        system = _authority(ctx)
        feed = self.service.pending(ctx, system.ods_code, _count(request))
        events = [n.event for n in feed.pending]
        matches = [_event_resource(event, system.ods_code) for event in events]
        accesses = [event for event in events if isinstance(event, Access)]
        return ApiResponse(200, searchset(request, f"{request.base_url}/notifications", matches, feed.total,
                                          _roles(accesses)))

    def acknowledge(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        system = _authority(ctx)
        parameters = parse_resource(request.body, request_format(request.headers.get("content-type")), Parameters)
        wanted = _acknowledged(parameters)
        taken = self.service.acknowledge(ctx, system.ods_code, list(wanted))
        return ApiResponse(200, {
            "resourceType": "Parameters",
            "parameter": [{"name": "acknowledged", "valueInteger": len(taken)}] + [
                {"name": "notification", "valueReference": {"reference": f"{wanted[i]}/{i}"}} for i in taken],
        })


def _authority(ctx: RequestContext) -> System:
    """The calling local authority's system (authorise() has checked that it is one)."""
    if ctx.caller.system is None:
        raise RuntimeError("local authority interactions need an authenticated system")
    return ctx.caller.system


def searchset(request: ApiRequest, self_url: str, matches: list[dict[str, Any]], total: int,
              includes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A searchset Bundle: the matches, then the included resources (``total`` counts matches only)."""
    entries = [{"fullUrl": f"{request.base_url}/{r['resourceType']}/{r['id']}", "resource": r,
                "search": {"mode": mode}}
               for mode, resources in (("match", matches), ("include", includes or [])) for r in resources]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": uuid4_text(),
        "type": "searchset",
        "total": total,
        "link": [{"relation": "self", "url": self_url}],
    }
    if entries:
        bundle["entry"] = entries
    return bundle


def _roles(accesses: list[Access]) -> list[dict[str, Any]]:
    """Each distinct author once, in order of first appearance."""
    seen: dict[str, dict[str, Any]] = {}
    for access in accesses:
        seen.setdefault(practitioner_role_id(access.author), practitioner_role(access.author))
    return list(seen.values())


def _event_resource(event: Event, authority_ods: str) -> dict[str, Any]:
    if isinstance(event, Alert):
        # An authority sees itself as the recipient, never which other authorities were told.
        return communication.communication(event, [authority_ods])
    return audit_event(event)


def _count(request: ApiRequest) -> int:
    values = request.query.getlist("_count")
    if not values:
        return FEED_LIMIT
    if len(values) > 1 or not values[0].isdigit() or not 1 <= int(values[0]) <= FEED_LIMIT:
        raise BAD_COUNT.error()
    return int(values[0])


def _acknowledged(parameters: Parameters) -> dict[str, str]:
    """The events named, id -> resource type, each once and in order."""
    found: dict[str, str] = {}
    items = parameters.parameter or []
    if not 1 <= len(items) <= FEED_LIMIT:
        raise BAD_ACKNOWLEDGEMENT.error()
    for parameter in items:
        reference = (parameter.valueReference.reference if parameter.valueReference else None) or ""
        match = _ACK_REFERENCE.match(reference)
        if parameter.name != "notification" or match is None:
            raise BAD_ACKNOWLEDGEMENT.error()
        found.setdefault(match.group(2), match.group(1))
    return found


def cpis_routes(dialect: Dialect, service: CpisService, auditor: Auditor, bearer: Authenticator,
                certificate: Authenticator, published: str) -> list[Route]:
    """Every CP-IS route, each through the shared pipeline in the CP-IS R4 dialect: clinicians by bearer token,
    local authorities by client certificate."""
    adapter = CpisR4(service)

    def endpoint(interaction: str, handler: Handler, authenticate: Authenticator | None,
                 operation: Operation | None, errors: ErrorTable | None = None, success: int = 200) -> Endpoint:
        return Endpoint(dialect, interaction, handler, auditor, authenticate,
                        allowed(operation) if operation else None, errors, success)

    def metadata(request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        return ApiResponse(200, cpis_capability_statement(request.base_url, published))

    return [
        Route(f"{BASE_PATH}/metadata", endpoint("metadata", metadata, None, None), methods=["GET"]),
        Route(f"{BASE_PATH}/CareTeam", endpoint("careteam-search", adapter.care_teams, bearer,
                                                Operation.CPIS_CARETEAM_SEARCH, SEARCH_ERRORS), methods=["GET"]),
        Route(f"{BASE_PATH}/CareTeam/{{id}}", endpoint("careteam-read", adapter.care_team, bearer,
                                                     Operation.CPIS_CARETEAM_SEARCH, CARETEAM_READ_ERRORS),
              methods=["GET"]),
        Route(f"{BASE_PATH}/Communication/{{id}}", endpoint("missed-appointment-read", adapter.read_alert, bearer,
                                                          Operation.CPIS_ALERT, ALERT_READ_ERRORS), methods=["GET"]),
        Route(f"{BASE_PATH}/Communication/{{id}}/_history/{{vid}}",
              endpoint("missed-appointment-vread", adapter.read_alert, bearer, Operation.CPIS_ALERT,
                       ALERT_READ_ERRORS), methods=["GET"]),
        Route(f"{BASE_PATH}/AuditEvent", endpoint("auditevent-search", adapter.access_history, bearer,
                                                  Operation.CPIS_HISTORY_SEARCH, SEARCH_ERRORS), methods=["GET"]),
        Route(f"{BASE_PATH}/Communication", endpoint("missed-appointment", adapter.raise_alert, bearer,
                                                     Operation.CPIS_ALERT, ALERT_ERRORS, 201), methods=["POST"]),
        Route(BASE_PATH, endpoint("upload", adapter.upload, certificate, Operation.CPIS_UPLOAD), methods=["POST"]),
        Route(f"{BASE_PATH}/notifications", endpoint("notifications", adapter.feed, certificate,
                                                     Operation.CPIS_FEED), methods=["GET"]),
        Route(f"{BASE_PATH}/notifications/$acknowledge",
              endpoint("acknowledge", adapter.acknowledge, certificate, Operation.CPIS_ACKNOWLEDGE),
              methods=["POST"]),
    ]
