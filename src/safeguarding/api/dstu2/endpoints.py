"""FGM-IS DSTU2 messaging over mutual TLS: ``POST /fhir/fgm/query``, ``/fhir/fgm/create``, ``/fhir/fgm/delete``.

The HTTP adapter around the codec (``codec.py``) and the FGM service, run by the shared request
pipeline (``api/pipeline.py``). For each message, in this order (docs/api-dstu2.md):

1. the verified client certificate must map to a registered system (``systems.json``), else 403
   ``ASID_CHECK_FAILED``; with no certificate at all, the same;
2. the message is parsed (the format comes from the request ``Content-Type``);
3. as soon as the MessageHeader could be read: ``source.endpoint`` must be that system's ASID,
   ``destination.endpoint`` this service's ASID, and the event one the system is registered for,
   else 403 ``ASID_CHECK_FAILED`` (checked before any content error is reported);
4. a content error found by the parser is answered with its spine-response-code-2-0 row;
5. the event must be the one of the path, and a ``SOAPAction`` header, when present, the event,
   else 400 ``INVALID_PARAMETER``;
6. the service does the work and audits it, with the system's ASID and the Practitioner's SDS ids.

Every answer, success or error, is a DSTU2 message Bundle whose MessageHeader answers the request's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Final, TypeVar

from starlette.datastructures import Headers
from starlette.routing import Route

from ...domain import errors as d
from ...domain.caller import Caller, System, User
from ...domain.fgm import RemovalReason
from ...domain.ids import uuid4_text
from ...security.registry import RegistryFile
from ...services.auditing import Auditor
from ...services.context import RequestContext
from ...services.fgm import FgmService
from .. import errors as e
from ..formats import media_type
from ..pipeline import ApiRequest, ApiResponse, Dialect, Endpoint, ErrorTable, Handler
from .codec import CONTENT_TYPES, Format, MessageError, media_format, parse_request, render_response
from .codes import (
    ASID_CHECK_FAILED,
    COULD_NOT_CONNECT_TO_SPINE,
    FLAG_ALREADY_SET,
    GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE,
    INVALID_NHS_NUMBER,
    INVALID_PARAMETER,
    MESSAGE_NOT_WELL_FORMED,
    NO_RECORD_FOUND,
    PATIENT_OVER_18,
    SPINE_CODES,
    SpineCode,
)
from .messages import CreateRequest, DeleteRequest, FoundFlag, Interaction, QueryRequest, Request, RequestHeader

log = logging.getLogger("safeguarding.dstu2")

API: Final = "fgm-dstu2"
BASE_PATH: Final = "/fhir/fgm"

R = TypeVar("R", QueryRequest, CreateRequest, DeleteRequest)


# =============================================================================================
# Refusals: an ApiError that carries its spine-response-code-2-0 row and, once it has been read,
# the request's MessageHeader, so the error response still answers the request.
# =============================================================================================


@dataclasses.dataclass
class Refusal(e.ApiError):
    request_header: RequestHeader | None = None


def spine_row(code: SpineCode, diagnostics: str) -> e.ErrorRow:
    """A DSTU2 table row: the spine-response-code-2-0 code and fixed diagnostics."""
    return e.ErrorRow(code.http_status, code.code, diagnostics, issue_type=code.issue_type, severity=code.severity)


def refusal(code: SpineCode, diagnostics: str, header: RequestHeader | None = None) -> Refusal:
    return answering(spine_row(code, diagnostics), header)


def answering(row: e.ErrorRow, header: RequestHeader | None) -> Refusal:
    """A fresh refusal of ``row`` answering this message (never raise a shared exception: it keeps requests alive)."""
    return Refusal(**row.values(), row=row, request_header=header)


NO_CERTIFICATE = spine_row(ASID_CHECK_FAILED, "A client certificate is required")
UNREGISTERED = spine_row(ASID_CHECK_FAILED, "The client certificate does not belong to a registered system")
REVOKED = spine_row(ASID_CHECK_FAILED, "The client certificate has been revoked")
WRONG_SOURCE = spine_row(ASID_CHECK_FAILED, "MessageHeader.source.endpoint is not the ASID of the client certificate")
WRONG_DESTINATION = spine_row(ASID_CHECK_FAILED, "MessageHeader.destination.endpoint is not the ASID of this service")
NOT_ALLOWED = spine_row(ASID_CHECK_FAILED, "The sending system is not registered for this interaction")
WRONG_PATH = spine_row(INVALID_PARAMETER, "MessageHeader.event.code is not the interaction of the URL it was posted to")
WRONG_SOAP_ACTION = spine_row(INVALID_PARAMETER, "The SOAPAction header does not match MessageHeader.event.code")

_INVALID_NHS = spine_row(INVALID_NHS_NUMBER, "The NHS number is not valid")
_NOT_TRACED = spine_row(INVALID_NHS_NUMBER, "The NHS number is not a verified NHS number")
_NO_RECORD = spine_row(NO_RECORD_FOUND, "No active FGM risk indicator is held for this patient")

# Domain errors per interaction (DIGEST §1.7, §1.8). The pipeline audits with these rows too.
QUERY_ERRORS: Final[ErrorTable] = {
    d.InvalidNhsNumber: _INVALID_NHS,
    d.PatientNotTraced: _NOT_TRACED,  # only verified numbers may be used
}
CREATE_ERRORS: Final[ErrorTable] = {
    d.InvalidNhsNumber: _INVALID_NHS,
    d.PatientNotTraced: _NOT_TRACED,
    d.PatientOver18: spine_row(PATIENT_OVER_18, "The patient is 18 or over"),
    # The DSTU2 table has no gender row: INVALID_PARAMETER is the closest (docs/api-dstu2.md).
    d.GenderNotAllowed: spine_row(INVALID_PARAMETER, "The patient's gender must be female, unknown or indeterminate"),
    d.IndicatorAlreadySet: spine_row(FLAG_ALREADY_SET, "The patient already has an active FGM risk indicator"),
    d.AssessmentDateInvalid: spine_row(INVALID_PARAMETER, "Flag.period.start (the assessment date) is in the future"),
}
DELETE_ERRORS: Final[ErrorTable] = {
    d.InvalidNhsNumber: _INVALID_NHS,
    d.PatientNotTraced: _NOT_TRACED,
    d.IndicatorNotFound: _NO_RECORD,
    d.IndicatorAlreadyRemoved: _NO_RECORD,  # removed by someone else meanwhile
    d.RemovalReasonInvalid: spine_row(INVALID_PARAMETER, "Parameter FGMDeleteReason is not a valid reason"),
}
ERRORS: Final[Mapping[Interaction, ErrorTable]] = {
    Interaction.QUERY: QUERY_ERRORS,
    Interaction.CREATE: CREATE_ERRORS,
    Interaction.DELETE: DELETE_ERRORS,
}
_TABLE_ROWS: Final = frozenset(row for table in ERRORS.values() for row in table.values())

# The shared pipeline's own rows (api/errors.py), in DSTU2 terms (the table has no 413, 415 or 503 rows): found
# by the row an error was raised from, never by its code.
_PIPELINE_ROWS: Final[Mapping[e.ErrorRow, tuple[SpineCode, str | None]]] = {
    e.PRECONDITION_FAILED: (
        INVALID_PARAMETER, "X-Request-ID, X-Correlation-ID and TraceID may each be given once, as 1-128 characters "
                           "from letters, digits and ._:-"),
    e.NOT_WELL_FORMED: (MESSAGE_NOT_WELL_FORMED, "The Content-Length header is not valid"),
    e.TOO_LARGE: (MESSAGE_NOT_WELL_FORMED, "The message is larger than 1 MiB"),
    e.REQUEST_TIMEOUT: (MESSAGE_NOT_WELL_FORMED, "The message was not received in time"),
    e.SERVICE_UNAVAILABLE: (COULD_NOT_CONNECT_TO_SPINE, "The service is temporarily unavailable"),
    # Diagnostics of the internal error carry the correlation id (fixed text otherwise).
    e.INTERNAL_ERROR: (GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE, None),
}
_UNEXPECTED: Final = (GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE, "An unexpected error occurred")


def _spine_row(error: e.ApiError) -> tuple[SpineCode, str]:
    """The spine-response-code-2-0 row an error is answered with: this API's own rows (its refusals, and its
    interaction tables' rows for the rules, raised by the pipeline) as written; the pipeline's by the table above."""
    if isinstance(error, Refusal) or error.row in _TABLE_ROWS:
        return SPINE_CODES[error.details_code], error.diagnostics
    code, diagnostics = _PIPELINE_ROWS.get(error.row, _UNEXPECTED) if error.row else _UNEXPECTED
    return code, diagnostics or error.diagnostics


# =============================================================================================
# The adapter
# =============================================================================================


def _user(message: Request, system: System) -> User | None:
    """The Practitioner as an audited user: SDS ids when sent; a local id, marked as such, otherwise.

    Values are cut to the audit columns' sizes; real SDS ids are 12 digits and ODS codes 3-6 characters.
    """
    practitioner = message.practitioner
    user_id = practitioner.sds_user_id or (f"local:{practitioner.local_user_id}" if practitioner.local_user_id
                                           else None)
    if user_id is None:
        return None
    organization = message.organization
    return User(
        user_id=user_id[:64],
        role_profile_id=(practitioner.sds_role_profile_id or "")[:64],
        org_code=(organization.ods_code if organization else system.ods_code)[:16],
        org_name=organization.name if organization else None,
        name=practitioner.name,
    )


def _soap_action(raw: str) -> str:
    """A SOAPAction value as an event code: quotes dropped, the pre-2019 ``/`` separator accepted."""
    action = raw.strip().strip('"').strip()
    return action.replace("clinicals-sync/", "clinicals-sync:", 1)


class FgmDstu2:
    def __init__(self, service: FgmService, service_asid: str, registry: RegistryFile) -> None:
        self.service = service
        self.service_asid = service_asid
        self.registry = registry

    # --- authentication: the TLS layer has verified the certificate against the configured CA ---

    def authenticate(self, request: ApiRequest) -> Caller:
        if request.client_cert is None:
            raise answering(NO_CERTIFICATE, _header_of(request))
        registry = self.registry.current()
        if registry.is_revoked(request.client_cert):  # the operator's deny list (systems.json "revoked")
            raise answering(REVOKED, _header_of(request))
        system = registry.system_for_certificate(request.client_cert)
        if system is None:
            raise answering(UNREGISTERED, _header_of(request))
        return Caller(system=system)

    def system_of(self, certificate: bytes | None) -> System | None:
        """The registered system a verified client certificate belongs to (None: none, or revoked)."""
        registry = self.registry.current()
        if certificate is None or registry.is_revoked(certificate):
            return None
        return registry.system_for_certificate(certificate)

    def _check_asids(self, system: System, header: RequestHeader) -> None:
        if header.source_asid != system.asid:
            raise answering(WRONG_SOURCE, header)
        if header.destination_asid != self.service_asid:
            raise answering(WRONG_DESTINATION, header)
        known = Interaction.for_request_event(header.event_code) is not None  # else the parser refuses it
        if known and header.event_code not in system.interactions:
            raise answering(NOT_ALLOWED, header)

    # --- the message ---

    def _message(self, interaction: Interaction, kind: type[R], request: ApiRequest, ctx: RequestContext) -> R:
        system = ctx.caller.system
        if system is None:  # authenticate() runs first: cannot happen
            raise answering(NO_CERTIFICATE, None)
        try:
            message = parse_request(request.body, media_type(request.headers.get("content-type")))
        except MessageError as exc:
            if exc.request_header is not None:
                self._check_asids(system, exc.request_header)
            raise refusal(exc.spine_code, exc.diagnostics, exc.request_header) from None
        header = message.header
        request.reply_to = header  # from here every refusal, the rules' included, answers this message
        ctx.caller = Caller(system=system, user=_user(message, system))
        self._check_asids(system, header)
        if message.interaction is not interaction or not isinstance(message, kind):
            raise answering(WRONG_PATH, header)
        actions = request.headers.getlist("soapaction")
        if len(actions) > 1 or (actions and _soap_action(actions[0]) not in ("", header.event_code)):
            raise answering(WRONG_SOAP_ACTION, header)
        return message

    # --- handlers ---

    def query(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        message = self._message(Interaction.QUERY, QueryRequest, request, ctx)
        found = self.service.search(ctx, message.nhs_number)
        if found is None:
            return self._respond(Interaction.QUERY, request, message.header, outcome=NO_RECORD_FOUND,
                                 diagnostics=_NO_RECORD.diagnostics)
        flag = FoundFlag(flag_id=found.id, nhs_number=found.nhs_number, assessment_date=found.assessment_date)
        return self._respond(Interaction.QUERY, request, message.header, flag=flag)

    def create(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        message = self._message(Interaction.CREATE, CreateRequest, request, ctx)
        self.service.create(ctx, message.nhs_number, message.assessment_date)
        return self._respond(Interaction.CREATE, request, message.header)

    def delete(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        message = self._message(Interaction.DELETE, DeleteRequest, request, ctx)
        reason = RemovalReason(message.delete_reason)  # 0, 1 or 2: the codec checked it
        self.service.remove_for_patient(ctx, message.nhs_number, reason)
        return self._respond(Interaction.DELETE, request, message.header)

    # --- responses ---

    def _respond(self, interaction: Interaction, request: ApiRequest | None, header: RequestHeader | None, *,
                 outcome: SpineCode | None = None, diagnostics: str | None = None, flag: FoundFlag | None = None,
                 requester_asid: str | None = None) -> ApiResponse:
        fmt = _response_format(request)
        body = render_response(
            interaction, header, outcome=outcome, diagnostics=diagnostics, flag=flag, service_asid=self.service_asid,
            message_id=uuid4_text(), timestamp=datetime.now(timezone.utc), fmt=fmt,
            requester_asid=requester_asid,
        )
        status = outcome.http_status if outcome else interaction.success_status
        return ApiResponse(status, body=body, content_type=CONTENT_TYPES[fmt],
                           headers={"X-Outcome-Code": outcome.code if outcome else "OK"})

    def render_error(self, error: e.ApiError, request: ApiRequest | None, ctx: RequestContext) -> ApiResponse:
        """The dialect's error renderer: a DSTU2 response message answering the request (never an R4 outcome)."""
        code, diagnostics = _spine_row(error)
        own = error.request_header if isinstance(error, Refusal) else None
        header = own or (request.reply_to if request else None)
        system = ctx.caller.system
        return self._respond(Interaction(ctx.interaction), request, header, outcome=code, diagnostics=diagnostics,
                             requester_asid=system.asid if system else None)

    def refuse_method(self, interaction: Interaction, headers: Headers, certificate: bytes | None) -> ApiResponse:
        """The 405 for ``interaction``'s path (no message to read: GET, PUT, ...), as a DSTU2 response message
        addressed to the system of the client certificate when there is one."""
        system = self.system_of(certificate)
        fmt = response_format(headers)
        body = render_response(
            interaction, None, outcome=method_not_allowed(), diagnostics=METHOD_NOT_ALLOWED_TEXT,
            service_asid=self.service_asid, message_id=uuid4_text(), timestamp=datetime.now(timezone.utc),
            fmt=fmt, requester_asid=system.asid if system else None,
        )
        return ApiResponse(405, body=body, content_type=CONTENT_TYPES[fmt], headers={"Allow": "POST"})

    def handler(self, interaction: Interaction) -> Handler:
        return {Interaction.QUERY: self.query, Interaction.CREATE: self.create,
                Interaction.DELETE: self.delete}[interaction]


def _header_of(request: ApiRequest) -> RequestHeader | None:
    """The MessageHeader of a message refused before its sender was identified (no, a revoked or an unknown
    certificate), so that the refusal still answers it: ``response.identifier`` the message's id and
    ``destination`` its source ASID, as the response profile requires. None when it cannot be read."""
    try:
        return parse_request(request.body, media_type(request.headers.get("content-type"))).header
    except MessageError as exc:
        return exc.request_header


def _response_format(request: ApiRequest | None) -> Format:
    if request is None:
        return "xml"
    return response_format(request.headers)


def response_format(headers: Headers) -> Format:
    """XML or JSON: what ``Accept`` asks for explicitly, else the request's own format (DIGEST A10), else XML.

    ``Accept`` counts when its most preferred media type (by ``q``, then order) is one of the DSTU2 XML or JSON
    types; ``*/*``, anything else, or no ``Accept`` leave the choice to the request's ``Content-Type``."""
    explicit = _accepted(headers.get("accept"))
    if explicit is not None:
        return explicit
    return media_format(media_type(headers.get("content-type"))) or "xml"


def _accepted(accept: str | None) -> Format | None:
    best: tuple[float, Format | None] = (0.0, None)
    for item in (accept or "").split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > best[0]:
            best = (quality, media_format(kind.lower()))
    return best[1]


# A request to a DSTU2 interaction's path with another method than POST (the router's 405), answered as the
# interaction's response message. The spine-response-code-2-0 table has no row for it: INVALID_PARAMETER, as
# for a path that does not match the event (what the transport names is wrong), with HTTP's own status.
def method_not_allowed() -> SpineCode:
    return dataclasses.replace(INVALID_PARAMETER, http_status=405, issue_type="not-supported")


METHOD_NOT_ALLOWED_TEXT: Final = "Only POST is allowed: FGM-IS messages are posted to /fhir/fgm/query, create or delete"


def dstu2_dialect(adapter: FgmDstu2, public_base_url: str | None) -> Dialect:
    """FGM-IS DSTU2 messaging: every answer a response message, in the request's format (no negotiation)."""
    return Dialect(API, BASE_PATH, adapter.render_error, public_base_url, negotiate=False)


# "No active indicator" is a success over R4; over DSTU2 it is a 404 NO_RECORD_FOUND, and the audit records what
# the caller is told.
NOTHING_FOUND: Final = {Interaction.QUERY: _NO_RECORD.outcome}


def dstu2_routes(dialect: Dialect, adapter: FgmDstu2, auditor: Auditor) -> list[Route]:
    """``POST /fhir/fgm/{query,create,delete}``, each through the shared pipeline in the DSTU2 dialect."""
    return [Route(f"{BASE_PATH}/{interaction.value}",
                  Endpoint(dialect, interaction.value, adapter.handler(interaction), auditor, adapter.authenticate,
                           errors=ERRORS[interaction], success_status=interaction.success_status,
                           nothing_found=NOTHING_FOUND.get(interaction)),
                  methods=["POST"])
            for interaction in Interaction]

