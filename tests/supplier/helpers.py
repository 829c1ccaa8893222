"""Sending the sandbox's scenarios (sandbox/catalogue.py) as a supplier's system would."""

from __future__ import annotations

import re
from typing import Any

import httpx

from safeguarding.sandbox.catalogue import Scenario
from safeguarding.settings import sandbox_settings
from safeguarding.supplier.variables import fill, filled_headers, sandbox_variables

from ..support import Server


def variables(server: Server, **options: Any) -> dict[str, str]:
    return sandbox_variables(sandbox_settings(server.data_dir, port=server.port), **options)


def send(server: Server, scenario: Scenario, values: dict[str, str], *, headers: dict[str, str] | None = None,
         drop: tuple[str, ...] = (), timeout: float = 30) -> httpx.Response:
    request = scenario.request
    sent = filled_headers(request.headers, values) | (headers or {})
    for name in drop:
        sent.pop(name, None)
    cert = server.system_cert(request.cert) if request.cert else None
    with httpx.Client(verify=server.tls(cert), timeout=timeout) as http:
        return http.request(request.method, fill("{{base}}" + request.path, values), headers=sent,
                            content=fill(request.body, values).encode() if request.body is not None else None)


def details_code(response: httpx.Response) -> str:
    """The answer's outcome code: an OperationOutcome's details code (JSON or XML), else OK."""
    if response.headers.get("content-type", "").startswith("application/fhir+json"):
        body = response.json()
        if body.get("resourceType") == "OperationOutcome":
            return str(body["issue"][0]["details"]["coding"][0]["code"])
        if body.get("type") == "batch-response":  # a CP-IS upload: the first entry's record code
            return str(body["entry"][0]["response"]["outcome"]["issue"][0]["details"]["coding"][0]["code"])
        return "OK"
    match = re.search(r"<OperationOutcome.*?<details>.*?<code value=\"([A-Z0-9_]+)\"", response.text, re.S)
    return match.group(1) if match else "OK"
