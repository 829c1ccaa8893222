"""Safeguarding information as alerts a clinician cannot miss, and "could not check" never shown like
"there is nothing": the FGM and CP-IS alerts with their banner flags, each reason a check could not be
made, and recording not offered where the rules would refuse it (with the reason)."""

from __future__ import annotations

from safeguarding.domain.patients import Gender, SecurityLabel

from ..api.cpis_helpers import give_plan
from ..support import Server
from .browser import AMY, BEN, CAL, ERIN, GIRL_WITH_INDICATOR, Web
from .test_web_two_tabs import give_indicator

GUIDANCE = "https://www.gov.uk/government/publications/multi-agency-statutory-guidance-on-female-genital-mutilation"


def test_the_fgm_alert_says_who_recorded_it_and_when_with_the_guidance(web: Web, sqlite_server: Server) -> None:
    girl = sqlite_server.add_patient(age=6)
    give_indicator(sqlite_server, girl)  # recorded through the API by a clinician at RR8
    web.sign_in(BEN)
    web.find(girl)
    alert = web.page.locator("[data-testid=fgm-alert]")
    assert alert.is_visible()
    assert web.texts("flag-fgm") == ["FGM alert"] and web.page.locator("[data-testid=flag-cpis]").count() == 0
    assert web.texts("fgm-recorded-by")[0].split() == "Sandbox City Hospital NHS Trust (ODS code RR8)".split()
    assert " at " in web.texts("fgm-recorded")[0]
    assert web.page.locator("[data-testid=fgm-guidance]").get_attribute("href") == GUIDANCE
    # The alert comes before everything else about the child but the banner.
    heading_top = web.page.locator("h2:has-text('FGM information sharing')").bounding_box()
    alert_top = alert.bounding_box()
    assert heading_top is not None and alert_top is not None and alert_top["y"] < heading_top["y"]
    web.check("40-fgm-alert-recorded-by")


def test_a_child_protection_plan_is_an_alert_at_the_top_with_the_duty_numbers(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient(age=4)
    give_plan(sqlite_server, child, "CPP")
    web.sign_in(ERIN)
    web.find(child)
    plan = web.page.locator("[data-testid=cpis-plan]")
    assert "nhsuk-warning-callout" in str(plan.get_attribute("class"))
    assert "Child protection alert" in plan.inner_text()
    assert web.texts("flag-cpis") == ["Child protection plan"]
    assert web.page.locator("[data-testid=flag-fgm]").count() == 0
    assert web.texts("cpis-office-phone") == ["0113 496 0001"] and web.texts("cpis-emergency-phone") == ["07700 900001"]
    heading = web.page.locator("h2:has-text('FGM information sharing')").bounding_box()
    box = plan.bounding_box()
    assert heading is not None and box is not None and box["y"] < heading["y"]
    assert web.page.title().startswith("Patient - Child protection plan")
    web.check("41-cpis-alert")


def test_an_unverified_nhs_number_is_not_checked_rather_than_nothing(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient(age=7, verified=False)
    web.sign_in(AMY)
    web.find(child)
    callout = web.page.locator("[data-testid=fgm-unverified]")
    assert "the NHS number is not verified" in callout.inner_text()
    assert "nhsuk-warning-callout" in str(callout.get_attribute("class"))
    assert web.page.locator("[data-testid=fgm-none]").count() == 0
    assert web.page.locator("[data-testid=record-indicator]").count() == 0
    web.check("42-fgm-unverified")
    web.sign_out()
    web.sign_in(ERIN)
    web.find(child)
    assert "the NHS number is not verified" in web.texts("cpis-unverified")[0]
    assert web.page.locator("[data-testid=cpis-none]").count() == 0


def test_a_restricted_record_is_not_checked_rather_than_nothing(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient(age=7, security=SecurityLabel.RESTRICTED)
    web.sign_in(ERIN)
    web.find(child)
    callout = web.page.locator("[data-testid=cpis-restricted]")
    assert "the patient's record is restricted" in callout.inner_text()
    assert "app-not-checked--restricted" in str(callout.get_attribute("class"))
    assert web.page.locator("[data-testid=cpis-none]").count() == 0
    assert "Restricted" in web.texts("patient-banner")[0]
    web.check("43-cpis-restricted")


def test_a_role_that_may_not_look_is_told_so_not_that_there_is_nothing(web: Web) -> None:
    web.sign_in(CAL)  # CP-IS only: no FGM activity
    web.find(GIRL_WITH_INDICATOR)
    refused = web.page.locator("[data-testid=fgm-not-allowed]")
    assert "FGM information was not checked: your role does not allow it" in refused.inner_text()
    assert "View FGM information' (B0370)" in refused.inner_text()
    assert web.page.locator("[data-testid=fgm-none]").count() == 0
    assert web.page.locator("[data-testid=fgm-alert]").count() == 0
    web.check("44-fgm-role-refused")


def test_recording_is_not_offered_where_the_rules_refuse_it(web: Web, sqlite_server: Server) -> None:
    boy = sqlite_server.add_patient(age=8, gender=Gender.MALE)
    adult = sqlite_server.add_patient(age=18)
    web.sign_in(AMY)
    web.find(boy)
    assert web.page.locator("[data-testid=fgm-none]").is_visible()  # checked, and nothing is recorded
    assert web.page.locator("[data-testid=record-indicator]").count() == 0
    assert "can only be recorded for a girl" in web.texts("record-refused")[0]
    web.check("45-record-not-offered-boy")
    web.find(adult)
    assert web.page.locator("[data-testid=record-indicator]").count() == 0
    assert "they are 18 or over" in web.texts("record-refused")[0]
