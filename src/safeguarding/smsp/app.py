"""The SMSP's composition root and server."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio.to_thread
import uvicorn
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.routing import Route

from .. import logs
from ..api import errors as e
from ..api.hardening import SecurityHeaders
from ..api.health import metrics_endpoint, ping, status_endpoint
from ..api.pipeline import ApiRequest, ApiResponse, Dialect, Endpoint, bearer_token
from ..domain.caller import Caller
from ..domain.clock import SystemClock
from ..protocol import uvicorn_config
from ..security.errors import AuthenticationFailed
from ..security.registry import RegistryFile
from ..security.tokens import TokenVerifier
from ..server import settled
from ..services.auditing import Auditor
from ..services.context import RequestContext
from ..store.event_loop import EventLoopStore
from ..store.sql import SqlStore, make_engine, upgrade_schema
from .breaker import CircuitBreaker
from .configuration import audit_configuration, audit_configuration_later
from .national import NationalClient
from .query import LocalStore, SmspQuery, SmspRefusal, respond
from .settings import SmspSettings
from .throttle import Throttle
from .throughput import Throughput

# Errors raised by the shared pipeline, found by the row they were raised from, as the SMSP's events
# (vocabulary.py); any other is the SMSP's own software failure.
_PIPELINE_EVENTS: tuple[tuple[e.ErrorRow, str], ...] = (
    (e.PRECONDITION_FAILED, "input_invalid"),
    (e.NOT_WELL_FORMED, "input_invalid"),
    (e.TOO_LARGE, "input_invalid"),
    (e.ACCESS_DENIED, "client_not_registered"),
)


@dataclass
class _Wrapped(e.ApiError):
    refusal: SmspRefusal | None = None


class SmspEndpoint:
    def __init__(self, settings: SmspSettings, query: SmspQuery, throughput: Throughput,
                 configuration_auditor: Auditor) -> None:
        self.settings, self.query, self.throughput = settings, query, throughput
        # clients.json is re-read when it changes; each change is audited (SMSP-AUDIT-008), from a thread of its own.
        self.registry = RegistryFile(settings.clients_file, on_reload=lambda: audit_configuration_later(
            configuration_auditor, settings.sources))
        self.verifier = TokenVerifier(list(settings.trusted_issuers))

    def authenticate(self, request: ApiRequest) -> Caller:
        """A local client: a registered client certificate, or else a bearer token from a trusted local issuer."""
        if request.client_cert is not None:
            system = self.registry.current().system_for_certificate(request.client_cert)
            if system is not None:
                return Caller(system=system)
        if request.headers.get("authorization"):
            return Caller(user=self.verifier.verify(bearer_token(request.headers)))
        raise AuthenticationFailed("no registered client certificate or token")

    def handle(self, request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        self.throughput.count()
        try:
            return self.query.handle(request, ctx)
        except SmspRefusal as refusal:
            raise _Wrapped(refusal.code.http_status, refusal.code.code, refusal.diagnostics,
                           refusal=refusal) from None

    def render_error(self, error: e.ApiError, request: ApiRequest | None, ctx: RequestContext) -> ApiResponse:
        if isinstance(error, _Wrapped) and error.refusal is not None:
            refusal = error.refusal
            extra = {"Retry-After": str(math.ceil(refusal.retry_after))} if refusal.retry_after else None
            return respond(request, refusal.header, self.settings.smsp_asid, outcome=refusal.code,
                           diagnostics=refusal.diagnostics, extra_headers=extra)
        event = next((event for row, event in _PIPELINE_EVENTS if error.row is row), "software_failure")
        if error.status == 401 or event == "client_not_registered":
            return respond(request, None, self.settings.smsp_asid,
                           outcome=self.settings.responses["client_not_registered"],
                           diagnostics="The client is not a registered local system or user")
        code = self.settings.responses[event]
        return respond(request, None, self.settings.smsp_asid, outcome=code, diagnostics=error.diagnostics)


_collectors: list[Throughput] = []


def _registered(throughput: Throughput) -> Throughput:
    """The process's one throughput collector in the Prometheus registry (an app made again replaces it)."""
    while _collectors:
        REGISTRY.unregister(_collectors.pop())
    REGISTRY.register(throughput)
    _collectors.append(throughput)
    return throughput


def create_smsp_app(settings: SmspSettings) -> Starlette:
    engine = make_engine(settings.database_url)
    try:
        upgrade_schema(engine)  # the SMSP's own audit trail
    finally:
        engine.dispose()
    # As the service's: audit events spooled while the database is down, the chain head checkpointed outside it.
    store = SqlStore.open(settings.database_url, settings.audit_key.value, spool_dir=settings.data_dir / "audit-spool",
                          checkpoints=settings.data_dir / "audit-checkpoints.log")
    # The requests' events are group-committed (their units run on the event loop); the configuration's are
    # recorded at start-up and from a thread, each in a transaction of its own (store/event_loop.py).
    auditor = Auditor(EventLoopStore(store), SystemClock())
    configuration_auditor = Auditor(store, SystemClock())
    audit_configuration(configuration_auditor, settings.sources)  # SMSP-AUDIT-008
    national = NationalClient(settings.national_url, str(settings.national_ca), str(settings.national_cert),
                              str(settings.national_key), settings.timeout_seconds)
    query = SmspQuery(
        smsp_asid=settings.smsp_asid, national_asid=settings.national_asid, national=national,
        breaker=CircuitBreaker(settings.breaker_threshold, settings.breaker_reset_seconds),
        throttle=Throttle(settings.throttle_per_second, settings.throttle_burst),
        users=settings.users,
        local_store=LocalStore(settings.local_store_hours) if settings.local_store_fallback else None,
        responses=settings.responses,
    )
    throughput = _registered(Throughput())  # /_metrics: daily and peak-hour throughput (SMSP-PERF-002)
    adapter = SmspEndpoint(settings, query, throughput, configuration_auditor)
    # Authentication failures reach render_error as the pipeline's 401, answered ASID_CHECK_FAILED.
    dialect = Dialect("smsp-dstu2", "/fhir/fgm", adapter.render_error, negotiate=False)
    endpoint = Endpoint(dialect, "query", adapter.handle, auditor, adapter.authenticate)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await national.close()
            await anyio.to_thread.run_sync(store.close)  # the spool flushed, a last checkpoint written

    app = Starlette(lifespan=lifespan, routes=[
        Route("/_ping", ping, methods=["GET"]),
        Route("/_status", status_endpoint(store), methods=["GET"]),
        Route("/_metrics", metrics_endpoint, methods=["GET"]),
        Route("/fhir/fgm/query", endpoint, methods=["POST"]),
    ])
    app.add_middleware(SecurityHeaders)
    return app


def serve_smsp(settings: SmspSettings) -> None:
    logs.configure(settings.log_level)
    config = uvicorn_config(settings, settled(create_smsp_app(settings)))
    uvicorn.Server(config).run()
