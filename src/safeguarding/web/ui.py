"""What every group of web pages shares: settings, services, the session codec, and the patient a
page is about (from its opaque reference, checked against the form)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from ..demographics import LocalDemographics
from ..domain.caller import Caller
from ..domain.clock import Clock, uk_today
from ..security.errors import SecurityError
from ..security.rbac import Operation, authorise
from ..security.tokens import TokenVerifier
from . import patient_ref, views
from .config import OidcSettings
from .endpoint import PREFIX, Page, Visit, refused
from .oidc import OidcClient
from .session import Session, SessionCodec
from .signed_out import SignedOut

if TYPE_CHECKING:
    from ..services.wiring import Services
    from ..settings import Settings


def can(caller: Caller, operation: Operation) -> bool:
    try:
        authorise(caller, operation)
    except SecurityError:
        return False
    return True


class UiBase:
    def __init__(self, settings: Settings, services: Services, clock: Clock,
                 verifier: TokenVerifier | None = None) -> None:
        self.settings = settings
        self.services = services
        self.clock = clock
        # The configured source ([pds] or the local table), as the APIs read it.
        serving = getattr(services, "serving", None) or services.store  # as the services use it (event-loop or not)
        self.demographics = getattr(services, "demographics", None) or LocalDemographics(serving)
        # The composition root's verifier (one per app: its issuers' key sets are fetched and cached once).
        self.verifier = verifier or TokenVerifier(list(settings.trusted_issuers))
        oidc: OidcSettings | None = settings.web.oidc
        self.oidc = OidcClient(oidc, settings.base_url) if oidc else None
        self.codec = SessionCodec(settings.audit_key.value, idle=settings.web.session_idle_minutes * 60,
                                  lifetime=settings.web.session_hours * 3600)
        self.signed_out = SignedOut(serving)
        self.sandbox_users: list[dict[str, Any]] = []
        if settings.sandbox:
            from ..sandbox.setup import USERS

            self.sandbox_users = [u for u in USERS if u.get("user_id")]

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

    # --- the patient a page is about -----------------------------------------------------------------

    def patient_url(self, visit: Visit, number: str, tail: str = "") -> str:
        """A fresh reference to ``number`` for links and redirects from this session."""
        return f"{PREFIX}/patient/{patient_ref.seal(self.codec, self._session(visit), number)}{tail}"

    def _patient(self, visit: Visit, operation: Operation | None = None) -> str | Page:
        """The NHS number the URL's reference names, if the user may perform ``operation`` on it. For a
        POST, the form must name the same patient: a form from one patient's page is never applied to
        another's."""
        session = self._session(visit)
        ref = visit.path.get("ref")
        number = patient_ref.open_ref(self.codec, session, ref)
        if number is None:
            return refused(404, "UNKNOWN_PATIENT_REFERENCE", "This link to a patient is not valid now: links to a "
                           "patient last until you sign out. Find the patient again.", "patient reference",
                           link=(f"{PREFIX}/", "Find a patient"))
        visit.audit_nhs_number = number
        if operation is not None and not can(visit.caller, operation):
            return refused(403, "ACCESS_DENIED", "Your role does not allow you to record or remove FGM "
                           "indicators (this needs the activity 'Record and remove FGM indicators', B0380).",
                           "role lacks B0380")
        if visit.method == "POST":
            sent = visit.form.get(patient_ref.FIELD)
            if sent != ref and patient_ref.open_ref(self.codec, session, sent) != number:
                return Page(redirect=self.patient_url(visit, number, "/refused/other-patient"),
                            outcome="PATIENT_MISMATCH", reason="patient mismatch")
        return number

    def patient_refused(self, visit: Visit) -> Page:
        """Where a refused form about a patient leads (``/web/patient/<ref>/refused/<kind>``, after a
        redirect: post/redirect/get): the 409 page naming the child the form was for."""
        number = self._patient(visit)
        if isinstance(number, Page):
            return number
        spaced = views.nhs_number(number)
        link = (self.patient_url(visit, number), f"Go to the patient with NHS number {spaced}")
        kind = visit.path.get("kind")
        if kind == "other-patient":
            return refused(409, "PATIENT_MISMATCH", f"This form was not sent from the page of the patient with NHS "
                           f"number {spaced}, so nothing was changed. Go back to that patient's page and try "
                           "again.", "patient mismatch", link=link, title="This form was for another patient")
        what = {"stale-record": "recorded", "stale-remove": "removed"}.get(kind or "")
        if what is None:
            return refused(404, "NOT_FOUND", "There is no such page.", "no such refusal")
        return refused(409, "STALE_CONFIRMATION", f"Nothing was {what}. This confirmation for the patient with NHS "
                       f"number {spaced} is out of date: it was already used or cancelled, or a newer check "
                       "replaced it. Go to this patient's page to see what is recorded.", "stale confirmation",
                       link=link, title="This confirmation is out of date")

    def patient_context(self, visit: Visit, number: str) -> dict[str, Any]:
        """What every page about one patient shows: its NHS number, its own links and its reference."""
        ref = visit.path.get("ref") or patient_ref.seal(self.codec, self._session(visit), number)
        return {"nhs_number": views.nhs_number(number), "patient_ref": ref, "patient_url": f"{PREFIX}/patient/{ref}"}

    def acting(self, visit: Visit, operation: Operation) -> str | Page:
        """The page's patient, if the user may perform ``operation``; otherwise the page to show."""
        return self._patient(visit, operation)


def care_setting(session: Session) -> dict[str, Any]:
    if session.unscheduled:
        return {"value": "unscheduled", "label": "Unscheduled care",
                "hint": "Viewing a child protection plan is recorded in the child's access history and the "
                        "local authority is told."}
    return {"value": "scheduled", "label": "Scheduled care",
            "hint": "Viewing a child protection plan is not recorded in the access history (a silent read)."}


def parse_date(fields: dict[str, str]) -> date | None:
    try:
        day, month, year = (int(fields[k]) for k in ("day", "month", "year"))
        if year < 1900:
            return None
        return date(year, month, day)
    except (ValueError, KeyError):
        return None
