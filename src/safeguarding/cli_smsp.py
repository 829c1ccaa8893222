"""``safeguarding smsp``: run a Spine Mini Service Provider in front of a national FGM-IS service."""

from __future__ import annotations

from pathlib import Path

import click

from .cli_errors import check_port_free
from .settings import SettingsError


@click.group()
def smsp() -> None:
    """Spine Mini Service Provider mode (FGM-IS query for local systems)."""


@smsp.command("serve")
@click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="SMSP configuration (TOML): see docs/smsp.md.")
def serve(config: Path) -> None:
    """Serve POST /fhir/fgm/query to local clients, forwarding to the national service."""
    from .smsp.app import serve_smsp
    from .smsp.settings import load_smsp_settings

    try:
        settings = load_smsp_settings(config)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    check_port_free(settings.host, settings.port, f"set another port in {config}")
    serve_smsp(settings)
