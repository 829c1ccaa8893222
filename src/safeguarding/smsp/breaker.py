"""A circuit breaker, so a dead national service costs local clients nothing but a fast, clear error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Closed: calls go through. After ``threshold`` consecutive failures it opens for ``reset_after``
    seconds (calls are refused at once); then one trial call is let through (half-open): success closes
    it, failure opens it again."""

    def __init__(self, threshold: int = 3, reset_after: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold, self._reset_after, self._clock = threshold, reset_after, clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self._reset_after or self._trial_running:
                return False
            self._trial_running = True  # half-open: exactly one trial
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial_running = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._failures >= self._threshold:
                self._opened_at = self._clock()

    @property
    def open(self) -> bool:
        with self._lock:
            return self._opened_at is not None
