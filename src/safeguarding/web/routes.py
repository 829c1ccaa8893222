"""The clinician web interface: pages and actions under ``/web`` (docs/web.md).

Sign in (sandbox: choose a test user; otherwise the organisation's OIDC provider), find a patient by
NHS number, see the demographics banner, the alerts (FGM, CP-IS) and the CP-IS panel, record and
remove an FGM indicator with confirmation. Every action goes through the same services as the APIs,
with the signed-in user as the caller, and is audited as api ``web``. Every page about a patient
names that patient in its URL by an opaque, session-bound reference (``patient_ref``), never the NHS
number, and every form is checked against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..domain.clock import Clock, SystemClock
from ..security.tokens import TokenVerifier
from . import views
from .endpoint import PREFIX, Handler, Renderer, WebEndpoint, form_refused, origin_of
from .indicator_pages import IndicatorPages
from .info_pages import InfoPages
from .patient_pages import PatientPages
from .sign_in_pages import SignInPages

if TYPE_CHECKING:
    from ..services.wiring import Services
    from ..settings import Settings

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ASSETS = HERE / "assets"
TEMPLATES = HERE / "templates"
SERVICE_NAME = "Safeguarding information"


class WebUi(SignInPages, PatientPages, IndicatorPages, InfoPages):
    """Every page handler, in one object sharing the settings, services and session codec."""


class _CachedStatic:
    """Static files (no patient data): cacheable for an hour, whatever the app-wide default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_cached(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"cache-control", b"public, max-age=3600")]
            await send(message)

        await self.app(scope, receive, send_cached)


async def _to_web(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=303)


def web_routes(settings: Settings, services: Services, clock: Clock | None = None,
               verifier: TokenVerifier | None = None) -> list[BaseRoute]:
    """``/web`` (the interface) and ``/`` (a redirect to it), for ``create_app``."""
    ui = WebUi(settings, services, clock or SystemClock(), verifier)
    form_action = "'self'" + (f" {ui.oidc.settings.authorization_origin}" if ui.oidc else "")
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
           f"connect-src 'self'; manifest-src 'self'; form-action {form_action}; frame-ancestors 'none'; "
           "base-uri 'none'")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["nhs_number"] = views.nhs_number
    env.filters["phone"] = views.phone
    env.filters["user_label"] = views.user_label
    renderer = Renderer(env, {"base": PREFIX, "service_name": SERVICE_NAME, "sandbox": settings.sandbox,
                              "styled": (STATIC / "nhsuk" / "nhsuk-frontend.min.css").exists(),
                              "idle_seconds": settings.web.session_idle_minutes * 60}, csp)
    own_origin = origin_of(settings.public_base_url) if settings.public_base_url else None

    def page(path: str, interaction: str, handler: Handler, method: str = "GET", signed_in: bool = True,
             reopen: bool = True) -> Route:
        endpoint = WebEndpoint(interaction, handler, codec=ui.codec, auditor=services.auditor, renderer=renderer,
                               own_origin=own_origin, signed_out=ui.signed_out,
                               persistent_cookie=settings.web.persistent_cookie, signed_in=signed_in, reopen=reopen)
        return Route(path, endpoint, methods=[method])

    patient = "/patient/{ref}"
    routes: list[BaseRoute] = [
        page("/", "home", ui.home, signed_in=False),
        page("/sign-in", "sign-in", ui.sign_in_sandbox, "POST", signed_in=False),
        page("/sign-in/oidc", "sign-in-oidc-start", ui.start_oidc, "POST", signed_in=False),
        # The provider's redirect back is a navigation from another site too; its state is in the (Lax) OIDC
        # cookie, and it answers with a page that continues from this site itself (continue.html).
        page("/oidc/callback", "sign-in-oidc", ui.oidc_callback, signed_in=False, reopen=False),
        page("/role", "sign-in-role", ui.choose_role, "POST", signed_in=False),
        page("/sign-out", "sign-out", ui.sign_out, "POST"),
        page("/signed-out", "signed-out", ui.signed_out_page, signed_in=False),
        page("/accessibility", "accessibility-statement", ui.accessibility, signed_in=False),
        page("/privacy", "privacy", ui.privacy, signed_in=False),
        page("/contact", "contact", ui.contact, signed_in=False),
        page("/refused/{kind}", "form-refused", form_refused, signed_in=False),
        page("/setting", "care-setting", ui.care_setting, "POST"),
        page("/find", "find-patient", ui.find, "POST"),
        page(patient, "patient", ui.patient),
        page(f"{patient}/refused/{{kind}}", "patient-refused", ui.patient_refused),
        page(f"{patient}/indicator/record", "fgm-record-form", ui.record_form),
        page(f"{patient}/indicator/record", "fgm-record-check", ui.record_check, "POST"),
        page(f"{patient}/indicator/record/check", "fgm-record-check-page", ui.record_check_page),
        page(f"{patient}/indicator/record/confirm", "fgm-create", ui.record_confirm, "POST"),
        page(f"{patient}/indicator/remove", "fgm-remove-form", ui.remove_form),
        page(f"{patient}/indicator/remove", "fgm-remove-check", ui.remove_check, "POST"),
        page(f"{patient}/indicator/remove/check", "fgm-remove-check-page", ui.remove_check_page),
        page(f"{patient}/indicator/remove/confirm", "fgm-remove", ui.remove_confirm, "POST"),
        Mount("/static", _CachedStatic(StaticFiles(directory=STATIC, check_dir=False))),
        Mount("/assets", _CachedStatic(StaticFiles(directory=ASSETS))),
    ]
    web = Starlette(routes=routes, exception_handlers={404: _not_found(renderer), 405: _not_found(renderer)})
    return [Mount(PREFIX, app=web), Route("/", _to_web, methods=["GET"])]


def _not_found(renderer: Renderer) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        """A full NHS.UK page (header, footer), without touching the session: no patient data on it."""
        status = getattr(exc, "status_code", 404)
        response: HTMLResponse = renderer.html("error.html", {
            "title": "Page not found", "message": "If you typed the web address, check it is correct. If you "
            "pasted the web address, check you copied the entire address.", "link": None, "error_page": True},
            None, status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = renderer.csp
        return response

    return handler
