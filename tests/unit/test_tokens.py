"""Role selection from CIS2 claims (the token signature checks are tested over HTTPS in tests/api)."""

from __future__ import annotations

from typing import Any

import pytest

from safeguarding.security.errors import AuthenticationFailed, RoleSelectionFailed
from safeguarding.security.tokens import user_from_claims

ROLE_A = {"person_roleid": "A", "org_code": "RR8", "role_code": "S1:G1:R8000", "role_name": "Nurse",
          "activity_codes": ["B0370"]}
ROLE_B = {"person_roleid": "B", "org_code": "X26", "activity_codes": ["B0380", 7]}


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"nhsid_useruid": "U1", "nhsid_nrbac_roles": [ROLE_A, ROLE_B], "given_name": "Amy",
                            "family_name": "Test", "nhsid_user_orgs": [{"org_code": "RR8", "org_name": "Trust"}]}
    base.update(overrides)
    return base


def test_selected_roleid_picks_the_role() -> None:
    user = user_from_claims(claims(selected_roleid="A"), None)
    assert (user.user_id, user.role_profile_id, user.org_code, user.org_name) == ("U1", "A", "RR8", "Trust")
    assert user.activities == frozenset({"B0370"}) and user.role_code == "S1:G1:R8000" and user.name == "Amy Test"


def test_session_urid_header_picks_the_role_and_ignores_non_string_activities() -> None:
    user = user_from_claims(claims(), "B")
    assert user.role_profile_id == "B" and user.activities == frozenset({"B0380"}) and user.org_name is None


def test_single_role_needs_no_selection() -> None:
    assert user_from_claims(claims(nhsid_nrbac_roles=[ROLE_A]), None).role_profile_id == "A"


@pytest.mark.parametrize("kwargs, header, error", [
    ({}, None, RoleSelectionFailed),                        # several roles, none selected
    ({}, "Z", RoleSelectionFailed),                         # header names a role the user lacks
    ({"selected_roleid": "A"}, "B", RoleSelectionFailed),   # header and claim disagree
    ({"selected_roleid": "Z"}, None, AuthenticationFailed),  # token names a role the user lacks
    ({"nhsid_useruid": None}, "A", AuthenticationFailed),
    ({"nhsid_nrbac_roles": "A"}, "A", AuthenticationFailed),
    ({"nhsid_nrbac_roles": [{"person_roleid": "A"}]}, "A", AuthenticationFailed),  # no org_code
])
def test_role_selection_failures(kwargs: dict[str, Any], header: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        user_from_claims(claims(**kwargs), header)


def test_verified_tokens_cache_expires_and_is_bounded() -> None:
    import time

    from safeguarding.security.tokens import VerifiedTokens

    cache = VerifiedTokens(capacity=2)
    now = int(time.time())
    cache.put("a", {"exp": now + 60})
    cache.put("expired", {"exp": now - 120})
    cache.put("future", {"exp": now + 600, "nbf": now + 300})
    cache.put("no-exp", {})
    assert cache.get("a", 30) is None  # pushed out: capacity 2 (expired, future)
    assert cache.get("expired", 30) is None
    assert cache.get("future", 30) is None
    assert cache.get("no-exp", 30) is None
    cache.put("b", {"exp": now + 60})
    assert cache.get("b", 30) == {"exp": now + 60}
    short = VerifiedTokens(max_age=0.0)  # re-verified after max_age even though not expired
    short.put("c", {"exp": now + 60})
    time.sleep(0.01)
    assert short.get("c", 30) is None
