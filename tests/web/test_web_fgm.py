"""The clinician web interface in a real browser (headless Chromium): sign in, find a patient, the FGM
alert, recording and removing an indicator with confirmation, what a role without B0380 sees, and
forged requests refused. Every page is screenshotted into test-artifacts/web/ and checked with axe-core."""

from __future__ import annotations

from datetime import date, timedelta

from safeguarding.domain.fgm import IndicatorStatus, RemovalReason

from ..support import Server
from .browser import AMY, BEN, CAL, GIRL_WITH_INDICATOR, Web


def web_events(server: Server, nhs_number: str, interaction: str | None = None) -> list[dict[str, object]]:
    events = [r.event for r in server.stored(lambda s: list(s.audit_records()))]
    return [e.fields() for e in events
            if e.api == "web" and e.nhs_number == nhs_number and interaction in (None, e.interaction)]


def test_sign_in_page_offers_every_sandbox_user(web: Web) -> None:
    web.page.goto("/web/")
    labels = web.page.locator(".nhsuk-radios__label").all_inner_texts()
    assert "Dr Amy Sandbox, Clinical Practitioner Access Role, Sandbox City Hospital NHS Trust" in labels
    assert "Nurse Ben Sandbox, Nurse Access Role, Sandbox City Hospital NHS Trust" in labels
    assert "Clerk Cal Sandbox, Clerical Access Role, Sandbox City Hospital NHS Trust" in labels
    assert "Dr Gus Sandbox, General Medical Practitioner, Sandbox Medical Practice" in labels
    hint = web.page.locator("#user-555021935107-hint").inner_text()
    assert "View FGM information (B0370), Record and remove FGM indicators (B0380)" in hint
    assert "Unscheduled care" in labels and "Scheduled care" in labels
    web.check("01-sign-in")


def test_the_sandbox_girl_shows_the_fgm_alert(web: Web, sqlite_server: Server) -> None:
    web.sign_in(AMY)
    assert web.flash() == "Signed in as Dr Amy Sandbox."
    web.check("02-find-patient")
    web.find("999 000 0018")  # typed with spaces
    alert = web.page.locator("[data-testid=fgm-alert]")
    assert alert.is_visible()
    assert "FGM alert: family history of female genital mutilation" in alert.inner_text()
    banner = web.texts("patient-banner")[0]
    assert "999 000 0018" in banner and "Female" in banner and "9 years" in banner
    assert web.page.locator("[data-testid=remove-indicator]").is_visible()
    web.check("03-patient-fgm-alert")

    patient_page = web.path
    response = web.page.goto(patient_page)  # the page again: patient data is never stored by the browser
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert web.path == patient_page

    searches = web_events(sqlite_server, GIRL_WITH_INDICATOR, "fgm-search")
    assert len(searches) >= 2
    assert {(e["status"], e["outcome"], e["user_id"], e["role_profile_id"]) for e in searches} == {
        (200, "OK", AMY, "555021936108")}
    assert all(e["resource_id"] for e in searches)  # the indicator shown is named in the audit


def test_the_nhs_number_is_checked_as_it_is_typed(web: Web, sqlite_server: Server) -> None:
    web.sign_in(AMY)
    error = web.page.locator("[data-nhs-number-error]")
    web.page.fill("#nhs-number", "999 000 001")
    assert not error.is_visible()  # not finished typing: no complaint yet
    web.page.fill("#nhs-number", "999 000 0019")
    assert error.is_visible() and "check digit is wrong" in error.inner_text()
    web.check("02b-find-typing-invalid")
    web.page.fill("#nhs-number", "999 OOO 0018")
    assert "only digits and spaces" in error.inner_text()
    web.page.click("button:has-text('Find patient')")  # the script keeps the form from being sent
    assert web.page.url.endswith("/web/")
    web.page.fill("#nhs-number", "999 000 0018")
    assert not error.is_visible()

    # The server checks again: a script-less browser (or a bypassed script) gets the same answer.
    refused = web.post("/web/find", {"csrf_token": web.csrf_token(), "nhs_number": "999 000 0019"})
    assert refused.status == 303 and refused.headers["location"] == "/web/"  # post/redirect/get
    web.page.goto("/web/")
    assert web.page.title().startswith("Error: ")
    assert web.page.locator(".nhsuk-error-summary").inner_text().endswith("check digit is wrong")
    earlier = len(web_events(sqlite_server, "9990000115", "find-patient"))  # other tests look it up too
    web.page.fill("#nhs-number", "999 000 0115")  # valid, but no such patient
    web.submit("Find patient")
    assert web.page.locator(".nhsuk-error-summary").inner_text().endswith("No patient with this NHS number was found")
    web.check("02c-find-not-found")
    [not_found] = web_events(sqlite_server, "9990000115", "find-patient")[earlier:]
    assert (not_found["status"], not_found["outcome"]) == (303, "PATIENT_NOT_FOUND")


def _date_fields(web: Web, day: date) -> None:
    web.page.fill("#assessed-day", str(day.day))
    web.page.fill("#assessed-month", str(day.month))
    web.page.fill("#assessed-year", str(day.year))


def test_record_then_remove_an_indicator_with_confirmation(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient(age=11)
    web.sign_in(AMY)
    web.find(child)
    assert web.page.locator("[data-testid=fgm-none]").is_visible()
    web.check("04-patient-no-indicator")

    web.submit("[data-testid=record-indicator]")
    web.check("05-record-form")
    web.submit("Continue")
    assert "Enter a real assessment date" in web.page.locator(".nhsuk-error-summary").inner_text()
    _date_fields(web, date.today() + timedelta(days=2))
    web.submit("Continue")
    assert "today or in the past" in web.page.locator(".nhsuk-error-summary").inner_text()
    web.check("05b-record-form-error")
    assessed = date.today() - timedelta(days=10)
    _date_fields(web, assessed)
    web.submit("Continue")
    assert web.texts("confirm-assessed") == [f"{assessed.day} {assessed:%B %Y}"]
    assert sqlite_server.history(child) == []  # nothing recorded before confirmation
    web.check("06-record-confirm")

    web.submit("Record FGM indicator")
    web.page.wait_for_url("**/web/patient/*")
    assert web.flash() == "FGM indicator recorded."
    assert web.page.locator("[data-testid=fgm-alert]").is_visible()
    [created] = sqlite_server.history(child)
    assert created.status is IndicatorStatus.ACTIVE and created.assessment_date == assessed
    assert (created.created_by.user_id, created.created_by.role_profile_id) == (AMY, "555021936108")
    [create_event] = web_events(sqlite_server, child, "fgm-create")
    assert (create_event["status"], create_event["outcome"], create_event["resource_id"]) == (303, "OK", created.id)
    web.check("07-patient-recorded")

    web.submit("[data-testid=remove-indicator]")
    web.submit("Continue")
    assert "Choose why" in web.page.locator(".nhsuk-error-summary").inner_text()
    web.check("08-remove-form")
    web.page.check("#reason")  # added in error
    web.submit("Continue")
    assert "Added in error" in web.texts("confirm-reason")[0]
    assert sqlite_server.history(child)[0].status is IndicatorStatus.ACTIVE
    web.check("09-remove-confirm")

    web.submit("Remove FGM indicator")
    web.page.wait_for_url("**/web/patient/*")
    assert web.flash() == "FGM indicator removed."
    assert web.page.locator("[data-testid=fgm-alert]").count() == 0
    assert web.page.locator("[data-testid=fgm-none]").is_visible()
    [removed] = sqlite_server.history(child)
    assert removed.status is IndicatorStatus.ENTERED_IN_ERROR and removed.removal is not None
    assert removed.removal.reason is RemovalReason.ADDED_IN_ERROR and removed.removal.by.user_id == AMY
    [remove_event] = web_events(sqlite_server, child, "fgm-remove")
    assert (remove_event["status"], remove_event["outcome"], remove_event["resource_id"]) == (303, "OK", removed.id)


def test_a_rule_refusal_is_shown_and_audited(web: Web, sqlite_server: Server) -> None:
    woman = sqlite_server.add_patient(age=19)
    web.sign_in(AMY)
    web.find(woman)
    assert web.page.locator("[data-testid=record-indicator]").count() == 0  # not offered: the rules refuse it
    assert "they are 18 or over" in web.texts("record-refused")[0]
    web.page.goto(f"{web.path}/indicator/record")  # the form, asked for directly: the service still refuses
    _date_fields(web, date.today() - timedelta(days=1))
    web.submit("Continue")
    web.submit("Record FGM indicator")
    assert "the patient is 18 or over" in web.page.locator(".nhsuk-error-summary").inner_text()
    assert sqlite_server.history(woman) == []
    [event] = web_events(sqlite_server, woman, "fgm-create")
    assert (event["status"], event["outcome"]) == (303, "PATIENT_OVER_18")


def test_a_query_only_role_sees_the_alert_but_no_record_or_remove_controls(web: Web, sqlite_server: Server) -> None:
    web.sign_in(BEN)
    web.find(GIRL_WITH_INDICATOR)
    assert web.page.locator("[data-testid=fgm-alert]").is_visible()
    assert web.page.locator("[data-testid=remove-indicator]").count() == 0
    web.check("10-patient-query-only-role")

    child = sqlite_server.add_patient()
    web.find(child)
    assert web.page.locator("[data-testid=fgm-none]").is_visible()
    assert web.page.locator("[data-testid=record-indicator]").count() == 0
    patient_page = web.path
    response = web.page.goto(f"{patient_page}/indicator/record")  # the form, asked for directly
    assert response is not None and response.status == 403
    web.check("11-refused-role")
    # A well-formed POST with a valid CSRF token is still refused: the role lacks B0380.
    token = web.csrf_token()
    ref = patient_page.rsplit("/", 1)[1]
    for path in ("/indicator/record", "/indicator/record/confirm"):
        refused = web.post(patient_page + path, {"csrf_token": token, "patient": ref, "day": "1", "month": "1",
                                                 "year": "2026"})
        assert refused.status == 403
    assert sqlite_server.history(child) == []
    denied = [e for e in web_events(sqlite_server, child) if e["outcome"] == "ACCESS_DENIED"]
    assert {(e["interaction"], e["status"], e["user_id"]) for e in denied} == {
        ("fgm-record-form", 403, BEN), ("fgm-record-check", 403, BEN), ("fgm-create", 403, BEN)}


def test_a_role_without_fgm_activities_is_told_so(web: Web) -> None:
    web.sign_in(CAL)
    web.find(GIRL_WITH_INDICATOR)
    assert web.page.locator("[data-testid=fgm-not-allowed]").is_visible()
    assert web.page.locator("[data-testid=fgm-alert]").count() == 0


def test_forged_posts_are_refused(web: Web, sqlite_server: Server) -> None:
    child = sqlite_server.add_patient()
    web.sign_in(AMY)
    web.find(child)
    web.submit("[data-testid=record-indicator]")
    _date_fields(web, date.today())
    web.submit("Continue")  # a confirmation is now pending
    token = web.csrf_token()
    patient_page = web.path.removesuffix("/indicator/record/check")
    confirm = f"{patient_page}/indicator/record/confirm"
    for form, origin, kind in (({}, None, "form-expired"),  # no token
                               ({"csrf_token": token[:-2] + "xx"}, None, "form-expired"),  # the wrong token
                               ({"csrf_token": token}, "https://attacker.example", "cross-site")):
        sent = web.post(confirm, form, origin)  # refused with a redirect to the refusal (post/redirect/get)
        assert (sent.status, sent.headers["location"]) == (303, f"/web/refused/{kind}")
        shown = web.post(confirm, form, origin, follow=True)
        assert shown.status == 403 and "so it was refused" in shown.text()
    assert sqlite_server.history(child) == []

    # In the browser, a form without the token (as a page on another site would build it) is refused.
    web.page.evaluate("""() => { const f = document.createElement("form"); f.method = "post";
        f.action = location.pathname.replace(/check$/, "confirm"); document.body.append(f); f.submit(); }""")
    web.page.wait_for_selector("[data-testid=error-message]")
    assert "refused" in web.texts("error-message")[0]
    web.check("12-forged-post-refused")
    assert sqlite_server.history(child) == []
    events = [r.event for r in sqlite_server.stored(lambda s: list(s.audit_records()))]
    refused = [e for e in events if e.api == "web" and e.outcome == "CSRF_FAILED" and e.user_id == AMY]
    posts = [e for e in refused if e.interaction == "fgm-create"]  # the POSTs, each answered with a redirect
    assert len(posts) >= 4 and {e.status for e in posts} == {303}
    assert {e.status for e in refused if e.interaction == "form-refused"} == {403}  # the page saying so

    # The real page, with its token, still works: the refusals changed nothing.
    web.page.goto(patient_page)
    web.submit("[data-testid=record-indicator]")
    _date_fields(web, date.today())
    web.submit("Continue")
    web.submit("Record FGM indicator")
    web.page.wait_for_url("**/web/patient/*")
    assert [i.status for i in sqlite_server.history(child)] == [IndicatorStatus.ACTIVE]


def test_a_cross_site_form_carries_no_session(web: Web, sqlite_server: Server) -> None:
    web.sign_in(AMY)
    web.find(sqlite_server.add_patient())
    page = web.context.new_page()
    page.set_content(f"""<form method="post" action="{sqlite_server.base}/web/find">
        <input name="nhs_number" value="9990000026"><button>go</button></form>""")
    with page.expect_navigation():
        page.click("button")
    assert "refused" in page.locator("[data-testid=error-message]").inner_text()
    page.close()


def test_session_cookie_and_sign_out(web: Web) -> None:
    web.sign_in(AMY)
    web.find(GIRL_WITH_INDICATOR)
    patient_page = web.path
    [cookie] = [c for c in web.context.cookies() if c["name"].startswith("__Host-")]
    assert cookie["name"] == "__Host-safeguarding-session"
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert GIRL_WITH_INDICATOR not in cookie["value"]  # encrypted: the browser cannot read the selection
    web.sign_out()
    response = web.page.goto(patient_page)
    assert response is not None and web.page.url.endswith("/web/")
    assert web.page.locator("h1#sign-in").is_visible()


def test_the_root_redirects_to_the_interface(web: Web) -> None:
    web.page.goto("/")
    assert web.page.url.endswith("/web/")
