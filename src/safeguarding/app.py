"""The composition root: ``create_app(settings)`` builds storage, services, security and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.routing import Route

from .api.authentication import bearer as bearer_authenticator
from .api.authentication import client_certificate
from .api.dstu2.endpoints import FgmDstu2, dstu2_dialect, dstu2_routes
from .api.fallback import router_errors
from .api.hardening import SecurityHeaders
from .api.health import metrics_endpoint, ping, status_endpoint
from .api.openapi import openapi_endpoint
from .api.pipeline import r4_dialect
from .api.r4 import cpis as r4_cpis
from .api.r4 import fgm as r4_fgm
from .api.routing import ApiFirst
from .demographics import LocalDemographics
from .domain.clock import Clock, SystemClock
from .domain.patients import Demographics
from .sandbox.docs_page import docs_routes
from .sandbox.scenarios import scenario_demographics
from .security.registry import configured_registry
from .security.tokens import TokenVerifier
from .services.auditing import Auditor
from .services.cpis import CpisService
from .services.fgm import FgmService
from .services.wiring import Services
from .settings import Settings
from .store.event_loop import EventLoopStore
from .store.interface import Store
from .store.sql import SqlStore
from .web.routes import web_routes


def build_services(settings: Settings, clock: Clock | None = None, *, on_event_loop: bool = False) -> Services:
    """The store, the one auditor and the services over them.

    How their units of work run is chosen here, once: ``on_event_loop`` (the server, ``create_app``) gives the
    services the store's event-loop view, whose units are group-committed with other requests'
    (store/event_loop.py); otherwise (the command line, tests) each unit has a transaction of its own."""
    clock = clock or SystemClock()
    store = SqlStore.open(settings.database_url, settings.audit_key.value, spool_dir=settings.layout.audit_spool,
                          checkpoints=settings.audit_checkpoints)
    serving: Store = EventLoopStore(store) if on_event_loop else store
    source: Demographics = LocalDemographics(serving)  # the table, unless PDS is configured ([pds])
    if settings.pds:
        from .pds.client import PdsDemographics  # its HTTP client is loaded only where PDS is used

        source = PdsDemographics(settings.pds)
    demographics = scenario_demographics(source, settings.sandbox)  # sandbox: error simulation
    auditor = Auditor(serving, clock)
    return Services(store=store, serving=serving, fgm=FgmService(serving, demographics, clock, auditor),
                    auditor=auditor, cpis=CpisService(serving, demographics, clock, auditor),
                    demographics=demographics)


def _closing(store: SqlStore) -> Any:
    """The app's lifespan: the store closed at shutdown (the audit spool flushed, a last checkpoint written)."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        await anyio.to_thread.run_sync(store.close)

    return lifespan


def create_app(settings: Settings, clock: Clock | None = None, services: Services | None = None) -> ApiFirst:
    """The service's ASGI app. Each shared object is built here once: the services (with the one auditor), the
    systems registry, the token verifier; each API speaks through one dialect; every route is an adapter's."""
    services = services or build_services(settings, clock, on_event_loop=True)
    registry = configured_registry(settings)  # the file, or on PostgreSQL the database's shared copy
    verifier = TokenVerifier(list(settings.trusted_issuers))  # the APIs' and the web sign-in's
    bearer = bearer_authenticator(verifier)
    dstu2 = FgmDstu2(services.fgm, settings.service_asid, registry)
    published = datetime.now(timezone.utc).date().isoformat()
    fgm_r4 = r4_dialect(r4_fgm.API, r4_fgm.BASE_PATH, settings.error_system, settings.public_base_url)
    cpis_r4 = r4_dialect(r4_cpis.API, r4_cpis.BASE_PATH, settings.error_system, settings.public_base_url,
                         denied=r4_cpis.ACCESS_DENIED)
    routes = [
        Route("/_ping", ping, methods=["GET"]),
        Route("/_status", status_endpoint(services.store), methods=["GET"]),
        Route("/_metrics", metrics_endpoint, methods=["GET"]),
        Route("/_openapi", openapi_endpoint, methods=["GET"]),
        *r4_fgm.fgm_routes(fgm_r4, services.fgm, services.auditor, bearer, published),
        *dstu2_routes(dstu2_dialect(dstu2, settings.public_base_url), dstu2, services.auditor),
        *r4_cpis.cpis_routes(cpis_r4, services.cpis, services.auditor, bearer, client_certificate(registry),
                             published),
        *web_routes(settings, services, clock, verifier),  # the clinician web interface under /web, and / -> /web/
        *docs_routes(settings.sandbox),  # the API explorer at /_docs, sandbox only
    ]
    # Starlette answers what no API endpoint takes (the web interface, 404, 405, HEAD) behind its middleware;
    # ApiFirst, outside it, hands the API's endpoints their requests directly (api/routing.py).
    inner = Starlette(routes=routes, exception_handlers=router_errors(settings, dstu2),
                      lifespan=_closing(services.store))
    inner.add_middleware(SecurityHeaders)
    inner.state.services = services
    return ApiFirst(inner)
