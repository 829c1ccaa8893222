"""The answers to requests no endpoint takes: the router's 404 (no such path) and 405 (a path served, with
another method).

Like every other answer they echo the request ids (``X-Request-ID``, or one made here; ``X-Correlation-ID``,
``TraceID``) and carry the hardening headers (the ``SecurityHeaders`` middleware). A 405 names the methods the
path takes in ``Allow``. On the DSTU2 interactions' paths (``/fhir/fgm/query|create|delete``) the 405 is a DSTU2
response message, as every other answer there; elsewhere it is an R4 OperationOutcome in the configured code
system.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from . import errors as e
from .dstu2.endpoints import BASE_PATH as DSTU2_BASE
from .dstu2.endpoints import FgmDstu2
from .dstu2.messages import Interaction
from .pipeline import ApiResponse
from .steps import TRACE_HEADERS, well_formed_trace_id

if TYPE_CHECKING:
    from ..settings import Settings

Handler = Callable[[Request, Exception], Awaitable[Response]]

# The request ids every answer echoes (the pipeline's rule, steps.py); an invalid one is not echoed.
_DSTU2_PATHS = {f"{DSTU2_BASE}/{interaction.value}": interaction for interaction in Interaction}


def request_ids(headers: Headers) -> dict[str, str]:
    """The valid request ids to echo, with an ``X-Request-ID`` made here when the request has none."""
    echoed = {}
    for name, canonical in TRACE_HEADERS.items():
        values = headers.getlist(name)
        if len(values) == 1 and well_formed_trace_id(values[0]):
            echoed[canonical] = values[0]
    echoed.setdefault("X-Request-ID", str(uuid.uuid4()))
    return echoed


def allowed_methods(request: Request) -> str:
    """Every method the request's path is served with (a path may have a route per method)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


def router_errors(settings: Settings, dstu2: FgmDstu2) -> dict[int, Handler]:
    """The exception handlers for the router's 404 and 405 (``dstu2``: the messaging adapter, for its 405)."""

    def r4(error: e.ErrorRow, headers: dict[str, str]) -> Response:
        return Response(orjson.dumps(e.operation_outcome(error, settings.error_system)), status_code=error.status,
                        media_type="application/fhir+json; charset=utf-8", headers=headers)

    async def not_found(request: Request, _: Exception) -> Response:
        return r4(e.NOT_FOUND, request_ids(request.headers))

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        allow = allowed_methods(request)
        if not allow and isinstance(exc, HTTPException):  # a 405 raised by something other than a route
            allow = (exc.headers or {}).get("Allow", "")
        headers = {**request_ids(request.headers), "Allow": allow}
        interaction = _DSTU2_PATHS.get(request.url.path)
        if interaction is not None:
            certificate = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_der")
            answer: ApiResponse = dstu2.refuse_method(interaction, request.headers,
                                                      certificate if isinstance(certificate, bytes) else None)
            return Response(answer.body, status_code=answer.status, media_type=answer.content_type,
                            headers={**headers, **answer.headers})
        return r4(e.METHOD_NOT_ALLOWED, headers)

    return {404: not_found, 405: method_not_allowed}
