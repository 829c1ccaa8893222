"""Sessions end when the person signs out, everywhere: a copy of the session cookie taken before
sign-out no longer works, in another browser or in a plain HTTP client. The cookie is a session cookie
(no Max-Age). Before the idle time-out the page warns; when it passes, patient data is hidden."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Response

from ..support import Server
from .browser import AMY, GIRL_WITH_INDICATOR, Web


def test_signing_out_ends_the_session_everywhere(web: Web, other_web: Web, sqlite_server: Server) -> None:
    web.sign_in(AMY)
    web.find(GIRL_WITH_INDICATOR)
    patient_page = web.path
    [cookie] = [c for c in web.context.cookies() if c["name"] == "__Host-safeguarding-session"]
    assert cookie["expires"] == -1  # a session cookie: no Max-Age or Expires unless configured
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    other_web.context.add_cookies([cookie])  # a copy, in another browser
    copied = other_web.page.goto(patient_page)
    assert copied is not None and copied.status == 200 and other_web.page.locator("[data-testid=fgm-alert]").count()
    with httpx.Client(verify=sqlite_server.tls(), follow_redirects=False) as client:
        headers = {"Cookie": f"{cookie['name']}={cookie['value']}"}
        assert client.get(f"{sqlite_server.base}{patient_page}", headers=headers).status_code == 200

        web.sign_out()
        assert web.page.title().startswith("You have signed out")
        web.check("30-signed-out")

        after = client.get(f"{sqlite_server.base}{patient_page}", headers=headers)
        assert (after.status_code, after.headers["location"]) == (303, "/web/")
        home = client.get(f"{sqlite_server.base}/web/", headers=headers)
        assert home.status_code == 200 and 'id="sign-in"' in home.text and "Dr Amy Sandbox (RR8" not in home.text
    again = other_web.page.goto(patient_page)
    assert again is not None and other_web.page.locator("h1#sign-in").is_visible()
    assert other_web.page.locator("[data-testid=fgm-alert]").count() == 0

    events = [r.event for r in sqlite_server.stored(lambda s: list(s.audit_records()))]
    signed_out = [e for e in events if e.api == "web" and e.interaction == "sign-out"]
    assert signed_out and (signed_out[-1].user_id, signed_out[-1].status) == (AMY, 303)


def test_the_idle_warning_then_patient_data_hidden(browser: Browser, sqlite_server: Server) -> None:
    web = Web.open(browser, sqlite_server)
    try:
        web.page.clock.install()
        web.sign_in(AMY)
        web.find(GIRL_WITH_INDICATOR)
        warning = web.page.locator("[data-testid=idle-warning]")
        assert not warning.count()
        web.page.clock.run_for("13:10")  # the sandbox's limit is 15 minutes: warned 2 minutes before
        assert warning.is_visible() and "signed out in 2 minutes" in warning.inner_text()
        assert web.page.locator("[data-testid=fgm-alert]").is_visible()  # still shown while warned
        web.check("31-idle-warning")
        web.page.click("button:has-text('Stay signed in')")
        warning.wait_for(state="detached")

        web.page.clock.run_for("15:01")
        web.page.locator("[data-testid=idle-signed-out]").wait_for()
        assert web.page.locator("[data-testid=patient-banner]").count() == 0
        assert web.page.locator("[data-testid=fgm-alert]").count() == 0
        assert "999 000 0018" not in web.page.inner_text("body")
        assert web.page.title().startswith("You have been signed out")
        web.check("32-idle-signed-out")
    finally:
        web.close()


def test_following_a_link_from_another_site_keeps_the_session(web: Web, sqlite_server: Server) -> None:
    """A clinician opens the service from a link in another system (another site: the browser withholds the
    SameSite=Strict session cookie on that navigation). The service answers with a page that opens the same
    address again from its own site, setting no cookie, so she arrives signed in, and her session is not
    replaced by a new anonymous one: another tab of hers is still signed in afterwards."""
    web.sign_in(AMY)
    other_site = web.context.new_page()
    answers: list[Response] = []
    other_site.on("response", lambda response: answers.append(response))
    other_site.set_content(f'<a id="to-service" href="{sqlite_server.base}/web/">FGM-IS</a>')  # an opaque origin
    other_site.click("#to-service")
    other_site.wait_for_selector("[data-testid=signed-in-user]")
    start = [answer for answer in answers if answer.url == f"{sqlite_server.base}/web/"]
    assert [answer.status for answer in start] == [200, 200]
    reopen, page = start
    assert "set-cookie" not in reopen.all_headers()
    assert reopen.request.all_headers()["sec-fetch-site"] == "cross-site"
    assert page.request.all_headers()["sec-fetch-site"] == "same-origin"
    web.page.goto("/web/")
    assert web.page.locator("[data-testid=signed-in-user]").is_visible()
    other_site.close()
