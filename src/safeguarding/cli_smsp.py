"""``safeguarding smsp``: run a Spine Mini Service Provider in front of a national FGM-IS service, search its
audit trail, report its throughput."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .cli_errors import check_port_free
from .settings import SettingsError

if TYPE_CHECKING:
    from .smsp.settings import SmspSettings
    from .store.sql import SqlStore

_CONFIG = click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
                       help="SMSP configuration (TOML): see docs/smsp.md.")


def _settings(config: Path) -> SmspSettings:
    from .smsp.settings import load_smsp_settings

    try:
        return load_smsp_settings(config)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _store(settings: SmspSettings) -> SqlStore:
    from .store.sql import SqlStore

    return SqlStore.open(settings.database_url, settings.audit_key.value)


@click.group()
def smsp() -> None:
    """Spine Mini Service Provider mode (FGM-IS query for local systems)."""


@smsp.command("serve")
@_CONFIG
def serve(config: Path) -> None:
    """Serve POST /fhir/fgm/query to local clients, forwarding to the national service."""
    from .smsp.app import serve_smsp

    settings = _settings(config)
    check_port_free(settings.host, settings.port, f"set another port in {config}")
    serve_smsp(settings)


@smsp.group("audit")
def audit() -> None:
    """The SMSP's audit trail."""


@audit.command("search")
@_CONFIG
@click.option("--from", "since", help="From this date (YYYY-MM-DD) or instant (ISO 8601, UTC if no zone).")
@click.option("--to", "until", help="Up to this date (inclusive) or instant (exclusive).")
@click.option("--user", "user_id", help="The user: local:<id> for a local user, or the SDS user id.")
@click.option("--nhs-number", help="The patient's NHS number.")
@click.option("--outcome", help="The outcome code the client was told (OK, NO_RECORD_FOUND, ...).")
@click.option("--message-id", help="The client's MessageHeader id or the national message id.")
def audit_search(config: Path, since: str | None, until: str | None, user_id: str | None,
                 nhs_number: str | None, outcome: str | None, message_id: str | None) -> None:
    """Print the matching audit records as a JSON array, oldest first (SMSP-AUDIT-007)."""
    from .smsp.audit_search import Criteria, instant, search

    try:
        criteria = Criteria(since=instant(since) if since else None,
                            until=instant(until, end_of_day=True) if until else None,
                            user_id=user_id, nhs_number=nhs_number, outcome=outcome, message_id=message_id)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO date or instant: {exc}") from exc
    store = _store(_settings(config))
    try:
        click.echo(json.dumps(list(search(store.audit_records(), criteria)), indent=1))
    finally:
        store.close()


@smsp.command("throughput")
@_CONFIG
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True, help="How many recent days.")
def throughput(config: Path, days: int) -> None:
    """Daily total and peak-hour throughput of client queries, from the audit trail (SMSP-PERF-002)."""
    from .smsp.throughput import from_audit

    store = _store(_settings(config))
    try:
        records = from_audit(record.event.recorded_at for record in store.audit_records()
                             if record.event.interaction == "query")
    finally:
        store.close()
    click.echo(json.dumps([day.as_json() for day in records[-days:]], indent=1))


@smsp.command("dev-certs")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory for the local CA and the certificates (the CA is kept if already there).")
@click.option("--server-name", "server_names", multiple=True, default=("localhost", "127.0.0.1"), show_default=True,
              help="A name local clients reach the SMSP by (repeatable).")
@click.option("--client", "clients", multiple=True, help="The ASID of a local client system (repeatable).")
@click.option("--ods", default=None, help="The ODS code put in the client certificates.")
def dev_certs(out: Path, server_names: tuple[str, ...], clients: tuple[str, ...], ods: str | None) -> None:
    """A local CA, the SMSP's server certificate and local clients' certificates, for trying an SMSP out."""
    from .security import certs

    out.mkdir(parents=True, exist_ok=True)
    ca = certs.CertPair(out / "ca.pem", out / "ca.key")
    if not ca.key.exists():
        ca = certs.create_ca(out, "SMSP local CA")
    server = certs.issue(ca, certs.CertPair(out / "smsp.pem", out / "smsp.key"), common_name=server_names[0],
                         server_names=server_names)
    issued = []
    for asid in clients:
        pair = certs.issue(ca, certs.CertPair(out / f"{asid}.pem", out / f"{asid}.key"), common_name=asid, org=ods,
                           client=True)
        issued.append({"asid": asid, "cert": str(pair.cert), "key": str(pair.key),
                       "cert_sha256": certs.pem_fingerprint(pair.cert)})
    click.echo(json.dumps({"client_ca": str(ca.cert), "cert": str(server.cert), "key": str(server.key),
                           "clients": issued}, indent=1))
