"""A circuit breaker per provider: after repeated failures, stop calling it for a while.

While open, requests go straight to the local engine (``circuit_open``) instead of each waiting
out a timeout. After ``reset_after_seconds`` one trial call is let through (half-open): success
closes the circuit, failure opens it again. Only failures that say the provider is unhealthy
count (timeouts, 5xx, rate limits); a refusal or an invalid answer does not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_after_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._reset_after = reset_after_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._reset_after:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """May a call go to the provider now? In half-open state only one trial at a time."""
        with self._lock:
            state = self._state()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._trial_in_flight = False
            if self._opened_at is not None:
                # The half-open trial failed: wait a full period again.
                self._opened_at = self._clock()
                return
            self._failures += 1
            if self._failures >= self._threshold:
                self._opened_at = self._clock()

    def release(self) -> None:
        """The admitted call ended without a health verdict (e.g. the model refused)."""
        with self._lock:
            self._trial_in_flight = False
