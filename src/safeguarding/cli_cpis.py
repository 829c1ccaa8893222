"""``safeguarding load cpis FILE --authority ODS``: CP-IS plans from CSV, with a progress bar and a summary.

The parsing and the rules are ``cpis_csv.py`` and the CP-IS service; this is the command's plumbing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .settings import Settings


def load_csv(settings: Settings, file: Path, authority: str) -> dict[str, Any]:
    """Load the file as ``authority``'s plans; the summary counts rows by outcome (file code CPF02-04).
    A file that cannot be used at all is refused before anything is loaded (CPF01)."""
    from .app import build_services
    from .cpis_csv import CsvFileError, authority_system, load, read_rows
    from .security.registry import configured_registry

    registry = configured_registry(settings).current()  # on PostgreSQL: the shared one
    system = authority_system(registry.systems(), authority)
    if system is None:
        raise click.ClickException(f"{authority} is not the ODS code of one registered local-authority system "
                                   "(see 'safeguarding systems list')")
    try:
        rows = read_rows(file.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise click.ClickException(f"cannot load {file.name} (CPF01): the file is not UTF-8") from None
    except CsvFileError as exc:
        raise click.ClickException(f"cannot load {file.name} (CPF01): {exc}") from None
    services = build_services(settings)
    try:
        with click.progressbar(length=len(rows), label="Loading CP-IS plans", file=sys.stderr) as bar:
            summary = load(services.cpis, system, rows, progress=bar.update)
    finally:
        services.store.close()
    return summary.as_json()
