"""Finding a patient and the patient page: the banner, the FGM alert and the CP-IS panel."""

from __future__ import annotations

from typing import Any

from ..domain import errors as d
from ..domain import nhs_number as nhs
from ..security.rbac import Operation
from . import views
from .endpoint import PREFIX, Page, Visit
from .session import Session
from .ui import UiBase, can, care_setting


class PatientPages(UiBase):
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
            session.drafts["find"] = {"error": error, "typed": typed[:40]}
            return Page(redirect=f"{PREFIX}/",
                        outcome="PATIENT_NOT_FOUND" if visit.audit_nhs_number else "INVALID_NHS_NUMBER")
        return Page(redirect=self.patient_url(visit, number))

    def patient(self, visit: Visit) -> Page:
        session = self._session(visit)
        number = self._patient(visit)
        if isinstance(number, Page):
            return number
        caller = visit.caller
        found = self.demographics.lookup(number)
        context: dict[str, Any] = {"title": "Patient", "banner": views.banner(number, found, self.today()),
                                   "care_setting": care_setting(session), **self.patient_context(visit, number)}
        done = session.drafts.pop(f"flash:{number}", None)  # shown on this patient's page only, never another's
        if done:
            context["flash"] = done["text"]
        fgm: dict[str, Any] = {"allowed": can(caller, Operation.FGM_SEARCH), "indicator": None, "error": None,
                               "can_record": False, "can_remove": False}
        session.indicators.pop(number, None)
        if fgm["allowed"]:
            try:
                indicator = self.services.fgm.search(visit.context("fgm-search"), number)
            except d.DomainError as error:
                fgm["error"] = views.rule_message(error)
            else:
                if indicator is not None:
                    fgm["indicator"] = views.indicator(indicator)
                    session.remember(session.indicators, number, indicator.id)
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
