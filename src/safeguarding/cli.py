"""The ``safeguarding`` command line (README.md lists every command and its options)."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import click

from . import logs
from .cli_config import config
from .cli_errors import ReadableErrors, check_port_free, remember_database
from .cli_options import config_option, data_dir_option, database_option, log_format_option
from .cli_sandbox import dev_token, sandbox
from .cli_smsp import smsp
from .cli_supplier import assure_command, collection_command
from .cli_systems import systems
from .config_file import env_only
from .fileutil import PRIVATE_UMASK
from .settings import Layout, Settings, file_settings, sandbox_settings


def _settings(data_dir: Path, config: Path | None, database_url: str | None) -> Settings:
    """The configuration a command runs with: --config FILE, else the environment alone (when
    SAFEGUARDING_SERVICE_ASID is set), else the sandbox in the data dir."""
    if config is not None or env_only():
        settings = file_settings(config, database_url=database_url)
    elif not Layout(data_dir).audit_key.exists():
        raise click.ClickException(f"{data_dir} is not a sandbox data dir and no configuration was given: run "
                                   "'safeguarding serve --sandbox' once, or give --config FILE (or --data-dir)")
    else:
        settings = sandbox_settings(data_dir, database_url=database_url)
    remember_database(settings.database_url)
    return settings


@click.group(cls=ReadableErrors)
@click.version_option(package_name="safeguarding")
def main() -> None:
    """FGM-IS and CP-IS safeguarding information-sharing services."""
    # A one-off command answers on stdout, and in one sentence on stderr when it fails (cli_errors.py): its
    # log lines would only repeat that. A server configures its logs again from its settings.
    logs.configure("CRITICAL")
    os.umask(PRIVATE_UMASK)  # every file a command or server creates is its user's alone (fileutil.py)


@main.command()
@click.option("--sandbox", is_flag=True, help="Create/refresh the sandbox in the data dir and serve it.")
@data_dir_option
@config_option
@database_option
@click.option("--host", envvar="SAFEGUARDING_HOST", default=None,
              help="Interface to listen on (default 127.0.0.1; 0.0.0.0 in a container).")
@click.option("--port", envvar="SAFEGUARDING_PORT", type=click.IntRange(1, 65535), default=None,
              help="Port (default 8443).")
@click.option("--tls-name", "tls_names", envvar="SAFEGUARDING_TLS_NAMES", multiple=True,
              help="Sandbox: a further DNS name or address in the server certificate (repeatable; the "
                   "certificate is reissued when its names change).")
@log_format_option
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes sharing the port (on SQLite their writes commit one at a time; "
                   "PostgreSQL scales further).")
@click.option("--clock-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Sandbox and tests only: the service's clock runs ahead by the seconds this file holds "
                   "(re-read when it changes). Refused without --sandbox.")
def serve(sandbox: bool, data_dir: Path, config: Path | None, database_url: str | None, host: str | None,
          port: int | None, tls_names: tuple[str, ...], log_format: str | None, workers: int,
          clock_file: Path | None) -> None:
    """Serve every API (HTTPS, or plain HTTP behind a TLS-terminating proxy)."""
    import dataclasses

    from .server import ServeSpec
    from .server import serve as run
    from .store.sql import make_engine, schema_revision

    if clock_file is not None:
        if not sandbox:
            raise click.ClickException("--clock-file is for the sandbox and tests only: give --sandbox")
        from .sandbox.clock import ClockFileError, FileOffsetClock

        try:
            FileOffsetClock(clock_file)
        except (ClockFileError, OSError) as exc:
            raise click.ClickException(f"--clock-file: {exc}") from exc
    if sandbox:
        from .sandbox.setup import ensure_sandbox

        if database_url:
            remember_database(database_url)
        check_port_free(host or "127.0.0.1", port or 8443)
        settings = ensure_sandbox(data_dir, host=host or "127.0.0.1", port=port or 8443, database_url=database_url,
                                  tls_names=tls_names)
    elif config is not None or env_only():
        if tls_names:
            raise click.ClickException("--tls-name is for the sandbox's own certificate: give --sandbox, or set "
                                       "tls.cert to a certificate with the names you need")
        settings = file_settings(config, host=host, port=port, database_url=database_url)
        remember_database(settings.database_url)
        check_port_free(settings.host, settings.port)
        engine = make_engine(settings.database_url)
        try:
            if schema_revision(engine) is None:
                raise click.ClickException("the database has no schema: run 'safeguarding db upgrade' first")
        finally:
            engine.dispose()
    else:
        raise click.ClickException("give --sandbox, or --config FILE with explicit configuration (or configure it "
                                   "by SAFEGUARDING_* variables, SAFEGUARDING_SERVICE_ASID among them)")
    if log_format is not None:
        settings = dataclasses.replace(settings, log_format=log_format)
    logs.configure(settings.log_level, settings.log_format)
    spec = ServeSpec(sandbox=sandbox, data_dir=str(settings.data_dir), config=str(config) if config else None,
                     host=settings.host, port=settings.port, database_url=database_url,
                     clock_file=str(clock_file.resolve()) if clock_file else None, log_format=settings.log_format)
    run(settings, spec, workers)


@main.command("dev-certs")
@data_dir_option
@click.option("--asid", required=True)
@click.option("--ods", default=None)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Directory (default DATA_DIR/systems).")
def dev_certs(data_dir: Path, asid: str, ods: str | None, out: Path | None) -> None:
    """Issue a client certificate for a system from the sandbox CA (does not register it)."""
    from .security import certs

    layout = Layout(data_dir)
    ca = certs.CertPair(layout.tls / "ca.pem", layout.tls / "ca.key")
    if not ca.key.exists():
        raise click.ClickException(f"no sandbox CA in {data_dir}: run 'safeguarding serve --sandbox' first")
    directory = out or layout.systems
    pair = certs.issue(ca, certs.CertPair(directory / f"{asid}.pem", directory / f"{asid}.key"),
                       common_name=asid, org=ods, client=True)
    click.echo(json.dumps({"asid": asid, "cert": str(pair.cert), "key": str(pair.key),
                           "cert_sha256": certs.pem_fingerprint(pair.cert)}))


@main.group()
def load() -> None:
    """Bulk loads."""


@load.command("patients")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@data_dir_option
@config_option
@database_option
def load_patients_command(file: Path, data_dir: Path, config: Path | None, database_url: str | None) -> None:
    """Load a FHIR R4 Bundle of PDS-shaped Patient resources into local demographics."""
    from .demographics import PatientDataError, load_patients, patients_from_bundle
    from .store.sql import SqlStore

    settings = _settings(data_dir, config, database_url)
    try:
        patients = list(patients_from_bundle(json.loads(file.read_text())))
    except (PatientDataError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"cannot load {file.name}: {exc}") from exc
    store = SqlStore.open(settings.database_url, settings.audit_key.value)
    try:
        count = load_patients(store, patients)
    finally:
        store.close()
    click.echo(json.dumps({"loaded": count}))


@load.command("cpis")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--authority", required=True,
              help="ODS code of the local authority whose plans these are (a registered local-authority system).")
@data_dir_option
@config_option
@database_option
def load_cpis_command(file: Path, authority: str, data_dir: Path, config: Path | None,
                      database_url: str | None) -> None:
    """Load CP-IS plans from CSV for one local authority (upserts: loading it again changes nothing)."""
    from .cli_cpis import load_csv

    click.echo(json.dumps(load_csv(_settings(data_dir, config, database_url), file, authority)))


@main.command()
@data_dir_option
@config_option
@database_option
def expire(data_dir: Path, config: Path | None, database_url: str | None) -> None:
    """Remove the indicators of children who have turned 18 (audited, reason turned-18)."""
    from .app import build_services
    from .domain.caller import Caller, System, SystemKind
    from .services.context import RequestContext

    settings = _settings(data_dir, config, database_url)
    services = build_services(settings)
    housekeeping = Caller(system=System(asid=settings.service_asid, ods_code="X26", kind=SystemKind.CLINICAL))

    def context() -> RequestContext:
        return RequestContext(api="housekeeping", interaction="expire", request_id=str(uuid.uuid4()),
                              caller=housekeeping)

    try:
        removed = services.fgm.expire(context)
    finally:
        services.store.close()
    click.echo(json.dumps({"expired": len(removed), "ids": [i.id for i in removed]}))


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@data_dir_option
@config_option
@database_option
def audit_verify(data_dir: Path, config: Path | None, database_url: str | None) -> None:
    """Check the whole audit hash chain; exit 1 if any record was edited, removed or reordered."""
    from .audit.chain import verify
    from .audit.checkpoints import CheckpointError, anchors, read_checkpoints
    from .store.sql import SqlStore

    settings = _settings(data_dir, config, database_url)
    try:  # read before the head: every checkpoint is then at or before the head read
        checkpoints = read_checkpoints(settings.audit_checkpoints, settings.audit_key.value)
    except CheckpointError as exc:
        click.echo(json.dumps({"ok": False, "checked": 0, "problem": str(exc), "seq": None}))
        sys.exit(1)
    store = SqlStore.open(settings.database_url, settings.audit_key.value)
    try:
        # The head first, then the chain up to it: events a running server appends meanwhile are after it.
        head_seq, head_hash = store.audit_head()
        result = verify(settings.audit_key.value, store.audit_records(up_to=head_seq), head_seq, head_hash,
                        anchors(checkpoints))
    finally:
        store.close()
    click.echo(json.dumps({"ok": result.ok, "checked": result.checked, "problem": result.problem,
                           "seq": result.seq, "checkpoints": len(checkpoints)}))
    sys.exit(0 if result.ok else 1)


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@data_dir_option
@config_option
@database_option
def db_upgrade(data_dir: Path, config: Path | None, database_url: str | None) -> None:
    """Migrate the schema to the newest version (takes a lock on PostgreSQL: safe from several nodes)."""
    from .settings import database_url_for
    from .store.sql import make_engine, schema_revision, upgrade_schema

    url = file_settings(config, database_url=database_url).database_url if config or env_only() else \
        database_url_for(data_dir.resolve(), database_url)
    remember_database(url)
    if url.startswith("sqlite"):
        data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
        click.echo(json.dumps({"revision": schema_revision(engine)}))
    finally:
        engine.dispose()


main.add_command(systems)
main.add_command(assure_command(_settings))
sandbox.add_command(collection_command())
main.add_command(smsp)
main.add_command(sandbox)
main.add_command(dev_token)
main.add_command(config)

if __name__ == "__main__":  # pragma: no cover
    main()
