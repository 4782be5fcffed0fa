"""A circuit breaker for the store: stop hammering a database that is down, probe it now and then.

Closed until ``failures`` consecutive failures; then open (every call refused at once) for
``reset_after`` seconds; then half-open, letting one probe through: its success closes the
breaker, its failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpenError(Exception):
    """The store is considered down; the call was not attempted."""


class CircuitBreaker:
    def __init__(
        self,
        failures: int = 5,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self._threshold = failures
        self._reset_after = reset_after
        self._clock = clock
        self._on_change = on_change
        self._consecutive = 0
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self._reset_after
        ):
            self._set(BreakerState.HALF_OPEN)
        return self._state

    def seconds_until_probe(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._reset_after - (self._clock() - self._opened_at))

    def before_call(self) -> None:
        """Raise :class:`BreakerOpenError` unless a call may go to the store now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return
        raise BreakerOpenError(
            f"store circuit breaker is {state.value}; "
            f"next probe in {self.seconds_until_probe():.1f} s"
        )

    def record_success(self) -> None:
        self._consecutive = 0
        self._probe_in_flight = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._consecutive += 1
        probe_failed = self._probe_in_flight
        self._probe_in_flight = False
        if probe_failed or (
            self._state is BreakerState.CLOSED and self._consecutive >= self._threshold
        ):
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)
