"""Capped exponential back-off with jitter, so no failure ever turns into a tight loop."""

from __future__ import annotations

import random


class Backoff:
    """Delays of ``initial``, doubling up to ``cap`` seconds, each jittered to 50-100 %."""

    def __init__(self, initial: float = 0.5, cap: float = 10.0) -> None:
        if not 0 < initial <= cap:
            raise ValueError("back-off needs 0 < initial <= cap")
        self.initial = initial
        self.cap = cap
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * 2 ** min(self._attempt, 32))
        self._attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0
