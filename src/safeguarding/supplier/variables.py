"""The values of the scenario and collection variables for one sandbox (tokens, dates, its URL)."""

# ruff: noqa: S105, S106  (token variable names, not secrets)
from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ..security.dev_tokens import issue_dev_token
from ..settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, SANDBOX_SERVICE_ASID, Settings

# The sandbox users (sandbox/setup.py USERS) behind each token variable.
TOKEN_USERS: dict[str, tuple[str, str, str, list[str], str | None]] = {
    "token_fgm": ("555021935107", "555021936108", "RR8", ["B0370", "B0380"], "Dr Amy Sandbox"),
    "token_fgm_query": ("555021937109", "555021938100", "RR8", ["B0370"], "Nurse Ben Sandbox"),
    "token_no_fgm": ("555021939101", "555021940102", "RR8", ["B0107"], "Clerk Cal Sandbox"),
    "token_ed": ("555021941103", "555021942104", "RR8", ["B0107"], "Dr Erin Sandbox"),
    "token_gp": ("555021943105", "555021944106", "B86022", ["B0170"], "Dr Gus Sandbox"),
}
_PLACEHOLDER = re.compile(r"\{\{(\$?[A-Za-z_]+)\}\}")


def sandbox_variables(settings: Settings, *, today: date | None = None, expires_in: int = 12 * 3600,
                      client_id: str | None = None) -> dict[str, str]:
    """Every variable the scenarios and the collection use, for this sandbox (tokens signed now)."""
    today = today or date.today()
    values = {
        "base": settings.base_url,
        "base_localhost": f"{settings.scheme}://localhost:{settings.port}",  # the same server by another name
        "service_asid": SANDBOX_SERVICE_ASID,
        "assessment_date": (today - timedelta(days=3)).isoformat(),
        "future_date": (today + timedelta(days=1)).isoformat(),
        "birth_date": today.replace(year=today.year - 10).isoformat() if not (today.month == 2 and today.day == 29)
        else date(today.year - 10, 3, 1).isoformat(),
    }
    for name, (user, role, org, activities, person) in TOKEN_USERS.items():
        values[name] = issue_dev_token(settings.layout.signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE,
                                       user_id=user, role_profile_id=role, org_code=org, activities=activities,
                                       name=person, expires_in=expires_in, client_id=client_id)
    return values


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with its ``{{variables}}`` replaced (``$guid`` and ``$isoTimestamp`` fresh, as Postman does)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "$guid":
            return str(uuid.uuid4())
        if name == "$isoTimestamp":
            return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return values[name]

    return _PLACEHOLDER.sub(value, text)


def filled_headers(headers: dict[str, str], values: dict[str, str]) -> dict[str, Any]:
    return {name: fill(value, values) for name, value in headers.items()}
