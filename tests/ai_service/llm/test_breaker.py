"""The per-provider circuit breaker, driven by a fake clock."""

from __future__ import annotations

from ai_service.llm.breaker import BreakerState, CircuitBreaker

from .conftest import FakeClock


def _state(b: CircuitBreaker) -> BreakerState:
    return b.state


def breaker(clock: FakeClock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, reset_after_seconds=30, clock=clock)


def test_opens_after_consecutive_failures_only() -> None:
    clock = FakeClock()
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()  # a success resets the count
    b.record_failure()
    b.record_failure()
    assert _state(b) is BreakerState.CLOSED and b.allow()
    b.record_failure()
    assert _state(b) is BreakerState.OPEN and not b.allow()


def test_half_open_lets_one_trial_through() -> None:
    clock = FakeClock()
    b = breaker(clock, threshold=1)
    b.record_failure()
    clock.now += 29.9
    assert not b.allow()
    clock.now += 0.2
    assert _state(b) is BreakerState.HALF_OPEN
    assert b.allow()
    assert not b.allow()  # a second caller waits for the trial's verdict
    b.record_success()
    assert _state(b) is BreakerState.CLOSED and b.allow() and b.allow()


def test_failed_trial_opens_for_a_full_period_again() -> None:
    clock = FakeClock()
    b = breaker(clock, threshold=1)
    b.record_failure()
    clock.now += 31
    assert b.allow()
    b.record_failure()
    assert _state(b) is BreakerState.OPEN
    clock.now += 29
    assert not b.allow()
    clock.now += 2
    assert b.allow()


def test_release_frees_the_trial_slot() -> None:
    clock = FakeClock()
    b = breaker(clock, threshold=1)
    b.record_failure()
    clock.now += 31
    assert b.allow()
    b.release()
    assert b.allow()
