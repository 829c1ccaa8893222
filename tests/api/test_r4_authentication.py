"""Bearer-token failures: each refused with 401 (or 403 for a missing activity), audited, nothing changed."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..support import Server, assert_outcome, sandbox_claims, sandbox_key

GIRL = "9990000018"






def _search(client: httpx.Client, server: Server, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL}, headers=headers)


def _assert_401(reason: str, response: httpx.Response, *, missing: bool = False) -> None:
    """The sandbox tells the precise reason a token was refused (elsewhere it is only logged)."""
    assert_outcome(response, 401, "ACCESS_DENIED", f"Missing or invalid access token (sandbox only: {reason})",
                   issue_type="login")
    expected = 'Bearer realm="safeguarding"' + ("" if missing else ', error="invalid_token"')
    assert response.headers["www-authenticate"] == expected


def test_valid_sandbox_token_is_accepted(server: Server, client: httpx.Client) -> None:
    key, kid = sandbox_key(server)
    token = jwt.encode(sandbox_claims(), key, algorithm="RS256", headers={"kid": kid})
    assert _search(client, server, token).status_code == 200


def test_missing_token(server: Server, client: httpx.Client) -> None:
    _assert_401("no bearer token", _search(client, server, None), missing=True)


def test_not_bearer_or_garbage(server: Server, client: httpx.Client) -> None:
    _assert_401("malformed authorization header", client.get(f"{server.fgm}/Flag", params={"patient:identifier": GIRL},
                           headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    _assert_401("token is not a well-formed JWT", _search(client, server, "not.a.jwt"))


def test_expired_token(server: Server, client: httpx.Client) -> None:
    key, kid = sandbox_key(server)
    past = int(time.time()) - 3600
    token = jwt.encode(sandbox_claims(iat=past - 60, exp=past), key, algorithm="RS256", headers={"kid": kid})
    _assert_401("token expired", _search(client, server, token))


def test_not_yet_valid_token(server: Server, client: httpx.Client) -> None:
    key, kid = sandbox_key(server)
    token = jwt.encode(sandbox_claims(nbf=int(time.time()) + 3600), key, algorithm="RS256", headers={"kid": kid})
    _assert_401("token not yet valid", _search(client, server, token))


def test_wrong_signature(server: Server, client: httpx.Client) -> None:
    _, kid = sandbox_key(server)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(sandbox_claims(), other, algorithm="RS256", headers={"kid": kid})
    _assert_401("token signature invalid", _search(client, server, token))


def test_tampered_claims(server: Server, client: httpx.Client) -> None:
    key, kid = sandbox_key(server)
    token = jwt.encode(sandbox_claims(), key, algorithm="RS256", headers={"kid": kid})
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["nhsid_nrbac_roles"][0]["activity_codes"].append("B0107")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _assert_401("token signature invalid", _search(client, server, f"{header}.{forged}.{signature}"))


def test_wrong_audience_and_issuer(server: Server, client: httpx.Client) -> None:
    key, kid = sandbox_key(server)
    wrong_audience = jwt.encode(sandbox_claims(aud="https://other.example"), key, algorithm="RS256",
                                headers={"kid": kid})
    _assert_401("token audience wrong", _search(client, server, wrong_audience))
    wrong_issuer = jwt.encode(sandbox_claims(iss="https://evil.example"), key, algorithm="RS256", headers={"kid": kid})
    _assert_401("token issuer not trusted", _search(client, server, wrong_issuer))


def test_alg_none(server: Server, client: httpx.Client) -> None:
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    _, kid = sandbox_key(server)
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(sandbox_claims())}."
    _assert_401("token algorithm not allowed", _search(client, server, unsigned))


def test_hs256_signed_with_the_public_key(server: Server, client: httpx.Client) -> None:
    key, kid = sandbox_key(server)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(sandbox_claims()).encode()).rstrip(b"=")
    import hashlib
    import hmac

    signing_input = header + b"." + payload
    signature = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    _assert_401("token algorithm not allowed", _search(client, server, (signing_input + b"." + signature).decode()))


def test_unknown_kid(server: Server, client: httpx.Client) -> None:
    key, _ = sandbox_key(server)
    token = jwt.encode(sandbox_claims(), key, algorithm="RS256", headers={"kid": "nope"})
    _assert_401("unknown kid", _search(client, server, token))


def test_selected_role_not_the_users(server: Server, client: httpx.Client) -> None:
    key, kid = sandbox_key(server)
    token = jwt.encode(sandbox_claims(selected_roleid="123"), key, algorithm="RS256", headers={"kid": kid})
    _assert_401("selected_roleid is not one of the user's roles", _search(client, server, token))


def test_several_roles_none_selected_is_precondition_failed(server: Server, client: httpx.Client) -> None:
    key, kid = sandbox_key(server)
    roles = [{"person_roleid": "r1", "org_code": "RR8", "activity_codes": ["B0370"]},
             {"person_roleid": "r2", "org_code": "RR8", "activity_codes": []}]
    claims = sandbox_claims(nhsid_nrbac_roles=roles)
    del claims["selected_roleid"]
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
    assert_outcome(_search(client, server, token), 400, "PRECONDITION_FAILED", "Missing or invalid head parameter")
    # the NHSD-Session-URID header selects the role
    assert _search(client, server, token, **{"NHSD-Session-URID": "r1"}).status_code == 200
    assert_outcome(_search(client, server, token, **{"NHSD-Session-URID": "r2"}), 403, "ACCESS_DENIED",
                   "The sender or receiver's ASID is not authorised for this interaction", issue_type="forbidden")


def test_missing_activity_code(server: Server, client: httpx.Client) -> None:
    response = _search(client, server, server.token(()))
    assert_outcome(response, 403, "ACCESS_DENIED",
                   "The sender or receiver's ASID is not authorised for this interaction", issue_type="forbidden")
