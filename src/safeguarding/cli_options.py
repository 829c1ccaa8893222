"""Options every ``safeguarding`` command shares."""

from __future__ import annotations

from pathlib import Path

import click

from .settings import DEFAULT_DATA_DIR

data_dir_option = click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR,
                               envvar="SAFEGUARDING_DATA_DIR",
                               show_default=True, help="The data dir (sandbox database, keys, certificates, systems).")
database_option = click.option("--database-url", envvar="SAFEGUARDING_DATABASE_URL", default=None,
                               help="sqlite:///FILE or postgresql://... (default: SQLite in the data dir).")
config_option = click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
                             envvar="SAFEGUARDING_CONFIG",
                             help="Production configuration (TOML; SAFEGUARDING_* variables override it). Without "
                                  "it: the environment alone when SAFEGUARDING_SERVICE_ASID is set, else the data "
                                  "dir's sandbox.")
log_format_option = click.option("--log-format", type=click.Choice(["auto", "json", "console"]), default=None,
                                 envvar="SAFEGUARDING_LOG_FORMAT",
                                 help="Log lines as JSON (servers' default) or short console lines (the default "
                                      "on a terminal with auto).")
