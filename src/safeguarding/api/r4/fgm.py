"""FGM-IS FHIR R4 REST API: GET /Flag (search), GET /Flag/{id}, POST /Flag, PUT /Flag/{id}.

Error rows are the IG's tables (DIGEST §2.5) exactly; where the tables are silent the choice is
documented in docs/api-r4.md.
"""

from __future__ import annotations

import re
from typing import Any

from fhir.resources.R4B.flag import Flag
from starlette.routing import Route

from ...domain import errors as d
from ...domain import nhs_number as nhs
from ...security.rbac import Operation
from ...services.auditing import Auditor
from ...services.context import RequestContext
from ...services.fgm import FgmService
from ..authentication import allowed
from ..errors import ApiError, ErrorRow
from ..formats import read_resource, request_format
from ..pipeline import ApiRequest, ApiResponse, Authenticator, Dialect, Endpoint, ErrorTable, Handler
from . import flag as mapping
from .capability import fgm_capability_statement
from .search import nhs_number_parameter

INVALID_NHS_SEARCH = ErrorRow(400, "INVALID_SEARCH_DATA", "Invalid NHS number")
INVALID_NHS_VALUE = ErrorRow(400, "INVALID_VALUE", "Invalid NHS number")
SEARCH_PARAMETER = ErrorRow(
    400, "INVALID_SEARCH_DATA",
    "Search by patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<NHS number>, given once",
)
WRONG_CODE = ErrorRow(400, "UNSUPPORTED_VALUE", "Code must be 902961000000107")
NOT_ACTIVE = ErrorRow(400, "UNSUPPORTED_VALUE", "Status must be active on this interaction")
NOT_REMOVED = ErrorRow(400, "UNSUPPORTED_VALUE", "Status must be inactive or entered-in-error on this interaction")
OVER_18 = ErrorRow(400, "VALIDATION_ERROR", "Patient is over 18")
GENDER = ErrorRow(400, "VALIDATION_ERROR", "Patient gender must be female, unknown or indeterminate")
ALREADY_SET = ErrorRow(400, "VALIDATION_ERROR", "Flag value was already set")
REASON_ON_CREATE = ErrorRow(400, "VALIDATION_ERROR", "Removal reason not allowed on this interaction")
ASSESSMENT_DATE = ErrorRow(400, "VALIDATION_ERROR",
                           "period.start (the assessment date) must be a full date that is not in the future")
NOT_FOUND_PUT = ErrorRow(400, "RESOURCE_NOT_FOUND", "Resource not found")
NOT_FOUND_READ = ErrorRow(404, "RESOURCE_NOT_FOUND", "Resource not found", issue_type="not-found")
ID_MISMATCH = ErrorRow(400, "INVALID_VALUE", "ID specified in the URL does not match the ID specified in the resource")
REASON_REQUIRED = ErrorRow(400, "VALIDATION_ERROR", "Removal reason must be supplied")
REASON_INVALID = ErrorRow(400, "VALIDATION_ERROR", "Removal reason must be code 0 or 2 of England-FGMRemovalReason")
ALREADY_REMOVED = ErrorRow(400, "VALIDATION_ERROR", "Flag has already been removed")
# Versioned update (If-Match), where the IG is silent: FHIR's 412 for a version that is not the current one.
VERSION_MISMATCH = ErrorRow(412, "PRECONDITION_FAILED",
                            "If-Match does not name the Flag's current version (its ETag): read it again",
                            issue_type="conflict")


def bad_if_match() -> ApiError:
    """An If-Match that is not a list of entity tags: the IG's row for an invalid header."""
    return ApiError(400, "PRECONDITION_FAILED", "Missing or invalid head parameter")

API = "fgm-r4"
BASE_PATH = "/fgm/FHIR/R4"

SEARCH_ERRORS: ErrorTable = {d.InvalidNhsNumber: INVALID_NHS_SEARCH, d.PatientNotTraced: INVALID_NHS_SEARCH}
READ_ERRORS: ErrorTable = {d.IndicatorNotFound: NOT_FOUND_READ}
CREATE_ERRORS: ErrorTable = {
    d.InvalidNhsNumber: INVALID_NHS_VALUE,
    d.PatientNotTraced: INVALID_NHS_VALUE,
    d.PatientOver18: OVER_18,
    d.GenderNotAllowed: GENDER,
    d.IndicatorAlreadySet: ALREADY_SET,
    d.AssessmentDateInvalid: ASSESSMENT_DATE,
}
REMOVE_ERRORS: ErrorTable = {
    d.IndicatorNotFound: NOT_FOUND_PUT,
    d.IndicatorAlreadyRemoved: ALREADY_REMOVED,
    d.RemovalReasonInvalid: REASON_REQUIRED,
    d.IndicatorVersionMismatch: VERSION_MISMATCH,
}

# One entity tag of If-Match: W/"<version>" as ETag sends it, or the strong form; "*" is any version.
_ENTITY_TAG = re.compile(r'\s*(?:(?:W/)?"([^"]*)"|(\*))\s*')


def path_id(request: ApiRequest, not_found: ErrorRow) -> str:
    flag_id = request.path_params["id"]
    # A path id not of the FHIR id type names no indicator, so it is answered "not found" without
    # reaching the store (PostgreSQL refuses a NUL in a query: that was a 500) or the audit.
    if not mapping.FHIR_ID.fullmatch(flag_id):
        raise not_found.error()
    return flag_id


def read_flag(request: ApiRequest) -> mapping.FlagFacts:
    """What a create or remove reads from the Flag in the body (a plain JSON one without the model)."""
    fmt = request_format(request.headers.get("content-type"))
    return read_resource(request.body, fmt, Flag, mapping.facts, mapping.quick_facts)


def search_nhs_number(request: ApiRequest) -> str:
    """``patient:identifier=[system|]N``, exactly once (the system: ``nhs_number.is_system``)."""
    return nhs_number_parameter(request, ("patient:identifier",), SEARCH_PARAMETER.error)


def if_match_version(request: ApiRequest) -> int | None:
    """The version an ``If-Match`` header names (None: no header, or ``*``). A version this server never
    issued (not a whole number) matches nothing: it is refused as a mismatch, like a stale one."""
    values = request.headers.getlist("if-match")
    if not values:
        return None
    tags = [_ENTITY_TAG.fullmatch(tag) for value in values for tag in value.split(",")]
    if not tags or any(tag is None for tag in tags):
        raise bad_if_match()
    versions = [tag.group(1) for tag in tags if tag is not None and tag.group(2) is None]
    if len(versions) < len(tags):  # "*": any current version
        return None
    if len(set(versions)) > 1:
        raise bad_if_match()  # several versions: at most one can be current, so the request is ambiguous
    return int(versions[0]) if versions[0].isdigit() and len(versions[0]) <= 9 else 0


def etag(version: int) -> str:
    """The weak entity tag of a version (``W/"2"``), as FHIR servers send it and ``meta.versionId`` says."""
    return f'W/"{version}"'


class FgmR4:
    def __init__(self, service: FgmService) -> None:
        self.service = service

    def search(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        nhs_number = search_nhs_number(request)
        found = self.service.search(ctx, nhs_number)
        self_url = f"{request.base_url}/Flag?patient:identifier={mapping.NHS_NUMBER_SYSTEM}|{nhs_number}"
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": 1 if found else 0,
            "link": [{"relation": "self", "url": self_url}],
        }
        if found:
            bundle["entry"] = [
                {
                    "fullUrl": f"{request.base_url}/Flag/{found.id}",
                    "resource": mapping.to_fhir(found),
                    "search": {"mode": "match"},
                }
            ]
        return ApiResponse(200, bundle)

    def read(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        indicator = self.service.read(ctx, path_id(request, NOT_FOUND_READ))
        return ApiResponse(200, mapping.to_fhir(indicator), headers={"ETag": etag(indicator.version)})

    def vread(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        """``GET /Flag/{id}/_history/{vid}``: the current version only (``readHistory`` is false)."""
        flag_id = path_id(request, NOT_FOUND_READ)
        vid = request.path_params["vid"]
        version = int(vid) if vid.isdigit() and len(vid) <= 9 else 0  # a version never issued: not found
        indicator = self.service.read(ctx, flag_id, version)
        return ApiResponse(200, mapping.to_fhir(indicator), headers={"ETag": etag(indicator.version)})

    def create(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        flag = read_flag(request)
        nhs_number = flag.nhs_number
        ctx.nhs_number = nhs_number if nhs_number and nhs.is_valid(nhs_number) else None
        if nhs_number is None or not nhs.is_valid(nhs_number):
            raise INVALID_NHS_VALUE.error()
        if not flag.fgm_code:
            raise WRONG_CODE.error()
        if flag.status != "active":
            raise NOT_ACTIVE.error()
        if flag.removal_extensions:
            raise REASON_ON_CREATE.error()
        indicator = self.service.create(ctx, nhs_number, flag.assessment_date)
        return ApiResponse(
            201,
            mapping.to_fhir(indicator),
            headers={"Location": f"{request.base_url}/Flag/{indicator.id}/_history/{indicator.version}",
                     "ETag": etag(indicator.version)},
        )

    def remove(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        flag_id = path_id(request, NOT_FOUND_PUT)
        ctx.resource_id = flag_id
        expected_version = if_match_version(request)
        flag = read_flag(request)
        if flag.id != flag_id:
            raise ID_MISMATCH.error()
        status = mapping.removed_status(flag.status)
        if status is None:
            raise NOT_REMOVED.error()
        if not flag.removal_extensions:
            raise REASON_REQUIRED.error()
        reason = flag.removal_reason
        if reason is None:
            raise REASON_INVALID.error()
        indicator = self.service.remove(ctx, flag_id, status, reason, expected_version)
        return ApiResponse(200, mapping.to_fhir(indicator), headers={"ETag": etag(indicator.version)})


def fgm_routes(dialect: Dialect, service: FgmService, auditor: Auditor, bearer: Authenticator,
               published: str) -> list[Route]:
    """Every FGM-IS R4 route, each through the shared pipeline in the FGM-IS R4 dialect."""
    adapter = FgmR4(service)

    def endpoint(interaction: str, handler: Handler, operation: Operation, errors: ErrorTable,
                 success: int = 200) -> Endpoint:
        return Endpoint(dialect, interaction, handler, auditor, bearer, allowed(operation), errors, success)

    def metadata(request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        return ApiResponse(200, fgm_capability_statement(request.base_url, published))

    base = dialect.base_path
    return [
        Route(f"{base}/metadata", Endpoint(dialect, "metadata", metadata, auditor, None), methods=["GET"]),
        Route(f"{base}/Flag", endpoint("search", adapter.search, Operation.FGM_SEARCH, SEARCH_ERRORS),
              methods=["GET"]),
        Route(f"{base}/Flag", endpoint("create", adapter.create, Operation.FGM_CREATE, CREATE_ERRORS, 201),
              methods=["POST"]),
        Route(f"{base}/Flag/{{id}}", endpoint("read", adapter.read, Operation.FGM_READ, READ_ERRORS),
              methods=["GET"]),
        Route(f"{base}/Flag/{{id}}", endpoint("remove", adapter.remove, Operation.FGM_REMOVE, REMOVE_ERRORS),
              methods=["PUT"]),
        Route(f"{base}/Flag/{{id}}/_history/{{vid}}",
              endpoint("vread", adapter.vread, Operation.FGM_READ, READ_ERRORS), methods=["GET"]),
    ]
