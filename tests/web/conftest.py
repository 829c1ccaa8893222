from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from ..support import Server
from .browser import AXE, CHROMIUM, CHROMIUM_ARGS, Web


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `scripts/setup-venv test` installs Debian's chromium (as root)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `scripts/setup-venv test` installs it (npm ci in web/)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture()
def web(browser: Browser, sqlite_server: Server) -> Iterator[Web]:
    opened = Web.open(browser, sqlite_server)
    yield opened
    opened.assert_no_nhs_number_in_urls()
    opened.close()


@pytest.fixture()
def other_web(browser: Browser, sqlite_server: Server) -> Iterator[Web]:
    """A second browser (another person at another machine)."""
    opened = Web.open(browser, sqlite_server)
    yield opened
    opened.close()
