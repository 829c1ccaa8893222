"""Sign-in with the organisation's OpenID Connect provider (CIS2-shaped): the authorization-code flow
with PKCE (S256), ``state`` and ``nonce``.

1. ``start()``: a fresh state, nonce and PKCE verifier (kept in a short-lived encrypted cookie) and the
   provider's authorization URL.
2. ``finish(code, ...)``: the code is exchanged at the token endpoint (client secret, PKCE verifier);
   the ID token is verified (an allowed asymmetric algorithm, the provider's JWKS key by ``kid``,
   ``iss``, ``aud`` = our client id, ``exp``/``iat``, ``nonce``); the UserInfo claims (national RBAC
   roles, organisations) are fetched with the access token and must name the same ``sub``.

The result is the CIS2 claims; the role is then chosen by the same rules as the API
(``security.tokens.user_from_claims``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt
import orjson

from ..security.errors import AuthenticationFailed
from ..security.tokens import ALLOWED_ALGORITHMS
from .config import CALLBACK_PATH, OidcSettings

TIMEOUT = 10
_MAX_RESPONSE = 256 * 1024


@dataclass(frozen=True)
class Started:
    url: str
    state: str
    nonce: str
    verifier: str


class OidcClient:
    def __init__(self, settings: OidcSettings, base_url: str) -> None:
        self.settings = settings
        self.redirect_uri = settings.redirect_uri or base_url.rstrip("/") + CALLBACK_PATH
        self._tls = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        self._jwks = jwt.PyJWKClient(settings.jwks_uri, cache_keys=True, lifespan=300, timeout=TIMEOUT,
                                     ssl_context=self._tls)

    def start(self) -> Started:
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        query = urllib.parse.urlencode({
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "prompt": "login",
        })
        separator = "&" if "?" in self.settings.authorization_endpoint else "?"
        return Started(f"{self.settings.authorization_endpoint}{separator}{query}", state, nonce, verifier)

    def finish(self, code: str, nonce: str, verifier: str) -> dict[str, Any]:
        tokens = self._post(self.settings.token_endpoint, {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.decode(),
        })
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise AuthenticationFailed("token response lacks id_token or access_token")
        claims = self._verify_id_token(id_token, nonce)
        if self.settings.userinfo_endpoint:
            info = self._get(self.settings.userinfo_endpoint, access_token)
            if info.get("sub") != claims.get("sub"):
                raise AuthenticationFailed("userinfo is about another subject")
            # The ID token's selected role stands; UserInfo adds the roles and organisations.
            claims = info | {k: claims[k] for k in ("selected_roleid",) if k in claims}
        return claims

    def _verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg not in ALLOWED_ALGORITHMS:
                raise AuthenticationFailed("id token algorithm not allowed")
            key = self._jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=[alg], audience=self.settings.client_id, issuer=self.settings.issuer,
                leeway=30, options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"id token rejected ({type(exc).__name__})") from exc
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
            raise AuthenticationFailed("id token nonce does not match")
        return claims

    def _post(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - endpoints are checked (web/config.py)
            url, data=urllib.parse.urlencode(form).encode(), method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        return self._json(request)

    def _get(self, url: str, access_token: str) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - endpoints are checked (web/config.py)
            url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
        return self._json(request)

    def _json(self, request: urllib.request.Request) -> dict[str, Any]:
        # Only https URLs, or http on loopback, reach here (web/config.py checks every endpoint).
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self._tls) as response:  # noqa: S310
                body = response.read(_MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            raise AuthenticationFailed(f"provider answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise AuthenticationFailed(f"provider unreachable ({type(exc).__name__})") from None
        if len(body) > _MAX_RESPONSE:
            raise AuthenticationFailed("provider response too large")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise AuthenticationFailed("provider response is not JSON") from None
        if not isinstance(parsed, dict):
            raise AuthenticationFailed("provider response is not a JSON object")
        return parsed
