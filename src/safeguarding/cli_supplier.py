"""The supplier kit's commands: ``safeguarding assure`` (the assurance report of one system or application,
from the audit trail) and ``safeguarding sandbox collection`` (the API collection for Postman or Newman)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from pathlib import Path

import click

from .cli_options import config_option, data_dir_option, database_option
from .settings import Settings


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), timezone.utc)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("give a date (2026-12-01) or a date and time (2026-12-01T09:30:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def assure_command(settings_for: Callable[[Path, Path | None, str | None], Settings]) -> click.Command:
    @click.command("assure")
    @click.option("--system", "system", default=None, help="The ASID of the system (DSTU2, CP-IS upload).")
    @click.option("--client-id", default=None, help="The client id of the application (the bearer token's azp).")
    @click.option("--since", default=None, help="Only requests from this date or time (UTC), e.g. 2026-12-01.")
    @click.option("--care-setting", type=click.Choice(["scheduled", "unscheduled"]), default=None,
                  help="The care setting the system serves: CP-IS searches must say it (IsUnscheduledAccessEvent).")
    @click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True,
                  help="The report: HTML, or JSON when the name ends in .json.")
    @click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False), default=None,
                  help="Also write the JSON report here.")
    @click.option("--strict", is_flag=True, help="Exit 1 when any requirement is missing (for a CI job).")
    @data_dir_option
    @config_option
    @database_option
    def assure(system: str | None, client_id: str | None, since: str | None, care_setting: str | None, out: Path,
               json_out: Path | None, strict: bool, data_dir: Path, config: Path | None,
               database_url: str | None) -> None:
        """Report, requirement by requirement, what a client's requests evidence (see docs/suppliers.md)."""
        from .assure.report import build, html
        from .store.sql import SqlStore

        if (system is None) == (client_id is None):
            raise click.UsageError("give --system ASID or --client-id ID")
        settings = settings_for(data_dir, config, database_url)
        store = SqlStore.open(settings.database_url, settings.audit_key.value)
        try:
            report = build(store, system=system, client_id=client_id, since=_since(since), care_setting=care_setting)
        finally:
            store.close()
        as_json = json.dumps(report, indent=2)
        out.write_text(as_json if out.suffix == ".json" else html(report), encoding="utf-8")
        if json_out:
            json_out.write_text(as_json, encoding="utf-8")
        summary = ", ".join(f"{n} {status}" for status, n in report["summary"].items())
        click.echo(f"{report['requests']} requests; requirements: {summary}; written to {out}")
        if strict and report["summary"]["missing"]:
            raise SystemExit(1)

    return assure


def collection_command() -> click.Command:
    @click.command("collection")
    @data_dir_option
    @click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
                  help="Directory for the collection, its environment and Newman's certificate list.")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, default=8443, show_default=True)
    @click.option("--client-id", default=None, help="Put this client id in the tokens (for `assure --client-id`).")
    def collection(data_dir: Path, out: Path, host: str, port: int, client_id: str | None) -> None:
        """Write the Postman collection of the sandbox's scenarios, with an environment for this sandbox."""
        from .sandbox.setup import SYSTEMS, system_cert
        from .settings import Layout, sandbox_settings
        from .supplier.collection import write
        from .supplier.variables import sandbox_variables

        layout = Layout(data_dir)
        if not layout.signing_key.exists():
            raise click.ClickException(f"{data_dir} is not a sandbox yet: run 'safeguarding serve --sandbox' first")
        settings = sandbox_settings(data_dir, host=host, port=port)
        values = sandbox_variables(settings, client_id=client_id)
        certs = {s["asid"]: (str(system_cert(settings.layout, s["asid"]).cert),
                             str(system_cert(settings.layout, s["asid"]).key))
                 for s in SYSTEMS if s["asid"] in ("047192794544", "200000000117", "300000000101")}
        for path in write(out, values, certs):
            click.echo(str(path))

    return collection
