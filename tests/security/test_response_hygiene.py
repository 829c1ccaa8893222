"""What every answer carries and never carries: security headers, no server version, no CORS, no stack
traces or internals, no patient data in error texts; and an unexpected failure is a generic 500 whose
details (which may quote data) reach neither the caller nor the log."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx
from starlette.types import Message

from safeguarding.api.pipeline import ApiRequest, ApiResponse, Dialect, Endpoint
from safeguarding.logs import JsonFormatter
from safeguarding.services.context import RequestContext

from ..api.test_fgm_dstu2 import message
from ..support import NHS_SYSTEM, Server, flag_body, invalid_check_digit
from .helpers import GP_ASID, cert_of, cpis_landed
from .test_hostile_input import raw

GIRL = "9990000018"
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}
INTERNALS = ("Traceback", 'File "', ".py", "sqlalchemy", "psycopg", "sqlite", "pydantic", "lxml", "orjson",
             "starlette", "uvicorn", "httptools", " object at 0x", "KeyError", "ValueError", "TypeError")


def _gp(server: Server) -> tuple[str, str]:
    return next(cert_of(s) for s in server.facts["systems"] if s["asid"] == GP_ASID)


def _every_kind_of_answer(server: Server) -> dict[str, httpx.Response]:
    token = server.headers()
    with server.client() as http, server.client(cert=_gp(server)) as gp:
        answers = {
            "r4 metadata": http.get(f"{server.fgm}/metadata"),
            "r4 search": http.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL}, headers=token),
            "r4 xml": http.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL, "_format": "xml"},
                               headers=token),
            "r4 401": http.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL}),
            "r4 400": http.post(f"{server.fgm}/Flag", content=b"{", headers={**token, "Content-Type":
                                                                              "application/fhir+json"}),
            "router 404": http.get(f"{server.base}/nothing/here"),
            "router 405": http.delete(f"{server.fgm}/Flag/x"),
            "dstu2 200": gp.post(f"{server.base}/fhir/fgm/query", content=message("query", GIRL),
                                 headers={"Content-Type": "text/xml"}),
            "dstu2 403": http.post(f"{server.base}/fhir/fgm/query", content=message("query", GIRL),
                                   headers={"Content-Type": "text/xml"}),
            "ping": http.get(f"{server.base}/_ping"),
            "status": http.get(f"{server.base}/_status"),
            "metrics": http.get(f"{server.base}/_metrics"),
            "openapi": http.get(f"{server.base}/_openapi"),
        }
        if cpis_landed(server):
            answers["cpis metadata"] = http.get(f"{server.cpis}/metadata")
            answers["cpis 401"] = http.get(f"{server.cpis}/CareTeam", params={"patient:identifier": GIRL})
    return answers


def test_every_answer_carries_the_security_headers_and_no_server_version(server: Server) -> None:
    for name, response in _every_kind_of_answer(server).items():
        for header, value in SECURITY_HEADERS.items():
            assert response.headers.get(header) == value, (name, header)
        assert "server" not in response.headers and "x-powered-by" not in response.headers, name
        assert "x-aspnet-version" not in response.headers
    # Answers made below the application (unparseable HTTP, oversized heads) too.
    for data in (b"NOT HTTP\r\n\r\n", b"GET /_ping HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"):
        head = raw(server, data).partition(b"\r\n\r\n")[0].decode().lower()
        for header, value in SECURITY_HEADERS.items():
            assert f"{header}: {value.lower()}" in head, header
        assert "\r\nserver:" not in head


def test_cors_is_closed(server: Server) -> None:
    paths = [f"{server.fgm}/Flag", f"{server.fgm}/metadata", f"{server.base}/fhir/fgm/query", f"{server.base}/_ping"]
    if cpis_landed(server):
        paths += [f"{server.cpis}/CareTeam", server.cpis]
    with server.client() as http:
        for path in paths:
            for origin in ("https://evil.example", "null", server.base):
                simple = http.get(path, headers={"Origin": origin, **server.headers()})
                preflight = http.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                        "Access-Control-Request-Headers": "authorization,content-type"})
                for response in (simple, preflight):
                    leaked = [h for h in response.headers if h.startswith("access-control-")]
                    assert leaked == [], (path, origin, leaked)
                assert preflight.status_code == 405, path
                if "/fhir/fgm/" in path:  # a DSTU2 response message, as every answer there
                    assert b"<code value=\"not-supported\"/>" in preflight.content, path
                else:
                    assert preflight.json()["issue"][0]["details"]["coding"][0]["code"] == "METHOD_NOT_ALLOWED"


def test_error_texts_hold_no_internals_and_no_patient_data(server: Server) -> None:
    over_18 = server.add_patient(age=19)
    unverified = server.add_patient(verified=False)
    bad = invalid_check_digit(server.add_patient())
    token = {**server.headers(), "Content-Type": "application/fhir+json"}
    with server.client() as http, server.client(cert=_gp(server)) as gp:
        errors = {
            over_18: http.post(f"{server.fgm}/Flag", json=flag_body(over_18), headers=token),
            unverified: http.get(f"{server.fgm}/Flag", params={"patient:identifier": f"{NHS_SYSTEM}|{unverified}"},
                                 headers=token),
            bad: http.get(f"{server.fgm}/Flag", params={"patient:identifier": bad}, headers=token),
            f"{bad}-xml": http.post(f"{server.fgm}/Flag", content=f"<Flag xmlns='http://hl7.org/fhir'><zz>{bad}</zz>"
                                    "</Flag>", headers={**token, "Content-Type": "application/fhir+xml"}),
            f"{bad}-json": http.post(f"{server.fgm}/Flag", content=json.dumps({**flag_body(bad), "x": bad}),
                                     headers=token),
            f"{over_18}-dstu2": gp.post(f"{server.base}/fhir/fgm/create", content=message("create", over_18),
                                        headers={"Content-Type": "text/xml"}),
            f"{bad}-dstu2": gp.post(f"{server.base}/fhir/fgm/query", content=message("query", bad),
                                    headers={"Content-Type": "text/xml"}),
            f"{unverified}-dstu2-json": gp.post(f"{server.base}/fhir/fgm/query", content=message("query", unverified)
                                                .replace(b"<?xml", b"{<?xml"), headers={"Content-Type": "text/xml"}),
        }
    for key, response in errors.items():
        number = key.split("-")[0]
        assert 400 <= response.status_code < 500, (key, response.text)
        assert number not in response.text, key  # neither diagnostics nor anything else quotes the number
        for internal in INTERNALS:
            assert internal not in response.text, (key, internal)
    for number in (over_18, unverified):
        assert server.history(number) == []


class _Auditor:
    def __init__(self) -> None:
        self.outcomes: list[tuple[int, str]] = []

    def record(self, ctx: RequestContext, outcome: tuple[int, str]) -> None:
        self.outcomes.append(outcome)
        ctx.audited = True


def test_an_unexpected_failure_is_a_generic_500_that_quotes_nothing(caplog: Any) -> None:
    secret = "9434765919 Jane Doe"

    def handler(request: ApiRequest, ctx: RequestContext) -> ApiResponse:
        raise RuntimeError(f"boom with {secret}")

    auditor = _Auditor()
    endpoint = Endpoint(Dialect("test", ""), "boom", handler, auditor=auditor,  # type: ignore[arg-type]
                        authenticate=None)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": secret.encode(), "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/boom", "query_string": b"", "scheme": "https",
             "server": ("127.0.0.1", 443), "headers": [(b"x-request-id", b"corr-500")], "path_params": {}}
    with caplog.at_level(logging.INFO):
        anyio.run(endpoint, scope, receive, send)
    response = httpx.Response(sent[0]["status"], headers=sent[0]["headers"], content=sent[1]["body"])
    assert response.status_code == 500
    [issue] = response.json()["issue"]
    assert (issue["severity"], issue["code"], issue["details"]["coding"][0]["code"]) == (
        "fatal", "exception", "INTERNAL_SERVER_ERROR")
    assert issue["diagnostics"] == "An unexpected error occurred. Correlation id: corr-500"
    assert secret not in response.text and "Traceback" not in response.text and "RuntimeError" not in response.text
    assert auditor.outcomes == [(500, "INTERNAL_SERVER_ERROR")]
    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "UNHANDLED_ERROR" in logged and "RuntimeError" in logged  # the type and frames, for operators
    assert "9434765919" not in logged and "Jane Doe" not in logged  # never the message
