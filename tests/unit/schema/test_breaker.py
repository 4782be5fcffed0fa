"""The store's circuit breaker: opens after 5 failures in a row, probes again after 30 s."""

from __future__ import annotations

import pytest

from schema.breaker import BreakerOpenError, BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_five_consecutive_failures_only() -> None:
    clock = Clock()
    b = CircuitBreaker(5, 30.0, clock)
    for _ in range(4):
        b.before_call()
        b.record_failure()
    b.record_success()  # a success resets the count
    for _ in range(4):
        b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN
    with pytest.raises(BreakerOpenError, match="open"):
        b.before_call()


def test_half_opens_after_the_reset_time_and_lets_one_probe_through() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    b = CircuitBreaker(5, 30.0, clock, on_change=changes.append)
    for _ in range(5):
        b.record_failure()
    clock.now += 29.9
    with pytest.raises(BreakerOpenError):
        b.before_call()
    clock.now += 0.2
    b.before_call()  # the probe
    with pytest.raises(BreakerOpenError):
        b.before_call()  # only one probe at a time
    b.record_success()
    assert b.state is BreakerState.CLOSED
    b.before_call()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_probe_opens_it_again_for_a_full_period() -> None:
    clock = Clock()
    b = CircuitBreaker(5, 30.0, clock)
    for _ in range(5):
        b.record_failure()
    clock.now += 30
    b.before_call()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert b.seconds_until_probe() == pytest.approx(30.0)
