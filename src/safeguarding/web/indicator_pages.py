"""Recording and removing an FGM indicator: a form, a check-your-answers page, a confirmation.

Every step names its patient in its URL and form (``patient_ref``). Each form answers with a
redirect (post/redirect/get), so Back never re-sends one. What awaits confirmation is kept in the
session per patient, with a one-time token the confirmation page carries: a confirmation from an
older page, or for a patient whose check was replaced, is refused and changes nothing: a redirect to
the 409 page naming the child (``UiBase.patient_refused``).
"""

from __future__ import annotations

import secrets
from datetime import date

from ..domain import errors as d
from ..domain.fgm import RemovalReason
from ..security.rbac import Operation
from . import views
from .endpoint import Page, Visit
from .session import Session
from .ui import UiBase, parse_date

CONFIRM_FIELD = "confirm"


class IndicatorPages(UiBase):
    # --- shared --------------------------------------------------------------------------------------

    def _stale(self, visit: Visit, number: str, what: str) -> Page:
        """Refused: the page saying so names the child, after a redirect (``UiBase.patient_refused``)."""
        return Page(redirect=self.patient_url(visit, number, f"/refused/stale-{what}"),
                    outcome="STALE_CONFIRMATION", reason="stale confirmation")

    def _awaiting(self, visit: Visit, key: str) -> dict[str, str] | None:
        """The action awaiting confirmation under ``key``, if the form's token is its token (used up now)."""
        session = self._session(visit)
        pending = session.pending.get(key)
        sent = visit.form.get(CONFIRM_FIELD) or ""
        if pending is None or not secrets.compare_digest(pending.get("token", "").encode(), sent.encode()):
            return None
        del session.pending[key]
        return pending

    @staticmethod
    def _done(session: Session, number: str, text: str) -> None:
        session.remember(session.drafts, f"flash:{number}", {"text": text})

    # --- record --------------------------------------------------------------------------------------

    def record_form(self, visit: Visit) -> Page:
        number = self.acting(visit, Operation.FGM_CREATE)
        if isinstance(number, Page):
            return number
        session = self._session(visit)
        draft = session.drafts.pop(f"record:{number}", None)
        if draft is None and (pending := session.pending.get(f"record:{number}")):  # "Change" from the check page
            assessed = date.fromisoformat(pending["date"])
            draft = {"fields": {"day": str(assessed.day), "month": str(assessed.month), "year": str(assessed.year)}}
        draft = draft or {}
        return Page("record.html", {"title": ("Error: " if draft.get("error") else "") + "Record an FGM indicator",
                                    "fields": draft.get("fields", {}), "error": draft.get("error"),
                                    **self.patient_context(visit, number)})

    def record_check(self, visit: Visit) -> Page:
        number = self.acting(visit, Operation.FGM_CREATE)
        if isinstance(number, Page):
            return number
        session = self._session(visit)
        fields = {k: visit.form.get(k, "").strip()[:4] for k in ("day", "month", "year")}
        assessed = parse_date(fields)
        error = None
        if assessed is None:
            error = "Enter a real assessment date, for example 15 3 2026"
        elif assessed > self.today():
            error = "The assessment date must be today or in the past"
        if error is not None or assessed is None:
            session.remember(session.drafts, f"record:{number}", {"fields": fields, "error": error})
            return Page(redirect=self.patient_url(visit, number, "/indicator/record"), outcome="INVALID_DATE")
        session.remember(session.pending, f"record:{number}", {"token": secrets.token_urlsafe(16),
                                                               "date": assessed.isoformat()})
        return Page(redirect=self.patient_url(visit, number, "/indicator/record/check"))

    def record_check_page(self, visit: Visit) -> Page:
        number = self.acting(visit, Operation.FGM_CREATE)
        if isinstance(number, Page):
            return number
        pending = self._session(visit).pending.get(f"record:{number}")
        if pending is None:
            return Page(redirect=self.patient_url(visit, number, "/indicator/record"))
        return Page("confirm_record.html", {"title": "Check before recording", "token": pending["token"],
                                            "assessed": views.long_date(date.fromisoformat(pending["date"])),
                                            **self.patient_context(visit, number)})

    def record_confirm(self, visit: Visit) -> Page:
        number = self.acting(visit, Operation.FGM_CREATE)
        if isinstance(number, Page):
            return number
        pending = self._awaiting(visit, f"record:{number}")
        if pending is None:
            return self._stale(visit, number, "record")
        session = self._session(visit)
        try:
            self.services.fgm.create(visit.context("fgm-create", success=303, failure=303), number,
                                     date.fromisoformat(pending["date"]))
        except d.DomainError as error:
            session.remember(session.drafts, f"record:{number}", {"fields": {}, "error": views.rule_message(error)})
            return Page(redirect=self.patient_url(visit, number, "/indicator/record"), outcome=error.code)
        self._done(session, number, "FGM indicator recorded.")
        return Page(redirect=self.patient_url(visit, number))

    # --- remove --------------------------------------------------------------------------------------

    def remove_form(self, visit: Visit) -> Page:
        number = self.acting(visit, Operation.FGM_REMOVE)
        if isinstance(number, Page):
            return number
        session = self._session(visit)
        if number not in session.indicators:
            return Page(redirect=self.patient_url(visit, number))
        draft = session.drafts.pop(f"remove:{number}", None) or {}
        chosen = draft.get("reason") or session.pending.get(f"remove:{number}", {}).get("reason")
        reasons = [{"code": r.value, "text": t, "checked": r.value == chosen} for r, t in views.REMOVAL_REASONS.items()]
        return Page("remove.html", {"title": ("Error: " if draft.get("error") else "") + "Remove the FGM indicator",
                                    "reasons": reasons, "error": draft.get("error"),
                                    **self.patient_context(visit, number)})

    def remove_check(self, visit: Visit) -> Page:
        number = self.acting(visit, Operation.FGM_REMOVE)
        if isinstance(number, Page):
            return number
        session = self._session(visit)
        indicator_id = session.indicators.get(number)
        if indicator_id is None:
            return Page(redirect=self.patient_url(visit, number))
        reason = next((r for r in views.REMOVAL_REASONS if r.value == visit.form.get("reason")), None)
        if reason is None:
            session.remember(session.drafts, f"remove:{number}",
                             {"error": "Choose why the indicator is being removed"})
            return Page(redirect=self.patient_url(visit, number, "/indicator/remove"), outcome="INVALID_REASON")
        session.remember(session.pending, f"remove:{number}", {"token": secrets.token_urlsafe(16),
                                                               "indicator_id": indicator_id, "reason": reason.value})
        return Page(redirect=self.patient_url(visit, number, "/indicator/remove/check"))

    def remove_check_page(self, visit: Visit) -> Page:
        number = self.acting(visit, Operation.FGM_REMOVE)
        if isinstance(number, Page):
            return number
        pending = self._session(visit).pending.get(f"remove:{number}")
        if pending is None:
            return Page(redirect=self.patient_url(visit, number, "/indicator/remove"))
        return Page("confirm_remove.html", {"title": "Check before removing", "token": pending["token"],
                                            "reason": views.REMOVAL_REASONS[RemovalReason(pending["reason"])],
                                            **self.patient_context(visit, number)})

    def remove_confirm(self, visit: Visit) -> Page:
        number = self.acting(visit, Operation.FGM_REMOVE)
        if isinstance(number, Page):
            return number
        pending = self._awaiting(visit, f"remove:{number}")
        if pending is None:
            return self._stale(visit, number, "remove")
        session = self._session(visit)
        reason = RemovalReason(pending["reason"])
        try:
            self.services.fgm.remove(visit.context("fgm-remove", success=303, failure=303), pending["indicator_id"],
                                     reason.status, reason)
        except d.DomainError as error:
            session.remember(session.drafts, f"remove:{number}", {"error": views.rule_message(error)})
            return Page(redirect=self.patient_url(visit, number, "/indicator/remove"), outcome=error.code)
        self._done(session, number, "FGM indicator removed.")
        session.indicators.pop(number, None)
        return Page(redirect=self.patient_url(visit, number))
