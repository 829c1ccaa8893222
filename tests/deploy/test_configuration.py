"""Configuration: the TOML file, SAFEGUARDING_* variables over it, secrets from files, errors as one sentence,
and ``safeguarding config check``."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from safeguarding.config_file import ConfigError
from safeguarding.settings import file_settings

from .helpers import clean_env, cli, example_dir, one_sentence_error


def test_the_annotated_example_configuration_loads_as_documented(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    directory = example_dir(tmp_path)
    for name in [n for n in __import__("os").environ if n.upper().startswith("SAFEGUARDING_")]:
        monkeypatch.delenv(name)
    settings = file_settings(directory / "safeguarding.toml")
    assert settings.database_url == "postgresql://safeguarding@db.internal/safeguarding"
    assert settings.service_asid == "990101234567" and settings.port == 8443 and settings.host == "127.0.0.1"
    assert settings.tls_cert == directory / "tls" / "server.pem"
    assert settings.client_ca == directory / "tls" / "client-ca.pem"
    assert settings.registry_file == directory / "systems.json"
    assert settings.audit_key.value == (directory / "audit.key").read_bytes()
    assert settings.public_base_url == "https://fgm.example.nhs.uk"
    assert settings.trusted_issuers[0].audience == "safeguarding-client-id"
    assert settings.proxy.trusted == () and settings.proxy.client_cert_header == "x-ssl-client-cert"
    assert settings.web.session_hours == 12 and settings.web.oidc is None
    assert settings.log_format == "auto"


def test_every_setting_can_be_overridden_from_the_environment(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    directory = example_dir(tmp_path)
    other = tmp_path / "other.pem"
    other.write_bytes((directory / "tls" / "server.pem").read_bytes())
    secret = tmp_path / "database-url"
    secret.write_text("postgresql://app:s3cret@db.example/safeguarding\n")
    monkeypatch.setenv("SAFEGUARDING_PORT", "9443")
    monkeypatch.setenv("SAFEGUARDING_TLS__CERT", str(other))  # nested: only tls.cert changes
    monkeypatch.setenv("SAFEGUARDING_DATABASE_URL_FILE", str(secret))
    monkeypatch.setenv("SAFEGUARDING_WEB__SESSION_HOURS", "3")
    monkeypatch.setenv("SAFEGUARDING_PROXY__TRUSTED", '["10.0.0.5", "10.1.0.0/24"]')
    monkeypatch.setenv("SAFEGUARDING_LOG_LEVEL", "WARNING")
    monkeypatch.delenv("SAFEGUARDING_DATABASE_URL", raising=False)
    settings = file_settings(directory / "safeguarding.toml")
    assert settings.port == 9443
    assert settings.tls_cert == other and settings.tls_key == directory / "tls" / "server.key"
    assert settings.database_url == "postgresql://app:s3cret@db.example/safeguarding"
    assert settings.web.session_hours == 3
    assert [str(n) for n in settings.proxy.trusted] == ["10.0.0.5/32", "10.1.0.0/24"]
    assert settings.log_level == "WARNING"
    # A variable beats the file's value, and the file's value is kept where no variable is set.
    monkeypatch.setenv("SAFEGUARDING_DATABASE_URL", "sqlite:///direct.db")
    assert file_settings(directory / "safeguarding.toml").database_url == "sqlite:///direct.db"


def test_the_environment_alone_configures_the_service(tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    key.write_bytes(secrets.token_bytes(40))
    env = clean_env(SAFEGUARDING_SERVICE_ASID="990101234567", SAFEGUARDING_DATABASE_URL="postgresql://u:pw@db/x",
                    SAFEGUARDING_AUDIT_KEY_FILE=str(key), SAFEGUARDING_HOST="0.0.0.0",  # noqa: S104
                    SAFEGUARDING_TRUSTED_ISSUERS='[{"issuer": "https://idp.example", "audience": "me", '
                                                '"jwks_url": "https://idp.example/jwks"}]')
    result = cli("config", "check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["service_asid"] == "990101234567" and shown["host"] == "0.0.0.0"  # noqa: S104
    assert shown["database_url"] == "postgresql://u:***@db/x"  # the password masked
    assert shown["audit_key"] == "**********"
    assert shown["trusted_issuers"][0]["issuer"] == "https://idp.example"
    assert key.read_bytes().hex() not in result.stdout


def test_config_check_prints_the_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    directory = example_dir(tmp_path)
    env = clean_env(SAFEGUARDING_DATABASE_URL="postgresql://app:hunter2@db.internal/sg", SAFEGUARDING_PORT="9000")
    result = cli("config", "check", "--config", str(directory / "safeguarding.toml"), env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["port"] == 9000 and shown["database_url"] == "postgresql://app:***@db.internal/sg"
    assert "hunter2" not in result.stdout and shown["audit_key"] == "**********"
    assert shown["tls_cert"] == str(directory / "tls" / "server.pem")


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.replace('service_asid = "990101234567"\n', ""),
     "the setting service_asid is missing: add it to the file or set SAFEGUARDING_SERVICE_ASID"),
    (lambda t: t.replace("port = 8443", "port = 70000"),
     "the setting port is invalid (Input should be less than or equal to 65535): correct it in the file or in "
     "SAFEGUARDING_PORT"),
    (lambda t: t.replace("port = 8443", "prot = 8443"), "unknown setting 'prot': correct the file"),
    (lambda t: t.replace('audience = "safeguarding-client-id"\n', ""),
     "the setting trusted_issuers.0.audience is missing: add it to the file or set "
     "SAFEGUARDING_TRUSTED_ISSUERS"),
    (lambda t: t.replace('audit_key_file = "audit.key"', 'audit_key_file = "nowhere.key"'),
     "the setting audit_key_file names"),
    (lambda t: t.replace("[tls]", "[tls\n"), "is not valid TOML"),
    (lambda t: t.replace('key = "tls/server.key"\n', ""), "tls.cert and tls.key go together"),
])
def test_a_configuration_error_is_one_sentence_naming_the_key_and_the_file(tmp_path: Path, edit, expected) -> None:  # type: ignore[no-untyped-def]
    directory = example_dir(tmp_path)
    config = directory / "safeguarding.toml"
    config.write_text(edit(config.read_text()))
    with pytest.raises(ConfigError) as raised:
        file_settings(config)
    assert str(config) in str(raised.value) and expected in str(raised.value)
    commands = [("config", "check"), ("serve",), ("audit", "verify"), ("db", "upgrade")]
    for command in commands if "service_asid" in expected or "TOML" in expected else commands[:1]:
        message = one_sentence_error(cli(*command, "--config", str(config)))
        assert str(config) in message and expected in message, (command, message)


def test_a_secret_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    directory = example_dir(tmp_path)
    env = clean_env(SAFEGUARDING_DATABASE_URL_FILE=str(tmp_path / "missing"))
    message = one_sentence_error(cli("config", "check", "--config", str(directory / "safeguarding.toml"), env=env))
    assert message.startswith(f"SAFEGUARDING_DATABASE_URL_FILE names {tmp_path / 'missing'}, which cannot be read")


def test_a_table_of_another_part_is_set_from_the_environment_too(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    directory = example_dir(tmp_path)
    secret = tmp_path / "oidc-secret"
    secret.write_text("s3cret\n")
    for key, value in {"ISSUER": "https://idp.example", "CLIENT_ID": "sg", "CLIENT_SECRET_FILE": str(secret),
                       "AUTHORIZATION_ENDPOINT": "https://idp.example/authorize",
                       "TOKEN_ENDPOINT": "https://idp.example/token", "JWKS_URI": "https://idp.example/jwks"}.items():
        monkeypatch.setenv(f"SAFEGUARDING_WEB__OIDC__{key}", value)
    settings = file_settings(directory / "safeguarding.toml")
    assert settings.web.oidc is not None
    assert settings.web.oidc.client_secret == b"s3cret" and settings.web.oidc.client_id == "sg"
    assert settings.web.session_hours == 12  # the file's value beside the variables
