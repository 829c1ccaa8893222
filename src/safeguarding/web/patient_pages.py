"""Finding a patient and the patient page: the banner, the FGM alert and the CP-IS panel."""

from __future__ import annotations

from typing import Any

from ..domain import cpis as cpis_rules
from ..domain import errors as d
from ..domain import nhs_number as nhs
from ..domain.patients import Patient
from ..security.rbac import Operation
from ..store.interface import StoreUnavailable
from . import alerts, views
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
        found = self.demographics.lookup(number)
        context: dict[str, Any] = {"title": "Patient", "banner": views.banner(number, found, self.today()),
                                   "care_setting": care_setting(session), **self.patient_context(visit, number),
                                   "fgm_guidance": {"href": alerts.FGM_GUIDANCE, "text": alerts.FGM_GUIDANCE_TITLE}}
        done = session.drafts.pop(f"flash:{number}", None)  # shown on this patient's page only, never another's
        if done:
            context["flash"] = done["text"]
        context["fgm"] = self._fgm_panel(visit, number, session, found)
        context["cpis"] = self._cpis_panel(visit, number, session, found)
        alerts_shown = [name for name, shown in (("FGM alert", context["fgm"]["indicator"]),
                                                 ("Child protection plan", context["cpis"]["plans"])) if shown]
        if alerts_shown:
            context["title"] = f"Patient - {' and '.join(alerts_shown)}"
        return Page("patient.html", context)

    def _fgm_panel(self, visit: Visit, number: str, session: Session, found: Patient | None) -> dict[str, Any]:
        caller = visit.caller
        fgm: dict[str, Any] = {"not_checked": None, "indicator": None, "can_record": False, "can_remove": False,
                               "record_refusal": None}
        session.indicators.pop(number, None)
        if not can(caller, Operation.FGM_SEARCH):
            fgm["not_checked"] = alerts.role_refused("FGM information",
                                                     "the activity 'View FGM information' (B0370)")
            return fgm
        try:
            indicator = self.services.fgm.search(visit.context("fgm-search"), number)
        except (d.DomainError, StoreUnavailable) as error:
            fgm["not_checked"] = alerts.could_not_check("FGM information", error)
            return fgm
        if indicator is not None:
            fgm["indicator"] = views.indicator(indicator)
            session.remember(session.indicators, number, indicator.id)
            fgm["can_remove"] = can(caller, Operation.FGM_REMOVE)
        elif can(caller, Operation.FGM_CREATE):
            fgm["record_refusal"] = alerts.record_refusal(found, self.today())
            fgm["can_record"] = fgm["record_refusal"] is None
        return fgm

    def _cpis_panel(self, visit: Visit, number: str, session: Session, found: Patient | None) -> dict[str, Any]:
        service = self.cpis
        panel: dict[str, Any] = {"available": service is not None, "not_checked": None, "plans": [], "history": []}
        if service is None:
            return panel
        if not can(visit.caller, Operation.CPIS_CARETEAM_SEARCH):
            panel["not_checked"] = alerts.role_refused(
                "Child protection information", "the activity 'View child protection information in unscheduled "
                "care' (B0107) or 'in scheduled care' (B0170)")
            return panel
        try:
            plans = service.care_teams(visit.context("cpis-careteam-search"), number, session.unscheduled)
            history = service.access_history(visit.context("cpis-auditevent-search"), number)
        except (d.DomainError, StoreUnavailable) as error:
            panel["not_checked"] = alerts.could_not_check("Child protection information", error)
            return panel
        panel["plans"] = [views.plan(p) for p in plans]
        panel["history"] = [views.access(a) for a in history]
        if not plans:
            try:  # plans are only held for a verified, unrestricted NHS number: "none" would mislead
                cpis_rules.check_subject(number, found)
            except d.DomainError as error:
                panel["not_checked"] = alerts.could_not_check("Child protection information", error)
        return panel
