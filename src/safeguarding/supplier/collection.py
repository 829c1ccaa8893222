"""A Postman collection (v2.1, run by Postman or Newman) of the sandbox's scenarios, made from the OpenAPI
description and the scenario catalogue, with its environment file and Newman's client certificate list.

The collection and an environment template are kept in the repository (``docs/collection``) and a test
checks they are what this module makes; ``safeguarding sandbox collection --out DIR`` writes them with
the sandbox's own values (tokens signed now, its URL, its certificates).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..api.openapi import openapi_document
from ..sandbox.catalogue import GP_SYSTEM, QUERY_ONLY_SYSTEM, SANDBOX_CITY, SCENARIOS, Scenario
from .variables import TOKEN_USERS

COLLECTION_FILE = "safeguarding.postman_collection.json"
ENVIRONMENT_FILE = "sandbox.postman_environment.json"
CERTIFICATES_FILE = "sandbox.certificates.json"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
FOLDERS = {"fgm-r4": "FGM-IS FHIR R4", "fgm-dstu2": "FGM-IS DSTU2 messaging", "cpis-r4": "CP-IS FHIR R4"}
# Newman picks a client certificate by URL: the query-only system's requests go to the same server by
# another name (its certificate names both), so each URL has one certificate.
BASE_FOR_CERT = {GP_SYSTEM: "base", QUERY_ONLY_SYSTEM: "base_localhost", SANDBOX_CITY: "base"}
_SECRET = set(TOKEN_USERS)

_CODE_JS = [
    "function outcomeCode() {",
    "  var type = pm.response.headers.get('Content-Type') || '';",
    "  if (type.indexOf('application/fhir+json') === 0) {",
    "    var body = pm.response.json();",
    "    if (body.resourceType === 'OperationOutcome') { return body.issue[0].details.coding[0].code; }",
    "    if (body.type === 'batch-response') {",
    "      return body.entry[0].response.outcome.issue[0].details.coding[0].code;",
    "    }",
    "    return 'OK';",
    "  }",
    "  var outcome = /<OperationOutcome[\\s\\S]*?<details>[\\s\\S]*?<code value=\"([A-Z0-9_]+)\"/;",
    "  var found = outcome.exec(pm.response.text());",
    "  return found ? found[1] : 'OK';",
    "}",
]


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The OpenAPI operation serving ``method path`` (path templates like ``/Flag/{id}`` matched)."""
    bare = path.split("?", 1)[0]
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, bare) and method.lower() in item:
            return dict(item[method.lower()])
    raise LookupError(f"no operation for {method} {bare}")


def _tests(scenario: Scenario) -> list[str]:
    lines = [*_CODE_JS,
             f"pm.test({json.dumps(scenario.id + ': ' + scenario.triggers)}, function () {{",
             f"  pm.response.to.have.status({scenario.status});",
             f"  pm.expect(outcomeCode()).to.eql({json.dumps(scenario.code)});"]
    if scenario.diagnostics is not None:
        expected = json.dumps(scenario.diagnostics)
        lines.append(f"  pm.expect(pm.response.json().issue[0].diagnostics).to.eql({expected});")
    if scenario.retry_after:
        lines.append("  pm.expect(pm.response.headers.get('Retry-After')).to.be.ok;")
    lines.append("});")
    return lines


def _item(document: dict[str, Any], scenario: Scenario) -> dict[str, Any]:
    request = scenario.request
    operation = _operation(document, request.method, request.path)
    base = BASE_FOR_CERT[request.cert] if request.cert else "base"
    described = (f"{operation.get('summary', '')}\n\nScenario `{scenario.id}`: {scenario.trigger}. "
                 f"Answer: {scenario.triggers}.")
    if request.cert:
        described += f" Sent with the client certificate of system {request.cert}."
    item: dict[str, Any] = {
        "name": scenario.id,
        "request": {
            "method": request.method,
            "header": [{"key": k, "value": v} for k, v in request.headers.items()],
            "url": f"{{{{{base}}}}}{request.path}",
            "description": described,
        },
        "event": [{"listen": "test", "script": {"type": "text/javascript", "exec": _tests(scenario)}}],
    }
    if request.body is not None:
        item["request"]["body"] = {"mode": "raw", "raw": request.body}
    return item


def postman_collection() -> dict[str, Any]:
    document = openapi_document()
    folders = []
    for api, name in FOLDERS.items():
        folders.append({"name": name, "item": [_item(document, s) for s in SCENARIOS if s.api == api]})
    return {
        "info": {
            "name": "safeguarding sandbox: the answers a client must handle",
            "description": "Every scenario of the safeguarding sandbox (docs/sandbox.md, docs/suppliers.md): "
                           "FGM-IS FHIR R4, FGM-IS DSTU2 messaging and CP-IS FHIR R4, each request with tests for "
                           "its answer. Made from the service's OpenAPI description (GET /_openapi) by "
                           "`safeguarding sandbox collection`; use it with the environment file that command "
                           "writes. " + document["info"]["title"] + " " + document["info"]["version"] + ".",
            "schema": SCHEMA,
        },
        "item": folders,
    }


def postman_environment(values: dict[str, str] | None = None) -> dict[str, Any]:
    """The environment: ``values`` filled in, or a template (tokens empty, the default sandbox URL)."""
    names = ["base", "base_localhost", "service_asid", "assessment_date", "future_date", "birth_date", *TOKEN_USERS]
    template = {"base": "https://127.0.0.1:8443", "base_localhost": "https://localhost:8443",
                "service_asid": "990101234567"}
    values = values or {}
    return {
        "name": "safeguarding sandbox",
        "values": [{"key": name, "value": values.get(name, template.get(name, "")),
                    "type": "secret" if name in _SECRET else "default", "enabled": True} for name in names],
        "_postman_variable_scope": "environment",
    }


def certificate_list(base: str, base_localhost: str, certs: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """Newman's ``--ssl-client-cert-list``: which client certificate each URL is sent with."""
    urls = {GP_SYSTEM: [f"{base}/fhir/fgm/*"], QUERY_ONLY_SYSTEM: [f"{base_localhost}/fhir/fgm/*"],
            SANDBOX_CITY: [f"{base}/cpis/FHIR/R4"]}
    return [{"name": asid, "matches": urls[asid], "cert": {"src": cert}, "key": {"src": key}}
            for asid, (cert, key) in certs.items()]


def write(out: Path, values: dict[str, str], certs: dict[str, tuple[str, str]]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = {
        COLLECTION_FILE: postman_collection(),
        ENVIRONMENT_FILE: postman_environment(values),
        CERTIFICATES_FILE: certificate_list(values["base"], values["base_localhost"], certs),
    }
    for name, content in written.items():
        (out / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return [out / name for name in written]
