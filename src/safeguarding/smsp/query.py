"""The SMSP query: check the local message, map the user, forward to the national service, pass the
answer back.

In order: the client is authenticated (certificate or token); the message is read (any problem, Modulus 11
included, is INPUT_MESSAGE_VALIDATION_ERROR and never reaches the national service); the author must be
a smartcard user (SDS ids, passed through) or a local user mapped to national RBAC with B0370, else
AUTHOR_CREDENTIALS_ERROR; the client's throttle; the circuit breaker; then the national call under a
timeout. The national answer goes back as it came (a 404 NO_RECORD_FOUND stays exactly that), in a
message that answers the client's. Nothing of it is kept, unless the default-off local store is enabled.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from .. import inline
from ..api.dstu2 import codes
from ..api.dstu2.codec import CONTENT_TYPES, MessageError, media_format, parse_request, render_response
from ..api.dstu2.messages import FoundFlag, Interaction, Organization, Practitioner, QueryRequest, RequestHeader
from ..api.dstu2.requester import read_query_response, render_query_request
from ..api.formats import media_type
from ..api.pipeline import ApiRequest, ApiResponse
from ..domain.caller import Caller, User
from ..services.context import RequestContext
from . import vocabulary
from .breaker import CircuitBreaker
from .national import NationalClient, NationalReplyRefused, NationalUnreachable
from .settings import NationalUser
from .throttle import Throttle

log = logging.getLogger("safeguarding.smsp")



# National HTTP statuses that refuse the caller (the SMSP) rather than answer the query.
_REFUSALS = (401, 403)


@dataclass
class SmspRefusal(Exception):
    code: codes.SpineCode
    diagnostics: str
    header: RequestHeader | None = None
    retry_after: float | None = None


class LocalStore:
    """Found answers kept for at most ``hours``: ONLY when ``local_store_fallback`` is on (default off)."""

    def __init__(self, hours: float) -> None:
        self._ttl = hours * 3600
        self._flags: dict[str, tuple[FoundFlag, float]] = {}
        self._lock = threading.Lock()

    def keep(self, flag: FoundFlag) -> None:
        with self._lock:
            self._flags[flag.nhs_number] = (flag, time.monotonic())

    def forget(self, nhs_number: str) -> None:
        with self._lock:
            self._flags.pop(nhs_number, None)

    def get(self, nhs_number: str) -> FoundFlag | None:
        with self._lock:
            kept = self._flags.get(nhs_number)
            if kept is None or time.monotonic() - kept[1] > self._ttl:
                self._flags.pop(nhs_number, None)
                return None
            return kept[0]


class SmspQuery:
    def __init__(self, *, smsp_asid: str, national_asid: str, national: NationalClient, breaker: CircuitBreaker,
                 throttle: Throttle, users: dict[str, NationalUser], local_store: LocalStore | None,
                 responses: Mapping[str, codes.SpineCode] = vocabulary.DEFAULTS) -> None:
        self.smsp_asid, self.national_asid = smsp_asid, national_asid
        self.responses = responses
        self.national, self.breaker, self.throttle = national, breaker, throttle
        self.users, self.local_store = users, local_store

    def handle(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        started = time.monotonic()
        message = self._read(request, ctx.caller)
        ctx.correlation_id = message.header.message_id[:128]  # the client's message id, for the audit link
        ctx.nhs_number = message.nhs_number
        national_user = self._national_user(message)
        client = ctx.caller
        ctx.caller = Caller(system=client.system, user=User(
            user_id=(message.practitioner.sds_user_id or f"local:{message.practitioner.local_user_id}")[:64],
            role_profile_id=national_user.sds_role_profile_id, org_code=_client_ods(client)[:16]))
        wait = self.throttle.take(_client_id(client))
        if wait:
            raise SmspRefusal(vocabulary.throttled(self.responses["throttled"]), "Too many requests from this client",
                              message.header, retry_after=wait)
        national_message_id = str(uuid.uuid4())
        ctx.resource_id = national_message_id  # the national message id, for the audit link
        flag, outcome, diagnostics = self._ask_national(message, national_user, _client_ods(client),
                                                        national_message_id, started)
        return respond(request, message.header, self.smsp_asid, outcome=outcome, diagnostics=diagnostics, flag=flag)

    def _read(self, request: ApiRequest, client: Caller) -> QueryRequest:
        try:
            message = parse_request(request.body, media_type(request.headers.get("content-type")))
        except MessageError as exc:
            if exc.request_header is not None:  # as the national service: addressing is checked first
                self._check_addressing(client, exc.request_header)
            if exc.spine_code is codes.AUTHOR_CREDENTIALS_ERROR:
                raise SmspRefusal(self.responses["author_not_authorised"], exc.diagnostics,
                                  exc.request_header) from None
            raise SmspRefusal(self.responses["input_invalid"], exc.diagnostics, exc.request_header) from None
        self._check_addressing(client, message.header)
        if not isinstance(message, QueryRequest):
            raise SmspRefusal(self.responses["input_invalid"], "SMSP clients may only query FGM-IS",
                              message.header)
        return message

    def _check_addressing(self, client: Caller, header: RequestHeader) -> None:
        """``source`` is the ASID of the client's certificate (a client known by a bearer token has none to
        compare); ``destination`` is this SMSP's ASID or the national service's, the one a client written
        for the national service already sends. Otherwise ASID_CHECK_FAILED, as the national service says."""
        if client.system is not None and header.source_asid != client.system.asid:
            raise SmspRefusal(self.responses["client_addressing_wrong"],
                              "MessageHeader.source.endpoint is not the ASID of the client certificate", header)
        if header.destination_asid not in (self.smsp_asid, self.national_asid):
            raise SmspRefusal(self.responses["client_addressing_wrong"],
                              "MessageHeader.destination.endpoint is not the ASID of this SMSP or of the national "
                              "service", header)

    def _national_user(self, message: QueryRequest) -> NationalUser:
        practitioner = message.practitioner
        if practitioner.sds_user_id and practitioner.sds_role_profile_id:
            return NationalUser(practitioner.sds_user_id, practitioner.sds_role_profile_id)  # smartcard: passed on
        mapped = self.users.get(practitioner.local_user_id or "")
        if mapped is None:
            raise SmspRefusal(self.responses["author_not_authorised"],
                              "The author is not a smartcard user nor a local user mapped to national RBAC",
                              message.header)
        return mapped

    def _ask_national(self, message: QueryRequest, user: NationalUser, ods_code: str, national_message_id: str,
                      started: float) -> tuple[FoundFlag | None, codes.SpineCode | None, str | None]:
        if not self.breaker.allow():
            return self._unavailable(message, "The national service is failing: circuit open")
        outbound = render_query_request(
            message_id=national_message_id, timestamp=datetime.now(timezone.utc), source_asid=self.smsp_asid,
            destination_asid=self.national_asid, practitioner=Practitioner(user.sds_user_id,
                                                                           user.sds_role_profile_id, None, None),
            organization=Organization(ods_code, None), nhs_number=message.nhs_number)
        remaining = self.national.timeout - (time.monotonic() - started)  # one deadline for the whole query
        if remaining <= 0:  # spent here before the national service was asked: no failure of its own
            log.warning("deadline passed before the national call", extra={"event": "SMSP_DEADLINE_PASSED"})
            return self._unavailable(message, "Could not connect to the national service in time")
        try:
            reply = inline.wait(self.national.query(outbound, national_message_id, remaining))  # on the loop
        except NationalUnreachable as exc:
            self.breaker.failed()
            log.warning("national unreachable", extra={"event": "SMSP_NATIONAL_UNREACHABLE", "error": exc.reason,
                                                       "national_message_id": national_message_id})
            return self._unavailable(message, "Could not connect to the national service")
        except NationalReplyRefused as exc:
            self.breaker.failed()
            log.warning("national reply refused", extra={"event": "SMSP_NATIONAL_REPLY_REFUSED", "error": exc.reason,
                                                         "national_message_id": national_message_id})
            raise SmspRefusal(self.responses["national_reply_unusable"],
                              "Unusable national response: larger than the SMSP accepts", message.header) from None
        if reply.status >= 500:  # a national 500 is a failing national service too
            self.breaker.failed()
        else:
            self.breaker.succeeded()
        try:
            answer = read_query_response(reply.body, reply.media_type)
        except MessageError as exc:
            if reply.status in _REFUSALS:
                self._refused(message, str(reply.status), reply.status)
            if reply.status >= 500:
                log.warning("national service failed", extra={"event": "SMSP_NATIONAL_FAILED",
                                                              "status": reply.status})
                return self._unavailable(message, "The national service failed")
            log.warning("national reply unusable", extra={"event": "SMSP_NATIONAL_REPLY_UNUSABLE",
                                                          "status": reply.status})
            raise SmspRefusal(self.responses["national_reply_unusable"], exc.diagnostics, message.header) from None
        if answer.outcome is codes.ASID_CHECK_FAILED:
            self._refused(message, answer.outcome.code, reply.status)
        expected_status = answer.outcome.http_status if answer.outcome else 200
        if answer.answered_message_id != national_message_id or reply.status != expected_status:
            raise SmspRefusal(self.responses["national_reply_unusable"],
                              "Unusable national response: it does not answer the message sent", message.header)
        if self.local_store is not None:
            if answer.flag is not None:
                self.local_store.keep(answer.flag)
            elif answer.outcome is codes.NO_RECORD_FOUND:
                self.local_store.forget(message.nhs_number)
        return answer.flag, answer.outcome, answer.diagnostics

    def _refused(self, message: QueryRequest, national_code: str, status: int) -> None:
        """The national service refused the SMSP itself (its certificate or ASID not registered for the
        query): the SMSP's own misconfiguration, which no client can put right."""
        log.error("national service refused the SMSP", extra={"event": "SMSP_NATIONAL_REFUSED", "status": status,
                                                               "outcome": national_code})
        raise SmspRefusal(self.responses["national_refused_smsp"],
                          f"The national service refused this SMSP ({national_code}): its endpoint certificate "
                          "or ASID is not registered there for the FGM-IS query", message.header)

    def _unavailable(self, message: QueryRequest,
                     diagnostics: str) -> tuple[FoundFlag | None, codes.SpineCode | None, str | None]:
        kept = self.local_store.get(message.nhs_number) if self.local_store else None
        if kept is not None:
            return kept, codes.DATA_RETURNED_FROM_LOCAL_STORE_SPINE_UNAVAILABLE, None
        raise SmspRefusal(self.responses["national_unreachable"], diagnostics, message.header)


def _client_ods(caller: Caller) -> str:
    if caller.system is not None:
        return caller.system.ods_code
    return caller.user.org_code if caller.user else "UNKNOWN"


def _client_id(caller: Caller) -> str:
    if caller.system is not None:
        return f"system:{caller.system.asid}"
    return f"user:{caller.user.user_id}" if caller.user else "anonymous"


def respond(request: ApiRequest | None, header: RequestHeader | None, smsp_asid: str, *,
            outcome: codes.SpineCode | None, diagnostics: str | None = None, flag: FoundFlag | None = None,
            extra_headers: dict[str, str] | None = None) -> ApiResponse:
    """A DSTU2 query response message answering the client's, in the client's format."""
    fmt = (media_format(media_type(request.headers.get("content-type"))) if request else None) or "xml"
    body = render_response(Interaction.QUERY, header, outcome=outcome, diagnostics=diagnostics, flag=flag,
                           service_asid=smsp_asid, message_id=str(uuid.uuid4()),
                           timestamp=datetime.now(timezone.utc), fmt=fmt)
    headers = {"X-Outcome-Code": outcome.code if outcome else "OK", **(extra_headers or {})}
    return ApiResponse(outcome.http_status if outcome else 200, body=body, content_type=CONTENT_TYPES[fmt],
                       headers=headers)
