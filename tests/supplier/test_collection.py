"""The OpenAPI description's DSTU2 part, the Postman collection made from it (kept in the repository, in
sync), a Newman run of the collection against a sandbox, and the API explorer at /_docs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.routing import Route

from safeguarding.api.openapi import openapi_document
from safeguarding.api.openapi_dstu2 import DSTU2_BASE, example_message
from safeguarding.app import create_app
from safeguarding.sandbox import docs_page
from safeguarding.sandbox.catalogue import DSTU2_ACTIONS, SCENARIOS
from safeguarding.settings import sandbox_settings
from safeguarding.supplier.collection import (
    COLLECTION_FILE,
    ENVIRONMENT_FILE,
    postman_collection,
    postman_environment,
)

from ..support import Server

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "collection"
NEWMAN = ROOT / "tools" / "supplier" / "node_modules" / "newman" / "bin" / "newman.js"


def test_the_committed_collection_and_environment_are_what_the_description_makes() -> None:
    """Regenerate with `safeguarding sandbox collection --out docs/collection` (then drop the filled files)."""
    assert json.loads((COMMITTED / COLLECTION_FILE).read_text()) == postman_collection()
    assert json.loads((COMMITTED / ENVIRONMENT_FILE).read_text()) == postman_environment()


def test_the_collection_holds_every_scenario_with_its_tests() -> None:
    collection = postman_collection()
    items = {item["name"]: item for folder in collection["item"] for item in folder["item"]}
    assert set(items) == {s.id for s in SCENARIOS}
    for scenario in SCENARIOS:
        script = "\n".join(items[scenario.id]["event"][0]["script"]["exec"])
        assert f"pm.response.to.have.status({scenario.status});" in script
        assert f'pm.expect(outcomeCode()).to.eql("{scenario.code}");' in script
    environment = {v["key"]: v for v in postman_environment()["values"]}
    assert environment["token_fgm"]["type"] == "secret" and environment["token_fgm"]["value"] == ""


def test_the_description_covers_dstu2_messaging_with_the_guides_messages(server: Server) -> None:
    document = openapi_document()
    dstu2 = {path: item for path, item in document["paths"].items() if path.startswith(DSTU2_BASE)}
    app = create_app(sandbox_settings(server.data_dir, database_url=server.database_url))
    try:
        routes = {route.path for route in app.routes if isinstance(route, Route) and route.path.startswith(DSTU2_BASE)}
    finally:
        app.state.services.store.close()
    assert set(dstu2) == routes == {f"{DSTU2_BASE}/{kind}" for kind in DSTU2_ACTIONS}
    for kind, action in DSTU2_ACTIONS.items():
        operation = dstu2[f"{DSTU2_BASE}/{kind}"]["post"]
        assert operation["security"] == [{"mutualTLS": []}]
        [soap_action] = [p for p in operation["parameters"] if p.get("name") == "SOAPAction"]
        assert soap_action["example"] == f'"{action}"'
        example = operation["requestBody"]["content"]["text/xml"]["examples"]["nhs-guide"]["value"]
        assert example == example_message(kind) and f'<code value="{action}"/>' in example
        assert {"400", "403", "500"} <= set(operation["responses"])
    # the query example, sent as it is by the sandbox GP system, is answered with the sandbox girl's Flag
    query = dstu2[f"{DSTU2_BASE}/query"]["post"]["requestBody"]["content"]["text/xml"]["examples"]["nhs-guide"]
    with server.client(server.system_cert("047192794544")) as http:
        answer = http.post(f"{server.base}{DSTU2_BASE}/query", content=query["value"],
                           headers={"Content-Type": "text/xml", "SOAPAction": f'"{DSTU2_ACTIONS["query"]}"'})
    assert answer.status_code == 200, answer.text
    assert "<Flag>" in answer.text


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: scripts/install-supplier-tools")
def test_newman_runs_the_collection_green_against_the_sandbox(supplier_server: Server, tmp_path: Path) -> None:
    assert NEWMAN.exists(), "run scripts/install-supplier-tools (scripts/setup-venv does)"
    out = tmp_path / "collection"
    subprocess.run([sys.executable, "-m", "safeguarding", "sandbox", "collection", "--out", str(out), "--data-dir",
                    str(supplier_server.data_dir), "--port", str(supplier_server.port), "--client-id", "newman-run"],
                   check=True, capture_output=True)
    assert json.loads((out / COLLECTION_FILE).read_text()) == postman_collection()
    report = tmp_path / "newman.json"
    done = subprocess.run(
        [shutil.which("node") or "node", str(NEWMAN), "run", str(out / COLLECTION_FILE),
         "-e", str(out / ENVIRONMENT_FILE), "--ssl-extra-ca-certs", str(supplier_server.ca), "--ssl-client-cert-list",
         str(out / "sandbox.certificates.json"), "--reporters", "cli,json", "--reporter-json-export", str(report),
         "--timeout-request", "60000"],
        capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["requests"] == {"total": len(SCENARIOS), "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0 and stats["assertions"]["total"] == len(SCENARIOS)
    # the run is in the audit trail under the client id its tokens carry
    assured = tmp_path / "newman.json.report"
    subprocess.run([sys.executable, "-m", "safeguarding", "assure", "--client-id", "newman-run", "--out",
                    str(assured.with_suffix(".json")), "--data-dir", str(supplier_server.data_dir)], check=True,
                   capture_output=True)
    exercised = json.loads(assured.with_suffix(".json").read_text())["scenarios_exercised"]
    assert "r4-store-unavailable" in exercised and "cpis-plan-ending-today" in exercised


def test_the_api_explorer_is_served_locally_in_the_sandbox_only(supplier_server: Server) -> None:
    if not (docs_page.ASSETS / "swagger-ui-bundle.js").exists():
        pytest.fail("run scripts/install-supplier-tools: the explorer's assets are missing")
    with supplier_server.client() as http:
        page = http.get(f"{supplier_server.base}/_docs")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == docs_page.CSP
        assert "default-src 'none'" in docs_page.CSP and "script-src 'self';" in docs_page.CSP
        sources = [part.split('"')[0] for part in page.text.split('src="')[1:]] + \
            [part.split('"')[0] for part in page.text.split('href="')[1:]]
        assert sources and all(src.startswith("/_docs/") for src in sources)  # nothing from elsewhere
        assert "<script>" not in page.text  # no inline script
        for src in sources:
            asset = http.get(f"{supplier_server.base}{src}")
            assert asset.status_code == 200, src
            assert asset.content
        assert "/_openapi" in http.get(f"{supplier_server.base}/_docs/explorer.js").text
        assert http.get(f"{supplier_server.base}/_docs/package.json").status_code == 404
    assert docs_page.docs_routes(False) == []
    assert [r.path for r in docs_page.docs_routes(True)] == ["/_docs", "/_docs/explorer.js", "/_docs/{name}"]


def test_outside_the_sandbox_there_is_no_explorer(server: Server) -> None:
    settings = sandbox_settings(server.data_dir, database_url=server.database_url)
    production = type(settings)(**{**settings.__dict__, "sandbox": False})
    app = create_app(production)
    try:
        assert not [r for r in app.routes if isinstance(r, Route) and r.path.startswith("/_docs")]
    finally:
        app.state.services.store.close()


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="scripts/install-browser installs Chromium")
def test_the_explorer_renders_every_operation_in_a_browser_without_csp_violations(supplier_server: Server) -> None:
    from playwright.sync_api import sync_playwright

    messages: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(ignore_https_errors=True)
            page = context.new_page()
            page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{supplier_server.base}/_docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            operations = len(openapi_document()["paths"])
            assert page.locator(".opblock-summary-path").count() >= operations
            page.locator(".opblock-summary").nth(1).click()  # open one: its parameters and examples render
            page.wait_for_selector(".parameters-container", timeout=10_000)
        finally:
            browser.close()
    assert [m for m in messages if "Content Security Policy" in m or m.startswith("pageerror")] == []
    assert requested and all(url.startswith(supplier_server.base) for url in requested)  # nothing from a CDN
