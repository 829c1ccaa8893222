"""Bearer-token authentication for the R4 APIs: CIS2-shaped JWTs from trusted issuers.

Checks, in order: an allowed asymmetric algorithm (never ``none``, never HMAC, so a public key can
never be used as a shared secret), a trusted issuer, a key from that issuer's JWKS matching the
token's ``kid`` and algorithm family, the signature, ``aud``, ``exp``/``nbf``/``iat``; then the role
the user acts in (``selected_roleid`` claim or ``NHSD-Session-URID`` header, else the only role).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import jwt

from .. import inline
from ..domain.caller import User
from .errors import AuthenticationFailed, RoleSelectionFailed
from .keys import load_jwks

ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
_KEY_TYPE_FOR_ALG_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC"}


@dataclass
class TrustedIssuer:
    issuer: str
    audience: str
    jwks_file: str | None = None
    jwks_url: str | None = None
    _jwks: jwt.PyJWKSet | None = field(default=None, repr=False)
    _client: jwt.PyJWKClient | None = field(default=None, repr=False)

    def key_for(self, kid: str | None) -> jwt.PyJWK:
        if self.jwks_url:
            if self._client is None:
                self._client = jwt.PyJWKClient(self.jwks_url, cache_keys=True, lifespan=300)
            keys = self._client.get_signing_keys()
        else:
            if self._jwks is None:
                if not self.jwks_file:
                    raise AuthenticationFailed("trusted issuer has neither jwks_file nor jwks_url")
                self._jwks = load_jwks(self.jwks_file)
            keys = self._jwks.keys
        if kid is None:
            if len(keys) == 1:
                return keys[0]
            raise AuthenticationFailed("token has no kid and the issuer has several keys")
        for key in keys:
            if key.key_id == kid:
                return key
        raise AuthenticationFailed("unknown kid")


@dataclass
class _Verified:
    claims: dict[str, Any]
    verified_at: float
    users: dict[str | None, User] = field(default_factory=dict)  # by NHSD-Session-URID, derived once


class VerifiedTokens:
    """Tokens already verified, by SHA-256: a client sends the same token many times, and the signature
    check is the costly part. Expiry and not-before are still checked on every use, and an entry lives at
    most ``max_age`` seconds (as long as a fetched JWKS is trusted), so an issuer withdrawing its key
    takes effect as quickly here as it does for new tokens. Bounded (least recently used out); it keeps
    digests, never tokens."""

    def __init__(self, capacity: int = 4096, max_age: float = 300.0) -> None:
        self._capacity, self._max_age = capacity, max_age
        self._entries: OrderedDict[bytes, _Verified] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, leeway: int) -> dict[str, Any] | None:
        entry = self.entry(token, leeway)
        return entry.claims if entry is not None else None

    def entry(self, token: str, leeway: int) -> _Verified | None:
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            cached = self._entries.get(key)
            if cached is None:
                return None
            claims = cached.claims
            now = time.time()
            if (now > claims["exp"] + leeway or now < claims.get("nbf", 0) - leeway
                    or now - cached.verified_at > self._max_age):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return cached

    def put(self, token: str, claims: dict[str, Any]) -> _Verified | None:
        if not isinstance(claims.get("exp"), (int, float)) or not isinstance(claims.get("nbf", 0), (int, float)):
            return None
        entry = _Verified(claims, time.time())
        with self._lock:
            self._entries[hashlib.sha256(token.encode()).digest()] = entry
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return entry


class TokenVerifier:
    def __init__(self, issuers: list[TrustedIssuer], leeway_seconds: int = 30) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._leeway = leeway_seconds
        self._verified = VerifiedTokens()

    def verify(self, token: str, session_urid: str | None = None) -> User:
        entry = self._verified.entry(token, self._leeway)
        if entry is None:
            claims = self._verified_claims(token)
            entry = self._verified.put(token, claims)
            if entry is None:
                return user_from_claims(claims, session_urid)
        user = entry.users.get(session_urid)
        if user is None:
            user = user_from_claims(entry.claims, session_urid)  # a refusal raises, and is never kept
            if len(entry.users) < 8:  # a token names a few roles; a client cycling URIDs gains nothing
                entry.users[session_urid] = user
        return user

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed("token is not a well-formed JWT") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthenticationFailed("token algorithm not allowed")
        claimed_issuer = unverified.get("iss")
        issuer = self._issuers.get(claimed_issuer) if isinstance(claimed_issuer, str) else None
        if issuer is None:
            raise AuthenticationFailed("token issuer not trusted")
        # A JWKS URL may mean a fetch: off the event loop (inline.blocking), as any network call.
        kid = header.get("kid")
        key = inline.blocking(issuer.key_for, kid) if issuer.jwks_url else issuer.key_for(kid)
        if key.key_type != _KEY_TYPE_FOR_ALG_PREFIX[alg[:2]]:
            raise AuthenticationFailed("token algorithm does not match the key type")
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationFailed("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthenticationFailed("token not yet valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationFailed("token audience wrong") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationFailed("token signature invalid") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(f"token rejected ({type(exc).__name__})") from exc


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def user_from_claims(claims: dict[str, Any], session_urid: str | None) -> User:
    """Derive the acting user and role from CIS2 claims (standards-compliant role selection)."""
    user_id = _text(claims.get("nhsid_useruid"))
    roles = claims.get("nhsid_nrbac_roles")
    if user_id is None or not isinstance(roles, list) or not all(isinstance(r, dict) for r in roles):
        raise AuthenticationFailed("token lacks nhsid_useruid or nhsid_nrbac_roles")
    claimed = _text(claims.get("selected_roleid"))
    if session_urid is not None and claimed is not None and session_urid != claimed:
        raise RoleSelectionFailed("NHSD-Session-URID differs from selected_roleid")
    by_id = {r.get("person_roleid"): r for r in roles if _text(r.get("person_roleid"))}
    if claimed is not None:
        role = by_id.get(claimed)
        if role is None:
            raise AuthenticationFailed("selected_roleid is not one of the user's roles")
    elif session_urid is not None:
        role = by_id.get(session_urid)
        if role is None:
            raise RoleSelectionFailed("NHSD-Session-URID is not one of the user's roles")
    elif len(by_id) == 1:
        role = next(iter(by_id.values()))
    else:
        raise RoleSelectionFailed("several roles and none selected")
    org_code = _text(role.get("org_code"))
    if org_code is None:
        raise AuthenticationFailed("selected role has no org_code")
    activities = role.get("activity_codes")
    if not isinstance(activities, list):  # a string or object would grant its characters or keys
        activities = []
    org_names = {
        o.get("org_code"): o.get("org_name") for o in claims.get("nhsid_user_orgs") or [] if isinstance(o, dict)
    }
    name = _text(claims.get("name")) or " ".join(
        part for part in (_text(claims.get("given_name")), _text(claims.get("family_name"))) if part
    )
    return User(
        user_id=user_id,
        role_profile_id=str(role["person_roleid"]),
        org_code=org_code,
        activities=frozenset(a for a in activities if isinstance(a, str)),
        role_code=_text(role.get("role_code")),
        role_name=_text(role.get("role_name")),
        org_name=_text(org_names.get(org_code)),
        name=name or None,
    )
