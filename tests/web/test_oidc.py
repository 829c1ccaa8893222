"""Sign-in with the organisation's OpenID Connect provider (CIS2-shaped), against a fake provider on
loopback and a server started production-style from TOML configuration: the authorization-code flow
with PKCE, state and nonce; role selection by the API's rules; each way a sign-in must fail."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Route

from safeguarding.domain.patients import Gender, Patient
from safeguarding.store.sql import SqlStore

from ..conftest import ARTIFACTS
from ..production_server import production
from ..support import fresh_nhs_number, years_ago
from .browser import AXE, check_page
from .fake_oidc import CLIENT_ID, CLIENT_SECRET, ROLE_A, ROLE_B, FakeOidcProvider, Person

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Deployment:
    base: str
    tls: ssl.SSLContext
    idp: FakeOidcProvider
    database_url: str
    audit_key: bytes
    child: str
    log: Path

    def audit(self) -> list[dict[str, object]]:
        store = SqlStore.open(self.database_url, self.audit_key)
        try:
            return [r.event.fields() for r in store.audit_records()]
        finally:
            store.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("oidc-deployment")
    with FakeOidcProvider().running() as idp:
        (root / "oidc-client-secret").write_text(CLIENT_SECRET + "\n")
        config = f"""
[[trusted_issuers]]
issuer = "{idp.issuer}"
audience = "safeguarding-api"
jwks_url = "{idp.base}/jwks"

[web.oidc]
issuer = "{idp.issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "oidc-client-secret"
authorization_endpoint = "{idp.base}/authorize"
token_endpoint = "{idp.base}/token"
userinfo_endpoint = "{idp.base}/userinfo"
jwks_uri = "{idp.base}/jwks"
"""
        child = fresh_nhs_number()
        ARTIFACTS.mkdir(exist_ok=True)
        girl = Patient(child, True, years_ago(date.today(), 8), Gender.FEMALE)
        with production(root, config, ARTIFACTS / "server-oidc.log", [girl]) as server:
            yield Deployment(server.base, server.tls, idp, f"sqlite:///{root / 'prod.db'}",
                             (root / "audit.key").read_bytes(), child, server.log)


@pytest.fixture()
def browser_like(deployment: Deployment) -> Iterator[httpx.Client]:
    deployment.idp.person, deployment.idp.tamper = Person(), None
    with httpx.Client(verify=deployment.tls, follow_redirects=False, timeout=30) as client:
        yield client


def csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: httpx.Client, deployment: Deployment) -> httpx.Response:
    """Through the provider and back: the answer of the callback."""
    start = client.get(f"{deployment.base}/web/")
    assert start.status_code == 200 and "Sign in with NHS Care Identity" in start.text
    assert "Test user and role" not in start.text  # no sandbox users outside the sandbox
    assert f"form-action 'self' {deployment.idp.base}" in start.headers["content-security-policy"]
    redirect = client.post(f"{deployment.base}/web/sign-in/oidc", data={"csrf_token": csrf(start)})
    assert redirect.status_code == 303
    authorize = redirect.headers["location"]
    assert authorize.startswith(f"{deployment.idp.base}/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{deployment.base}/web/oidc/callback"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert {"openid", "nationalrbacaccess", "selectedrole"} <= set(query["scope"].split())
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    back = client.get(authorize)
    assert back.status_code == 302
    return client.get(back.headers["location"])


def find_child(client: httpx.Client, deployment: Deployment) -> httpx.Response:
    home = client.get(f"{deployment.base}/web/")
    found = client.post(f"{deployment.base}/web/find", data={"csrf_token": csrf(home), "nhs_number": deployment.child})
    assert found.status_code == 303 and found.headers["location"].startswith("/web/patient/")
    assert deployment.child not in found.headers["location"]
    return client.get(f"{deployment.base}{found.headers['location']}")


def test_sign_in_with_the_provider_then_use_the_service(browser_like: httpx.Client, deployment: Deployment) -> None:
    callback = sign_in(browser_like, deployment)
    assert callback.status_code == 200
    assert '<meta http-equiv="refresh" content="0;url=/web/">' in callback.text  # a same-site step
    home = browser_like.get(f"{deployment.base}/web/")
    assert "Find a patient by NHS number" in home.text and "Dr Olivia Idp" in home.text
    patient = find_child(browser_like, deployment)
    assert patient.status_code == 200 and "No FGM indicator is recorded" in patient.text
    assert "Record an FGM indicator" in patient.text  # ROLE_A holds B0380
    [request] = deployment.idp.token_requests[-1:]
    assert request["grant_type"] == "authorization_code" and len(request["code_verifier"]) >= 43
    searches = [e for e in deployment.audit()
                if e["interaction"] == "fgm-search" and e["nhs_number"] == deployment.child]
    assert [(e["api"], e["user_id"], e["role_profile_id"], e["org_code"]) for e in searches] == [
        ("web", "700000000001", "700000000101", "RR8")]
    signed_in = [e for e in deployment.audit() if e["interaction"] == "sign-in-oidc" and e["status"] == 200]
    assert signed_in and signed_in[-1]["user_id"] == "700000000001"


def test_several_roles_and_none_selected_the_person_chooses(browser_like: httpx.Client,
                                                           deployment: Deployment) -> None:
    deployment.idp.person = Person(roles=[ROLE_A, ROLE_B], selected=None)
    assert sign_in(browser_like, deployment).status_code == 200
    choose = browser_like.get(f"{deployment.base}/web/")
    assert "Choose your role" in choose.text
    assert "General Medical Practitioner at Sandbox Surgery" in choose.text
    assert "B0825" not in choose.text  # activity codes this service does not use are not carried
    token = csrf(choose)
    wrong = browser_like.post(f"{deployment.base}/web/role", data={"csrf_token": token, "role": "999999999999",
                                                                   "care_setting": "unscheduled"})
    assert wrong.status_code == 303 and wrong.headers["location"] == "/web/"  # post/redirect/get
    again = browser_like.get(f"{deployment.base}/web/")
    assert "<title>Error: Choose your role" in again.text and "Choose a role and a care setting" in again.text
    chosen = browser_like.post(f"{deployment.base}/web/role",
                               data={"csrf_token": token, "role": ROLE_B["person_roleid"], "care_setting": "scheduled"})
    assert chosen.status_code == 303
    patient = find_child(browser_like, deployment)
    assert "No FGM indicator is recorded" in patient.text
    assert "Record an FGM indicator" not in patient.text  # ROLE_B holds only B0370
    last = [e for e in deployment.audit() if e["interaction"] == "fgm-search"][-1]
    assert (last["role_profile_id"], last["org_code"]) == ("700000000102", "B86022")


@pytest.mark.parametrize("tamper", ["nonce", "audience", "issuer", "key", "sub", "deny"])
def test_a_sign_in_that_does_not_verify_is_refused(tamper: str, browser_like: httpx.Client,
                                                   deployment: Deployment) -> None:
    deployment.idp.tamper = tamper
    callback = sign_in(browser_like, deployment)
    assert callback.status_code == 401 and "Sign-in did not complete" in callback.text
    not_signed_in = browser_like.get(f"{deployment.base}/web/patient/any-reference")
    assert not_signed_in.headers["location"] == "/web/"
    refused = [e for e in deployment.audit() if e["interaction"] == "sign-in-oidc"][-1]
    assert (refused["status"], refused["outcome"], refused["user_id"]) == (401, "SIGN_IN_FAILED", None)


def test_a_callback_with_another_state_is_refused(browser_like: httpx.Client, deployment: Deployment) -> None:
    start = browser_like.get(f"{deployment.base}/web/")
    redirect = browser_like.post(f"{deployment.base}/web/sign-in/oidc", data={"csrf_token": csrf(start)})
    back = browser_like.get(redirect.headers["location"])
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    forged = browser_like.get(f"{deployment.base}/web/oidc/callback", params={"code": code, "state": "attacker"})
    assert forged.status_code == 401
    with httpx.Client(verify=deployment.tls, follow_redirects=False) as stranger:  # no sign-in cookie at all
        assert stranger.get(back.headers["location"]).status_code == 401
    assert browser_like.get(f"{deployment.base}/web/patient/any-reference").status_code == 303


def test_the_log_holds_no_patient_data_or_tokens(deployment: Deployment) -> None:
    text = deployment.log.read_text()
    assert '"api":"web"' in text
    assert deployment.child not in text and "eyJ" not in text and "code=" not in text


def test_signing_in_and_choosing_a_role_in_a_browser(browser: Browser, deployment: Deployment) -> None:
    """The provider's sign-in and the role choice in Chromium: every page screenshotted and checked."""
    deployment.idp.person, deployment.idp.tamper = Person(roles=[ROLE_A, ROLE_B], selected=None), None
    context = browser.new_context(ignore_https_errors=True, base_url=deployment.base)
    context.add_init_script(path=str(AXE))
    try:
        page = context.new_page()
        page.goto("/web/")
        check_page(page, "60-sign-in-oidc")
        # The provider sends the browser back to the callback, whose "Signing in" page moves on to /web/ at
        # once (a meta refresh: from our own origin, so the SameSite=Strict cookie goes with it). That refresh
        # is stopped here (as a browser that does not refresh would) so the page can be checked; its
        # "Continue" link then leads on.
        refreshed: list[str] = []
        home = re.compile(r".*/web/$")

        def stop(route: Route) -> None:
            refreshed.append(route.request.url)
            route.abort("aborted")  # the navigation is dropped: the page stays as it is

        page.route(home, stop)
        page.click("button:has-text('Sign in with NHS Care Identity')")
        page.wait_for_selector("h1:has-text('Signing in')")
        assert "/web/oidc/callback?" in page.url and page.title().startswith("Signing in")
        for _ in range(100):  # the refresh is asked for as soon as the page has loaded; up to 10 s all the same
            if refreshed:
                break
            page.wait_for_timeout(100)
        assert refreshed == [f"{deployment.base}/web/"]
        page.unroute(home)
        check_page(page, "63-signing-in")
        with page.expect_navigation(url="**/web/"):
            page.click("[data-testid=continue]")
        page.wait_for_selector("h1:has-text('Choose your role')")
        assert "General Medical Practitioner at Sandbox Surgery" in page.inner_text("main")
        check_page(page, "61-choose-role")
        page.click("button:has-text('Continue')")  # nothing chosen: the error, after a redirect
        page.wait_for_selector(".nhsuk-error-summary")
        assert page.title().startswith("Error: Choose your role")
        check_page(page, "62-choose-role-error")
        page.check("#role-2")
        with page.expect_navigation():
            page.click("button:has-text('Continue')")
        assert "Dr Olivia Idp" in page.inner_text("[data-testid=signed-in-user]")
    finally:
        context.close()
