"""The sandbox's start-up banner: where it is and a first request to paste (printed once it listens)."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from .settings import Settings

_ANY = ("0.0.0.0", "::", "")  # noqa: S104 - names of the unspecified address, compared with, not bound


def _command() -> str:
    """How to call ``safeguarding`` from the shell the operator is in."""
    if shutil.which("safeguarding"):
        return "safeguarding"
    argv0 = Path(sys.argv[0])
    return shlex.quote(str(argv0)) if argv0.name == "safeguarding" else "safeguarding"


def sandbox_banner(settings: Settings) -> str:
    from .sandbox.data import PATIENTS

    host = "localhost" if settings.host in _ANY else settings.host
    base = settings.public_base_url or f"{settings.scheme}://{host}:{settings.port}"
    ca = shlex.quote(str(settings.layout.tls / "ca.pem"))
    data_dir = shlex.quote(str(settings.data_dir))
    command = _command()
    first = PATIENTS[0].nhs_number
    patients = "\n".join(f"    {p.nhs_number}  {p.purpose}" for p in PATIENTS)
    return f"""
The safeguarding sandbox is ready.
  base URL   {base}   (FGM-IS R4 {base}/fgm/FHIR/R4, CP-IS R4 {base}/cpis/FHIR/R4)
  CA file    {ca}
  web UI     {base}/
  test patients (NHS numbers):
{patients}
A first query, as Dr Amy Sandbox (dev-token --user amy|ben|cal|erin|gus):
  TOKEN=$({command} dev-token --data-dir {data_dir} --user amy)
  curl --cacert {ca} -H "Authorization: Bearer $TOKEN" \\
    '{base}/fgm/FHIR/R4/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{first}'
"""
