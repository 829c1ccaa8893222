"""Prometheus metrics at ``/_metrics``: requests by interaction and outcome, latency, store errors.

With several worker processes, each writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (set
by ``serve --workers``) and ``/_metrics`` aggregates them, so any worker answers for all. Labels
never carry patient data: only api, interaction, HTTP status and outcome code.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "safeguarding_requests_total", "API requests answered, by interaction and outcome",
    ["api", "interaction", "status", "outcome"],
)
LATENCY = Histogram(
    "safeguarding_request_duration_seconds", "Time to answer an API request", ["api", "interaction"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
STORE_ERRORS = Counter("safeguarding_store_errors_total", "Store operations that failed (store unavailable)")

CONTENT_TYPE = CONTENT_TYPE_LATEST


_children: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}


def observe(api: str, interaction: str, status: int, outcome: str, seconds: float) -> None:
    # The labelled series, looked up once per label set (a bounded set: codes, never request data).
    key = (api, interaction, status, outcome)
    series = _children.get(key)
    if series is None:
        series = _children[key] = (REQUESTS.labels(api, interaction, str(status), outcome),
                                   LATENCY.labels(api, interaction))
    series[0].inc()
    series[1].observe(seconds)


def exposition() -> bytes:
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
