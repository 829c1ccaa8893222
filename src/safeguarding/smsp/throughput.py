"""Throughput for capacity planning (SMSP-PERF-002): a daily record of total and peak-hour queries.

Two views of the same count, neither with patient data: ``/_metrics`` carries the queries this process
has answered, per UTC day and peak hour, as gauges (Prometheus keeps the history across restarts); and
``safeguarding smsp throughput`` computes the record from the audit trail, which holds every query ever
answered, so the daily record survives restarts and is exact.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

KEEP_DAYS = 8


@dataclass(frozen=True)
class Day:
    day: str  # YYYY-MM-DD (UTC)
    total: int
    peak_hour: str  # HH (UTC): the hour starting then
    peak_hour_total: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def days(hours: Counter[str]) -> list[Day]:
    """Per-day records from counts per hour (keys ``YYYY-MM-DDTHH``), oldest first. The earliest hour
    wins a tie for the peak."""
    by_day: dict[str, list[tuple[str, int]]] = {}
    for hour, count in sorted(hours.items()):
        by_day.setdefault(hour[:10], []).append((hour[11:13], count))
    records = []
    for day, counts in by_day.items():
        peak_hour, peak = max(counts, key=lambda item: (item[1], -int(item[0])))
        records.append(Day(day, sum(count for _, count in counts), peak_hour, peak))
    return records


def hour_of(recorded_at: str) -> str:
    """``YYYY-MM-DDTHH`` of an audit timestamp (``2026-12-07T05:06:21.744000Z``)."""
    return recorded_at[:13]


def from_audit(recorded_at: Iterable[str]) -> list[Day]:
    return days(Counter(hour_of(at) for at in recorded_at))


class Throughput(Collector):
    """Queries answered by this process, per UTC hour (the last ``KEEP_DAYS`` days), as a Prometheus
    collector: ``safeguarding_smsp_queries_day_total{day}`` and
    ``safeguarding_smsp_queries_peak_hour{day,hour}``."""

    def __init__(self) -> None:
        self._hours: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, now: datetime | None = None) -> None:
        hour = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H")
        with self._lock:
            self._hours[hour] += 1
            if len(self._hours) > KEEP_DAYS * 24:
                del self._hours[min(self._hours)]

    def days(self) -> list[Day]:
        with self._lock:
            return days(Counter(self._hours))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        total = GaugeMetricFamily("safeguarding_smsp_queries_day_total",
                                  "SMSP queries answered by this process in a UTC day", labels=["day"])
        peak = GaugeMetricFamily("safeguarding_smsp_queries_peak_hour",
                                 "SMSP queries answered in the busiest hour (UTC) of the day", labels=["day", "hour"])
        for day in self.days():
            total.add_metric([day.day], day.total)
            peak.add_metric([day.day, day.peak_hour], day.peak_hour_total)
        yield total
        yield peak
