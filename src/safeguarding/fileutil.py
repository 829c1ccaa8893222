"""Small file helpers: files that hold patient data or secrets are private to the service's user.

Every database, spool, key and checkpoint file the service creates is ``0600`` in a directory it creates
``0700``. The command line also sets the process's umask to ``077`` (cli.py), so nothing else it writes
(SQLite's WAL and shared-memory files, logs in the data dir) is readable by other users either.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077


def private_dir(path: Path) -> None:
    """Create ``path`` (and any missing parents) ``0700``; a directory that already exists is left as it is
    (an operator's choice), except that one this user owns loses any group or world write right."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)  # mkdir's mode is narrowed by the umask, never widened: set it exactly


def private_file(path: Path) -> None:
    """Make sure ``path`` exists and only its owner can read or write it (created ``0600``, or narrowed to
    ``0600`` when this user owns it already)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


def replace_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once (a reader sees the old file or the new one, never half of
    it), readable by its owner only."""
    spare = path.with_name(f".{path.name}.new")
    write_private(spare, data)
    with spare.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(spare, path)


def append_private(path: Path) -> int:
    """A descriptor appending to (and reading) ``path``, created ``0600`` (an append-only log: a spool, checkpoints)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    if os.fstat(fd).st_uid == os.geteuid():
        os.fchmod(fd, 0o600)
    return fd
