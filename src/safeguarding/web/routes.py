"""The clinician web interface: pages and actions under ``/web`` (docs/web.md).

Sign in (sandbox: choose a test user; otherwise the organisation's OIDC provider), find a patient by
NHS number, see the demographics banner, the FGM alert and the CP-IS panel, record and remove an FGM
indicator with confirmation. Every action goes through the same services as the APIs, with the
signed-in user as the caller, and is audited as api ``web``. The selected patient lives in the
encrypted session, never in a URL.
"""

from __future__ import annotations

import secrets
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..demographics import LocalDemographics
from ..domain import errors as d
from ..domain import nhs_number as nhs
from ..domain.caller import Caller, User
from ..domain.clock import Clock, SystemClock, uk_today
from ..domain.fgm import RemovalReason
from ..security.errors import RoleSelectionFailed, SecurityError
from ..security.rbac import Operation, authorise
from ..security.tokens import TokenVerifier, user_from_claims
from . import views
from .config import OidcSettings
from .endpoint import PREFIX, Handler, Page, Renderer, Visit, WebEndpoint, origin_of, refused
from .oidc import OidcClient
from .session import OIDC_COOKIE, Session, SessionCodec, compact_claims

if TYPE_CHECKING:
    from ..services.wiring import Services
    from ..settings import Settings

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ASSETS = HERE / "assets"
TEMPLATES = HERE / "templates"
SERVICE_NAME = "Safeguarding information"


def can(caller: Caller, operation: Operation) -> bool:
    try:
        authorise(caller, operation)
    except SecurityError:
        return False
    return True


class WebUi:
    def __init__(self, settings: Settings, services: Services, clock: Clock) -> None:
        self.settings = settings
        self.services = services
        self.clock = clock
        self.demographics = LocalDemographics(services.store)
        self.verifier = TokenVerifier(list(settings.trusted_issuers))
        oidc: OidcSettings | None = settings.web.oidc
        self.oidc = OidcClient(oidc, settings.base_url) if oidc else None
        self.codec = SessionCodec(settings.audit_key.value, idle=settings.web.session_idle_minutes * 60,
                                  lifetime=settings.web.session_hours * 3600)
        self.sandbox_users: list[dict[str, Any]] = []
        if settings.sandbox:
            from ..sandbox.setup import USERS

            self.sandbox_users = [u for u in USERS if u.get("user_id")]

    # --- helpers -------------------------------------------------------------------------------------

    def today(self) -> date:
        return uk_today(self.clock)

    @property
    def cpis(self) -> Any:
        """The CP-IS service, when this build has one (the panel is left out otherwise)."""
        return getattr(self.services, "cpis", None)

    @staticmethod
    def _session(visit: Visit) -> Session:
        if visit.session is None:
            raise RuntimeError("the session was ended earlier in this request")
        return visit.session

    def _patient_number(self, visit: Visit) -> str | None:
        number = self._session(visit).nhs_number
        visit.audit_nhs_number = number
        return number

    # --- sign in and out -----------------------------------------------------------------------------

    def home(self, visit: Visit) -> Page:
        session = self._session(visit)
        if session.user is None:
            if session.claims:
                return self._choose_role_page(session)
            return self._sign_in_page(session)
        return Page("find.html", {"title": "Find a patient", "care_setting": _setting(session)})

    def _sign_in_page(self, session: Session, status: int = 200, error: str | None = None,
                      outcome: str = "OK") -> Page:
        notice, session.notice = session.notice, None
        return Page("sign_in.html", {
            "title": "Sign in", "users": self.sandbox_users, "oidc": self.oidc is not None, "notice": notice,
            "error": error}, status=status, outcome=outcome)

    def sign_in_sandbox(self, visit: Visit) -> Page:
        session = self._session(visit)
        if not self.settings.sandbox:
            return refused(404, "NOT_FOUND", "There is no such page.", "not sandbox")
        chosen = next((u for u in self.sandbox_users if u["user_id"] == visit.form.get("user")), None)
        setting = visit.form.get("care_setting")
        if chosen is None or setting not in ("unscheduled", "scheduled"):
            return self._sign_in_page(session, 400, "Choose a test user and a care setting.", "INVALID_FORM")
        from ..security.dev_tokens import issue_dev_token
        from ..settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER

        token = issue_dev_token(self.settings.layout.signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE,
                                user_id=chosen["user_id"], role_profile_id=chosen["role_profile_id"],
                                org_code=chosen["org"], activities=list(chosen["activities"]),
                                role_code=chosen.get("role_code", "R8000"), name=chosen.get("name"),
                                org_name=chosen.get("org_name"), expires_in=300)
        user = self.verifier.verify(token)  # the same verification and role derivation as the API
        return self._signed_in(visit, user, setting == "unscheduled")

    def _signed_in(self, visit: Visit, user: User, unscheduled: bool | None = None) -> Page:
        fresh = self._session(visit).renewed()  # a new session id and CSRF secret at every sign-in
        fresh.user = user
        if unscheduled is not None:
            fresh.unscheduled = unscheduled
        fresh.flash = f"Signed in as {user.name or user.user_id}."
        visit.session = fresh
        return Page(redirect=f"{PREFIX}/")

    def sign_out(self, visit: Visit) -> Page:
        visit.audit_caller = visit.caller
        visit.session = None
        return Page(redirect=f"{PREFIX}/")

    def start_oidc(self, visit: Visit) -> Page:
        if self.oidc is None:
            return refused(404, "NOT_FOUND", "Sign-in with an identity provider is not configured.", "no oidc")
        started = self.oidc.start()
        sealed = self.codec.seal(OIDC_COOKIE, {"state": started.state, "nonce": started.nonce,
                                               "verifier": started.verifier, "exp": int(time.time()) + 600})
        return Page(redirect=started.url, oidc_cookie=sealed)

    def oidc_callback(self, visit: Visit) -> Page:
        session = self._session(visit)
        if self.oidc is None:
            return refused(404, "NOT_FOUND", "Sign-in with an identity provider is not configured.", "no oidc")
        pending = self.codec.open(OIDC_COOKIE, visit.cookies.get(OIDC_COOKIE))
        failed = self._sign_in_page(session, 401, "Sign-in did not complete. Try again.", "SIGN_IN_FAILED")
        failed.oidc_cookie = ""
        state, code = visit.query.get("state"), visit.query.get("code")
        if pending is None or int(pending.get("exp", 0)) < time.time():
            failed.reason = "no or expired sign-in state"
            return failed
        if not state or not secrets.compare_digest(str(pending.get("state")), state):
            failed.reason = "state mismatch"
            return failed
        if visit.query.get("error") or not code:
            failed.reason = "provider refused"
            return failed
        try:
            claims = compact_claims(self.oidc.finish(code, str(pending["nonce"]), str(pending["verifier"])))
        except SecurityError as exc:
            failed.reason = exc.reason
            return failed
        try:
            user = user_from_claims(claims, None)
        except RoleSelectionFailed:
            fresh = session.renewed()  # several roles and none selected: the person chooses one next
            fresh.claims = claims
            visit.session = fresh
            return Page("continue.html", {"title": "Signing in"}, oidc_cookie="")
        except SecurityError as exc:
            failed.reason = exc.reason
            return failed
        self._signed_in(visit, user)
        return Page("continue.html", {"title": "Signing in"}, oidc_cookie="")

    def _choose_role_page(self, session: Session, status: int = 200, error: str | None = None,
                          outcome: str = "OK") -> Page:
        claims = session.claims or {}
        orgs = {o.get("org_code"): o.get("org_name") for o in claims.get("nhsid_user_orgs", [])}
        roles = [{"id": r.get("person_roleid"), "name": views.role_name(r.get("role_name")),
                  "org": orgs.get(r.get("org_code")) or r.get("org_code"), "org_code": r.get("org_code"),
                  "activities": ", ".join(r.get("activity_codes") or []) or "none"}
                 for r in claims.get("nhsid_nrbac_roles", [])]
        return Page("choose_role.html", {"title": "Choose your role", "roles": roles, "error": error,
                                         "name": claims.get("name")}, status=status, outcome=outcome)

    def choose_role(self, visit: Visit) -> Page:
        session = self._session(visit)
        if not session.claims:
            return Page(redirect=f"{PREFIX}/")
        setting = visit.form.get("care_setting")
        try:
            if setting not in ("unscheduled", "scheduled"):
                raise RoleSelectionFailed("no care setting")
            user = user_from_claims(session.claims, visit.form.get("role") or "")
        except SecurityError:
            return self._choose_role_page(session, 400, "Choose a role and a care setting.", "INVALID_FORM")
        return self._signed_in(visit, user, setting == "unscheduled")

    def care_setting(self, visit: Visit) -> Page:
        session = self._session(visit)
        setting = visit.form.get("care_setting")
        if setting not in ("unscheduled", "scheduled"):
            return Page("find.html", {"title": "Find a patient", "care_setting": _setting(session),
                                      "setting_error": "Choose a care setting."}, status=400,
                        outcome="INVALID_FORM")
        session.unscheduled = setting == "unscheduled"
        session.flash = f"Care setting changed to {_setting(session)['label'].lower()}."
        return Page(redirect=f"{PREFIX}/")

    # --- find a patient ------------------------------------------------------------------------------

    def find(self, visit: Visit) -> Page:
        session = self._session(visit)
        typed = visit.form.get("nhs_number", "")
        number = nhs.normalise(typed.strip())
        error = None
        if not number:
            error = "Enter the patient's NHS number"
        elif not number.isascii() or not number.isdigit() or len(number) != 10:
            error = "NHS number must be 10 digits"
        elif not nhs.is_valid(number):
            error = "Enter a valid NHS number: this one's check digit is wrong"
        if error is None:
            visit.audit_nhs_number = number
            if self.demographics.lookup(number) is None:
                error = "No patient with this NHS number was found"
        if error is not None:
            return Page("find.html", {"title": "Find a patient", "care_setting": _setting(session),
                                      "nhs_error": error, "typed": typed[:40]},
                        status=404 if visit.audit_nhs_number else 400,
                        outcome="PATIENT_NOT_FOUND" if visit.audit_nhs_number else "INVALID_NHS_NUMBER")
        session.nhs_number, session.indicator_id, session.pending = number, None, None
        return Page(redirect=f"{PREFIX}/patient")

    # --- the patient page ----------------------------------------------------------------------------

    def patient(self, visit: Visit) -> Page:
        session = self._session(visit)
        number = self._patient_number(visit)
        if number is None:
            return Page(redirect=f"{PREFIX}/")
        caller = visit.caller
        found = self.demographics.lookup(number)
        context: dict[str, Any] = {"title": "Patient", "banner": views.banner(number, found, self.today()),
                                   "care_setting": _setting(session)}
        fgm: dict[str, Any] = {"allowed": can(caller, Operation.FGM_SEARCH), "indicator": None, "error": None,
                               "can_record": False, "can_remove": False}
        session.indicator_id = None
        if fgm["allowed"]:
            try:
                indicator = self.services.fgm.search(visit.context("fgm-search"), number)
            except d.DomainError as error:
                fgm["error"] = views.rule_message(error)
            else:
                if indicator is not None:
                    fgm["indicator"] = views.indicator(indicator)
                    session.indicator_id = indicator.id
                    fgm["can_remove"] = can(caller, Operation.FGM_REMOVE)
                else:
                    fgm["can_record"] = can(caller, Operation.FGM_CREATE)
        context["fgm"] = fgm
        context["cpis"] = self._cpis_panel(visit, number, session)
        if fgm["indicator"]:
            context["title"] = "Patient - FGM alert"
        return Page("patient.html", context)

    def _cpis_panel(self, visit: Visit, number: str, session: Session) -> dict[str, Any]:
        service = self.cpis
        panel: dict[str, Any] = {"available": service is not None, "allowed": False, "plans": [], "history": [],
                                 "error": None}
        if service is None:
            return panel
        panel["allowed"] = can(visit.caller, Operation.CPIS_CARETEAM_SEARCH)
        if not panel["allowed"]:
            return panel
        try:
            plans = service.care_teams(visit.context("cpis-careteam-search"), number, session.unscheduled)
            history = service.access_history(visit.context("cpis-auditevent-search"), number)
        except d.DomainError as error:
            panel["error"] = views.rule_message(error)
            return panel
        panel["plans"] = [views.plan(p) for p in plans]
        panel["history"] = [views.access(a) for a in history]
        return panel

    # --- record an indicator -------------------------------------------------------------------------

    def _acting(self, visit: Visit, operation: Operation) -> str | Page:
        """The selected patient, if the user may perform ``operation``; otherwise the page to show."""
        number = self._patient_number(visit)
        if number is None:
            return Page(redirect=f"{PREFIX}/")
        if not can(visit.caller, operation):
            return refused(403, "ACCESS_DENIED", "Your role does not allow you to record or remove FGM "
                           "indicators (this needs activity B0380).", "role lacks B0380")
        return number

    def record_form(self, visit: Visit) -> Page:
        number = self._acting(visit, Operation.FGM_CREATE)
        if isinstance(number, Page):
            return number
        return self._record_page(number)

    def _record_page(self, number: str, fields: dict[str, str] | None = None, error: str | None = None,
                     status: int = 200, outcome: str = "OK") -> Page:
        return Page("record.html", {"title": "Record an FGM indicator", "nhs_number": views.nhs_number(number),
                                    "fields": fields or {}, "error": error}, status=status, outcome=outcome)

    def record_check(self, visit: Visit) -> Page:
        number = self._acting(visit, Operation.FGM_CREATE)
        if isinstance(number, Page):
            return number
        fields = {k: visit.form.get(k, "").strip()[:4] for k in ("day", "month", "year")}
        assessed = _date(fields)
        if assessed is None:
            return self._record_page(number, fields, "Enter a real assessment date, for example 15 3 2026", 400,
                                     "INVALID_DATE")
        if assessed > self.today():
            return self._record_page(number, fields, "The assessment date must be today or in the past", 400,
                                     "INVALID_DATE")
        self._session(visit).pending = {"action": "record", "nhs_number": number, "date": assessed.isoformat()}
        return Page("confirm_record.html", {"title": "Check before recording", "nhs_number": views.nhs_number(number),
                                            "assessed": views.long_date(assessed)})

    def _take_pending(self, visit: Visit, action: str, number: str) -> dict[str, str] | Page:
        """The action the user was asked to confirm, used up now; a page back if it is not this one."""
        session = self._session(visit)
        pending, session.pending = session.pending, None
        if not pending or pending.get("action") != action or pending.get("nhs_number") != number:
            session.flash = "There was nothing to confirm."
            return Page(redirect=f"{PREFIX}/patient", outcome="NOTHING_TO_CONFIRM")
        return pending

    def record_confirm(self, visit: Visit) -> Page:
        number = self._acting(visit, Operation.FGM_CREATE)
        if isinstance(number, Page):
            return number
        pending = self._take_pending(visit, "record", number)
        if isinstance(pending, Page):
            return pending
        try:
            self.services.fgm.create(visit.context("fgm-create", success=303, failure=400), number,
                                     date.fromisoformat(pending["date"]))
        except d.DomainError as error:
            return self._record_page(number, None, views.rule_message(error), 400, error.code)
        self._session(visit).flash = "FGM indicator recorded."
        return Page(redirect=f"{PREFIX}/patient")

    # --- remove an indicator -------------------------------------------------------------------------

    def remove_form(self, visit: Visit) -> Page:
        number = self._acting(visit, Operation.FGM_REMOVE)
        if isinstance(number, Page):
            return number
        if self._session(visit).indicator_id is None:
            return Page(redirect=f"{PREFIX}/patient")
        return self._remove_page(number)

    def _remove_page(self, number: str, error: str | None = None, status: int = 200, outcome: str = "OK") -> Page:
        reasons = [{"code": r.value, "text": t} for r, t in views.REMOVAL_REASONS.items()]
        return Page("remove.html", {"title": "Remove the FGM indicator", "nhs_number": views.nhs_number(number),
                                    "reasons": reasons, "error": error}, status=status, outcome=outcome)

    def remove_check(self, visit: Visit) -> Page:
        number = self._acting(visit, Operation.FGM_REMOVE)
        if isinstance(number, Page):
            return number
        session = self._session(visit)
        if session.indicator_id is None:
            return Page(redirect=f"{PREFIX}/patient")
        reason = next((r for r in views.REMOVAL_REASONS if r.value == visit.form.get("reason")), None)
        if reason is None:
            return self._remove_page(number, "Choose why the indicator is being removed", 400, "INVALID_REASON")
        session.pending = {"action": "remove", "nhs_number": number, "indicator_id": session.indicator_id,
                           "reason": reason.value}
        return Page("confirm_remove.html", {"title": "Check before removing", "nhs_number": views.nhs_number(number),
                                            "reason": views.REMOVAL_REASONS[reason]})

    def remove_confirm(self, visit: Visit) -> Page:
        number = self._acting(visit, Operation.FGM_REMOVE)
        if isinstance(number, Page):
            return number
        pending = self._take_pending(visit, "remove", number)
        if isinstance(pending, Page):
            return pending
        reason = RemovalReason(pending["reason"])
        try:
            self.services.fgm.remove(visit.context("fgm-remove", success=303, failure=400), pending["indicator_id"],
                                     reason.status, reason)
        except d.DomainError as error:
            return self._remove_page(number, views.rule_message(error), 400, error.code)
        session = self._session(visit)
        session.flash = "FGM indicator removed."
        session.indicator_id = None
        return Page(redirect=f"{PREFIX}/patient")


def _setting(session: Session) -> dict[str, Any]:
    if session.unscheduled:
        return {"value": "unscheduled", "label": "Unscheduled care",
                "hint": "Viewing a child protection plan is recorded in the child's access history and the "
                        "local authority is told."}
    return {"value": "scheduled", "label": "Scheduled care",
            "hint": "Viewing a child protection plan is not recorded in the access history (a silent read)."}


def _date(fields: dict[str, str]) -> date | None:
    try:
        day, month, year = (int(fields[k]) for k in ("day", "month", "year"))
        if year < 1900:
            return None
        return date(year, month, day)
    except (ValueError, KeyError):
        return None


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


async def _not_found(request: Request, exc: Exception) -> Response:
    return HTMLResponse("<!DOCTYPE html><html lang=\"en\"><head><title>Page not found</title></head><body>"
                        "<h1>Page not found</h1><p><a href=\"/web/\">Go to the start page</a></p></body></html>",
                        status_code=getattr(exc, "status_code", 404), headers={"Cache-Control": "no-store"})


async def _to_web(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=303)


def web_routes(settings: Settings, services: Services, clock: Clock | None = None) -> list[BaseRoute]:
    """``/web`` (the interface) and ``/`` (a redirect to it), for ``create_app``."""
    ui = WebUi(settings, services, clock or SystemClock())
    form_action = "'self'" + (f" {ui.oidc.settings.authorization_origin}" if ui.oidc else "")
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
           f"connect-src 'self'; manifest-src 'self'; form-action {form_action}; frame-ancestors 'none'; "
           "base-uri 'none'")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["nhs_number"] = views.nhs_number
    env.filters["phone"] = views.phone
    renderer = Renderer(env, {"base": PREFIX, "service_name": SERVICE_NAME, "sandbox": settings.sandbox,
                              "styled": (STATIC / "nhsuk" / "nhsuk-frontend.min.css").exists()}, csp)
    own_origin = origin_of(settings.public_base_url) if settings.public_base_url else None

    def page(path: str, interaction: str, handler: Handler, method: str = "GET", signed_in: bool = True) -> Route:
        endpoint = WebEndpoint(interaction, handler, codec=ui.codec, auditor=services.auditor, renderer=renderer,
                               own_origin=own_origin, signed_in=signed_in)
        return Route(path, endpoint, methods=[method])

    routes: list[BaseRoute] = [
        page("/", "home", ui.home, signed_in=False),
        page("/sign-in", "sign-in", ui.sign_in_sandbox, "POST", signed_in=False),
        page("/sign-in/oidc", "sign-in-oidc-start", ui.start_oidc, "POST", signed_in=False),
        page("/oidc/callback", "sign-in-oidc", ui.oidc_callback, signed_in=False),
        page("/role", "sign-in-role", ui.choose_role, "POST", signed_in=False),
        page("/sign-out", "sign-out", ui.sign_out, "POST"),
        page("/setting", "care-setting", ui.care_setting, "POST"),
        page("/find", "find-patient", ui.find, "POST"),
        page("/patient", "patient", ui.patient),
        page("/indicator/record", "fgm-record-form", ui.record_form),
        page("/indicator/record", "fgm-record-check", ui.record_check, "POST"),
        page("/indicator/record/confirm", "fgm-create", ui.record_confirm, "POST"),
        page("/indicator/remove", "fgm-remove-form", ui.remove_form),
        page("/indicator/remove", "fgm-remove-check", ui.remove_check, "POST"),
        page("/indicator/remove/confirm", "fgm-remove", ui.remove_confirm, "POST"),
        Mount("/static", _CachedStatic(StaticFiles(directory=STATIC, check_dir=False))),
        Mount("/assets", _CachedStatic(StaticFiles(directory=ASSETS))),
    ]
    web = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    return [Mount(PREFIX, app=web), Route("/", _to_web, methods=["GET"])]
