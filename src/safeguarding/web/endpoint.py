"""The request pipeline every web page and action runs through, in a fixed order (the web's
counterpart of ``api/pipeline.py``, sharing its steps: ``api/steps.py``):

1. a request id (``X-Request-ID`` when well formed, else a new one), echoed back;
   a page opened from a link on another site (``Sec-Fetch-Site: cross-site``) arrives without the session
   cookie (SameSite=Strict): it is answered with a page that opens the same address again from this site,
   so the cookie comes with it, and sets no cookie (a new anonymous session would replace the person's);
2. the session from its encrypted cookie (a new anonymous one when there is none or it has expired);
3. for a POST: an url-encoded form of at most 32 KiB, read within the APIs' body time limit, then CSRF
   (the session's token and the origin);
4. pages for signed-in users only: anyone else is sent to sign in;
5. the handler, run inline on the event loop's thread as the APIs' handlers are (``inline.run``: network calls
   go through ``inline.blocking``), which calls the services with a ``RequestContext`` whose caller is the
   signed-in user; the services audit in the same transaction as any change, group-committed with the
   APIs' units of work (``store/writer.py``);
6. the request is audited exactly once: by the services it called, or here if it called none
   (a page view, a refusal, a sign-in);
7. the page: ``Cache-Control: no-store``, a strict Content-Security-Policy, the session cookie
   (Secure, HttpOnly, SameSite=Strict) re-sealed; one log line with ids and status, never patient data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from .. import inline
from ..api.errors import ApiError
from ..api.steps import ReadBodyError, completed, log_unhandled, read_body, well_formed_trace_id
from ..domain.caller import ANONYMOUS, Caller
from ..security.errors import SecurityError
from ..services.context import Outcomes, RequestContext
from ..store.interface import StoreUnavailable
from . import csrf
from .session import OIDC_COOKIE, SESSION_COOKIE, Session, SessionCodec

if TYPE_CHECKING:
    from ..services.auditing import Auditor
    from .signed_out import SignedOut


API = "web"
PREFIX = "/web"
MAX_FORM = 32 * 1024


@dataclass
class Page:
    """What a handler answers: a template to render, or a redirect (always 303: see other)."""

    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    outcome: str = "OK"
    redirect: str | None = None
    oidc_cookie: str | None = None  # a sealed value to set; "" deletes it
    leave_session_cookie: bool = False  # set no session cookie (the browser may hold one it did not send)
    reason: str | None = None  # for the log when refused (fixed vocabulary)


class Visit:
    """One web request as handlers see it."""

    def __init__(self, request_id: str, session: Session, form: dict[str, str], query: dict[str, str],
                 cookies: dict[str, str], expired: bool, path: dict[str, str] | None = None,
                 method: str = "GET") -> None:
        self.request_id = request_id
        self.path = path or {}
        self.method = method
        self.session: Session | None = session
        self.form = form
        self.query = query
        self.cookies = cookies
        self.expired = expired
        self.contexts: list[RequestContext] = []
        self.audit_nhs_number: str | None = None
        self.audit_caller: Caller | None = None  # who the page-level audit names, when not the session's

    @property
    def caller(self) -> Caller:
        user = self.session.user if self.session else None
        return Caller(user=user) if user else ANONYMOUS

    def context(self, interaction: str, *, success: int = 200, failure: int = 200) -> RequestContext:
        """A context for one service call. ``success``/``failure`` are the statuses the browser gets."""

        ctx = RequestContext(api=API, interaction=interaction, request_id=self.request_id, caller=self.caller,
                             outcomes=Outcomes((success, "OK"), unnamed=failure))
        self.contexts.append(ctx)
        return ctx


Handler = Callable[[Visit], Page]


class Renderer:
    """Jinja2 templates (autoescaped) with what every page shows."""

    def __init__(self, env: Environment, common: dict[str, Any], csp: str) -> None:
        self.env = env
        self.common = common
        self.csp = csp

    def html(self, template: str, context: dict[str, Any], session: Session | None, status: int) -> HTMLResponse:
        flash = None
        if session is not None and session.flash:
            flash, session.flash = session.flash, None
        values = {**self.common, "session": session, "user": session.user if session else None,
                  "csrf_token": session.csrf if session else "", "flash": flash, **context}
        body = self.env.get_template(template).render(**values)
        return HTMLResponse(body, status_code=status)


class WebEndpoint:
    def __init__(self, interaction: str, handler: Handler, *, codec: SessionCodec, auditor: Auditor,
                 renderer: Renderer, own_origin: str | None, signed_out: SignedOut, persistent_cookie: bool = False,
                 signed_in: bool = True, reopen: bool = True) -> None:
        self.signed_out = signed_out
        self.persistent_cookie = persistent_cookie
        self.interaction = interaction
        self.handler = handler
        self.codec = codec
        self.auditor = auditor
        self.renderer = renderer
        self.own_origin = own_origin
        self.signed_in = signed_in
        self.reopen = reopen  # a navigation from another site is reopened from this one (step 1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = Request(scope, receive)
        supplied = request.headers.get("x-request-id")
        request_id = supplied if supplied and well_formed_trace_id(supplied) else str(uuid.uuid4())
        session, expired = self.codec.load(request.cookies.get(SESSION_COOKIE))
        unknown = False  # whether the session was signed out could not be checked: refuse (503), keep the cookie
        if session is not None and session.user is not None:
            try:
                if await inline.run(self.signed_out.holds, session.id):
                    session = None  # signed out elsewhere: a copy of the cookie is no session at all
            except Exception:  # noqa: BLE001
                unknown = True
        visit = Visit(request_id, session or Session.new(), {}, dict(request.query_params), dict(request.cookies),
                      expired, {k: str(v) for k, v in request.path_params.items()}, request.method)
        if expired and visit.session is not None:
            visit.session.notice = "You were signed out because you did nothing for a while. Sign in again."
        page = self._failure(StoreUnavailable("signed-out sessions"), visit) if unknown else None
        if page is None and self.reopen and _from_another_site(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            page = Page("continue.html", {"title": "Opening the service", "target": target},
                        outcome="REOPENED_FROM_SITE", leave_session_cookie=True)
        if page is None:
            page = await self._admit(request, visit)
        if page is None:
            try:
                page = await inline.run(self.handler, visit)
            except Exception as exc:  # noqa: BLE001 - the last line of defence
                page = self._failure(exc, visit)
        if not any(ctx.audited for ctx in visit.contexts):
            try:
                await inline.run(self._audit, visit, page)
            except Exception as exc:  # noqa: BLE001
                page = self._failure(exc, visit)
        try:
            response = self._respond(page, visit)
        except Exception as exc:  # noqa: BLE001 - a page that cannot be rendered: say so, plainly
            page = self._failure(exc, visit)
            response = self._respond(page, visit)
        response.headers["X-Request-ID"] = request_id
        await response(scope, receive, send)
        completed(API, self.interaction, response.status_code, page.outcome, request_id, started, page.reason)

    async def _admit(self, request: Request, visit: Visit) -> Page | None:
        """Steps 3 and 4: the form, CSRF, and whether this page needs a signed-in user."""
        session = visit.session
        if session is None:
            raise RuntimeError("a visit starts with a session")
        if request.method == "POST":
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            try:
                body: bytes | None = await read_body(request.receive, request.headers, MAX_FORM)
            except (ApiError, ReadBodyError):  # too large, trickled past the time limit, or gone
                body = None
            if body is None or content_type != "application/x-www-form-urlencoded":
                return refused(400, "BAD_FORM", "The form could not be read.", "bad form")
            try:
                parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50, strict_parsing=False)
            except (UnicodeDecodeError, ValueError):
                return refused(400, "BAD_FORM", "The form could not be read.", "bad form")
            visit.form = {key: values[0] for key, values in parsed.items()}
            origin = self.own_origin or f"{request.url.scheme}://{request.headers.get('host', '')}"
            # Refused with a redirect to the page saying so (post/redirect/get: Back onto it never re-sends).
            if not csrf.origin_ok(request.headers, origin):
                return Page(redirect=f"{PREFIX}/refused/cross-site", outcome="CSRF_FAILED", reason="cross-site request")
            if not csrf.token_ok(session.csrf, visit.form.get(csrf.FIELD)):
                return Page(redirect=f"{PREFIX}/refused/form-expired", outcome="CSRF_FAILED", reason="csrf token")
        if self.signed_in and session.user is None:
            return Page(redirect=f"{PREFIX}/", status=303, outcome="NOT_SIGNED_IN")
        return None

    def _audit(self, visit: Visit, page: Page) -> None:
        ctx = RequestContext(api=API, interaction=self.interaction, request_id=visit.request_id,
                             caller=visit.audit_caller or visit.caller, nhs_number=visit.audit_nhs_number)
        self.auditor.record(ctx, (303 if page.redirect else page.status, page.outcome))

    def _failure(self, exc: Exception, visit: Visit) -> Page:
        if isinstance(exc, StoreUnavailable):
            return refused(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable. Try again shortly.",
                           "store unavailable")
        if isinstance(exc, SecurityError):
            return refused(403, "ACCESS_DENIED", "Your role does not allow this.", exc.reason)
        log_unhandled(exc, visit.request_id)  # type and stack frames only: a message may quote patient data
        return refused(500, "INTERNAL_ERROR", "Something went wrong. Quote this reference if you report it: "
                       f"{visit.request_id}", "unhandled")

    def _respond(self, page: Page, visit: Visit) -> Response:
        session = visit.session
        response: Response
        if page.redirect is not None:
            response = RedirectResponse(page.redirect, status_code=303)
        else:
            response = self.renderer.html(page.template or "error.html", page.context, session, page.status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = self.renderer.csp
        response.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes Chrome send Origin: null
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not page.leave_session_cookie:
            self._session_cookie(response, session)
        if page.oidc_cookie == "":
            response.delete_cookie(OIDC_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
        elif page.oidc_cookie:
            response.set_cookie(OIDC_COOKIE, page.oidc_cookie, max_age=600, path="/", secure=True, httponly=True,
                                samesite="lax")
        return response

    def _session_cookie(self, response: Response, session: Session | None) -> None:
        if session is None:
            response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
            return
        lifetime = self.codec.lifetime - (session.seen - session.created)  # only when the operator asks
        response.set_cookie(SESSION_COOKIE, self.codec.dump(session),
                            max_age=max(lifetime, 0) if self.persistent_cookie else None, path="/",
                            secure=True, httponly=True, samesite="strict")


def _from_another_site(request: Request) -> bool:
    """A page navigation from another site that brought no session cookie (the browser withholds a SameSite=Strict
    cookie then, whether it holds one or not)."""
    return (request.method == "GET" and SESSION_COOKIE not in request.cookies
            and request.headers.get("sec-fetch-site") == "cross-site"
            and request.headers.get("sec-fetch-mode") == "navigate")


def refused(status: int, outcome: str, message: str, reason: str, link: tuple[str, str] | None = None,
            title: str | None = None) -> Page:
    """An error page; ``link`` is (href, text) of where to go next, the start page when None."""
    return Page(template="error.html", context={"title": title or _TITLES.get(status, "There is a problem"),
                                               "message": message, "error_page": True,
                                               "link": {"href": link[0], "text": link[1]} if link else None},
                status=status, outcome=outcome, reason=reason)


_FORM_REFUSALS = {
    "cross-site": "This form was not sent from this service, so it was refused. Nothing was changed.",
    "form-expired": "This form has expired or was not sent from this service, so it was refused. Nothing was "
                    "changed. Go back, reload the page and try again.",
}


def form_refused(visit: Visit) -> Page:
    """Where a form refused by the CSRF check leads (``/web/refused/<kind>``): the 403 page."""
    message = _FORM_REFUSALS.get(visit.path.get("kind", ""))
    if message is None:
        return refused(404, "NOT_FOUND", "There is no such page.", "no such refusal")
    return refused(403, "CSRF_FAILED", message, visit.path["kind"])


_TITLES = {400: "There is a problem", 403: "You cannot do this", 404: "Page not found",
           409: "This could not be done",
           500: "Sorry, there is a problem with the service", 503: "Sorry, the service is unavailable"}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
