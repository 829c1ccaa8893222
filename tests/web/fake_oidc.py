"""A tiny OpenID Connect provider on loopback, CIS2-shaped, for testing the web sign-in.

It implements the authorization-code flow with PKCE: ``/authorize`` signs the configured person in at
once and redirects back with a code; ``/token`` checks the client secret, the code, the redirect URI and
the PKCE verifier, and answers an ES256 ID token; ``/userinfo`` answers the national RBAC claims;
``/jwks`` publishes the key. ``tamper`` makes it misbehave in one named way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

CLIENT_ID = "safeguarding-web-test"
CLIENT_SECRET = "s3cret-for-tests-only"
ROLE_A = {"person_roleid": "700000000101", "org_code": "RR8", "role_code": "S8000:G8000:R8000",
          "role_name": '"Clinical":"Clinical Provision":"Nurse Access Role"',
          "activity_codes": ["B0370", "B0380", "B0825", "B1234"]}
ROLE_B = {"person_roleid": "700000000102", "org_code": "B86022", "role_code": "S8000:G8000:R0260",
          "role_name": '"Clinical":"Clinical Provision":"General Medical Practitioner"',
          "activity_codes": ["B0370"]}


@dataclass
class Person:
    user_id: str = "700000000001"
    name: str = "Dr Olivia Idp"
    roles: list[dict[str, Any]] = field(default_factory=lambda: [ROLE_A])
    selected: str | None = "700000000101"


@dataclass
class FakeOidcProvider:
    port: int = 0
    person: Person = field(default_factory=Person)
    tamper: str | None = None  # "nonce", "audience", "key", "sub", "issuer", "deny"
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: dict[str, Person] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base}/oidc"

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "fake-idp-1", "use": "sig", "alg": "ES256"})
        return {"keys": [jwk]}

    def id_token(self, grant: dict[str, str]) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": CLIENT_ID, "sub": self.person.user_id, "iat": now,
                                  "exp": now + 300, "nonce": grant["nonce"], "auth_time": now}
        if self.person.selected:
            claims["selected_roleid"] = self.person.selected
        key = self.key
        if self.tamper == "nonce":
            claims["nonce"] = "not-the-nonce"
        elif self.tamper == "audience":
            claims["aud"] = "another-client"
        elif self.tamper == "issuer":
            claims["iss"] = "https://elsewhere.invalid/oidc"
        elif self.tamper == "key":
            key = ec.generate_private_key(ec.SECP256R1())
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "fake-idp-1"})

    def userinfo(self, person: Person) -> dict[str, Any]:
        return {"sub": "someone-else" if self.tamper == "sub" else person.user_id, "nhsid_useruid": person.user_id,
                "name": person.name, "nhsid_nrbac_roles": person.roles,
                "nhsid_user_orgs": [{"org_code": "RR8", "org_name": "Sandbox Hospital"},
                                    {"org_code": "B86022", "org_name": "Sandbox Surgery"}]}

    @contextmanager
    def running(self) -> Iterator[FakeOidcProvider]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/jwks":
                    self._json(200, provider.jwks())
                elif url.path == "/authorize":
                    target = query["redirect_uri"]
                    if provider.tamper == "deny":
                        answer = {"error": "access_denied", "state": query["state"]}
                    else:
                        code = secrets.token_urlsafe(16)
                        provider.codes[code] = query
                        answer = {"code": code, "state": query["state"]}
                    self.send_response(302)
                    self.send_header("Location", f"{target}?{urlencode(answer)}")
                    self.end_headers()
                elif url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    person = provider.tokens.get(token)
                    if person is None:
                        self._json(401, {"error": "invalid_token"})
                    else:
                        self._json(200, provider.userinfo(person))
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.token_requests.append(form)
                grant = provider.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                if (self.path != "/token" or grant is None or form.get("client_id") != CLIENT_ID
                        or form.get("client_secret") != CLIENT_SECRET
                        or form.get("redirect_uri") != grant["redirect_uri"] or challenge != grant["code_challenge"]):
                    self._json(400, {"error": "invalid_grant"})
                    return
                access = secrets.token_urlsafe(24)
                provider.tokens[access] = provider.person
                self._json(200, {"access_token": access, "token_type": "Bearer", "expires_in": 300,
                                 "id_token": provider.id_token(grant)})

            def log_message(self, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(httpd.server_address[1])
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            httpd.shutdown()
            httpd.server_close()
