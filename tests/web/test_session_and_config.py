"""The encrypted session cookie and the [web] configuration, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from safeguarding.domain.caller import User
from safeguarding.settings import SettingsError, file_settings
from safeguarding.web.session import OIDC_COOKIE, SESSION_COOKIE, Session, SessionCodec, compact_claims

KEY = b"k" * 32


def signed_in(now: int = 1_000_000) -> Session:
    session = Session.new(now)
    session.user = User("u1", "r1", "RR8", frozenset({"B0370"}), name="Dr A")
    session.indicators["9990000018"] = "indicator-1"
    return session


def test_a_session_round_trips_and_its_cookie_hides_the_patient() -> None:
    codec = SessionCodec(KEY)
    session = signed_in()
    value = codec.dump(session)
    assert "9990000018" not in value  # ciphertext only
    loaded, expired = codec.load(value, now=1_000_060)
    assert loaded is not None and not expired
    assert (loaded.user, loaded.indicators, loaded.csrf) == (session.user, {"9990000018": "indicator-1"},
                                                             session.csrf)
    assert loaded.seen == 1_000_060


def test_a_tampered_forged_or_misplaced_cookie_is_no_session() -> None:
    codec = SessionCodec(KEY)
    value = codec.dump(signed_in())
    flipped = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    assert codec.load(flipped, now=1_000_001) == (None, False)
    assert SessionCodec(b"x" * 32).load(value, now=1_000_001) == (None, False)  # another key
    assert codec.open(OIDC_COOKIE, value) is None  # a session cookie cannot stand in for the sign-in cookie
    assert codec.open(SESSION_COOKIE, value) is not None
    for junk in ("", "not base64 !", "AAAA", "x" * 5000):
        assert codec.load(junk) == (None, False)


def test_a_session_ends_when_idle_and_when_old() -> None:
    codec = SessionCodec(KEY, idle=900, lifetime=12 * 3600)
    value = codec.dump(signed_in(now=1_000_000))
    assert codec.load(value, now=1_000_000 + 901) == (None, True)
    session = signed_in(now=1_000_000)
    session.seen = 1_000_000 + 12 * 3600  # active all along, but past the absolute limit
    assert codec.load(codec.dump(session), now=1_000_000 + 12 * 3600 + 1) == (None, True)


def test_signing_in_renews_the_session_id_and_csrf_secret() -> None:
    session = signed_in()
    session.unscheduled = False
    fresh = session.renewed()
    assert fresh.id != session.id and fresh.csrf != session.csrf and fresh.user is None
    assert fresh.unscheduled is False


def test_claims_kept_while_choosing_a_role_are_cut_to_what_is_used() -> None:
    activities = [f"B{n:04d}" for n in range(1000)]
    claims = {"nhsid_useruid": "u1", "sub": "u1", "email": "a@example.nhs.uk", "nhsid_nrbac_roles": [
        {"person_roleid": f"r{i}", "org_code": "RR8", "activity_codes": activities}
        for i in range(8)]}
    kept = compact_claims(claims)
    assert set(kept) == {"nhsid_useruid", "nhsid_nrbac_roles", "nhsid_user_orgs"}
    assert kept["nhsid_nrbac_roles"][0]["activity_codes"] == ["B0107", "B0170", "B0370", "B0380"]
    odd = compact_claims({"nhsid_nrbac_roles": [{"person_roleid": "r", "activity_codes": {"B0380": True}},
                                                {"person_roleid": "s", "activity_codes": "B0370"}]})
    assert [r["activity_codes"] for r in odd["nhsid_nrbac_roles"]] == [[], []]
    session = Session.new()
    session.claims = kept
    assert len(SessionCodec(KEY).dump(session)) < 4000


def _config(tmp_path: Path, oidc: str) -> Path:
    (tmp_path / "audit.key").write_bytes(b"a" * 32)
    (tmp_path / "secret").write_text("shh\n")
    path = tmp_path / "safeguarding.toml"
    path.write_text(f"""
database_url = "sqlite:///{tmp_path / 'db'}"
audit_key_file = "audit.key"
service_asid = "990101234567"
[[trusted_issuers]]
issuer = "https://idp.example"
audience = "api"
jwks_url = "https://idp.example/jwks"
[web.oidc]
issuer = "https://idp.example"
client_id = "web"
client_secret_file = "secret"
{oidc}
""")
    return path


def test_oidc_configuration_is_read_and_checked(tmp_path: Path) -> None:
    endpoints = ('authorization_endpoint = "https://idp.example/authorize"\n'
                 'token_endpoint = "https://idp.example/token"\njwks_uri = "https://idp.example/jwks"\n')
    settings = file_settings(_config(tmp_path, endpoints))
    assert settings.web.oidc is not None and settings.web.oidc.client_secret == b"shh"
    assert "shh" not in repr(settings)
    with pytest.raises(SettingsError, match="https"):
        file_settings(_config(tmp_path, endpoints.replace("https://idp.example/token", "http://idp.example/token")))
    # An endpoint left out is found by discovery when it is needed (tests/identity/test_web_oidc_keys.py).
    discovered = file_settings(_config(tmp_path, ""))
    assert discovered.web.oidc is not None and discovered.web.oidc.token_endpoint is None
    assert discovered.web.oidc.authorization_origin == "https://idp.example"


def test_the_session_cookie_is_persistent_only_when_configured(tmp_path: Path) -> None:
    endpoints = ('authorization_endpoint = "https://idp.example/authorize"\n'
                 'token_endpoint = "https://idp.example/token"\njwks_uri = "https://idp.example/jwks"\n')
    assert file_settings(_config(tmp_path, endpoints)).web.persistent_cookie is False
    path = _config(tmp_path, endpoints)
    path.write_text(path.read_text().replace("[web.oidc]", "[web]\npersistent_cookie = true\n[web.oidc]"))
    assert file_settings(path).web.persistent_cookie is True
    path.write_text(path.read_text().replace("persistent_cookie = true", 'persistent_cookie = "yes"'))
    with pytest.raises(SettingsError, match="persistent_cookie"):
        file_settings(path)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_signed_out_sessions_are_shared_through_the_store(backend: str, tmp_path: Path) -> None:
    from safeguarding.store.sql import SqlStore, make_engine, upgrade_schema
    from safeguarding.web.signed_out import SignedOut, session_hash

    from ..pg import create_database, drop_database

    url = create_database() if backend == "postgresql" else f"sqlite:///{tmp_path / 'safeguarding.sqlite'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    stores = SqlStore.open(url, KEY), SqlStore.open(url, KEY)  # two workers, or two hosts
    one, other = SignedOut(stores[0]), SignedOut(stores[1])
    try:
        assert not one.holds("session-a")
        one.record("session-a", until=2_000_000_000)
        assert other.holds("session-a") and not other.holds("session-b")
        one.record("session-a", until=2_000_000_000)  # signing out twice is harmless
        one.record("session-old", until=1)  # past its lifetime: forgotten at the next sign-out
        other.record("session-b", until=2_000_000_000)
        assert not one.holds("session-old") and one.holds("session-b")
        assert stores[0].web_session_revoked(session_hash("session-a"))  # the store keeps a hash, not the id
        assert not stores[0].web_session_revoked("session-a")
        assert [p.name for p in tmp_path.iterdir() if "signed-out" in p.name] == []  # no file of its own
    finally:
        for store in stores:
            store.close()
        if backend == "postgresql":
            drop_database(url)
