"""Options every ``safeguarding`` command shares."""

from __future__ import annotations

from pathlib import Path

import click

from .settings import DEFAULT_DATA_DIR

data_dir_option = click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR,
                               show_default=True, help="The data dir (sandbox database, keys, certificates, systems).")
database_option = click.option("--database-url", envvar="SAFEGUARDING_DATABASE_URL", default=None,
                               help="sqlite:///FILE or postgresql://... (default: SQLite in the data dir).")
config_option = click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
                             help="Production configuration (TOML). Without it, the data dir's sandbox layout is used.")
