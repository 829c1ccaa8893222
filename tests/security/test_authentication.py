"""Authentication attacks not already covered by tests/api (see docs/security.md "How it is tested").

Bearer tokens: ``alg`` spellings of none, HMAC with the public key in other forms, algorithm/key-type
confusion, keys smuggled in the header (jwk, jku, x5u), hostile ``kid`` values, missing claims, the
clock leeway's edges, audiences, the token anywhere but the Authorization header, and role confusion.
Client certificates: self-signed, expired, not yet valid, and revoked (the operator's deny list), for
DSTU2 and CP-IS. Each refusal is the exact row, is audited, and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from safeguarding.cli_systems import systems as systems_cli
from safeguarding.security import certs
from safeguarding.security.registry import SystemRegistry, save_registry
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, Layout

from ..api.test_fgm_dstu2 import _raw_exchange, header_id, message
from ..support import NHS_SYSTEM, Server, flag_body, free_port, sandbox_claims, sandbox_key
from .helpers import BAD_TOKEN, CPIS_DENIED, FGM_DENIED, GP_ASID, cpis_landed, dstu2_refusal, r4_refusal, rid

GIRL = "9990000018"  # sandbox girl with an active indicator


# ---------------------------------------------------------------------------------------------
# Bearer tokens
# ---------------------------------------------------------------------------------------------




def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


def _hmac(header: dict[str, Any], claims: dict[str, Any], secret: bytes, digest: Any) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), digest).digest())}"




def _signed(server: Server, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    key, kid = sandbox_key(server)
    return jwt.encode(sandbox_claims(**claims), key, algorithm="RS256", headers={"kid": kid, **(headers or {})})


def _search(server: Server, headers: dict[str, str], params: dict[str, str] | None = None) -> httpx.Response:
    with server.client() as http:
        return http.get(f"{server.fgm}/Flag", params=params or {"patient:identifier": f"{NHS_SYSTEM}|{GIRL}"},
                        headers=headers)


def _bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def _assert_refused(server: Server, response: httpx.Response, status: int = 401) -> None:
    """The exact row, and the refusal is audited (exactly once) with no user."""
    if status == 401:
        assert r4_refusal(response) == (401, "login", "ACCESS_DENIED", BAD_TOKEN)
        assert response.headers["www-authenticate"].startswith('Bearer realm="safeguarding"')
    elif status == 403:
        assert r4_refusal(response) == (403, "forbidden", "ACCESS_DENIED", FGM_DENIED)
    else:
        assert r4_refusal(response) == (400, "invalid", "PRECONDITION_FAILED", "Missing or invalid head parameter")
    [record] = server.audit_for(response.headers["x-request-id"])
    assert (record.event.status, record.event.outcome) == (status, r4_refusal(response)[2])
    if status == 401:
        assert record.event.user_id is None


def _forged_tokens(server: Server) -> dict[str, str]:
    key, kid = sandbox_key(server)
    public = key.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk_text = (Layout(server.data_dir).jwks).read_text()
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))
    ec_key = ec.generate_private_key(ec.SECP256R1())
    claims = sandbox_claims()
    return {
        # alg none, in every spelling, with and without a signature part
        **{f"alg {alg}": _unsigned({"alg": alg, "typ": "JWT", "kid": kid}, claims) for alg in ("None", "NONE", "nOnE")},
        "alg none with a signature": _unsigned({"alg": "none", "kid": kid}, claims, b"x" * 32),
        "no alg": _unsigned({"typ": "JWT", "kid": kid}, claims, b"x" * 32),
        # HMAC keyed with the public key in the forms an attacker can get it (PEM is in tests/api)
        "HS512 with the PEM public key": _hmac({"alg": "HS512", "kid": kid}, claims, pem, hashlib.sha512),
        "HS256 with the DER public key": _hmac({"alg": "HS256", "kid": kid}, claims, der, hashlib.sha256),
        "HS256 with the JWKS text": _hmac({"alg": "HS256", "kid": kid}, claims, jwk_text.encode(), hashlib.sha256),
        # an allowed algorithm of the wrong key type for the kid (ES256 against an RSA key)
        "ES256 against the RSA kid": jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": kid}),
        "PS256 by another key": jwt.encode(claims, attacker, algorithm="PS256", headers={"kid": kid}),
        # the attacker's own key offered in the header: never used
        "embedded jwk": jwt.encode(claims, attacker, algorithm="RS256", headers={"kid": kid, "jwk": attacker_jwk}),
        "jku to a key set elsewhere": jwt.encode(claims, attacker, algorithm="RS256",
                                                 headers={"kid": kid, "jku": "http://127.0.0.1:9/jwks.json"}),
        "x5u to a certificate elsewhere": jwt.encode(claims, attacker, algorithm="RS256",
                                                     headers={"kid": kid, "x5u": "http://127.0.0.1:9/cert.pem"}),
        "no kid, another key": jwt.encode(claims, attacker, algorithm="RS256"),
        # hostile kids
        **{f"kid {name}": jwt.encode(claims, key, algorithm="RS256", headers={"kid": value})
           for name, value in (("path traversal", "../../../../../../dev/null"), ("SQL", "' OR '1'='1' --"),
                               ("very long", "k" * 4000), ("empty", ""), ("NUL", "a\x00b"))},
        "kid not a string": _unsigned({"alg": "RS256", "kid": 7}, claims, b"x" * 256),
        # claims the server requires, or that must hold
        "no exp": _signed(server, exp=None),
        "no iat": _signed(server, iat=None),
        "no aud": _signed(server, aud=None),
        "no iss": _signed(server, iss=None),
        "iat in the future": _signed(server, iat=int(time.time()) + 3600, exp=int(time.time()) + 7200),
        "expired beyond the leeway": _signed(server, iat=int(time.time()) - 600, exp=int(time.time()) - 120),
        "not valid for two minutes": _signed(server, nbf=int(time.time()) + 120),
        "audience list without ours": _signed(server, aud=["https://a.example", "https://b.example"]),
        "issuer with a trailing slash": _signed(server, iss=SANDBOX_ISSUER + "/"),
        "exp not a number": _signed(server, exp="tomorrow"),
        # not a token at all
        "empty segments": "..",
        "five segments (JWE-shaped)": "a.b.c.d.e",
        "header not JSON": f"{_b64(b'nope')}.{_b64(json.dumps(claims).encode())}.{_b64(b'x')}",
        "no user id": _signed(server, nhsid_useruid=None),
        "roles not a list": _signed(server, nhsid_nrbac_roles={"person_roleid": "555021936108"}),
    }


def test_forged_and_malformed_tokens_are_refused(server: Server) -> None:
    for case, token in _forged_tokens(server).items():
        response = _search(server, _bearer(token, **{"X-Request-ID": rid("token")}))
        assert response.status_code == 401, case
        _assert_refused(server, response)


def test_the_clock_leeway_is_30_seconds_and_no_more(server: Server) -> None:
    now = int(time.time())
    assert _search(server, _bearer(_signed(server, iat=now - 600, exp=now - 10))).status_code == 200
    assert _search(server, _bearer(_signed(server, nbf=now + 10))).status_code == 200
    _assert_refused(server, _search(server, _bearer(_signed(server, iat=now - 600, exp=now - 90))))
    _assert_refused(server, _search(server, _bearer(_signed(server, nbf=now + 90))))


def test_an_audience_list_that_includes_ours_is_accepted(server: Server) -> None:
    # RFC 7519: aud may be a list; the token is for us if we are in it.
    token = _signed(server, aud=["https://other.example", SANDBOX_AUDIENCE])
    assert _search(server, _bearer(token)).status_code == 200


def test_the_token_counts_only_in_one_authorization_header(server: Server) -> None:
    token = _signed(server)
    query = {"patient:identifier": f"{NHS_SYSTEM}|{GIRL}"}
    for where in ({"access_token": token}, {"token": token}):
        _assert_refused(server, _search(server, {}, {**query, **where}))
    with server.client() as http:
        cookie = http.get(f"{server.fgm}/Flag", params=query, headers={"Cookie": f"token={token}"})
        twice = http.get(f"{server.fgm}/Flag", params=query,
                         headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")])
    _assert_refused(server, cookie)
    _assert_refused(server, twice)
    for value in (f"Basic {token}", f"Token {token}", token, "Bearer", f"Bearer {token}x"):
        _assert_refused(server, _search(server, {"Authorization": value}))
    assert _search(server, {"Authorization": f"bearer {token}"}).status_code == 200  # the scheme is case-blind


def test_role_confusion_is_refused(server: Server) -> None:
    # The activity belongs to another of the user's roles than the one selected: refused.
    roles = [{"person_roleid": "r-query", "org_code": "RR8", "activity_codes": []},
             {"person_roleid": "r-other", "org_code": "X26", "activity_codes": ["B0370", "B0380"]}]
    token = _signed(server, nhsid_nrbac_roles=roles, selected_roleid="r-query")
    _assert_refused(server, _search(server, _bearer(token)), 403)
    # The header may not switch to another role than the token's selection, nor to one the user lacks.
    _assert_refused(server, _search(server, _bearer(token, **{"NHSD-Session-URID": "r-other"})), 400)
    unselected = _signed(server, nhsid_nrbac_roles=roles, selected_roleid=None)
    _assert_refused(server, _search(server, _bearer(unselected, **{"NHSD-Session-URID": "555021936108"})), 400)
    _assert_refused(server, _search(server, _bearer(unselected)), 400)
    # Activity codes that are not a list of strings grant nothing.
    for codes in ("B0370", {"B0370": True}, [["B0370"]], None):
        odd = _signed(server, nhsid_nrbac_roles=[{"person_roleid": "555021936108", "org_code": "RR8",
                                                   "activity_codes": codes}])
        _assert_refused(server, _search(server, _bearer(odd)), 403)


def test_a_refused_token_changes_nothing(server: Server) -> None:
    child = server.add_patient()
    with server.client() as http:
        for token in list(_forged_tokens(server).values())[:8]:
            response = http.post(f"{server.fgm}/Flag", json=flag_body(child),
                                 headers={**_bearer(token), "Content-Type": "application/fhir+json"})
            assert response.status_code == 401
        no_activity = server.token(("B0370",))  # may search, not create
        response = http.post(f"{server.fgm}/Flag", json=flag_body(child),
                             headers={**_bearer(no_activity), "Content-Type": "application/fhir+json"})
        assert r4_refusal(response) == (403, "forbidden", "ACCESS_DENIED", FGM_DENIED)
    assert server.history(child) == []


# ---------------------------------------------------------------------------------------------
# Client certificates (mutual TLS): missing, another CA, unregistered and registered-for-another-
# interaction are in tests/api/test_fgm_dstu2.py.
# ---------------------------------------------------------------------------------------------


def _sandbox_ca(server: Server) -> certs.CertPair:
    return certs.CertPair(server.ca, server.data_dir / "tls" / "ca.key")


def _self_signed(tmp_path: Path, common_name: str) -> tuple[str, str]:
    ca = certs.create_ca(tmp_path / "self", common_name)  # a certificate that is its own issuer
    return str(ca.cert), str(ca.key)


def _issued(server: Server, tmp_path: Path, name: str, common_name: str, **validity: Any) -> tuple[str, str]:
    pair = certs.issue(_sandbox_ca(server), certs.CertPair(tmp_path / f"{name}.pem", tmp_path / f"{name}.key"),
                       common_name=common_name, org="B86022", client=True, **validity)
    return str(pair.cert), str(pair.key)


def test_self_signed_expired_and_not_yet_valid_certificates_fail_the_handshake(server: Server,
                                                                              tmp_path: Path) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    refused = {
        "self-signed": _self_signed(tmp_path, GP_ASID),
        "expired": _issued(server, tmp_path, "expired", GP_ASID, not_before=now - dt.timedelta(days=30),
                           not_after=now - dt.timedelta(days=1)),
        "not yet valid": _issued(server, tmp_path, "future", GP_ASID, not_before=now + dt.timedelta(days=1),
                                 not_after=now + dt.timedelta(days=30)),
    }
    for case, cert in refused.items():
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            # With TLS 1.3 the client's half completes and the server closes without reading anything.
            assert _raw_exchange(server, cert, version) in ("handshake failed", "closed"), (case, version)
        with server.client(cert=cert) as http:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                http.post(f"{server.base}/fhir/fgm/query", content=message("query", GIRL),
                          headers={"Content-Type": "text/xml"})
    # A certificate of the same CA that is in date gets an HTTP answer (a 403: it is not registered).
    assert _raw_exchange(server, _issued(server, tmp_path, "fresh", "123412341234"),
                         ssl.TLSVersion.TLSv1_2).startswith("HTTP/1.1 ")


def _cli(server: Server, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(systems_cli, [*args, "--data-dir", str(server.data_dir)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if result.output.startswith("{") else {}


@pytest.fixture()
def registry_restored(server: Server) -> Iterator[None]:
    registry = server.data_dir / "systems.json"
    original = registry.read_bytes()
    yield
    registry.write_bytes(original)


def _query(server: Server, cert: tuple[str, str], asid: str) -> httpx.Response:
    body = message("query", GIRL, source=asid)
    with server.client(cert=cert) as http:
        return http.post(f"{server.base}/fhir/fgm/query", content=body,
                         headers={"Content-Type": "text/xml", "X-Request-ID": rid("revoked")})


@pytest.mark.usefixtures("registry_restored")
def test_a_revoked_certificate_is_refused_with_asid_check_failed(server: Server, tmp_path: Path) -> None:
    asid = "300000000777"
    pinned = _issued(server, tmp_path, "pinned", asid)
    _cli(server, "add", "--asid", asid, "--ods", "Y07", "--interaction", "fgm", "--cert", pinned[0])
    assert _query(server, pinned, asid).status_code == 200
    # Revoked by its certificate (the fingerprint): refused from the next message on, audited without a system.
    entry = _cli(server, "revoke", "--cert", pinned[0], "--reason", "key compromised")
    assert entry["cert_sha256"] == certs.pem_fingerprint(Path(pinned[0]))
    response = _query(server, pinned, asid)
    assert dstu2_refusal(response) == (403, "ASID_CHECK_FAILED", "The client certificate has been revoked")
    [record] = server.audit_for(response.headers["x-request-id"])
    assert (record.event.status, record.event.outcome, record.event.system_asid) == (403, "ASID_CHECK_FAILED", None)

    # A registration without a pinned certificate matches any certificate of the CA whose CN is the ASID:
    # revoking one of them by serial number refuses that one only.
    _cli(server, "add", "--asid", asid, "--ods", "Y07", "--interaction", "fgm", "--replace")
    stolen, renewed = _issued(server, tmp_path, "stolen", asid), _issued(server, tmp_path, "renewed", asid)
    assert _query(server, stolen, asid).status_code == 200
    serial = x509.load_pem_x509_certificate(Path(stolen[0]).read_bytes()).serial_number
    colons = ":".join(f"{serial:X}"[i:i + 2] for i in range(0, len(f"{serial:X}"), 2))  # as openssl prints it
    _cli(server, "revoke", "--serial", colons)
    assert dstu2_refusal(_query(server, stolen, asid))[:2] == (403, "ASID_CHECK_FAILED")
    assert _query(server, renewed, asid).status_code == 200
    # Editing the registry keeps the deny list.
    _cli(server, "add", "--asid", "300000000778", "--ods", "Y08", "--interaction", "query")
    _cli(server, "remove", "--asid", "300000000778")
    listed = json.loads(CliRunner().invoke(systems_cli, ["list", "--json", "--data-dir", str(server.data_dir)]).output)
    assert len(listed["revoked"]) == 2
    assert dstu2_refusal(_query(server, stolen, asid))[:2] == (403, "ASID_CHECK_FAILED")
    assert dstu2_refusal(_query(server, pinned, asid))[:2] == (403, "ASID_CHECK_FAILED")


@pytest.mark.usefixtures("registry_restored")
def test_an_unreadable_deny_list_refuses_every_system(server: Server) -> None:
    gp = tuple(next(s for s in server.facts["systems"] if s["asid"] == GP_ASID)[k] for k in ("cert", "key"))
    registry = server.data_dir / "systems.json"
    document = json.loads(registry.read_text())
    document["revoked"] = [{"cert_sha256": "not hex"}]
    registry.write_text(json.dumps(document))
    assert dstu2_refusal(_query(server, gp, GP_ASID))[:2] == (403, "ASID_CHECK_FAILED")  # fail closed
    document["revoked"] = []
    registry.write_text(json.dumps(document, indent=1))
    response = _query(server, gp, GP_ASID)
    assert response.status_code == 200, response.text


@pytest.mark.usefixtures("registry_restored")
def test_a_revoked_local_authority_certificate_is_refused_over_cpis(server: Server, tmp_path: Path) -> None:
    if not cpis_landed(server):
        pytest.skip("CP-IS routes are not served yet")
    asid = "300000000779"
    cert = _issued(server, tmp_path, "la", asid)
    _cli(server, "add", "--asid", asid, "--ods", "LA779", "--kind", "local-authority", "--interaction",
         "urn:nhs:names:services:cpis:upload", "--cert", cert[0])
    with server.client(cert=cert) as http:
        assert http.get(f"{server.base}/cpis/FHIR/R4/notifications").status_code == 200
        _cli(server, "revoke", "--cert", cert[0])
        response = http.get(f"{server.base}/cpis/FHIR/R4/notifications")
    assert r4_refusal(response) == (403, "forbidden", "ACCESS_DENIED", CPIS_DENIED)


def test_the_deny_list_is_kept_when_the_sandbox_rewrites_the_registry(tmp_path: Path) -> None:
    path = tmp_path / "systems.json"
    path.write_text(json.dumps({"systems": [], "revoked": [{"serial": "1A2B"}]}))
    save_registry(path, [{"asid": "1", "ods": "A", "kind": "clinical-system", "interactions": []}])  # serve --sandbox
    assert json.loads(path.read_text())["revoked"] == [{"serial": "1A2B"}]
    registry = SystemRegistry.load(path)
    assert registry.by_asid("1") is not None


def test_revocation_survives_a_sandbox_restart(tmp_path: Path) -> None:
    running = Server(tmp_path / "data", free_port(), tmp_path / "server.log").start()
    try:
        gp = tuple(next(s for s in running.facts["systems"] if s["asid"] == GP_ASID)[k] for k in ("cert", "key"))
        _cli(running, "revoke", "--cert", gp[0])
        running.stop()
        running.start()  # the sandbox rewrites its own systems' entries at every start
        body = message("query", GIRL)
        with running.client(cert=gp) as http:  # type: ignore[arg-type]
            response = http.post(f"{running.base}/fhir/fgm/query", content=body, headers={"Content-Type": "text/xml"})
        assert dstu2_refusal(response) == (403, "ASID_CHECK_FAILED", "The client certificate has been revoked")
        assert header_id(body)  # the message itself was fine
    finally:
        running.stop()
