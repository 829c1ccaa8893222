"""``safeguarding systems add|list|remove``: the registry of accredited systems operators manage.

The registry (``systems.json`` in the data dir, or ``systems_file`` of a ``--config`` file) maps a
verified client certificate to a system: ASID, ODS code, kind and the interactions it may use. The
server re-reads the file when it changes, so a change applies to the next message without a restart.
Writes replace the file atomically, so the server never reads half of one.

On PostgreSQL the registry is the database's copy (security/registry.py), shared by every node: these
commands edit it there, under a row lock, and the file is only imported from, once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from .cli_options import config_option, data_dir_option, database_option
from .config_file import env_only
from .fileutil import replace_private
from .security.certs import pem_fingerprint
from .security.registry import normalise_fingerprint, parse_serial, shared
from .settings import Layout, SettingsError, file_settings

# Short names for the FGM-IS DSTU2 events (MessageHeader.event.code); any other event code may be given in full.
_SYNC = "urn:nhs:names:services:clinicals-sync:"
INTERACTION_ALIASES: dict[str, tuple[str, ...]] = {
    "query": (_SYNC + "FGMQuery_2_0",),
    "create": (_SYNC + "FGMCreate_1_0",),
    "delete": (_SYNC + "FGMDelete_1_0",),
}
INTERACTION_ALIASES["fgm"] = tuple(code for codes in INTERACTION_ALIASES.values() for code in codes)

KINDS = ("clinical-system", "local-authority")
_ASID = re.compile(r"[0-9]{1,20}")  # as MessageHeader endpoints carry them (urn:nhs:addressing:asid:<ASID>)
_ODS = re.compile(r"[A-Za-z0-9]{1,16}")
_EVENT = re.compile(r"urn:[A-Za-z0-9:._\-]+")



def registry_path(data_dir: Path, config: Path | None) -> Path:
    if config is not None or env_only():
        try:
            return file_settings(config).registry_file
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from exc
    if not data_dir.is_dir():
        raise click.ClickException(f"{data_dir} is not a data dir (run 'safeguarding serve --sandbox' once, "
                                   "or give --config)")
    return Layout(data_dir).registry


class Registry:
    """Where these commands read and change the registry: the file, or the database's shared copy."""

    def __init__(self, path: Path, database_url: str | None) -> None:
        self.path, self.database_url = path, database_url if shared(database_url) else None

    def read(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self.database_url is None:
            return read_entries(self.path), read_revoked(self.path)
        document = self._shared(self.database_url, lambda current: current)
        return list(document.get("systems", [])), list(document.get("revoked", []))

    def change(self, edit: Any) -> None:
        """``edit(entries, revoked)`` returns the new (entries, revoked)."""
        if self.database_url is None:
            entries, revoked = edit(read_entries(self.path), read_revoked(self.path))
            write_entries(self.path, entries, revoked)
            return

        def changed(current: dict[str, Any]) -> dict[str, Any]:
            entries, revoked = edit(list(current.get("systems", [])), list(current.get("revoked", [])))
            return {**current, "systems": entries, "revoked": revoked}

        self._shared(self.database_url, changed)

    def _shared(self, database_url: str, change: Any) -> dict[str, Any]:
        from .store.registry_table import change_registry
        from .store.sql import make_engine

        engine = make_engine(database_url)
        try:
            # The first use imports the file, as a server does; ``change`` then sees the shared document.
            def imported(current: dict[str, Any] | None) -> dict[str, Any] | None:
                if current is not None:
                    return change(current)  # type: ignore[no-any-return]
                base = {"systems": read_entries(self.path), "revoked": read_revoked(self.path)}
                return change(base)  # type: ignore[no-any-return]

            return change_registry(engine, imported) or {}
        finally:
            engine.dispose()


def registry_for(data_dir: Path, config: Path | None, database_url: str | None) -> Registry:
    """The registry a command edits: with explicit configuration on PostgreSQL, the database's shared copy;
    otherwise (SQLite, or the sandbox, which keeps its file) the file."""
    path = registry_path(data_dir, config)
    if config is None and not env_only():
        return Registry(path, None)
    try:
        settings = file_settings(config, database_url=database_url)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    return Registry(settings.registry_file, settings.shared_registry_url)


def read_entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        entries = data["systems"]
        if not isinstance(entries, list) or not all(isinstance(x, dict) and "asid" in x for x in entries):
            raise TypeError("systems must be a list of objects with an asid")
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{path} is not a valid system registry: {exc}") from exc
    return entries


def read_revoked(path: Path) -> list[dict[str, Any]]:
    """The operator's deny list of certificates (``revoked``), kept beside the systems."""
    if not path.exists():
        return []
    revoked = json.loads(path.read_text()).get("revoked", [])
    return revoked if isinstance(revoked, list) else []


def write_entries(path: Path, entries: list[dict[str, Any]], revoked: list[dict[str, Any]] | None = None) -> None:
    """Replace the registry in one step: the server either sees the old file or the new one.
    The deny list is kept as it is unless ``revoked`` is given (a revocation is never lost by an edit)."""
    document = {"systems": entries, "revoked": read_revoked(path) if revoked is None else revoked}
    replace_private(path, (json.dumps(document, indent=2) + "\n").encode())  # 0600: it names every system


def interaction_codes(values: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for value in values:
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            expanded = INTERACTION_ALIASES.get(item.lower())
            if expanded is None:
                if not _EVENT.fullmatch(item):
                    raise click.BadParameter(
                        f"{item!r}: give query, create, delete, fgm or a full event code (urn:...)",
                        param_hint="--interaction")
                expanded = (item,)
            found.extend(code for code in expanded if code not in found)
    return found


@click.group()
def systems() -> None:
    """The registry of systems that call with client certificates (DSTU2 messaging, LA upload)."""


@systems.command("add")
@click.option("--asid", required=True, help="The system's ASID (digits).")
@click.option("--ods", required=True, help="The system's ODS code.")
@click.option("--kind", type=click.Choice(KINDS), default="clinical-system", show_default=True)
@click.option("--interaction", "interactions", multiple=True,
              help="An allowed interaction: query, create, delete, fgm (all three) or a full event code. Repeatable; "
                   "comma-separated lists accepted.")
@click.option("--cert", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Pin this client certificate (PEM). Without it, any certificate from the trusted CA whose "
                   "subject CN is the ASID is accepted (so it can be renewed without re-registering).")
@click.option("--name", default=None, help="A label for operators.")
@click.option("--replace", is_flag=True, help="Replace the registration if the ASID is already registered.")
@data_dir_option
@config_option
@database_option
def add(asid: str, ods: str, kind: str, interactions: tuple[str, ...], cert: Path | None, name: str | None,
        replace: bool, data_dir: Path, config: Path | None, database_url: str | None) -> None:
    """Register a system (or, with --replace, change its registration)."""
    if not _ASID.fullmatch(asid):
        raise click.BadParameter("an ASID is 1-20 digits", param_hint="--asid")
    if not _ODS.fullmatch(ods):
        raise click.BadParameter("an ODS code is 1-16 letters and digits", param_hint="--ods")
    codes = interaction_codes(interactions)
    if not codes:
        raise click.BadParameter("give at least one interaction", param_hint="--interaction")
    entry: dict[str, Any] = {"asid": asid, "ods": ods.upper(), "kind": kind, "interactions": codes}
    if name:
        entry = {"name": name, **entry}
    if cert is not None:
        try:
            loaded = x509.load_pem_x509_certificate(cert.read_bytes())
        except ValueError as exc:
            raise click.BadParameter("not a PEM certificate", param_hint="--cert") from exc
        common_names = [str(a.value) for a in loaded.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        if common_names != [asid]:
            click.echo(f"warning: the certificate's subject CN is not {asid}; it is pinned by fingerprint", err=True)
        entry["cert_sha256"] = pem_fingerprint(cert)
    def added(entries: list[dict[str, Any]], revoked: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        existing = [i for i, e in enumerate(entries) if e.get("asid") == asid]
        if existing and not replace:
            raise click.ClickException(f"ASID {asid} is already registered (use --replace to change it)")
        if existing:
            entries[existing[0]] = entry
        else:
            entries.append(entry)
        return entries, revoked

    registry_for(data_dir, config, database_url).change(added)
    click.echo(json.dumps(entry))


@systems.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@data_dir_option
@config_option
@database_option
def list_systems(as_json: bool, data_dir: Path, config: Path | None, database_url: str | None) -> None:
    """List the registered systems (on PostgreSQL: the database's shared registry)."""
    entries, revoked = registry_for(data_dir, config, database_url).read()
    if as_json:
        click.echo(json.dumps({"systems": entries, "revoked": revoked}, indent=2))
        return
    for entry in entries:
        pinned = "pinned certificate" if entry.get("cert_sha256") else "any certificate with CN=ASID"
        click.echo(f"{entry['asid']}  {entry.get('ods', '?')}  {entry.get('kind', '?')}  {pinned}  "
                   f"{', '.join(entry.get('interactions', [])) or '(no interactions)'}")
    for item in revoked:
        named = f"sha256 {item['cert_sha256']}" if "cert_sha256" in item else f"serial {item.get('serial')}"
        click.echo(f"revoked  {named}  {item.get('reason', '')}".rstrip())


@systems.command("revoke")
@click.option("--cert", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="The certificate (PEM) to revoke.")
@click.option("--sha256", "sha256", default=None, help="Or its SHA-256 fingerprint (hex, colons allowed).")
@click.option("--serial", default=None, help="Or its serial number, hex as `openssl x509 -serial` prints it.")
@click.option("--reason", default=None, help="Why (kept in the file for operators).")
@data_dir_option
@config_option
@database_option
def revoke(cert: Path | None, sha256: str | None, serial: str | None, reason: str | None, data_dir: Path,
           config: Path | None, database_url: str | None) -> None:
    """Revoke a client certificate: it is refused (403) from the next request on, whichever system it names."""
    if sum(x is not None for x in (cert, sha256, serial)) != 1:
        raise click.UsageError("give exactly one of --cert, --sha256 and --serial")
    entry: dict[str, Any]
    try:
        if serial is not None:
            entry = {"serial": format(parse_serial(serial), "X")}
        else:
            entry = {"cert_sha256": normalise_fingerprint(pem_fingerprint(cert) if cert else sha256)}
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if reason:
        entry["reason"] = reason
    key = "serial" if "serial" in entry else "cert_sha256"

    def revoked_too(entries: list[dict[str, Any]], revoked: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        if not any(item.get(key) == entry[key] for item in revoked):
            revoked.append(entry)
        return entries, revoked

    registry_for(data_dir, config, database_url).change(revoked_too)
    click.echo(json.dumps(entry))


@systems.command("remove")
@click.option("--asid", required=True, help="The ASID to remove.")
@data_dir_option
@config_option
@database_option
def remove(asid: str, data_dir: Path, config: Path | None, database_url: str | None) -> None:
    """Remove a system: its certificates are refused from the next message on."""
    def removed(entries: list[dict[str, Any]], revoked: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        kept = [e for e in entries if e.get("asid") != asid]
        if len(kept) == len(entries):
            raise click.ClickException(f"ASID {asid} is not registered")
        return kept, revoked

    registry_for(data_dir, config, database_url).change(removed)
    click.echo(json.dumps({"removed": asid}))
