"""Web sessions: state kept in an encrypted, authenticated cookie.

The browser holds only ciphertext (AES-256-GCM); the signed-in user, the CSRF secret and, per
patient, what awaits confirmation are inside it. There is no "current patient": each page names its
patient itself (``patient_ref``). The key is derived with HKDF from the audit key (a different key
for a different purpose), so every worker and every host that shares the configuration reads the
same sessions. Each cookie name is bound into the ciphertext (associated data), so one cookie cannot
stand in for another.

A session ends after ``idle`` seconds without a request, or ``lifetime`` seconds after sign-in, or
when it is signed out: sign-out is recorded in the store (``signed_out``), so a copy of the cookie
taken before then no longer works anywhere (docs/web.md).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..domain.caller import Activity, User

SESSION_COOKIE = "__Host-safeguarding-session"
OIDC_COOKIE = "__Host-safeguarding-oidc"
_INFO = b"safeguarding web session cookie v1"
_MAX_COOKIE = 4000  # browsers keep cookies up to 4096 bytes
_PER_PATIENT = 8  # patients open at once in one session (tabs) whose state is kept


def _user_to_dict(user: User) -> dict[str, Any]:
    return {"user_id": user.user_id, "role_profile_id": user.role_profile_id, "org_code": user.org_code,
            "activities": sorted(user.activities), "role_code": user.role_code, "role_name": user.role_name,
            "org_name": user.org_name, "name": user.name}


def _user_from_dict(raw: dict[str, Any]) -> User:
    return User(user_id=raw["user_id"], role_profile_id=raw["role_profile_id"], org_code=raw["org_code"],
                activities=frozenset(raw["activities"]), role_code=raw.get("role_code"),
                role_name=raw.get("role_name"), org_name=raw.get("org_name"), name=raw.get("name"))


@dataclass
class Session:
    """One browser's session. ``user`` is None until sign-in; ``claims`` holds a signed-in person's
    verified claims while they choose a role; ``pending`` an action awaiting confirmation."""

    id: str
    csrf: str
    created: int
    seen: int
    user: User | None = None
    unscheduled: bool = True
    indicators: dict[str, str] = field(default_factory=dict)  # NHS number -> the active indicator shown
    pending: dict[str, dict[str, str]] = field(default_factory=dict)  # "action:NHS number" -> awaiting confirmation
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)  # a form's fields and error, after a redirect
    flash: str | None = None
    claims: dict[str, Any] | None = None
    notice: str | None = None

    def remember(self, table: dict[str, Any], key: str, value: Any) -> None:
        """Keep ``value`` under ``key`` in one of the per-patient tables, the newest few only."""
        table.pop(key, None)
        table[key] = value
        while len(table) > _PER_PATIENT:
            table.pop(next(iter(table)))

    @classmethod
    def new(cls, now: int | None = None) -> Session:
        moment = int(time.time()) if now is None else now
        return cls(id=secrets.token_urlsafe(16), csrf=secrets.token_urlsafe(32), created=moment, seen=moment)

    def renewed(self, now: int | None = None) -> Session:
        """A fresh session (new id and CSRF secret) keeping the care setting: on every sign-in."""
        fresh = Session.new(now)
        fresh.unscheduled = self.unscheduled
        return fresh

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "csrf": self.csrf, "created": self.created, "seen": self.seen,
                "user": _user_to_dict(self.user) if self.user else None, "unscheduled": self.unscheduled,
                "indicators": self.indicators, "pending": self.pending, "drafts": self.drafts,
                "flash": self.flash, "claims": self.claims, "notice": self.notice}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Session:
        return cls(id=raw["id"], csrf=raw["csrf"], created=int(raw["created"]), seen=int(raw["seen"]),
                   user=_user_from_dict(raw["user"]) if raw.get("user") else None,
                   unscheduled=bool(raw.get("unscheduled", True)), indicators=dict(raw.get("indicators") or {}),
                   pending=dict(raw.get("pending") or {}), drafts=dict(raw.get("drafts") or {}),
                   flash=raw.get("flash"), claims=raw.get("claims"),
                   notice=raw.get("notice"))


def compact_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The claims role selection needs, with activity codes cut to those these services use (a CIS2
    role can list a hundred), so a person with several roles still fits in a cookie."""
    known = {a.value for a in Activity}
    roles = []
    for role in claims.get("nhsid_nrbac_roles") or []:
        if isinstance(role, dict):
            kept = {k: role.get(k) for k in ("person_roleid", "org_code", "role_code", "role_name")}
            codes = role.get("activity_codes")  # only a list grants (as in user_from_claims): never a str or dict
            kept["activity_codes"] = [a for a in codes if isinstance(a, str) and a in known] if isinstance(
                codes, list) else []
            roles.append(kept)
    orgs = [{"org_code": o.get("org_code"), "org_name": o.get("org_name")}
            for o in claims.get("nhsid_user_orgs") or [] if isinstance(o, dict)]
    kept_claims = {k: claims.get(k) for k in ("nhsid_useruid", "selected_roleid", "name", "given_name", "family_name")
                   if claims.get(k) is not None}
    return kept_claims | {"nhsid_nrbac_roles": roles, "nhsid_user_orgs": orgs}


@dataclass
class SessionCodec:
    """Seals and opens cookie values; enforces the idle and absolute limits."""

    secret: bytes = field(repr=False)
    idle: int = 15 * 60
    lifetime: int = 12 * 3600

    def __post_init__(self) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(self.secret)
        self._aead = AESGCM(key)

    def seal(self, name: str, payload: dict[str, Any]) -> str:
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, orjson.dumps(payload), name.encode())
        value = base64.urlsafe_b64encode(sealed).decode().rstrip("=")
        if len(value) > _MAX_COOKIE:
            raise ValueError("session too large for a cookie")
        return value

    def open(self, name: str, value: str | None) -> dict[str, Any] | None:
        if not value or len(value) > _MAX_COOKIE:
            return None
        try:
            sealed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            if len(sealed) < 28:
                return None
            plain = self._aead.decrypt(sealed[:12], sealed[12:], name.encode())
            payload = orjson.loads(plain)
        except (binascii.Error, ValueError, InvalidTag, orjson.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) else None

    def load(self, value: str | None, now: int | None = None) -> tuple[Session | None, bool]:
        """The session in a cookie, and whether one had expired (to tell the user why they must sign in)."""
        raw = self.open(SESSION_COOKIE, value)
        if raw is None:
            return None, False
        try:
            session = Session.from_dict(raw)
        except (KeyError, TypeError, ValueError):
            return None, False
        moment = int(time.time()) if now is None else now
        if moment - session.seen > self.idle or moment - session.created > self.lifetime:
            return None, session.user is not None
        session.seen = moment
        return session, False

    def dump(self, session: Session) -> str:
        return self.seal(SESSION_COOKIE, session.to_dict())
