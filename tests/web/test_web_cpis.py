"""The CP-IS panel in a real browser: the plan with the authority's name and both phone numbers, and the
access history growing by one after an unscheduled view, never after a scheduled one."""

from __future__ import annotations

from ..api.cpis_helpers import give_plan
from ..support import Server
from .browser import CAL, ERIN, GUS, Web


def history_rows(web: Web) -> list[str]:
    return web.texts("cpis-access")


def view_as(web: Web, user_id: str, child: str, setting: str = "unscheduled") -> None:
    web.sign_in(user_id, setting)
    web.find(child)
    assert web.page.locator("[data-testid=cpis-plan]").count() == 1


def test_a_childs_plan_and_the_access_history(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient(age=7)
    give_plan(sqlite_server, child, "CPP")  # as Sandbox City Council, through the CP-IS upload API

    view_as(web, CAL, child, "scheduled")  # holds B0107, but says scheduled care: a silent read
    plan = web.page.locator("[data-testid=cpis-plan]")
    assert "Subject to child protection plan" in plan.inner_text()
    assert web.texts("cpis-authority") == ["Sandbox City Council"]
    assert web.texts("cpis-office-phone") == ["0113 496 0001"]
    assert web.texts("cpis-emergency-phone") == ["07700 900001"]
    assert web.page.locator("[data-testid=cpis-emergency-phone] a").get_attribute("href") == "tel:07700900001"
    assert history_rows(web) == []
    web.sign_out()

    view_as(web, CAL, child)  # unscheduled: recorded
    assert len(history_rows(web)) == 1
    web.sign_out()

    view_as(web, GUS, child)  # B0170 only: always a scheduled (silent) read, whatever the setting
    assert len(history_rows(web)) == 1
    web.sign_out()

    view_as(web, ERIN, child)  # the emergency department, unscheduled: one more
    rows = history_rows(web)
    assert len(rows) == 2
    assert "Dr Erin Sandbox" in rows[0] and "Sandbox City Hospital NHS Trust" in rows[0]
    assert "Viewed as unscheduled care" in web.texts("cpis-setting")[0]
    web.check("13-patient-cpis-plan-and-history")

    accesses = sqlite_server.stored(lambda s: s.read_accesses(child))
    assert sorted(a.author.user_id for a in accesses) == [CAL, ERIN]
    events = [r.event for r in sqlite_server.stored(lambda s: list(s.audit_records()))]
    views = [e for e in events if e.api == "web" and e.nhs_number == child and e.interaction == "cpis-careteam-search"]
    assert [e.user_id for e in views] == [CAL, CAL, GUS, ERIN]
    recorded = {a.id for a in accesses}
    assert [e.resource_id in recorded for e in views] == [False, True, False, True]  # the access in the audit


def test_a_patient_without_a_plan(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient(age=5)
    web.sign_in(ERIN)
    web.find(child)
    assert web.page.locator("[data-testid=cpis-none]").is_visible()
    assert web.page.locator("[data-testid=fgm-not-allowed]").is_visible()  # ERIN holds no FGM activity
    web.check("14-patient-no-plan")
    assert sqlite_server.stored(lambda s: s.read_accesses(child)) == []
