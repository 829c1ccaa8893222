"""Rules that depend on time, on a separate sandbox server whose clock the test controls
(``serve --sandbox --clock-file PATH``): the same user within 24 hours is listed once, and a plan stops
being shared when its end date has passed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ..pg import create_database, drop_database
from ..support import USED_NHS_NUMBERS, Server, free_port
from .cpis_helpers import (
    ED,
    SBC_ASID,
    care_teams,
    clinician,
    days,
    drain,
    give_plan,
    history,
    matches,
    other_user,
    pending_for,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOUR = 3600


class ClockServer:
    def __init__(self, server: Server, clock_file: Path) -> None:
        self.server, self.clock_file = server, clock_file

    def set(self, seconds: int) -> None:
        """Move the server's clock: write the offset atomically (the server re-reads it on change)."""
        temporary = self.clock_file.with_suffix(".tmp")
        temporary.write_text(str(seconds))
        os.replace(temporary, self.clock_file)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def clocked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockServer]:
    clock_file = tmp_path_factory.mktemp("clock") / "offset"
    clock_file.write_text("0")
    url = create_database() if request.param == "postgresql" else None
    ARTIFACTS.mkdir(exist_ok=True)
    server = Server(tmp_path_factory.mktemp(f"sandbox-clock-{request.param}"), free_port(),
                    ARTIFACTS / f"server-clock-{request.param}.log", database_url=url,
                    extra_args=("--clock-file", str(clock_file)))
    server.log_path.write_bytes(b"")
    server.start()
    try:
        yield ClockServer(server, clock_file)
    finally:
        server.stop()
        if url:
            drop_database(url)


@pytest.fixture()
def clock(clocked: ClockServer) -> Iterator[ClockServer]:
    clocked.set(0)
    yield clocked
    clocked.set(0)


def recorded(event: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(event["recorded"]))


def test_the_same_user_is_listed_once_within_24_hours_and_again_after(clock: ClockServer) -> None:
    server = clock.server
    child = server.add_patient()
    give_plan(server, child)
    drain(server, SBC_ASID)
    ed, colleague = clinician(server, user=ED), clinician(server, user=other_user(900))

    def listed() -> list[dict[str, object]]:
        return matches(history(server, child, clinician(server, ("B0170",))))

    care_teams(server, child, ed)
    care_teams(server, child, ed)
    assert len(listed()) == 1
    clock.set(23 * HOUR)
    care_teams(server, child, ed)  # 23 hours later: still a repeat
    care_teams(server, child, colleague)
    after_23h = listed()
    assert len(after_23h) == 2
    clock.set(24 * HOUR + 60)
    care_teams(server, child, ed)  # more than 24 hours after the first listed access: listed again
    events = listed()
    assert len(events) == 3
    assert events[1:] == after_23h
    now = datetime.now(timezone.utc)
    assert abs(recorded(events[0]) - (now + timedelta(hours=24, minutes=1))) < timedelta(minutes=5)
    assert abs(recorded(events[2]) - now) < timedelta(minutes=5)
    assert len(server.stored(lambda store: store.read_accesses(child))) == 5
    assert len(pending_for(server, SBC_ASID, child)) == 5  # every recorded access is notified


def test_a_plan_stops_being_shared_after_its_end_date(clock: ClockServer) -> None:
    server = clock.server
    child = server.add_patient()
    give_plan(server, child, end=days(1))
    silent = clinician(server, unscheduled="false")
    [team] = matches(care_teams(server, child, silent))
    assert team["status"] == "active"
    clock.set(24 * HOUR)  # tomorrow: the end date is today, still shared
    assert len(matches(care_teams(server, child, silent))) == 1
    clock.set(48 * HOUR)  # the day after: no longer shared, and an access is not recorded
    assert matches(care_teams(server, child, clinician(server, user=ED))) == []
    assert server.stored(lambda store: store.read_accesses(child)) == []


def test_the_clock_servers_log_has_no_patient_data(clocked: ClockServer) -> None:
    text = clocked.server.log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "REQUEST_COMPLETED" for line in lines)
    assert sorted(n for n in USED_NHS_NUMBERS if n in text) == []
    assert "eyJ" not in text and "Bearer" not in text
