"""A refused request leaves nothing behind: every refusal the API raises is a fresh exception.

An exception instance shared between requests (a module-level "canned" error raised again and again) grows
its ``__traceback__`` with every raise, and the traceback's frames hold each earlier request alive: its
bearer token, its query string, its body. These tests serve many refused requests of each kind the API
answers in process (FGM-IS R4, CP-IS R4, DSTU2 messaging) and then count what is still alive; and one kind
over real HTTPS, watching the server's resident memory (it grew ~10 MB per 1,000 refusals before).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from safeguarding.api.pipeline import ApiRequest
from safeguarding.app import create_app
from safeguarding.sandbox.setup import ensure_sandbox
from safeguarding.security.dev_tokens import issue_dev_token
from safeguarding.settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, Layout, Settings

from ..support import Server

if TYPE_CHECKING:
    from safeguarding.api.routing import ApiFirst

REPEATS = 60


@dataclass
class Refused:
    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: bytes = b""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, ApiFirst]]:
    settings = ensure_sandbox(tmp_path_factory.mktemp("leak"))
    app = create_app(settings)
    yield settings, app
    app.state.services.store.close()


def _token(settings: Settings, activities: list[str]) -> str:
    return issue_dev_token(Layout(settings.data_dir).signing_key, issuer=SANDBOX_ISSUER, audience=SANDBOX_AUDIENCE,
                           user_id="555021935107", role_profile_id="555021936108", org_code="RR8",
                           activities=activities)


def _refusals(settings: Settings) -> dict[str, Refused]:
    fgm = {"Authorization": f"Bearer {_token(settings, ['B0370', 'B0380'])}"}
    cpis = {"Authorization": f"Bearer {_token(settings, ['B0107'])}"}
    flag_json = {**fgm, "Content-Type": "application/fhir+json"}
    alert_json = {**cpis, "Content-Type": "application/fhir+json"}
    alert = (b'{"resourceType": "Communication", "status": "completed", '
             b'"subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "123"}}}')
    return {
        "r4 search, invalid NHS number": Refused("GET", "/fgm/FHIR/R4/Flag?patient:identifier=123", 400, fgm),
        "r4 search, bad request id": Refused("GET", "/fgm/FHIR/R4/Flag?patient:identifier=123", 400,
                                             {**fgm, "X-Request-ID": "no spaces allowed"}),
        "r4 search, not acceptable": Refused("GET", "/fgm/FHIR/R4/Flag?patient:identifier=123", 406,
                                             {**fgm, "Accept": "text/plain"}),
        "r4 create, unsupported media": Refused("POST", "/fgm/FHIR/R4/Flag", 415,
                                                {**fgm, "Content-Type": "text/plain"}, b"{}"),
        "r4 create, not well formed": Refused("POST", "/fgm/FHIR/R4/Flag", 400, flag_json, b"{not json"),
        "r4 create, too large": Refused("POST", "/fgm/FHIR/R4/Flag", 413, {**flag_json, "Content-Length": "9999999"}),
        "r4 read, not found": Refused("GET", "/fgm/FHIR/R4/Flag/not$an$id", 404, fgm),
        "cpis search, invalid NHS number": Refused("GET", "/cpis/FHIR/R4/CareTeam?patient=123", 400, cpis),
        "cpis search, bad head parameter": Refused("GET", "/cpis/FHIR/R4/CareTeam?patient=123", 400,
                                                   {**cpis, "IsUnscheduledAccessEvent": "maybe"}),
        "cpis alert, invalid NHS number": Refused("POST", "/cpis/FHIR/R4/Communication", 400, alert_json, alert),
        "dstu2 query, no certificate": Refused("POST", "/fhir/fgm/query", 403,
                                               {"Content-Type": "application/fhir+xml"}, b"<Bundle/>"),
        "dstu2 query, bad request id": Refused("POST", "/fhir/fgm/query", 400,
                                               {"Content-Type": "application/fhir+xml", "X-Request-ID": "a b"},
                                               b"<Bundle/>"),
    }


async def _send(app: ApiFirst, refused: Refused, times: int) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        for _ in range(times):
            response = await client.request(refused.method, refused.path, headers=refused.headers,
                                            content=refused.body)
            assert response.status_code == refused.status, response.text


def _alive(kind: type) -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if isinstance(item, kind))


def _traceback_frames() -> int:
    """The frames held by the tracebacks of every live exception (a shared one's grows with every raise)."""
    gc.collect()
    frames = 0
    for item in gc.get_objects():
        if isinstance(item, BaseException):
            tb = item.__traceback__
            while isinstance(tb, TracebackType):
                frames, tb = frames + 1, tb.tb_next
    return frames


CASES = (
    "r4 search, invalid NHS number", "r4 search, bad request id", "r4 search, not acceptable",
    "r4 create, unsupported media", "r4 create, not well formed", "r4 create, too large", "r4 read, not found",
    "cpis search, invalid NHS number", "cpis search, bad head parameter", "cpis alert, invalid NHS number",
    "dstu2 query, no certificate", "dstu2 query, bad request id",
)


def test_every_kind_of_refusal_is_sent(sandbox: tuple[Settings, ApiFirst]) -> None:
    assert sorted(_refusals(sandbox[0])) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_refused_requests_are_not_kept_alive(sandbox: tuple[Settings, ApiFirst], case: str) -> None:
    settings, app = sandbox
    refused = _refusals(settings)[case]
    anyio.run(_send, app, refused, 3)  # warm up: lazily built objects are built now
    before, frames_before = _alive(ApiRequest), _traceback_frames()
    anyio.run(_send, app, refused, REPEATS)
    after, frames_after = _alive(ApiRequest), _traceback_frames()
    # A leak keeps one ApiRequest per refusal and lengthens a shared traceback by frames per raise.
    assert after - before < REPEATS // 4, f"{after - before} requests kept alive after {REPEATS} refusals"
    assert frames_after - frames_before < REPEATS // 4, f"tracebacks grew from {frames_before} to {frames_after} frames"



def _resident_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS:"))


def test_refusals_over_https_do_not_grow_the_server(sqlite_server: Server) -> None:
    assert sqlite_server.process is not None
    headers = {**sqlite_server.headers(), "X-Request-ID": "no spaces allowed"}  # refused: 400 PRECONDITION_FAILED
    url = f"{sqlite_server.fgm}/Flag?patient:identifier=123"
    with sqlite_server.client() as http:
        for _ in range(300):
            http.get(url, headers=headers)
        before = _resident_mb(sqlite_server.process.pid)
        for _ in range(3000):
            response = http.get(url, headers=headers)
        after = _resident_mb(sqlite_server.process.pid)
    assert response.status_code == 400
    assert response.json()["issue"][0]["details"]["coding"][0]["code"] == "PRECONDITION_FAILED"
    assert after - before < 10, f"the server grew from {before} MB to {after} MB over 3,000 refusals"
