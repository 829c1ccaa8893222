"""The ``safeguarding`` command line (names and options fixed by DECISIONS.md)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import click

from . import logs
from .cli_options import config_option, data_dir_option, database_option
from .cli_smsp import smsp
from .cli_systems import systems
from .settings import Layout, Settings, SettingsError, file_settings, sandbox_settings


def _settings(data_dir: Path, config: Path | None, database_url: str | None) -> Settings:
    if config is not None:
        try:
            return file_settings(config, database_url=database_url)
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from exc
    if not Layout(data_dir).audit_key.exists():
        raise click.ClickException(f"{data_dir} is not a sandbox data dir (run 'safeguarding serve --sandbox' "
                                   "once), and no --config was given")
    return sandbox_settings(data_dir, database_url=database_url)


@click.group()
@click.version_option(package_name="safeguarding")
def main() -> None:
    """FGM-IS and CP-IS safeguarding information-sharing services."""
    logs.configure()


@main.command()
@click.option("--sandbox", is_flag=True, help="Create/refresh the sandbox in the data dir and serve it.")
@data_dir_option
@config_option
@database_option
@click.option("--host", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8443).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes sharing the port (on SQLite their writes commit one at a time; "
                   "PostgreSQL scales further).")
@click.option("--clock-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Sandbox and tests only: the service's clock runs ahead by the seconds this file holds "
                   "(re-read when it changes). Refused without --sandbox.")
def serve(sandbox: bool, data_dir: Path, config: Path | None, database_url: str | None, host: str | None,
          port: int | None, workers: int, clock_file: Path | None) -> None:
    """Serve every API over HTTPS."""
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

        settings = ensure_sandbox(data_dir, host=host or "127.0.0.1", port=port or 8443, database_url=database_url)
    elif config is not None:
        try:
            settings = file_settings(config, host=host, port=port, database_url=database_url)
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from exc
        engine = make_engine(settings.database_url)
        try:
            if schema_revision(engine) is None:
                raise click.ClickException("the database has no schema: run 'safeguarding db upgrade' first")
        finally:
            engine.dispose()
    else:
        raise click.ClickException("give --sandbox, or --config FILE with explicit configuration")
    logs.configure(settings.log_level)
    spec = ServeSpec(sandbox=sandbox, data_dir=str(settings.data_dir), config=str(config) if config else None,
                     host=settings.host, port=settings.port, database_url=database_url,
                     clock_file=str(clock_file.resolve()) if clock_file else None)
    run(settings, spec, workers)


@main.group()
def sandbox() -> None:
    """The sandbox data set."""


@sandbox.command("describe")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--host", default=None, help="Default: where the sandbox server last started (else 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Default: where the sandbox server last started (else 8443).")
def sandbox_describe(data_dir: Path, as_json: bool, host: str | None, port: int | None) -> None:
    """The sandbox's fixed facts: URLs, ASIDs, certificates, users and patients."""
    from .sandbox.setup import describe, recorded_address

    if not Layout(data_dir).audit_key.exists():
        raise click.ClickException(f"{data_dir} is not a sandbox yet: run 'safeguarding serve --sandbox' first")
    recorded_host, recorded_port = recorded_address(data_dir) or ("127.0.0.1", 8443)
    facts = describe(sandbox_settings(data_dir, host=host or recorded_host, port=port or recorded_port))
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(f"base URL: {facts['base_url']}   service ASID: {facts['service_asid']}   CA: {facts['ca']}")
    for patient in facts["patients"]:
        click.echo(f"  {patient['nhs_number']}  {patient['purpose']}")


@main.command("dev-token")
@data_dir_option
@click.option("--user-id", required=True)
@click.option("--role-profile-id", required=True)
@click.option("--org", required=True, help="ODS code of the organisation the role is in.")
@click.option("--activities", required=True, help="Comma-separated RBAC activity codes, e.g. B0370,B0380.")
@click.option("--role-code", default="R8000", show_default=True)
@click.option("--name", default=None)
@click.option("--expires-in", type=int, default=3600, show_default=True)
def dev_token(data_dir: Path, user_id: str, role_profile_id: str, org: str, activities: str, role_code: str,
              name: str | None, expires_in: int) -> None:
    """Print a CIS2-shaped JWT signed with the sandbox key."""
    from .security.dev_tokens import issue_dev_token
    from .settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER

    layout = Layout(data_dir)
    if not layout.signing_key.exists():
        raise click.ClickException(f"no sandbox signing key in {data_dir}: run 'safeguarding serve --sandbox' first")
    click.echo(issue_dev_token(
        layout.signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE, user_id=user_id,
        role_profile_id=role_profile_id, org_code=org,
        activities=[a.strip() for a in activities.split(",") if a.strip()],
        role_code=f"S8000:G8000:{role_code}" if ":" not in role_code else role_code, name=name, expires_in=expires_in,
    ))


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
    from .store.sql import SqlStore

    settings = _settings(data_dir, config, database_url)
    store = SqlStore.open(settings.database_url, settings.audit_key.value)
    try:
        # The head first, then the chain up to it: events a running server appends meanwhile are after it.
        head_seq, head_hash = store.audit_head()
        result = verify(settings.audit_key.value, store.audit_records(up_to=head_seq), head_seq, head_hash)
    finally:
        store.close()
    click.echo(json.dumps({"ok": result.ok, "checked": result.checked, "problem": result.problem,
                           "seq": result.seq}))
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

    url = file_settings(config, database_url=database_url).database_url if config else database_url_for(
        data_dir.resolve(), database_url)
    if url.startswith("sqlite"):
        data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade_schema(engine)
        click.echo(json.dumps({"revision": schema_revision(engine)}))
    finally:
        engine.dispose()


main.add_command(systems)
main.add_command(smsp)

if __name__ == "__main__":  # pragma: no cover
    main()
