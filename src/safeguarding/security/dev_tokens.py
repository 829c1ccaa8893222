"""Development tokens: CIS2-shaped JWTs signed with the sandbox key (``safeguarding dev-token``)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt

from .keys import key_id, load_private_key


def issue_dev_token(
    signing_key: Path,
    *,
    issuer: str,
    audience: str,
    user_id: str,
    role_profile_id: str,
    org_code: str,
    activities: list[str],
    role_code: str = "S8000:G8000:R8000",
    role_name: str = '"Clinical":"Clinical Provision":"Nurse Access Role"',
    name: str | None = None,
    org_name: str | None = None,
    expires_in: int = 3600,
    select_role: bool = True,
    client_id: str | None = None,
) -> str:
    key = load_private_key(signing_key)
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "sub": user_id,
        "iat": now,
        "exp": now + expires_in,
        "jti": str(uuid.uuid4()),
        "nhsid_useruid": user_id,
        "nhsid_nrbac_roles": [
            {
                "person_roleid": role_profile_id,
                "org_code": org_code,
                "role_code": role_code,
                "role_name": role_name,
                "activity_codes": activities,
            }
        ],
        "nhsid_user_orgs": [{"org_code": org_code, "org_name": org_name or org_code}],
    }
    if select_role:
        claims["selected_roleid"] = role_profile_id
    if name:
        claims["name"] = name
    if client_id:
        claims["azp"] = client_id  # the OAuth client (the supplier's application) the token was issued to
    return jwt.encode(claims, key, algorithm="RS512", headers={"kid": key_id(key.public_key())})
