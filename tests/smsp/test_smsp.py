"""SMSP mode with real processes: a national server and SMSPs in front of it, real mutual TLS between them."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from safeguarding.security import certs

from ..support import FIXTURES, Server, free_port
from .harness import (
    CLIENT_ASID,
    CLIENT_MESSAGE_ID,
    GIRL,
    GIRL_WITHOUT,
    LOCAL_ISSUER,
    NATIONAL_ASID,
    NS,
    SMSP_ASID,
    Smsp,
    Upstream,
    _outcome,
    _parse,
    local_side,
    make_smsp,
    query_message,
)


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A national service of our own (this module stops it at the end) with the SMSP registered."""
    root = tmp_path_factory.mktemp("national")
    server = Server(root / "data", free_port(), root / "national.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, national: Server) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    national_ca = certs.CertPair(national.data_dir / "tls" / "ca.pem", national.data_dir / "tls" / "ca.key")
    smsp_out = certs.issue(national_ca, certs.CertPair(root / "smsp-national.pem", root / "smsp-national.key"),
                           common_name=SMSP_ASID, org="X26", client=True)
    registered = subprocess.run([sys.executable, "-m", "safeguarding", "systems", "add", "--data-dir",
                                 str(national.data_dir), "--asid", SMSP_ASID, "--ods", "X26", "--interaction", "query",
                                 "--cert", str(smsp_out.cert)], capture_output=True, text=True)
    assert registered.returncode == 0, registered.stderr
    return local_side(root) | {"national_ca": national.ca, "smsp_national_cert": smsp_out.cert,
                               "smsp_national_key": smsp_out.key}


@pytest.fixture(scope="module")
def smsp(pki: dict[str, Path], national: Server) -> Iterator[Smsp]:
    running = make_smsp(pki, Upstream(national.base, national.ca), "main")
    yield running
    running.stop()


def _national_audit(national: Server) -> list:  # type: ignore[type-arg]
    store = national.store()
    try:
        return list(store.audit_records())
    finally:
        store.close()


def test_found_is_forwarded_and_answers_the_clients_message(smsp: Smsp, national: Server) -> None:
    response = smsp.query(GIRL)
    assert response.status_code == 200, response.text
    root = _parse(response)
    header = root.find("f:entry/f:resource/f:MessageHeader", NS)
    assert header is not None
    assert header.find("f:response/f:identifier", NS).get("value") == CLIENT_MESSAGE_ID  # type: ignore[union-attr]
    assert header.find("f:response/f:code", NS).get("value") == "ok"  # type: ignore[union-attr]
    assert header.find("f:source/f:endpoint", NS).get("value") == f"urn:nhs:addressing:asid:{SMSP_ASID}"  # type: ignore[union-attr]
    assert header.find("f:destination/f:endpoint", NS).get("value") == (  # type: ignore[union-attr]
        f"urn:nhs:addressing:asid:{CLIENT_ASID}")
    flag = root.find("f:entry/f:resource/f:Flag", NS)
    assert flag is not None and flag.find("f:status", NS).get("value") == "active"  # type: ignore[union-attr]
    assert flag.find("f:contained/f:Patient/f:identifier/f:value", NS).get("value") == GIRL  # type: ignore[union-attr]

    # the audit links the client's message and user to the national message, on both sides
    [local] = [r.event for r in smsp.audit() if r.event.correlation_id == CLIENT_MESSAGE_ID and r.event.status == 200]
    assert local.user_id == "local:12456" and local.role_profile_id == "555021936108"
    assert local.system_asid == CLIENT_ASID and local.org_code == "A81001" and local.nhs_number == GIRL
    [upstream] = [r.event for r in _national_audit(national) if r.event.request_id == local.resource_id]
    assert (upstream.api, upstream.interaction, upstream.status) == ("fgm-dstu2", "query", 200)
    assert upstream.system_asid == SMSP_ASID and upstream.user_id == "555021935107"
    assert upstream.role_profile_id == "555021936108" and upstream.org_code == "A81001"


def test_no_record_found_is_passed_back_unchanged(smsp: Smsp) -> None:
    response = smsp.query(GIRL_WITHOUT)
    assert response.status_code == 404
    root = _parse(response)
    assert _outcome(root) == ("NO_RECORD_FOUND", "not-found")
    assert root.find("f:entry/f:resource/f:MessageHeader/f:response/f:code", NS).get("value") == "ok"  # type: ignore[union-attr]


def test_invalid_nhs_number_never_reaches_the_national_service(smsp: Smsp, national: Server) -> None:
    before = len(_national_audit(national))
    response = smsp.query("9990000017")
    assert response.status_code == 400
    assert _outcome(_parse(response)) == ("INPUT_MESSAGE_VALIDATION_ERROR", "structure")
    assert len(_national_audit(national)) == before


def test_authors_must_be_smartcard_users_or_mapped_local_users(smsp: Smsp, national: Server) -> None:
    before = len(_national_audit(national))
    for local_id in ("55555", "77777"):  # unmapped; mapped but without B0370
        response = smsp.query(GIRL, local_id=local_id)
        assert response.status_code == 401
        assert _outcome(_parse(response)) == ("AUTHOR_CREDENTIALS_ERROR", "forbidden")
    no_author = query_message(GIRL).replace(b"http://fhir.nhs.net/Id/local-identifier", b"http://example.org/x")
    response = smsp.query(body=no_author)
    assert response.status_code == 401
    assert len(_national_audit(national)) == before


def test_unregistered_clients_and_other_interactions_are_refused(smsp: Smsp) -> None:
    response = smsp.query(GIRL, cert=False)
    assert response.status_code == 403
    assert _outcome(_parse(response)) == ("ASID_CHECK_FAILED", "forbidden")
    create = (FIXTURES / "dstu2" / "create-request.xml").read_bytes().replace(b"1234567890", b"9990000026").replace(
        b"asid:047192794544", f"asid:{CLIENT_ASID}".encode())
    response = smsp.query(body=create)  # SMSP clients may only query
    assert response.status_code == 400
    assert _outcome(_parse(response)) == ("INPUT_MESSAGE_VALIDATION_ERROR", "structure")
    assert b"SMSP clients may only query FGM-IS" in response.content


def test_throttling_per_client(pki: dict[str, Path], national: Server) -> None:
    throttled = make_smsp(pki, Upstream(national.base, national.ca), "throttled",
                          limits={"per_client_per_second": 0.2, "per_client_burst": 3})
    try:
        statuses = [throttled.query(GIRL).status_code for _ in range(6)]
        assert statuses == [200, 200, 200, 429, 429, 429]
        response = throttled.query(GIRL)
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
        assert _outcome(_parse(response)) == ("GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE", "throttled")
    finally:
        throttled.stop()


@pytest.fixture()
def silent_upstream(pki: dict[str, Path]) -> Iterator[Upstream]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield Upstream(f"https://127.0.0.1:{listener.getsockname()[1]}", pki["national_ca"])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_silent_national_service_times_out_then_the_breaker_opens(pki: dict[str, Path],
                                                                  silent_upstream: Upstream) -> None:
    smsp = make_smsp(pki, silent_upstream, "silent", national={"timeout_seconds": 1, "breaker_threshold": 2})
    try:
        for _ in range(2):
            started = time.monotonic()
            response = smsp.query(GIRL)
            elapsed = time.monotonic() - started
            assert response.status_code == 500 and elapsed < 2.5
            assert _outcome(_parse(response)) == ("COULD_NOT_CONNECT_TO_SPINE", "no-store")
        started = time.monotonic()
        response = smsp.query(GIRL)  # circuit open: refused without trying
        assert response.status_code == 500 and time.monotonic() - started < 0.5
        assert _outcome(_parse(response)) == ("COULD_NOT_CONNECT_TO_SPINE", "no-store")
    finally:
        smsp.stop()


@pytest.fixture()
def garbage_upstream(pki: dict[str, Path], national: Server) -> Iterator[Upstream]:
    """An HTTPS service with a certificate the SMSP trusts, that answers nonsense."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b"<html><body>Service temporarily moved</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_dir = national.data_dir / "tls"
    context.load_cert_chain(str(tls_dir / "server.pem"), str(tls_dir / "server.key"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Upstream(f"https://127.0.0.1:{httpd.server_address[1]}", national.ca)
    httpd.shutdown()
    httpd.server_close()


def test_garbage_national_response(pki: dict[str, Path], garbage_upstream: Upstream) -> None:
    smsp = make_smsp(pki, garbage_upstream, "garbage")
    try:
        response = smsp.query(GIRL)
        assert response.status_code == 400
        assert _outcome(_parse(response)) == ("RESPONSE_MESSAGE_VALIDATION_ERROR", "structure")
    finally:
        smsp.stop()


def test_clients_may_authenticate_with_a_local_bearer_token(pki: dict[str, Path], national: Server) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key())) | {"kid": "local-1", "alg": "ES256", "use": "sig"}
    jwks = pki["root"] / "local-jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    smsp = make_smsp(pki, Upstream(national.base, national.ca), "tokens", jwks=str(jwks))
    now = int(time.time())
    claims = {"iss": LOCAL_ISSUER, "aud": "smsp", "iat": now, "exp": now + 300, "nhsid_useruid": "clinic-system-7",
              "nhsid_nrbac_roles": [{"person_roleid": "r1", "org_code": "A81002"}]}
    try:
        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "local-1"})
        response = smsp.query(GIRL, cert=False, token=token)
        assert response.status_code == 200, response.text
        [event] = [r.event for r in smsp.audit() if r.event.status == 200 and r.event.interaction == "query"]
        assert event.org_code == "A81002" and event.user_id == "local:12456"
        forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                            headers={"kid": "local-1"})
        refused = smsp.query(GIRL, cert=False, token=forged)
        assert refused.status_code == 403
        assert _outcome(_parse(refused)) == ("ASID_CHECK_FAILED", "forbidden")
    finally:
        smsp.stop()


def test_the_client_must_address_its_message_from_its_own_asid_to_the_smsp(smsp: Smsp, national: Server) -> None:
    """As the national service does: source = the client certificate's ASID, destination = the SMSP's
    (or the national service's, which a client written for it already sends)."""
    before = len(_national_audit(national))
    for old, new, diagnostics in (
            (f"asid:{CLIENT_ASID}", "asid:300000000002", b"not the ASID of the client certificate"),
            (f"asid:{NATIONAL_ASID}", "asid:990101234568", b"not the ASID of this SMSP or of the national")):
        response = smsp.query(body=query_message(GIRL).replace(old.encode(), new.encode()))
        assert response.status_code == 403, response.text
        root = _parse(response)
        assert _outcome(root) == ("ASID_CHECK_FAILED", "forbidden")
        assert diagnostics in response.content
        assert root.find("f:entry/f:resource/f:MessageHeader/f:response/f:identifier", NS).get(  # type: ignore[union-attr]
            "value") == CLIENT_MESSAGE_ID
    assert len(_national_audit(national)) == before  # refused locally
    to_smsp = query_message(GIRL).replace(f"asid:{NATIONAL_ASID}".encode(), f"asid:{SMSP_ASID}".encode())
    assert smsp.query(body=to_smsp).status_code == 200


def test_a_national_refusal_of_the_smsp_is_the_smsps_own_failure(pki: dict[str, Path], national: Server) -> None:
    """An SMSP whose endpoint certificate the national service does not know: national 403
    ASID_CHECK_FAILED. The client can do nothing about it: 500 with the SMSP's generic failure code, and
    the national code in the SMSP's log."""
    national_ca = certs.CertPair(national.data_dir / "tls" / "ca.pem", national.data_dir / "tls" / "ca.key")
    unknown = certs.issue(national_ca, certs.CertPair(pki["root"] / "unknown.pem", pki["root"] / "unknown.key"),
                          common_name="200000000998", org="X26", client=True)
    smsp = make_smsp(pki | {"smsp_national_cert": unknown.cert, "smsp_national_key": unknown.key},
                     Upstream(national.base, national.ca), "unregistered")
    try:
        response = smsp.query(GIRL)
        assert response.status_code == 500, response.text
        assert _outcome(_parse(response)) == ("GENERIC_SPINE_MINI_SERVICE_PROVIDER_SOFTWARE_FAILURE", "exception")
        assert b"The national service refused this SMSP (ASID_CHECK_FAILED)" in response.content
        [event] = smsp.events("SMSP_NATIONAL_REFUSED")
        assert (event["status"], event["outcome"], event["level"]) == (403, "ASID_CHECK_FAILED", "ERROR")
        assert GIRL not in smsp.log()
    finally:
        smsp.stop()


def test_an_untrusted_national_certificate_is_logged_as_such(pki: dict[str, Path], national: Server) -> None:
    smsp = make_smsp(pki, Upstream(national.base, pki["local_ca"]), "untrusted")  # the wrong CA for national
    try:
        response = smsp.query(GIRL)
        assert response.status_code == 500
        assert _outcome(_parse(response)) == ("COULD_NOT_CONNECT_TO_SPINE", "no-store")
        assert [event["error"] for event in smsp.events("SMSP_NATIONAL_UNREACHABLE")] == ["tls-verification-failed"]
    finally:
        smsp.stop()


def test_zz_national_stopped_no_caching_and_the_opt_in_local_store(smsp: Smsp, pki: dict[str, Path],
                                                                  national: Server) -> None:
    """Last in this module: it stops the national service."""
    fallback = make_smsp(pki, Upstream(national.base, national.ca), "fallback", fallback=True)
    try:
        assert smsp.query(GIRL).status_code == 200 and fallback.query(GIRL).status_code == 200
        national.stop()
        started = time.monotonic()
        response = smsp.query(GIRL)
        assert response.status_code == 500 and time.monotonic() - started < 2.5
        root = _parse(response)
        assert _outcome(root) == ("COULD_NOT_CONNECT_TO_SPINE", "no-store")
        assert root.find("f:entry/f:resource/f:Flag", NS) is None  # nothing was cached
        served = fallback.query(GIRL)
        assert served.status_code == 203
        root = _parse(served)
        assert _outcome(root) == ("DATA_RETURNED_FROM_LOCAL_STORE_SPINE_UNAVAILABLE", "informational")
        assert root.find("f:entry/f:resource/f:Flag/f:contained/f:Patient/f:identifier/f:value", NS).get(  # type: ignore[union-attr]
            "value") == GIRL
    finally:
        fallback.stop()



def test_what_the_shared_pipeline_refuses_is_the_smsps_input_validation_error(smsp: Smsp, national: Server) -> None:
    """Refused before the SMSP's own checks (by the request pipeline every API shares): each is answered in the
    SMSP's vocabulary, and nothing reaches the national service."""
    before = len(_national_audit(national))
    with httpx.Client(verify=smsp.tls(smsp.client_cert), timeout=30) as client:
        url = f"https://127.0.0.1:{smsp.port}/fhir/fgm/query"
        too_large = client.post(url, content=b"<" * (1024 * 1024 + 1), headers={"Content-Type": "text/xml"})
        bad_trace = client.post(url, content=query_message(GIRL), headers={"Content-Type": "text/xml",
                                                                            "X-Request-ID": "not/valid"})
    for response in (too_large, bad_trace):
        assert (response.status_code, _outcome(_parse(response))) == (
            400, ("INPUT_MESSAGE_VALIDATION_ERROR", "structure")), response.text
    assert len(_national_audit(national)) == before
