"""Never act on the wrong child: one clinician, one session, two tabs on two girls.

Tab 1 shows girl A; tab 2 then looks up girl B. Whatever tab 1 does next (record, remove, and each
confirmation) acts on girl A or is refused; it never touches girl B. A confirmation that is out of
date is refused with 409 naming the child it was for, and never reports success."""

from __future__ import annotations

import json
from datetime import date, timedelta

from playwright.sync_api import Page

from safeguarding.domain.fgm import IndicatorStatus

from ..support import Server, flag_body
from .browser import AMY, Web
from .test_web_fgm import _date_fields


def second_tab(web: Web) -> Web:
    """Another tab in the same browser: the same cookies, so the same session."""
    tab = Web(web.server, web.context, web.context.new_page())
    tab.page.on("request", lambda request: web.urls.append(request.url))
    return tab


def banner_number(page: Page) -> str:
    return page.locator(".app-patient-banner__nhs").inner_text().replace(" ", "")


def caption_number(page: Page) -> str:
    return page.locator("[data-testid=patient-nhs-number]").inner_text().replace(" ", "")


def give_indicator(server: Server, child: str) -> None:
    with server.client() as client:
        response = client.post(f"{server.fgm}/Flag", content=json.dumps(flag_body(child)),
                               headers={**server.headers(), "Content-Type": "application/fhir+json"})
    assert response.status_code == 201, response.text


def active(server: Server, child: str) -> list[IndicatorStatus]:
    return [i.status for i in server.history(child)]


def test_recording_in_tab_one_acts_on_girl_a_never_on_girl_b(web: Web, sqlite_server: Server) -> None:
    girl_a, girl_b = sqlite_server.add_patient(age=9), sqlite_server.add_patient(age=12)
    web.sign_in(AMY)
    web.find(girl_a)
    tab2 = second_tab(web)
    tab2.find(girl_b)  # the session now also knows girl B

    # Tab 1 still shows girl A; its record link opens girl A's form.
    web.submit("[data-testid=record-indicator]")
    assert caption_number(web.page) == girl_a
    assessed = date.today() - timedelta(days=4)
    _date_fields(web, assessed)
    tab2.find(girl_b)  # girl B again, between tab 1's form and its check page
    web.submit("Continue")
    assert "Check before recording" in web.page.title() and caption_number(web.page) == girl_a

    # Tab 2 starts recording for girl B too: a confirmation is now waiting for each girl.
    tab2.submit("[data-testid=record-indicator]")
    _date_fields(tab2, date.today())
    tab2.submit("Continue")
    assert caption_number(tab2.page) == girl_b
    stale_form = {name: str(web.page.locator(f"input[name={name}]").first.get_attribute("value"))
                  for name in ("csrf_token", "patient", "confirm")}
    confirm_path = web.path.removesuffix("/check") + "/confirm"

    web.submit("Record FGM indicator")
    assert banner_number(web.page) == girl_a and web.flash() == "FGM indicator recorded."
    web.check("20-two-tabs-recorded-for-a")
    [created] = sqlite_server.history(girl_a)
    assert created.status is IndicatorStatus.ACTIVE and created.assessment_date == assessed
    assert sqlite_server.history(girl_b) == []

    # The same confirmation sent again (a stale page, a double click): refused, naming girl A.
    sent = web.post(confirm_path, stale_form)  # answered with a redirect to the refusal (post/redirect/get)
    assert sent.status == 303 and sent.headers["location"].endswith("/refused/stale-record")
    again = web.post(confirm_path, stale_form, follow=True)
    assert again.status == 409
    assert "Nothing was recorded" in again.text() and _spaced(girl_a) in again.text()
    assert "There was nothing to confirm" not in again.text() and "Success" not in again.text()
    assert len(sqlite_server.history(girl_a)) == 1 and sqlite_server.history(girl_b) == []

    # A's confirmation carrying B's reference (a swapped field) is refused: nothing changes.
    b_ref = tab2.path.split("/")[3]
    swapped = web.post(confirm_path, {**stale_form, "patient": b_ref}, follow=True)
    assert swapped.status == 409 and swapped.url.endswith("/refused/other-patient")
    assert _spaced(girl_a) in swapped.text()
    assert "<title>Error: This form was for another patient" in swapped.text()
    assert sqlite_server.history(girl_b) == []

    # Tab 2's own confirmation still records for girl B.
    tab2.submit("Record FGM indicator")
    assert banner_number(tab2.page) == girl_b and tab2.flash() == "FGM indicator recorded."
    assert active(sqlite_server, girl_a) == [IndicatorStatus.ACTIVE]
    assert active(sqlite_server, girl_b) == [IndicatorStatus.ACTIVE]
    tab2.page.close()


def test_a_check_replaced_in_another_tab_is_refused_not_applied(web: Web, sqlite_server: Server) -> None:
    girl_a = sqlite_server.add_patient(age=9)
    web.sign_in(AMY)
    web.find(girl_a)
    web.submit("[data-testid=record-indicator]")
    _date_fields(web, date.today() - timedelta(days=30))
    web.submit("Continue")
    patient_page = web.path.removesuffix("/indicator/record/check")

    tab2 = second_tab(web)  # girl A again, in tab 2, with another date
    tab2.page.goto(f"{patient_page}/indicator/record")
    _date_fields(tab2, date.today() - timedelta(days=1))
    tab2.submit("Continue")

    web.submit("Record FGM indicator")  # tab 1's check is out of date
    assert web.page.title().startswith("Error: This confirmation is out of date")
    message = web.texts("error-message")[0]
    assert "Nothing was recorded" in message and _spaced(girl_a) in message
    web.check("21-stale-confirmation-refused")
    assert sqlite_server.history(girl_a) == []
    web.submit("[data-testid=error-link]")
    assert banner_number(web.page) == girl_a

    tab2.submit("Record FGM indicator")  # the newer check is the one that counts
    [created] = sqlite_server.history(girl_a)
    assert created.assessment_date == date.today() - timedelta(days=1)
    tab2.page.close()


def test_removing_in_tab_one_acts_on_girl_a_never_on_girl_b(web: Web, sqlite_server: Server) -> None:
    girl_a, girl_b = sqlite_server.add_patient(age=8), sqlite_server.add_patient(age=13)
    give_indicator(sqlite_server, girl_a)
    give_indicator(sqlite_server, girl_b)
    web.sign_in(AMY)
    web.find(girl_a)
    tab2 = second_tab(web)
    tab2.find(girl_b)

    web.submit("[data-testid=remove-indicator]")
    assert caption_number(web.page) == girl_a
    web.page.check("#reason")
    tab2.find(girl_b)
    tab2.submit("[data-testid=remove-indicator]")  # B's removal form open in tab 2
    web.submit("Continue")
    assert caption_number(web.page) == girl_a
    stale_form = {name: str(web.page.locator(f"input[name={name}]").first.get_attribute("value"))
                  for name in ("csrf_token", "patient", "confirm")}
    confirm_path = web.path.removesuffix("/check") + "/confirm"
    tab2.find(girl_b)  # and B's page once more, just before tab 1 confirms

    web.submit("Remove FGM indicator")
    assert banner_number(web.page) == girl_a and web.flash() == "FGM indicator removed."
    assert active(sqlite_server, girl_a) == [IndicatorStatus.ENTERED_IN_ERROR]
    assert active(sqlite_server, girl_b) == [IndicatorStatus.ACTIVE]

    again = web.post(confirm_path, stale_form, follow=True)
    assert again.status == 409 and "Nothing was removed" in again.text() and _spaced(girl_a) in again.text()
    assert "Success" not in again.text()
    assert active(sqlite_server, girl_b) == [IndicatorStatus.ACTIVE]

    # A forged or foreign reference names no patient: 404, nothing changes.
    forged = web.post("/web/patient/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/indicator/remove/confirm",
                      stale_form)
    assert forged.status == 404 and "Find the patient again" in forged.text()
    assert active(sqlite_server, girl_b) == [IndicatorStatus.ACTIVE]
    tab2.page.close()


def test_a_reference_from_another_session_names_no_patient(web: Web, other_web: Web, sqlite_server: Server) -> None:
    girl_a = sqlite_server.add_patient(age=9)
    web.sign_in(AMY)
    web.find(girl_a)
    other_web.sign_in(AMY)
    response = other_web.page.goto(web.path)  # a link copied to another person's browser
    assert response is not None and response.status == 404
    assert _spaced(girl_a) not in other_web.page.content()
    other_web.check("22-patient-link-from-another-session")


def _spaced(number: str) -> str:
    return f"{number[:3]} {number[3:6]} {number[6:]}"
