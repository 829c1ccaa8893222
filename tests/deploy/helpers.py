"""Running the ``safeguarding`` command as an operator does (a subprocess with its own environment)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "example-config.toml"


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any SAFEGUARDING_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SAFEGUARDING_")}
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "safeguarding", *args], capture_output=True, text=True,
                          env=env if env is not None else clean_env(), cwd=cwd, timeout=timeout)


def one_sentence_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error a command printed: exit status 1, one line on stderr, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0].removeprefix("Error: ")


def example_dir(tmp_path: Path) -> Path:
    """docs/example-config.toml in a directory with the files it names (relative to it)."""
    directory = tmp_path / "etc"
    (directory / "tls").mkdir(parents=True)
    shutil.copy(EXAMPLE, directory / "safeguarding.toml")
    (directory / "audit.key").write_bytes(secrets.token_bytes(32))
    from safeguarding.security import certs

    ca = certs.create_ca(directory / "tls")
    certs.issue(ca, certs.CertPair(directory / "tls" / "server.pem", directory / "tls" / "server.key"),
                common_name="localhost", server_names=("localhost", "127.0.0.1"))
    shutil.copy(directory / "tls" / "ca.pem", directory / "tls" / "client-ca.pem")
    return directory
