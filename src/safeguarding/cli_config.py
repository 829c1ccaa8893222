"""``safeguarding config check``: validate a configuration and print the effective settings, secrets masked."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import click

from .cli_errors import masked_url
from .cli_options import config_option
from .settings import Secret, Settings, file_settings

MASK = "**********"
_SECRET_NAMES = ("secret", "password", "key_value")


@click.group()
def config() -> None:
    """The service's configuration."""


@config.command("check")
@config_option
def config_check(config: Path | None) -> None:
    """Validate --config FILE (or the SAFEGUARDING_* environment alone) and print the effective settings as
    JSON, secrets masked; exit 1 with one sentence naming the key and the file when something is wrong."""
    settings = file_settings(config)
    click.echo(json.dumps(effective(settings), indent=2))


def effective(settings: Settings) -> dict[str, Any]:
    """The settings as plain values, every secret masked (the audit key, database passwords, client secrets)."""
    value = _plain(settings)
    assert isinstance(value, dict)  # noqa: S101 - a dataclass is a dict here
    value["database_url"] = masked_url(settings.database_url)
    return value


def _plain(value: Any, name: str = "") -> Any:
    if isinstance(value, Secret) or (isinstance(value, bytes) and any(s in name for s in _SECRET_NAMES)):
        return MASK
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), f.name) for f in fields(value) if not f.name.startswith("_")}
    if isinstance(value, list | tuple):
        return [_plain(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, bytes):
        return MASK
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
