"""Conventions of the NHS.UK design system: post/redirect/get for every form, refusals included (Back
never asks to resubmit a form), "Change" links on check pages, full NHS.UK error pages with "Error: " in the title,
the responsive access-history table at 320 px, and the footer's links."""

from __future__ import annotations

from datetime import date, timedelta

from ..api.cpis_helpers import give_plan
from ..support import Server
from .browser import AMY, ERIN, Web
from .test_web_fgm import _date_fields


def back_is_clean(web: Web) -> None:
    """Leave the page a form led to, then press Back: the same page again, fetched afresh, never Chrome's
    "Confirm form resubmission" (ERR_CACHE_MISS), which is what Back onto the answer to a POST shows."""
    result = web.page.url
    web.page.goto("/web/accessibility")
    web.page.go_back(wait_until="load")
    assert not web.page.url.startswith("chrome-error"), web.page.url
    assert "ERR_CACHE_MISS" not in web.page.content()
    assert web.page.url == result
    assert web.page.locator("h1").count() >= 1


def test_back_after_every_form_never_resubmits(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient(age=10)
    web.sign_in(AMY)
    back_is_clean(web)  # the find page, after signing in

    web.page.fill("#nhs-number", "999 000 0115")  # no such patient: the error comes after a redirect
    web.submit("Find patient")
    assert web.page.title().startswith("Error: Find a patient")
    back_is_clean(web)  # the draft was used: the page comes back without the error, not resubmitted

    web.page.check("#care-setting-2")
    web.submit("Change care setting")
    back_is_clean(web)

    web.find(child)
    back_is_clean(web)

    web.submit("[data-testid=record-indicator]")
    web.submit("Continue")  # no date: the error, after a redirect
    assert web.page.title().startswith("Error: Record an FGM indicator")
    back_is_clean(web)

    assessed = date.today() - timedelta(days=3)
    _date_fields(web, assessed)
    web.submit("Continue")
    back_is_clean(web)  # the check page again
    assert web.texts("confirm-assessed") == [f"{assessed.day} {assessed:%B %Y}"]

    web.submit("Record FGM indicator")
    back_is_clean(web)  # the patient page again: nothing recorded twice
    assert [i.status.value for i in sqlite_server.history(child)] == ["active"]

    web.submit("[data-testid=remove-indicator]")
    web.submit("Continue")  # no reason
    back_is_clean(web)
    web.page.check("#reason")
    web.submit("Continue")
    back_is_clean(web)
    web.submit("Remove FGM indicator")
    back_is_clean(web)
    assert [i.status.value for i in sqlite_server.history(child)] == ["entered-in-error"]

    web.sign_out()
    back_is_clean(web)  # "You have signed out" again


def test_back_after_a_refused_form_never_resubmits(web: Web, sqlite_server: Server) -> None:
    """A form refused for another patient or a stale confirmation (409), or by the CSRF check (403), is
    answered with a redirect to the page saying so: Back onto it shows it again, naming the same child,
    and nothing is changed or sent twice."""
    girl_a, girl_b = sqlite_server.add_patient(age=9), sqlite_server.add_patient(age=12)
    web.sign_in(AMY)
    web.find(girl_b)
    b_ref = web.path.split("/")[3]
    web.find(girl_a)

    def refused_with(title: str) -> None:
        assert web.page.title().startswith(f"Error: {title}"), web.page.title()
        assert "Success" not in web.page.inner_text("body")

    def names_girl_a() -> None:
        assert f"{girl_a[:3]} {girl_a[3:6]} {girl_a[6:]}" in web.texts("error-message")[0]

    # 409: girl A's record form carrying girl B's reference (a swapped field).
    web.submit("[data-testid=record-indicator]")
    _date_fields(web, date.today() - timedelta(days=2))
    web.page.evaluate("ref => { document.querySelector('form input[name=patient]').value = ref; }", b_ref)
    web.submit("Continue")
    refused_with("This form was for another patient")
    names_girl_a()
    assert web.path.endswith("/refused/other-patient")
    web.check("54-other-patient-refused")
    back_is_clean(web)
    refused_with("This form was for another patient")
    names_girl_a()

    # 409: a confirmation that is out of date (an older page's token).
    web.submit("[data-testid=error-link]")  # girl A's page
    web.submit("[data-testid=record-indicator]")
    _date_fields(web, date.today() - timedelta(days=2))
    web.submit("Continue")
    web.page.evaluate("() => { document.querySelector('input[name=confirm]').value = 'from-an-older-page'; }")
    web.submit("Record FGM indicator")
    refused_with("This confirmation is out of date")
    names_girl_a()
    back_is_clean(web)
    refused_with("This confirmation is out of date")
    assert "Nothing was recorded" in web.texts("error-message")[0]

    # 403: a form whose CSRF token is not the session's (a page from before the session changed).
    web.submit("[data-testid=error-link]")
    web.submit("[data-testid=record-indicator]")
    _date_fields(web, date.today() - timedelta(days=2))
    web.submit("Continue")
    web.page.evaluate("() => document.querySelectorAll('input[name=csrf_token]').forEach(i => { i.value = 'x'; })")
    web.submit("Record FGM indicator")
    refused_with("You cannot do this")
    assert web.path == "/web/refused/form-expired" and "so it was refused" in web.texts("error-message")[0]
    back_is_clean(web)
    refused_with("You cannot do this")

    assert sqlite_server.history(girl_a) == [] and sqlite_server.history(girl_b) == []


def test_check_pages_have_change_links(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient(age=10)
    web.sign_in(AMY)
    web.find(child)
    web.submit("[data-testid=record-indicator]")
    _date_fields(web, date.today() - timedelta(days=3))
    web.submit("Continue")
    web.submit("[data-testid=change-assessed]")
    assert web.page.input_value("#assessed-day") == str((date.today() - timedelta(days=3)).day)
    changed = date.today() - timedelta(days=5)
    _date_fields(web, changed)
    web.submit("Continue")
    assert web.texts("confirm-assessed") == [f"{changed.day} {changed:%B %Y}"]
    web.submit("Record FGM indicator")
    [created] = sqlite_server.history(child)
    assert created.assessment_date == changed

    web.submit("[data-testid=remove-indicator]")
    web.page.check("#reason-2")
    web.submit("Continue")
    web.submit("[data-testid=change-reason]")
    assert web.page.is_checked("#reason-2")  # the answer given, ready to change
    web.page.check("#reason")
    web.submit("Continue")
    assert "Added in error" in web.texts("confirm-reason")[0]


def test_the_404_page_is_a_full_nhs_page(web: Web) -> None:
    response = web.page.goto("/web/no-such-page")
    assert response is not None and response.status == 404
    assert web.page.title().startswith("Error: Page not found")
    assert web.page.locator("header.nhsuk-header").is_visible() and web.page.locator("footer.nhsuk-footer").is_visible()
    assert web.page.locator("meta[name=viewport]").count() == 1
    assert response.headers["cache-control"] == "no-store" and "default-src 'none'" in response.headers[
        "content-security-policy"]
    web.check("50-not-found")
    web.sign_in(AMY)
    unknown = web.page.goto("/web/patient/not-a-reference")
    assert unknown is not None and unknown.status == 404 and web.page.title().startswith("Error: ")
    web.check("51-unknown-patient-reference")


def test_the_access_history_fits_a_320_px_screen(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient(age=6)
    give_plan(sqlite_server, child, "CPP")
    web.sign_in(ERIN)
    web.find(child)
    web.page.reload()  # a second unscheduled view: two rows
    assert len(web.texts("cpis-access")) >= 1
    web.page.set_viewport_size({"width": 320, "height": 800})
    assert web.overflow() <= 320
    heading = web.page.locator("[data-testid=cpis-access] .nhsuk-table-responsive__heading").first
    assert heading.is_visible()  # on a phone each cell names its column
    web.page.screenshot(path="test-artifacts/web/52-access-history-320.png", full_page=True)


def test_the_footer_links_to_accessibility_privacy_and_contact(web: Web) -> None:
    web.page.goto("/web/")
    links = web.page.locator("footer .nhsuk-footer__list-item-link")
    assert links.all_inner_texts() == ["Accessibility statement", "Privacy", "Contact us"]
    for index, name in enumerate(("accessibility", "privacy", "contact")):
        web.page.goto("/web/")
        with web.page.expect_navigation():
            links.nth(index).click()
        assert web.page.url.endswith(f"/web/{name}")
        assert web.page.locator("h1").inner_text() == links.all_inner_texts()[index]
        web.check(f"53-footer-{name}")
