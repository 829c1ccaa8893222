"""The web interface in process (no browser): the patient page without a CP-IS service (as before CP-IS
landed), static files, and the interface's own 404."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import anyio
import httpx
from starlette.applications import Starlette

from safeguarding.app import build_services
from safeguarding.sandbox.setup import ensure_sandbox
from safeguarding.settings import Layout
from safeguarding.web.routes import web_routes

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_the_patient_page_works_without_cp_is(tmp_path: Path) -> None:
    settings = ensure_sandbox(tmp_path / "sandbox")
    full = build_services(settings)
    try:
        without_cpis = SimpleNamespace(store=full.store, fgm=full.fgm, auditor=full.auditor)
        app = Starlette(routes=web_routes(settings, without_cpis))  # type: ignore[arg-type]
        anyio.run(_browse, app)
    finally:
        full.store.close()


async def _browse(app: Starlette) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
        start = await client.get("/web/")
        token = CSRF.search(start.text).group(1)  # type: ignore[union-attr]
        signed_in = await client.post("/web/sign-in", data={"csrf_token": token, "user": "555021941103",
                                                            "care_setting": "unscheduled"})
        assert signed_in.status_code == 303
        home = await client.get("/web/")
        token = CSRF.search(home.text).group(1)  # type: ignore[union-attr]
        found = await client.post("/web/find", data={"csrf_token": token, "nhs_number": "9990000123"})
        page = await client.get(found.headers["location"])
        assert page.status_code == 200 and "999 000 0123" in page.text
        assert "Child protection (CP-IS)" not in page.text
        assert page.headers["cache-control"] == "no-store"

        css = await client.get("/web/static/nhsuk/nhsuk-frontend.min.css")
        assert css.status_code == 200 and css.headers["cache-control"] == "public, max-age=3600"
        assert "assets.nhs.uk" not in css.text  # no CDN: nothing is fetched from elsewhere
        missing = await client.get("/web/no-such-page")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")


def test_a_service_that_fails_is_not_checked_rather_than_nothing(tmp_path: Path) -> None:
    """A real failure of the real store: the FGM and CP-IS tables are gone while the patient's
    demographics still answer. The page says the service had a problem; it never says "nothing"."""
    settings = ensure_sandbox(tmp_path / "sandbox")
    services = build_services(settings)
    try:
        app = Starlette(routes=web_routes(settings, services))
        anyio.run(_service_failure, app, Layout(tmp_path / "sandbox").database)
    finally:
        services.store.close()


async def _patient_page(client: httpx.AsyncClient, user: str, nhs_number: str) -> str:
    start = await client.get("/web/")
    token = CSRF.search(start.text).group(1)  # type: ignore[union-attr]
    await client.post("/web/sign-in", data={"csrf_token": token, "user": user, "care_setting": "unscheduled"})
    home = await client.get("/web/")
    token = CSRF.search(home.text).group(1)  # type: ignore[union-attr]
    found = await client.post("/web/find", data={"csrf_token": token, "nhs_number": nhs_number})
    return found.headers["location"]


async def _service_failure(app: Starlette, database: Path) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
        fgm_page = await _patient_page(client, "555021935107", "9990000018")  # Dr Amy: FGM
        before = await client.get(fgm_page)
        assert before.status_code == 200 and 'data-testid="fgm-alert"' in before.text
        with sqlite3.connect(database) as db:
            db.execute("ALTER TABLE fgm_indicators RENAME TO fgm_indicators_gone")
            db.execute("ALTER TABLE cpis_plans RENAME TO cpis_plans_gone")
        failed = await client.get(fgm_page)
        assert failed.status_code == 200 and "999 000 0018" in failed.text  # the demographics still answer
        assert 'data-testid="fgm-service-error"' in failed.text
        assert "FGM information could not be checked: there is a problem with the service" in failed.text
        assert 'data-testid="fgm-none"' not in failed.text and "No FGM indicator" not in failed.text

        await client.post("/web/sign-out", data={"csrf_token": CSRF.search(failed.text).group(1)})  # type: ignore[union-attr]
        cpis_page = await _patient_page(client, "555021941103", "9990000018")  # Dr Erin: CP-IS
        page = await client.get(cpis_page)
        assert 'data-testid="cpis-service-error"' in page.text and 'data-testid="cpis-none"' not in page.text


def test_sign_out_is_kept_by_the_store_and_a_failed_check_refuses_keeping_the_cookie(tmp_path: Path) -> None:
    """Sign-out is a row in the service's own store (no file of its own beside the database); a copy of
    the cookie is then no session. When the store cannot say whether a session was signed out, the
    request is refused with a 503 and the cookie is kept (the session is not ended by an outage)."""
    settings = ensure_sandbox(tmp_path / "sandbox")
    services = build_services(settings)
    try:
        app = Starlette(routes=web_routes(settings, services))
        anyio.run(_signed_out_in_the_store, app, Layout(tmp_path / "sandbox").database)
    finally:
        services.store.close()
    assert not list((tmp_path / "sandbox").glob("*web-signed-out*"))


async def _signed_out_in_the_store(app: Starlette, database: Path) -> None:
    transport = httpx.ASGITransport(app=app)
    async with (httpx.AsyncClient(transport=transport, base_url="https://testserver") as client,
                httpx.AsyncClient(transport=transport, base_url="https://testserver") as copy,
                httpx.AsyncClient(transport=transport, base_url="https://testserver") as other):
        page = await _patient_page(client, "555021935107", "9990000018")
        copy.cookies.set("__Host-safeguarding-session", client.cookies["__Host-safeguarding-session"])
        assert (await copy.get(page)).status_code == 200
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT count(*) FROM web_signed_out_session").fetchone() == (0,)
        home = await client.get("/web/")
        signed_out = await client.post("/web/sign-out", data={"csrf_token": CSRF.search(home.text).group(1)})  # type: ignore[union-attr]
        assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/web/signed-out")
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT count(*) FROM web_signed_out_session").fetchone() == (1,)
        after = await copy.get(page)
        assert (after.status_code, after.headers["location"]) == (303, "/web/")

        other_page = await _patient_page(other, "555021935107", "9990000018")
        with sqlite3.connect(database) as db:
            db.execute("ALTER TABLE web_signed_out_session RENAME TO web_signed_out_session_gone")
        failed = await other.get(other_page)
        assert failed.status_code == 503 and "Sorry, the service is unavailable" in failed.text
        assert "999 000 0018" not in failed.text
        kept = failed.headers["set-cookie"]
        assert kept.startswith("__Host-safeguarding-session=") and "Max-Age=0" not in kept
        with sqlite3.connect(database) as db:
            db.execute("ALTER TABLE web_signed_out_session_gone RENAME TO web_signed_out_session")
        again = await other.get(other_page)
        assert again.status_code == 200 and "999 000 0018" in again.text  # the same session, still signed in


def test_a_page_opened_from_another_site_is_reopened_from_this_one_setting_no_cookie(tmp_path: Path) -> None:
    settings = ensure_sandbox(tmp_path / "sandbox")
    services = build_services(settings)
    try:
        app = Starlette(routes=web_routes(settings, services))
        anyio.run(_from_another_site, app)
        events = [r.event for r in services.store.audit_records()]
    finally:
        services.store.close()
    reopened = [e for e in events if e.outcome == "REOPENED_FROM_SITE"]
    assert [(e.api, e.status, e.user_id) for e in reopened] == [("web", 200, None)]


async def _from_another_site(app: Starlette) -> None:
    cross_site = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
        reopen = await client.get("/web/privacy?from=ehr&x=<b>", headers=cross_site)
        assert reopen.status_code == 200 and "set-cookie" not in reopen.headers
        assert reopen.headers["cache-control"] == "no-store"
        assert '<meta http-equiv="refresh" content="0;url=/web/privacy?from=ehr&amp;x=%3Cb%3E">' in reopen.text
        assert "<h1>Opening the service</h1>" in reopen.text
        # With the session cookie the page is served as ever; so is what is not a navigation, and a form post
        # from another site is refused by the CSRF check, as before.
        start = await client.get("/web/")
        assert start.status_code == 200 and "set-cookie" in start.headers
        with_cookie = await client.get("/web/", headers=cross_site)
        assert with_cookie.status_code == 200 and 'id="sign-in"' in with_cookie.text
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as fresh:
        fetched = await fresh.get("/web/", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "cors"})
        assert fetched.status_code == 200 and "Opening the service" not in fetched.text
        posted = await fresh.post("/web/find", headers=cross_site, data={"nhs_number": "9990000018"})
        assert posted.status_code == 303 and posted.headers["location"] == "/web/refused/cross-site"
