"""The composition root: ``create_app(settings)`` builds storage, services, security and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.routing import Route

from .api.authentication import bearer as bearer_authenticator
from .api.dstu2.endpoints import dstu2_routes
from .api.fallback import router_errors
from .api.hardening import SecurityHeaders
from .api.health import metrics_endpoint, ping, status_endpoint
from .api.openapi import openapi_endpoint
from .api.pipeline import ApiRequest, ApiResponse, Endpoint
from .api.r4 import fgm as r4_fgm
from .api.r4.capability import fgm_capability_statement
from .api.r4.cpis import cpis_routes
from .api.routing import SafeguardingApp
from .demographics import LocalDemographics
from .domain.clock import Clock, SystemClock
from .domain.patients import Demographics
from .pds.client import PdsDemographics
from .sandbox.docs_page import docs_routes
from .sandbox.scenarios import scenario_demographics
from .security.rbac import Operation, authorise
from .security.tokens import TokenVerifier
from .services.auditing import Auditor
from .services.context import RequestContext
from .services.cpis import CpisService
from .services.fgm import FgmService
from .settings import Settings
from .store.sql import SqlStore
from .web.routes import web_routes

FGM_R4 = "/fgm/FHIR/R4"

@dataclass
class Services:
    store: SqlStore
    fgm: FgmService
    auditor: Auditor
    cpis: CpisService
    demographics: Demographics | None = None  # the configured source ([pds] or the local table)


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    store = SqlStore.open(settings.database_url, settings.audit_key.value, spool_dir=settings.layout.audit_spool,
                          checkpoints=settings.audit_checkpoints)
    source = PdsDemographics(settings.pds) if settings.pds else LocalDemographics(store)  # [pds], else the table
    demographics = scenario_demographics(source, settings.sandbox)  # sandbox: error simulation
    return Services(store=store, fgm=FgmService(store, demographics, clock), auditor=Auditor(store, clock),
                    cpis=CpisService(store, demographics, clock), demographics=demographics)


def _closing(store: SqlStore) -> Any:
    """The app's lifespan: the store closed at shutdown (the audit spool flushed, a last checkpoint written)."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        await anyio.to_thread.run_sync(store.close)

    return lifespan


def create_app(settings: Settings, clock: Clock | None = None, services: Services | None = None) -> Starlette:
    services = services or build_services(settings, clock)
    verifier = TokenVerifier(list(settings.trusted_issuers))
    published = datetime.now(timezone.utc).date().isoformat()

    bearer = bearer_authenticator(verifier)

    def fgm_endpoint(interaction: str, handler, operation: Operation, errors, success: int = 200) -> Endpoint:  # type: ignore[no-untyped-def]
        return Endpoint(
            api="fgm-r4",
            interaction=interaction,
            handler=handler,
            auditor=services.auditor,
            authenticate=bearer,
            authorise=lambda caller: authorise(caller, operation),
            errors=errors,
            success_status=success,
            error_system=settings.error_system,
            public_base_url=settings.public_base_url,
            base_path=FGM_R4,
        )

    def metadata(request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        return ApiResponse(200, fgm_capability_statement(request.base_url, published))

    fgm = r4_fgm.FgmR4(services.fgm)
    routes = [
        Route("/_ping", ping, methods=["GET"]),
        Route("/_status", status_endpoint(services.store), methods=["GET"]),
        Route("/_metrics", metrics_endpoint, methods=["GET"]),
        Route("/_openapi", openapi_endpoint, methods=["GET"]),
        Route(f"{FGM_R4}/metadata", Endpoint(api="fgm-r4", interaction="metadata", handler=metadata,
                                             auditor=services.auditor, authenticate=None, base_path=FGM_R4,
                                             public_base_url=settings.public_base_url), methods=["GET"]),
        Route(f"{FGM_R4}/Flag", fgm_endpoint("search", fgm.search, Operation.FGM_SEARCH, r4_fgm.SEARCH_ERRORS),
              methods=["GET"]),
        Route(f"{FGM_R4}/Flag", fgm_endpoint("create", fgm.create, Operation.FGM_CREATE, r4_fgm.CREATE_ERRORS, 201),
              methods=["POST"]),
        Route(f"{FGM_R4}/Flag/{{id}}", fgm_endpoint("read", fgm.read, Operation.FGM_READ, r4_fgm.READ_ERRORS),
              methods=["GET"]),
        Route(f"{FGM_R4}/Flag/{{id}}", fgm_endpoint("remove", fgm.remove, Operation.FGM_REMOVE, r4_fgm.REMOVE_ERRORS),
              methods=["PUT"]),
        Route(f"{FGM_R4}/Flag/{{id}}/_history/{{vid}}",
              fgm_endpoint("vread", fgm.vread, Operation.FGM_READ, r4_fgm.READ_ERRORS), methods=["GET"]),
        *dstu2_routes(settings, services),
        # CP-IS FHIR R4 (api/r4/cpis.py): clinicians by bearer token, local authorities by client certificate.
        *cpis_routes(settings, services, bearer),
        *web_routes(settings, services, clock),  # the clinician web interface under /web, and / -> /web/
        *docs_routes(settings.sandbox),  # the API explorer at /_docs, sandbox only
    ]
    app = SafeguardingApp(routes=routes, exception_handlers=router_errors(settings, services),
                          lifespan=_closing(services.store))
    app.add_middleware(SecurityHeaders)
    app.state.services = services
    return app
