"""A CIS2-shaped OpenID Connect provider as a real ASGI app on loopback over TLS, for the identity tests.

It serves discovery (``/.well-known/openid-configuration``), its key set (``/jwks``, with ``rotate()``
publishing a new key and withdrawing the old), a token endpoint (``/token``: client credentials for a
person, answering a signed access token) and UserInfo (``/userinfo``: the national RBAC claims for an
access token it issued). ``mode`` makes it misbehave: ``"down"`` (503 to everything), ``"garbage"``
(a key set that is not JSON), ``"wrong-issuer"`` (discovery names another issuer), ``"other-subject"``
(UserInfo about someone else). It counts requests.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .tls_app import serve_tls

AUDIENCE = "safeguarding-api"
ROLE = {"person_roleid": "700000000201", "org_code": "RR8", "role_code": "S8000:G8000:R8000",
        "activity_codes": ["B0370", "B0380"]}


@dataclass
class OidcProvider:
    mode: str | None = None
    base: str = ""
    ca: Path | None = None
    keys: list[tuple[str, ec.EllipticCurvePrivateKey]] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: list[dict[str, Any]] = field(default_factory=lambda: [ROLE])

    def __post_init__(self) -> None:
        if not self.keys:
            self.rotate()

    @property
    def issuer(self) -> str:
        return f"{self.base}/oidc"

    @property
    def kid(self) -> str:
        return self.keys[-1][0]

    def rotate(self) -> None:
        """Publish a new key and sign with it from now on; the old key is withdrawn."""
        self.keys = [(f"key-{secrets.token_hex(4)}", ec.generate_private_key(ec.SECP256R1()))]

    def token(self, *, kid: str | None = None, roles: bool = True, **claims: Any) -> str:
        """An access token for the test person, signed with the current key (claims override, None drops)."""
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.issuer, "aud": AUDIENCE, "sub": "700000000001", "iat": now,
                                "exp": now + 300, "nhsid_useruid": "700000000001"}
        if roles:
            body["nhsid_nrbac_roles"] = self.roles
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        name, key = self.keys[-1]
        return jwt.encode(body, key, algorithm="ES256", headers={"kid": kid or name})

    def jwks(self) -> dict[str, Any]:
        published = []
        for name, key in self.keys:
            jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
            jwk.update({"kid": name, "use": "sig", "alg": "ES256"})
            published.append(jwk)
        return {"keys": published}

    def app(self) -> Starlette:
        provider = self

        async def discovery(request: Request) -> Response:
            provider.hits["discovery"] += 1
            if provider.mode == "down":
                return JSONResponse({"error": "unavailable"}, 503)
            issuer = "https://elsewhere.invalid/oidc" if provider.mode == "wrong-issuer" else provider.issuer
            return JSONResponse({"issuer": issuer, "jwks_uri": f"{provider.base}/jwks",
                                 "token_endpoint": f"{provider.base}/token",
                                 "userinfo_endpoint": f"{provider.base}/userinfo",
                                 "authorization_endpoint": f"{provider.base}/authorize",
                                 "id_token_signing_alg_values_supported": ["ES256"]})

        async def jwks(request: Request) -> Response:
            provider.hits["jwks"] += 1
            if provider.mode == "down":
                return JSONResponse({"error": "unavailable"}, 503)
            if provider.mode == "garbage":
                return Response(b"<html>not a key set</html>", 200, media_type="text/html")
            return JSONResponse(provider.jwks())

        async def token(request: Request) -> Response:
            provider.hits["token"] += 1
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, 400)
            access = provider.token(roles=False)
            provider.access_tokens[access] = {"sub": "700000000001"}
            return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 300})

        async def userinfo(request: Request) -> Response:
            provider.hits["userinfo"] += 1
            if provider.mode == "down":
                return JSONResponse({"error": "unavailable"}, 503)
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            try:
                claims = jwt.decode(bearer, options={"verify_signature": False})
            except jwt.PyJWTError:
                return JSONResponse({"error": "invalid_token"}, 401)
            if claims.get("iss") != provider.issuer:
                return JSONResponse({"error": "invalid_token"}, 401)
            sub = "someone-else" if provider.mode == "other-subject" else claims["sub"]
            return JSONResponse({"sub": sub, "nhsid_useruid": claims["sub"], "name": "Dr Test Person",
                                 "nhsid_nrbac_roles": provider.roles,
                                 "nhsid_user_orgs": [{"org_code": "RR8", "org_name": "Test Hospital"}]})

        return Starlette(routes=[
            Route("/oidc/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/token", token, methods=["POST"]),
            Route("/userinfo", userinfo),
        ])

    @contextmanager
    def running(self, directory: Path) -> Iterator[OidcProvider]:
        with serve_tls(self.app(), directory) as running:
            self.base, self.ca = running.base, running.ca
            yield self
