"""Driving the web interface in headless Chromium (Debian's, through Playwright): sign in, find a
patient, and check every page: a screenshot kept in test-artifacts/web/, axe-core with no serious or
critical violation, no Content-Security-Policy violation, and no NHS number in any URL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page

from ..support import USED_NHS_NUMBERS, Server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = REPO / "test-artifacts" / "web"
WIDTHS = (1280, 375)  # a desktop and a phone
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

# The sandbox's users (sandbox/setup.py USERS): docs/sandbox.md.
AMY = "555021935107"  # B0370, B0380: query, record, remove
BEN = "555021937109"  # B0370: query only
CAL = "555021939101"  # B0107 only: no FGM
ERIN = "555021941103"  # B0107: CP-IS unscheduled (emergency department)
GUS = "555021943105"  # B0170 only: CP-IS scheduled (silent read)
GIRL_WITH_INDICATOR = "9990000018"


@dataclass
class Web:
    """One browser context (a fresh cookie jar) on the server's web interface."""

    server: Server
    context: BrowserContext
    page: Page
    urls: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, browser: Browser, server: Server) -> Web:
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 900},
                                      base_url=server.base)
        context.add_init_script(path=str(AXE))  # via the DevTools protocol: not subject to the page's CSP
        page = context.new_page()
        web = cls(server, context, page)
        page.on("request", lambda request: web.urls.append(request.url))
        page.on("console", lambda message: web._console(message.text))
        return web

    def _console(self, text: str) -> None:
        if "Content Security Policy" in text:
            self.csp_violations.append(text)

    def close(self) -> None:
        self.context.close()

    def sign_in(self, user_id: str = AMY, setting: str = "unscheduled") -> None:
        self.page.goto("/web/")
        self.page.check(f"#user-{user_id}")
        self.page.check("#care-setting" if setting == "unscheduled" else "#care-setting-2")
        self.submit("Sign in")
        self.page.wait_for_selector("[data-testid=signed-in-user]")

    def sign_out(self) -> None:
        self.submit("Sign out")
        self.page.wait_for_selector("[data-testid=signed-out]")

    def find(self, typed: str) -> None:
        self.page.goto("/web/")
        self.page.fill("#nhs-number", typed)
        self.submit("Find patient")
        self.page.wait_for_url("**/web/patient/*")

    @property
    def path(self) -> str:
        """The current page's path (a patient's pages carry its opaque reference)."""
        return "/" + self.page.url.split("/", 3)[3]

    def check(self, name: str) -> list[dict[str, Any]]:
        """Screenshot the page at 1280 and 375 px wide and run axe-core on it at each: no serious or critical
        violation, and nothing wider than the screen on a phone."""
        found = check_page(self.page, name)
        assert self.csp_violations == [], self.csp_violations
        return found

    def overflow(self) -> int:
        """How wide the page's content is (more than the viewport: the page scrolls sideways)."""
        return overflow(self.page)

    def texts(self, test_id: str) -> list[str]:
        return [t.strip() for t in self.page.locator(f"[data-testid={test_id}]").all_inner_texts()]

    def submit(self, button: str) -> None:
        """Press a button (or follow a link) and wait for the page it leads to."""
        selector = button if button.startswith("[") else f"button:has-text('{button}')"
        with self.page.expect_navigation():
            self.page.click(selector)

    def flash(self) -> str:
        """The success banner's message."""
        return self.page.locator("[data-testid=flash] .nhsuk-notification-banner__heading").inner_text().strip()

    def csrf_token(self) -> str:
        return str(self.page.locator("input[name=csrf_token]").first.get_attribute("value"))

    def post(self, path: str, form: dict[str, str], origin: str | None = None, follow: bool = False) -> Any:
        """A POST from outside the page (same cookies): what a forged or scripted request looks like. With
        ``follow``, the page its redirect leads to (a refusal's page, after post/redirect/get)."""
        headers = {"Origin": origin} if origin else {}
        return self.context.request.post(f"{self.server.base}{path}", form=form, headers=headers,
                                         max_redirects=5 if follow else 0, fail_on_status_code=False)

    def assert_no_nhs_number_in_urls(self) -> None:
        ours = [u for u in self.urls if u.startswith(self.server.base)]
        assert ours, "no request reached the server"
        numbers = set(USED_NHS_NUMBERS) | {p["nhs_number"] for p in self.server.facts["patients"]}
        flat = [u.replace("%20", "").replace("+", "").replace("-", "") for u in ours]
        assert [u for u in flat if any(n in u for n in numbers)] == []


def overflow(page: Page) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


def check_page(page: Page, name: str) -> list[dict[str, Any]]:
    """``Web.check`` for any page whose context has axe-core injected (``context.add_init_script``)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    found: list[dict[str, Any]] = []
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
            violations: list[dict[str, Any]] = page.evaluate(
                """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))""")
            (SHOTS / f"{name}-{width}.axe.json").write_text(json.dumps(violations, indent=2))
            bad = [v for v in violations if v["impact"] in ("serious", "critical")]
            assert bad == [], f"{name} at {width} px: {json.dumps(bad, indent=2)}"
            assert overflow(page) <= width, f"{name} is wider than {width} px"
            found.extend(violations)
    finally:
        if size:
            page.set_viewport_size(size)
    return found
