"""Application-restricted access to an NHS API Platform API: a client assertion, a JWT signed with this
service's private key (RFC 7523, ``private_key_jwt``), exchanged at the token endpoint for an access token
(the NHS guide "Application-restricted RESTful APIs - signed JWT authentication")."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from .settings import PdsSettings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300  # the platform accepts at most 5 minutes


class TokenUnavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccessTokens:
    """An access token for the API, fetched when needed and kept until shortly before it expires."""

    def __init__(self, settings: PdsSettings, http: httpx.Client) -> None:
        self._settings = settings
        self._http = http
        self._key = serialization.load_pem_private_key(settings.key_file.read_bytes(), password=None)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def assertion(self) -> str:
        now = int(time.time())
        claims = {"iss": self._settings.client_id, "sub": self._settings.client_id, "aud": self._settings.token_url,
                  "jti": str(uuid.uuid4()), "iat": now, "exp": now + ASSERTION_LIFETIME}
        return jwt.encode(claims, self._key, algorithm="RS512",  # type: ignore[arg-type]
                          headers={"kid": self._settings.kid, "typ": "JWT"})

    def current(self, timeout: float) -> str:
        with self._lock:
            if self._token is not None and time.monotonic() < self._token[1]:
                return self._token[0]
            try:
                response = self._http.post(self._settings.token_url, timeout=timeout, data={
                    "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.assertion()})
            except httpx.HTTPError as exc:
                raise TokenUnavailable(f"token endpoint unreachable ({type(exc).__name__})") from None
            if response.status_code != 200:
                raise TokenUnavailable(f"token endpoint answered {response.status_code}")
            try:
                body: Any = response.json()
                token, lifetime = str(body["access_token"]), float(body.get("expires_in", 300))
            except (ValueError, KeyError, TypeError):
                raise TokenUnavailable("token endpoint answer unusable") from None
            self._token = (token, time.monotonic() + max(0.0, lifetime - 30))
            return token

    def forget(self) -> None:
        with self._lock:
            self._token = None
