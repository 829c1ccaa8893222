"""The ceiling: a minimal ASGI app on the service's own server stack, answering a fixed search Bundle.

Same uvicorn configuration as ``safeguarding serve`` (``protocol.uvicorn_config``: httptools with the
client-certificate protocol, uvloop, the data dir's TLS certificate and client CA, CERT_OPTIONAL), same
worker model. Whatever a scenario reaches relative to this is what the service's own work costs.

    python bench/ceiling.py DATA_DIR PORT WORKERS
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from uvicorn.supervisors import Multiprocess

from safeguarding.protocol import uvicorn_config
from safeguarding.settings import sandbox_settings

BUNDLE = orjson.dumps({
    "resourceType": "Bundle", "type": "searchset", "total": 1,
    "link": [{"relation": "self", "url": "https://127.0.0.1:8443/fgm/FHIR/R4/Flag?patient:identifier="
                                         "https://fhir.nhs.uk/Id/nhs-number|9900000008"}],
    "entry": [{
        "fullUrl": "https://127.0.0.1:8443/fgm/FHIR/R4/Flag/7f9c2ad4-3f4e-4d52-9d1e-2b6c9f3b1a11",
        "resource": {
            "resourceType": "Flag", "id": "7f9c2ad4-3f4e-4d52-9d1e-2b6c9f3b1a11",
            "meta": {"versionId": "1", "lastUpdated": "2026-11-01T10:00:00.000000Z"}, "status": "active",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "902961000000107",
                                 "display": "Family history of FGM (female genital mutilation)"}],
                     "text": "Family history of FGM (female genital mutilation)"},
            "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9900000008"}},
            "period": {"start": "2026-09-01"},
        },
        "search": {"mode": "match"},
    }],
})
HEADERS = [(b"content-type", b"application/fhir+json; charset=utf-8"),
           (b"content-length", str(len(BUNDLE)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain any request body (the mTLS ceiling is sent the DSTU2 query messages)
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BUNDLE})


def serve(asgi: Any, import_name: str, data_dir: Path, port: int, workers: int) -> None:
    """Serve ``asgi`` as ``safeguarding serve`` serves the service: one process, or ``workers`` spawned ones
    (which import it by ``import_name``) on one port. The floor (floor.py) is served this way too."""
    settings = sandbox_settings(data_dir, port=port)
    if workers == 1:
        uvicorn.Server(uvicorn_config(settings, asgi)).run()
        return
    config = uvicorn_config(settings, import_name, workers=workers)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def main() -> None:
    serve(app, "ceiling:app", Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))


if __name__ == "__main__":
    main()
