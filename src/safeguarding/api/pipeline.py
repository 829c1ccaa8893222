"""The request pipeline every API endpoint runs through, in a fixed order:

1. request ids (``X-Request-ID``, ``X-Correlation-ID``, ``TraceID``): checked, echoed back;
2. response format (``_format`` / ``Accept``, when the API's ``Dialect`` negotiates);
3. body, read up to the limit;
4. (inline on the event loop, ``inline.run``) authentication -> typed ``Caller``; authorisation; the handler;
5. every error becomes the dialect's answer here and nowhere else (an OperationOutcome for R4, a response
   message for DSTU2): a broken rule by the interaction's table, the row the audit used too
   (``Outcomes``); unknown errors a generic 500;
6. the request is audited exactly once: by the service with its change, or here if it never got there;
7. the response, with the hardening headers (``hardening.py``);
8. one log line with the event code, ids, status and duration: never patient data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from .. import inline
from ..domain.caller import ANONYMOUS, Caller
from ..domain.errors import DomainError
from ..domain.ids import uuid4_text
from ..security.errors import AccessDenied, AuthenticationFailed, RoleSelectionFailed, SecurityError
from ..services.auditing import Auditor
from ..services.context import Outcome, Outcomes, RequestContext
from ..store.interface import StoreUnavailable
from . import errors as e
from .formats import CONTENT_TYPES, response_format, serialise
from .hardening import SECURITY_HEADERS
from .query import Query
from .steps import (
    TRACE_HEADERS,
    TRACE_KEYS,
    ReadBodyError,
    completed,
    header_values,
    log_unhandled,
    read_body,
    well_formed_trace_id,
)
from .wire import wire_facts

log = logging.getLogger("safeguarding.request")

MAX_BODY = 1024 * 1024


@dataclass
class ApiRequest:
    method: str
    path_params: Mapping[str, str]
    query: Query
    headers: Headers
    body: bytes
    base_url: str
    client_cert: bytes | None = None
    response_format: str = "json"
    reply_to: Any = None  # what a refusal answers, once read (DSTU2 messaging: the request's MessageHeader)


@dataclass
class ApiResponse:
    status: int
    resource: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None


Handler = Callable[[ApiRequest, RequestContext], ApiResponse]
Authenticator = Callable[[ApiRequest], Caller]
Authoriser = Callable[[Caller], None]
ErrorRenderer = Callable[[e.ApiError, ApiRequest | None, RequestContext], ApiResponse]
ErrorTable = Mapping[type[DomainError], e.ErrorRow]


def security_error(error: SecurityError, denied: e.ErrorRow = e.ACCESS_DENIED, explain: bool = False) -> e.ApiError:
    """``explain`` (the sandbox only): a refused token's diagnostics say why, as the server log does."""
    if isinstance(error, RoleSelectionFailed):
        return e.PRECONDITION_FAILED.error()
    if isinstance(error, AccessDenied):
        return denied.error()
    # AuthenticationFailed, and any security error not named above: refuse as unauthenticated
    return e.bad_token(reason_is_missing=isinstance(error, AuthenticationFailed) and error.reason == "missing",
                       sandbox_reason=_told(error.reason) if explain else None)


def _told(reason: str) -> str:
    return "no bearer token" if reason == "missing" else reason


def r4_error_renderer(system: str = e.DEFAULT_ERROR_SYSTEM) -> ErrorRenderer:
    """R4 endpoints answer errors with an OperationOutcome whose codes are in ``system`` (configurable)."""

    def render(error: e.ApiError, request: ApiRequest | None, ctx: RequestContext) -> ApiResponse:
        return ApiResponse(error.status, e.operation_outcome(error, system), headers=dict(error.headers))

    return render


@dataclass(frozen=True)
class Dialect:
    """How one API speaks HTTP, shared by all its endpoints: its name and base path, how it words a refusal
    (``render_error``, and ``denied``, its own 403 row), and whether the response format is negotiated
    (``_format``/``Accept``, the R4 APIs) or follows the request (DSTU2 messaging)."""

    api: str
    base_path: str
    render_error: ErrorRenderer = field(default_factory=r4_error_renderer)
    public_base_url: str | None = None
    negotiate: bool = True
    denied: e.ErrorRow = e.ACCESS_DENIED

    def base_url(self, scope: Scope, headers: Headers) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/") + self.base_path
        host = first_header(headers, "host") or "{}:{}".format(*scope["server"])
        return f"{scope.get('scheme', 'https')}://{host}{self.base_path}"


def r4_dialect(api: str, base_path: str, error_system: str, public_base_url: str | None,
               denied: e.ErrorRow = e.ACCESS_DENIED) -> Dialect:
    """An R4 REST API: OperationOutcomes in the configured code system, the format negotiated."""
    return Dialect(api, base_path, r4_error_renderer(error_system), public_base_url, True, denied)


def map_domain_error(errors: ErrorTable | Outcomes, error: DomainError) -> e.ErrorRow:
    """The interaction's row for a broken rule, found through the error's class hierarchy (``Outcomes.row``: the
    look-up the audit outcome is found by too)."""
    row = (errors if isinstance(errors, Outcomes) else Outcomes(table=errors)).row(error)
    if not isinstance(row, e.ErrorRow):
        raise error  # an unmapped domain error is a programming error: let it become a 500
    return row


class Endpoint:
    """One API interaction as an ASGI app: the pipeline above around a synchronous handler."""

    explain_refusals = False  # the sandbox sets it (server.py): token refusals' diagnostics say why

    def __init__(self, dialect: Dialect, interaction: str, handler: Handler, auditor: Auditor,
                 authenticate: Authenticator | None, authorise: Authoriser | None = None,
                 errors: ErrorTable | None = None, success_status: int = 200,
                 nothing_found: Outcome | None = None) -> None:
        """``errors``: the interaction's table, what each broken rule is told as (response and audit alike);
        ``nothing_found``: how a search that finds nothing is told, when not as a success (``Outcomes``)."""
        self.dialect = dialect
        self.api, self.interaction = dialect.api, interaction
        self.handler, self.auditor = handler, auditor
        self.authenticate, self.authorise = authenticate, authorise
        self.errors = dict(errors or {})
        self.success_status = success_status
        # What the caller is told, for the service's audit and this pipeline's answer alike: resolved from the
        # same rows by the same look-up, handed down as data (services/context.py).
        self.outcomes = Outcomes((success_status, "OK"), self.errors, unnamed=None, nothing_found=nothing_found)

    def api_error(self, error: DomainError, ctx: RequestContext) -> e.ApiError:
        """The refusal of a broken rule: its row in the outcomes the service audited with, raised fresh."""
        return map_domain_error(ctx.outcomes, error).error()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = Headers(scope=scope)
        request_id = uuid4_text()
        ctx = RequestContext(api=self.api, interaction=self.interaction, request_id=request_id,
                             outcomes=self.outcomes)
        echo: dict[str, str] = {}
        request: ApiRequest | None = None
        ctx.wire = wire_facts(scope)  # for the assurance report (api/wire.py)
        try:
            self._trace_ids(scope["headers"], ctx, echo)  # the list ``Headers(scope=...)`` made of them
            query = Query(scope.get("query_string", b""))
            fmt = (response_format(first_header(headers, "accept"), query.get("_format")) if self.dialect.negotiate
                   else "json")
            request = ApiRequest(
                method=scope["method"],
                path_params=scope.get("path_params", {}),
                query=query,
                headers=headers,
                body=b"",
                base_url=self.dialect.base_url(scope, headers),
                client_cert=_client_cert(scope),
                response_format=fmt,
            )
            if scope["method"] in ("POST", "PUT"):
                request.body = await read_body(receive, headers, MAX_BODY)
            response = await inline.run(self._serve, request, ctx)
        except e.ApiError as error:
            response = self._refuse(error, request, ctx)
        except ReadBodyError:
            return
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            response = await self._fail(exc, request, ctx)
        if not ctx.audited:
            try:
                await inline.run(self.auditor.record, ctx, (response.status, _outcome_code(response)))
            except Exception as exc:  # noqa: BLE001
                response = await self._fail(exc, request, ctx, audit=False)
        await self._send(send, response, request, echo | {"X-Request-ID": echo.get("X-Request-ID", request_id)})
        completed(self.api, self.interaction, response.status, _outcome_code(response), ctx.request_id, started)

    def _trace_ids(self, raw: list[tuple[bytes, bytes]], ctx: RequestContext, echo: dict[str, str]) -> None:
        sent = header_values(raw, TRACE_KEYS)  # one pass over the headers, not one for each of the three names
        if sent:
            for canonical in TRACE_HEADERS.values():
                values = sent.get(canonical)
                if not values:
                    continue
                if len(values) > 1 or not well_formed_trace_id(values[0]):
                    raise e.PRECONDITION_FAILED.error()
                echo[canonical] = values[0]
        ctx.request_id = echo.get("X-Request-ID", ctx.request_id)
        ctx.correlation_id = echo.get("X-Correlation-ID")
        ctx.trace_id = echo.get("TraceID")

    def _serve(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        try:
            if self.authenticate is not None:
                ctx.caller = self.authenticate(request)
                if self.authorise is not None:
                    self.authorise(ctx.caller)
            return self.handler(request, ctx)
        except SecurityError as error:
            log.info("refused", extra={"event": "SECURITY_REFUSED", "reason": error.reason,
                                       "request_id": ctx.request_id})
            return self._refuse(security_error(error, self.dialect.denied, self.explain_refusals), request, ctx)
        except DomainError as error:
            return self._refuse(self.api_error(error, ctx), request, ctx)
        except e.ApiError as error:
            return self._refuse(error, request, ctx)
        except StoreUnavailable:
            return self._refuse(e.SERVICE_UNAVAILABLE.error(), request, ctx)

    def _refuse(self, error: e.ApiError, request: ApiRequest | None, ctx: RequestContext) -> ApiResponse:
        response = self.dialect.render_error(error, request, ctx)
        response.headers.setdefault("X-Outcome-Code", error.details_code)
        if "Connection" in error.headers:  # e.g. after a timed-out body: whatever renders the error, close
            response.headers.setdefault("Connection", error.headers["Connection"])
        return response

    async def _fail(self, exc: Exception, request: ApiRequest | None, ctx: RequestContext,
                    audit: bool = True) -> ApiResponse:
        log_unhandled(exc, ctx.request_id)  # type and stack frames only: a message may quote request data
        ctx.audited = ctx.audited or not audit
        return self._refuse(e.internal_error(ctx.request_id), request, ctx)

    async def _send(self, send: Send, response: ApiResponse, request: ApiRequest | None,
                    extra: dict[str, str]) -> None:
        fmt = request.response_format if request else "json"
        if response.body is not None:
            body, content_type = response.body, response.content_type or CONTENT_TYPES[fmt]
        elif response.resource is not None:
            try:
                body, content_type = serialise(response.resource, fmt), CONTENT_TYPES[fmt]
            except Exception as exc:  # noqa: BLE001 - e.g. text XML cannot carry: answer what was decided, in JSON
                log.error("response not serialisable", extra={"event": "SERIALISATION_FAILED",
                                                              "error": type(exc).__name__,
                                                              "request_id": extra.get("X-Request-ID")})
                body, content_type = serialise(response.resource, "json"), CONTENT_TYPES["json"]
        else:
            body, content_type = b"", None
        headers = {**extra, **response.headers}
        headers.pop("X-Outcome-Code", None)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if content_type:
            raw.append((b"content-type", content_type.encode("latin-1")))
        raw.append((b"content-length", str(len(body)).encode()))
        raw.extend(SECURITY_HEADERS)
        await send({"type": "http.response.start", "status": response.status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


def _outcome_code(response: ApiResponse) -> str:
    return response.headers.get("X-Outcome-Code", "OK")


def _client_cert(scope: Scope) -> bytes | None:
    chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_der")
    return chain if isinstance(chain, bytes) else None


def first_header(headers: Headers, name: str) -> str | None:
    """``headers.get(name)``: its first value, or None. (``Headers.get`` is ``Mapping.get``, which finds an absent
    header by raising and catching a ``KeyError``: twice a request, for ``Accept`` and ``NHSD-Session-URID``.)"""
    values = headers.getlist(name)
    return values[0] if values else None


def bearer_token(headers: Headers) -> str:
    values = headers.getlist("authorization")
    if not values:
        raise AuthenticationFailed("missing")
    scheme, _, token = values[0].partition(" ")
    if len(values) > 1 or scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("malformed authorization header")
    return token.strip()


def anonymous(_: ApiRequest) -> Caller:
    return ANONYMOUS
