"""Command-line errors as one sentence: what is wrong and what to do, exit status 1, never a traceback.

``ReadableErrors`` is the ``safeguarding`` group's class: an exception a command lets through is turned
into such a sentence when it is one an operator can cause (a configuration, a database that cannot be
reached, a port in use, a file that cannot be read). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import socket
import tomllib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from .config_file import SettingsError


def masked_url(url: str) -> str:
    """A database URL without its password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unreadable URL)"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _database_reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc.__cause__ or exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first[:200]


def readable(exc: BaseException, database_url: str | None = None) -> str | None:
    """The sentence for an operator-caused failure, or None (a bug)."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    from .store.interface import StoreUnavailable

    where = f" at {masked_url(database_url)}" if database_url else ""
    if isinstance(exc, SettingsError):
        return str(exc)
    if isinstance(exc, tomllib.TOMLDecodeError):
        return f"the configuration file is not valid TOML ({exc}): correct it"
    if isinstance(exc, StoreUnavailable | OperationalError):
        cause = exc.__cause__ if isinstance(exc, StoreUnavailable) and exc.__cause__ else exc
        return (f"cannot use the database{where} ({_database_reason(cause)}): check that it is running and that "
                "--database-url (or database_url / SAFEGUARDING_DATABASE_URL) is right")
    if isinstance(exc, ValueError) and str(exc).startswith("database URL must be"):
        return f"{exc} (got {masked_url(database_url or '')}): correct --database-url or database_url"
    if isinstance(exc, ArgumentError):
        return f"the database URL is not valid ({exc}): give sqlite:///FILE or postgresql://USER@HOST/NAME"
    if isinstance(exc, PermissionError):
        return f"permission denied on {exc.filename}: run as the user who owns it, or correct the path"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename} does not exist: check the path (or the --data-dir / --config given)"
    return None


def check_port_free(host: str, port: int, change: str = "give another --port") -> None:
    """Refuse, in a sentence, to start on a port another process already listens on (``change``: how to
    choose another)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(f"port {port} on {host} is already in use (is another server running?): "
                                           f"stop it, or {change}") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise click.ClickException(f"{host} is not an address of this machine: give another --host") from None
            if exc.errno == errno.EACCES:
                raise click.ClickException(f"not allowed to listen on port {port}: use a port above 1023 "
                                           "(or give the process that right)") from None
            raise


class ReadableErrors(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is an operator's to fix
            message = readable(exc, _database_url(ctx))
            if message is None:
                raise
            raise click.ClickException(message) from None


META_DATABASE_URL = "safeguarding.database_url"


def remember_database(url: str) -> None:
    """Name the database a command uses, for its error message should it be unreachable."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[META_DATABASE_URL] = url


def _database_url(ctx: click.Context) -> str | None:
    url = ctx.meta.get(META_DATABASE_URL)
    return url if isinstance(url, str) else None
