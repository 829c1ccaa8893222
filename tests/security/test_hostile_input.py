"""Hostile input to every API: a 4xx quickly, never a 5xx, never a hang, nothing changed, and the server
keeps serving (``/_ping`` after each batch).

Bodies go to FGM-IS R4 create, FGM-IS DSTU2 create and, once it is served, the CP-IS plan upload: XML
bombs, external entities and DTDs, deep nesting, oversized and element-heavy bodies, bad encodings and
NUL bytes. Then huge and malformed heads, request smuggling shapes, search parameters repeated or
injected, path traversal and odd methods (some over a raw TLS socket, as no client library sends them).
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..api.test_fgm_dstu2 import json_query, message
from ..support import NHS_SYSTEM, Server, flag_body, invalid_check_digit
from .helpers import (
    GP_ASID,
    assert_alive,
    cert_of,
    cpis_landed,
    dstu2_refusal,
    http_complete,
    r4_refusal,
    systems_of_kind,
)

GIRL = "9990000018"  # sandbox girl with an active indicator: hostile searches never change or reveal it
QUICK = 5.0  # seconds: every hostile request is answered within this (they take milliseconds)
FLAG_XML = ('<Flag xmlns="http://hl7.org/fhir"><status value="active"/><code><coding><system value="http://snomed'
            '.info/sct"/><code value="902961000000107"/></coding></code><subject><identifier><system value="https:'
            '//fhir.nhs.uk/Id/nhs-number"/><value value="{nhs}"/></identifier></subject><period><start value="{day}"'
            '/></period>{extra}</Flag>')


@dataclass(frozen=True)
class Body:
    name: str
    content: bytes
    content_type: str


def _flag_xml(nhs: str, extra: str = "") -> str:
    return FLAG_XML.format(nhs=nhs, day="2026-01-05", extra=extra)


def xml_attacks(nhs: str, entity_file: Path | None = None) -> list[Body]:
    """``entity_file`` holds the child's NHS number: an entity resolved from it would make a valid request."""
    flag = _flag_xml(nhs)
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    bodies = {
        "billion laughs": f'<?xml version="1.0"?><!DOCTYPE Flag [{lol}]>' + flag.replace('value="active"',
                                                                                        'value="&lol9;"'),
        "quadratic blow-up": '<?xml version="1.0"?><!DOCTYPE Flag [<!ENTITY a "' + "x" * 50_000 + '">]>'
                             + flag.replace('value="active"', 'value="' + "&a;" * 10_000 + '"'),
        "external entity (file)": '<!DOCTYPE Flag [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                                  + flag.replace('value="active"', 'value="&xxe;"'),
        "external entity (network)": '<!DOCTYPE Flag [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/x">]>'
                                     + flag.replace('value="active"', 'value="&xxe;"'),
        "parameter entity": '<!DOCTYPE Flag [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>' + flag,
        "external DTD": '<!DOCTYPE Flag SYSTEM "http://127.0.0.1:9/evil.dtd">' + flag,
        "public DTD": '<!DOCTYPE Flag PUBLIC "-//X//Y" "file:///etc/passwd">' + flag,
        "XInclude": flag.replace("</Flag>", '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                                            'href="file:///etc/passwd" parse="text"/></Flag>'),
        "stylesheet PI": '<?xml-stylesheet type="text/xsl" href="http://127.0.0.1:9/x.xsl"?>' + flag.replace(
            "<status", "<zz/><status"),
        "deep nesting": '<Flag xmlns="http://hl7.org/fhir">' + "<extension>" * 50_000 + "</extension>" * 50_000
                        + "</Flag>",
        "many elements": flag.replace("</Flag>", '<extension url="x"/>' * 40_000 + "</Flag>"),
        "many attributes": flag.replace("<status", "<status " + " ".join(f'a{i}="1"' for i in range(50_000))),
        "unknown elements": flag.replace("<status", "<riskLevel/><status"),
        "unknown contained resource": flag.replace("<status", "<contained><Nope/></contained><status"),
        "invalid UTF-8": flag.replace("active", "act\udcffive"),
        "not closed": flag[:-3],
    }
    if entity_file is not None:
        bodies["external entity naming the child"] = (f'<!DOCTYPE Flag [<!ENTITY n SYSTEM "file://{entity_file}">]>'
                                                      + flag.replace(nhs, "&n;"))
    encoded = {name: text.encode("utf-8", "surrogateescape") for name, text in bodies.items()}
    encoded["UTF-16 with a DTD"] = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE Flag [<!ENTITY x SYSTEM '
                                    '"file:///etc/passwd">]>' + flag).encode("utf-16")
    encoded["NUL byte"] = flag.encode().replace(b"active", b"act\x00ive")
    encoded["overlong UTF-8 slash"] = flag.encode().replace(b"active", b"act\xc0\xafive")
    return [Body(name, content, "application/fhir+xml") for name, content in encoded.items()]


def json_attacks(nhs: str) -> list[Body]:
    flag = json.dumps(flag_body(nhs))
    bodies = {
        "deep arrays": '{"resourceType": "Flag", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "deep objects": '{"resourceType": "Flag", "x": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}",
        "deep extensions": '{"resourceType": "Flag", "extension": [' + '{"url": "x", "extension": [' * 900
                           + "]}" * 900 + "]}",
        "many elements": flag[:-1] + ', "extension": [' + ",".join(['{"url": "x"}'] * 30_000) + "]}",
        "NUL escaped in a string": flag.replace('"active"', '"act\\u0000ive"'),
        "control character in a string": flag[:-1] + ', "implicitRules": "a\\u0001b"}',
        "control character in a name": flag[:-1] + ', "\\u0013x\\uffff": 1}',  # echoed in expressions: XML-safe?
        "lone surrogate": flag.replace('"active"', '"\\ud800"'),
        "duplicate keys": flag[:-1] + ', "status": "inactive"}',
        "huge number": flag[:-1] + ', "x": 1' + "0" * 100_000 + "}",
        "not an object": "[" + flag + "]",
        "truncated": flag[:-5],
        "prototype pollution": flag[:-1] + ', "__proto__": {"admin": true}, "constructor": {"prototype": {}}}',
    }
    encoded = {name: text.encode() for name, text in bodies.items()}
    encoded["invalid UTF-8"] = flag.encode().replace(b"active", b"act\xff\xfeive")
    encoded["raw NUL byte"] = flag.encode().replace(b"active", b"act\x00ive")
    encoded["UTF-16"] = flag.encode("utf-16")
    return [Body(name, content, "application/fhir+json") for name, content in encoded.items()]


def dstu2_attacks(nhs: str, entity_file: Path) -> list[Body]:
    good = message("create", nhs).decode()
    header = good.split("?>", 1)
    bodies = [Body(b.name, b.content.replace(b"<Flag", b"<Bundle").replace(b"</Flag>", b"</Bundle>"), b.content_type)
              for b in xml_attacks(nhs) if b.name not in ("unknown elements", "unknown contained resource")]
    bodies += [
        Body("DTD in the NHS example", (header[0] + '?><!DOCTYPE Bundle [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                                       + header[1].replace('value="FGM"', 'value="&x;"')).encode(), "text/xml"),
        Body("external entity naming the child in the NHS example", (
            header[0] + f'?><!DOCTYPE Bundle [<!ENTITY n SYSTEM "file://{entity_file}">]>'
            + header[1].replace(nhs, "&n;")).encode(), "text/xml"),
        Body("deep JSON", b'{"resourceType": "Bundle", "type": "message", "entry": '
             + b'[{"resource": ' * 2_000 + b"{}" + b"}]" * 2_000 + b"}", "application/fhir+json"),
        Body("NUL in the practitioner (JSON)", json.dumps({"resourceType": "Bundle", "type": "message", "entry": [
            {"resource": {"resourceType": "MessageHeader", "id": "a\u0000b"}}]}).encode(), "application/fhir+json"),
    ]
    return bodies


def _timed(send: Callable[..., httpx.Response], *args: Any, **kwargs: Any) -> httpx.Response:
    started = time.monotonic()
    response = send(*args, **kwargs)
    assert time.monotonic() - started < QUICK, "not answered quickly"
    return response


def _r4_client_error(response: httpx.Response, case: str) -> None:
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text[:300])
    if "xml" in response.headers.get("content-type", ""):
        assert b"<OperationOutcome" in response.content, case
        return
    status, _, _, diagnostics = r4_refusal(response)
    assert "root:" not in response.text and "Traceback" not in response.text, case
    assert status == response.status_code


@pytest.fixture()
def child(server: Server) -> Iterator[str]:
    """A child every body in a batch names; whatever happens, nothing may be created for her."""
    number = server.add_patient()
    yield number
    assert server.history(number) == []
    assert_alive(server)


def _entity_file(tmp_path: Path, child: str) -> Path:
    path = tmp_path / "nhs-number.txt"
    path.write_text(child)
    return path


def test_hostile_r4_bodies(server: Server, child: str, tmp_path: Path) -> None:
    with server.client() as http:
        for body in xml_attacks(child, _entity_file(tmp_path, child)) + json_attacks(child):
            for method, path in (("POST", "/Flag"), ("PUT", "/Flag/abc"), ("POST", "/Flag?_format=xml")):
                response = _timed(http.request, method, f"{server.fgm}{path}", content=body.content,
                                  headers={**server.headers(), "Content-Type": body.content_type})
                _r4_client_error(response, f"{method} {body.name}")


def _query_with(nhs: str, practitioner_id: str) -> Body:
    document = json.loads(json_query(nhs))
    document["entry"][2]["resource"]["identifier"][0]["value"] = practitioner_id
    return Body(f"practitioner id {practitioner_id!r}", json.dumps(document).encode(), "application/fhir+json")


def test_hostile_dstu2_bodies(server: Server, child: str, tmp_path: Path) -> None:
    gp = next(cert_of(s) for s in server.facts["systems"] if s["asid"] == GP_ASID)
    audited = [_query_with(child, "2000\u00000987"), _query_with(child, "\u0007"), _query_with(child, "\uffff")]
    with server.client(cert=gp) as http:
        for body in dstu2_attacks(child, _entity_file(tmp_path, child)) + json_attacks(child) + audited:
            path = "query" if body in audited else "create"
            response = _timed(http.post, f"{server.base}/fhir/fgm/{path}", content=body.content,
                              headers={"Content-Type": body.content_type})
            status, code, diagnostics = dstu2_refusal(response)
            assert 400 <= status < 500 and code == "MESSAGE_NOT_WELL_FORMED", (body.name, status, code)
            assert "root:" not in response.text, body.name


def _careplan(child: str, name: str, phone: str = "01134960001") -> dict[str, Any]:
    return {"resourceType": "CarePlan", "status": "active", "intent": "plan",
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]}],
            "subject": {"identifier": {"system": NHS_SYSTEM, "value": child}},
            "period": {"start": (date.today() - timedelta(days=3)).isoformat()},
            "contained": [{"resourceType": "CareTeam", "id": "la", "name": name,
                           "telecom": [{"system": "phone", "value": phone, "use": "work"}]}],
            "careTeam": [{"reference": "#la"}]}


def test_hostile_cpis_bodies(server: Server, child: str) -> None:
    if not cpis_landed(server):
        pytest.skip("CP-IS routes are not served yet")
    authority = systems_of_kind(server, "local-authority")[0]
    clinician = server.headers(("B0107",))
    attacks = [b for b in json_attacks(child) + xml_attacks(child)]
    with server.client(cert=cert_of(authority)) as la, server.client() as http:
        for body in attacks:
            for bundle in (body.content.replace(b"Flag", b"Bundle"), body.content):
                response = _timed(la.post, server.cpis, content=bundle, headers={"Content-Type": body.content_type})
                assert response.status_code < 500, (body.name, response.text[:300])
            response = _timed(http.post, f"{server.cpis}/Communication",
                              content=body.content.replace(b"Flag", b"Communication"),
                              headers={**clinician, "Content-Type": body.content_type})
            _r4_client_error(response, f"Communication {body.name}")
        # An alert whose note carries control characters, for a child with a plan (it would be stored).
        plan = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "POST", "url": "CarePlan"},
                "resource": _careplan(child, next(a["name"] for a in server.facts["authorities"]
                                                  if a["asid"] == authority["asid"]))}]}
        assert la.post(server.cpis, json=plan).status_code == 200
        for note in ("Did not\u0000attend", "\u0001", "a\uffff"):
            alert = ('{"resourceType": "Communication", "status": "completed", "subject": {"identifier": '
                     f'{{"system": "{NHS_SYSTEM}", "value": "{child}"}}}}, '
                     f'"payload": [{{"contentString": "{note}"}}]}}')
            response = _timed(http.post, f"{server.cpis}/Communication", content=alert.encode(),
                              headers={**clinician, "Content-Type": "application/fhir+json"})
            _r4_client_error(response, f"alert note {note!r}")
        # A plan whose authority name and phone carry control characters (FHIR strings may not).
        for bad in ("Sandbox\u0000City", "Sandbox\u0007City"):
            plan = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "POST",
                    "url": "CarePlan"}, "resource": _careplan(child, bad, phone=bad)}]}
            response = _timed(la.post, server.cpis, json=plan, headers={"Content-Type": "application/fhir+json"})
            assert response.status_code < 500, response.text[:300]
    assert server.stored(lambda store: [p for p in store.read_plans(child) if "\x00" in p.contact.name]) == []


def test_bodies_over_the_limit(server: Server, child: str) -> None:
    big = json.dumps(flag_body(child))[:-1].encode() + b', "implicitRules": "' + b"a" * (1024 * 1024) + b'"}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    with server.client() as http:
        headers = {**server.headers(), "Content-Type": "application/fhir+json"}
        for content in (big, chunks()):
            response = _timed(http.post, f"{server.fgm}/Flag", content=content, headers=headers)
            assert r4_refusal(response)[:3] == (413, "too-long", "REQUEST_TOO_LARGE")
        for declared in ("2000000000000", "-1", "1e6", "0x10"):
            answer = raw(server, f"POST /fgm/FHIR/R4/Flag HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n"
                                 f"Authorization: Bearer {server.token()}\r\n\r\n{{}}".encode())
            assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 413")), (declared, answer[:80])


# ---------------------------------------------------------------------------------------------
# Heads, smuggling, methods and paths: over a raw TLS socket where clients would refuse to send them
# ---------------------------------------------------------------------------------------------


def raw(server: Server, data: bytes, cert: tuple[str, str] | None = None, timeout: float = QUICK,
        polite: bool = True) -> bytes:
    """Send bytes as they are over TLS and read the answer until the server closes or goes quiet. A polite
    client stops sending once it is answered; a rude one sends everything first."""
    context = server.tls(cert)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as plain:
        with context.wrap_socket(plain, server_hostname="127.0.0.1") as tls:
            answer = b""
            for start in range(0, len(data), 16384):
                try:
                    tls.sendall(data[start:start + 16384])
                except OSError:
                    break
                # Stop sending once the server has answered (it does when it has seen enough): writing on
                # into a closed connection would reset it, and the answer with it.
                if polite and select.select([tls], [], [], 0)[0]:
                    tls.setblocking(False)
                    try:
                        answer += tls.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        pass  # only TLS housekeeping (session tickets)
                    except OSError:
                        break
                    finally:
                        tls.settimeout(timeout)
                    if answer:
                        break
            while time.monotonic() - started < timeout and not http_complete(answer):
                try:
                    chunk = tls.recv(65536)
                except (TimeoutError, OSError):
                    break
                if not chunk:
                    break
                answer += chunk
    assert time.monotonic() - started < timeout + 1, "no answer in time"
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _outcome_of(answer: bytes) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/fhir+json" in head.lower(), answer[:300]
    outcome: dict[str, object] = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    return outcome


def test_hostile_heads(server: Server) -> None:
    token = server.token()
    ping = b"GET /_ping HTTP/1.1\r\nHost: x\r\n"
    cases = {
        "one huge header": (ping + b"X-Pad: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        "many headers": (ping + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
        "huge URL": (b"GET /_ping?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
        "endless header": (ping + b"X-Pad: " + b"a" * 900_000, 431),
        "NUL in a header": (ping + b"X-A: a\x00b\r\n\r\n", 400),
        "no colon": (ping + b"not a header\r\n\r\n", 400),
        "space before colon": (ping + b"Host : y\r\n\r\n", 400),
        "garbage request line": (b"\x16\x03\x01\x02\x00hello\r\n\r\n", 400),
        "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
        "unknown method": (b"BREW /_ping HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        "two Content-Lengths": (b"POST /fgm/FHIR/R4/Flag HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                b"Content-Length: 40\r\n\r\n{}", 400),
        "Content-Length and chunked (smuggling)": (b"POST /fgm/FHIR/R4/Flag HTTP/1.1\r\nHost: x\r\nContent-Length: 4"
                                                   b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1"
                                                   b"\r\n\r\n", 400),
        "obfuscated Transfer-Encoding": (b"POST /fgm/FHIR/R4/Flag HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                                         b"xchunked\r\n\r\n0\r\n\r\n", 400),
        "bad chunk size": (b"POST /fgm/FHIR/R4/Flag HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           b"Authorization: Bearer " + token.encode() + b"\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400),
    }
    for case, (data, status) in cases.items():
        answer = raw(server, data)
        assert _status(answer) == status, (case, answer[:200])
        outcome = _outcome_of(answer)
        assert outcome["issue"][0]["details"]["coding"][0]["code"] in (  # type: ignore[index]
            "REQUEST_TOO_LARGE", "MESSAGE_NOT_WELL_FORMED"), case
        assert b"strict-transport-security" in answer.lower() and b"server:" not in answer.lower()
    # A client that goes on sending after it is refused still gets the answer.
    answer = raw(server, ping + b"X-Pad: " + b"a" * 900_000 + b"\r\n\r\n", polite=False)
    assert _status(answer) == 431, answer[:100]
    # Trace headers are checked, never reflected as they came: a bad one is a 400 and is not echoed.
    with server.client() as http:
        for value in ("a" * 129, "a b", "<script>", "a;b", "ü"):
            response = http.get(f"{server.fgm}/metadata", headers={"X-Request-ID": value.encode("utf-8")})
            assert r4_refusal(response) == (400, "invalid", "PRECONDITION_FAILED", "Missing or invalid head parameter")
            assert response.headers["x-request-id"] != value
    assert_alive(server)


def test_odd_methods(server: Server) -> None:
    token = server.token().encode()
    for method in (b"TRACE", b"PATCH", b"DELETE", b"CONNECT", b"PROPFIND"):
        answer = raw(server, method + b" /fgm/FHIR/R4/Flag HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
                     + b"\r\nContent-Length: 0\r\n\r\n")
        assert _status(answer) in (400, 405), (method, answer[:100])
        assert token not in answer  # TRACE never echoes the request
        _outcome_of(answer)
    assert_alive(server)


SEARCH_INJECTIONS = [
    f"{NHS_SYSTEM}|{GIRL}|9990000026",
    f"{NHS_SYSTEM}|{GIRL}' OR '1'='1",
    f"{GIRL}' OR 1=1 --",
    f"{GIRL}; DROP TABLE fgm_indicators; --",
    f"{GIRL}\x00",
    f"{GIRL}%00",
    "' UNION SELECT nhs_number FROM patients --",
    f"{NHS_SYSTEM}|{invalid_check_digit(GIRL)}",
    "999 000 0018",
    f"+{GIRL[1:]}",
    "\uff19" * 10,  # fullwidth digits: str.isdigit() says yes
    "٩٩٩٠٠٠٠٠١٨",  # Arabic-Indic digits
    f"https://evil.example/Id/nhs-number|{GIRL}",
    # "|N" (no system) is a published form of the search: tests/api/test_nhs_number_systems.py
    "",
    "|",
    "a" * 50_000,
    f"{NHS_SYSTEM}|{GIRL}\r\nX-Injected: 1",
    "${jndi:ldap://127.0.0.1:9/x}",
    "{{7*7}}",
]


def test_search_parameters_repeated_or_injected(server: Server) -> None:
    headers = server.headers(("B0370", "B0107"))
    paths = [f"{server.fgm}/Flag"] + ([f"{server.cpis}/CareTeam", f"{server.cpis}/AuditEvent"]
                                      if cpis_landed(server) else [])
    with server.client() as http:
        for path in paths:
            for value in SEARCH_INJECTIONS:
                response = _timed(http.get, path, params={"patient:identifier": value}, headers=headers)
                assert r4_refusal(response)[:3] == (400, "invalid", "INVALID_SEARCH_DATA"), (path, value)
                assert GIRL not in response.text or value.startswith((NHS_SYSTEM + "|" + GIRL, GIRL)) is False
            repeated = [("patient:identifier", GIRL), ("patient:identifier", GIRL)]
            response = http.get(path, params=repeated, headers=headers)
            assert r4_refusal(response)[:3] == (400, "invalid", "INVALID_SEARCH_DATA")
            # Unknown parameters and modifiers are ignored; the right one still answers.
            response = http.get(path, params={"patient:identifier": GIRL, "patient:identifier:exact": "x",
                                              "_count": "99999999999", "_include": "*", "name": "' OR 1=1"},
                                headers=headers)
            assert response.status_code == 200
    assert [i.status.value for i in server.history(GIRL)][-1] == "active"
    assert_alive(server)


TRAVERSALS = [
    "/fgm/FHIR/R4/../../../../etc/passwd",
    "/fgm/FHIR/R4/Flag/..%2f..%2f..%2fetc%2fpasswd",
    "/fgm/FHIR/R4/Flag/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/fgm/FHIR/R4/Flag/..\\..\\..\\windows\\win.ini",
    "//etc/passwd",
    "/fgm/FHIR/R4/Flag/%00",
    "/fgm/FHIR/R4/Flag/a%0d%0aSet-Cookie:%20x=1",
    "/fgm/FHIR/R4/Flag/%c0%ae%c0%ae%c0%af",
    "/fgm/FHIR/R4/Flag/" + "a" * 5000,
    "/_ping/../fgm/FHIR/R4/Flag",
    "/fhir/fgm/../../etc/passwd",
    "/fgm/FHIR/R4/Flag/;/../../etc/passwd",
    "/fgm/FHIR/R4/%2e%2e/metadata",
]


def test_path_traversal(server: Server) -> None:
    token = server.token().encode()
    for path in TRAVERSALS:
        for method in (b"GET", b"PUT"):
            answer = raw(server, method + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                         + token + b"\r\nContent-Type: application/fhir+json\r\nContent-Length: 2\r\n\r\n{}")
            assert 400 <= _status(answer) < 500, (path, answer[:200])
            _outcome_of(answer)
            assert b"root:" not in answer and b"[fonts]" not in answer and b"set-cookie" not in answer.lower()
    assert_alive(server)


def test_the_server_keeps_serving_while_attacked(server: Server) -> None:
    """Every batch above ends with /_ping; here hostile requests and real ones interleave."""
    child = server.add_patient()
    attacks = xml_attacks(child)[:6] + json_attacks(child)[:6]
    with server.client() as http:
        for body in attacks:
            http.post(f"{server.fgm}/Flag", content=body.content,
                      headers={**server.headers(), "Content-Type": body.content_type})
            response = http.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL},
                                headers=server.headers(("B0370",)))
            assert response.status_code == 200 and response.json()["total"] == 1
    assert server.history(child) == []
    assert_alive(server)
