"""Time as the domain sees it: an injectable clock, UK calendar dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

UK = ZoneInfo("Europe/London")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass
class OffsetClock:
    """The system clock moved by a fixed offset (sandbox and tests only)."""

    offset: timedelta

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


def uk_today(clock: Clock) -> date:
    """The calendar date in England: ages and "not in the future" are judged on it."""
    return clock.now().astimezone(UK).date()


def iso_instant(moment: datetime) -> str:
    """A UTC instant as FHIR writes it, to the microsecond (stable text for hashing and sorting):
    ``2026-12-07T15:11:26.123456Z``. (``isoformat`` writes it at half ``strftime``'s cost; it ends in
    ``+00:00`` for UTC, which becomes ``Z``.)"""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"
