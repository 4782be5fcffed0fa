"""Snowflake IDs: 64-bit, time-ordered identifiers that need no coordination between workers.

An ID packs 42 bits of milliseconds since 2024-01-01T00:00:00Z, a 10-bit worker number and a
12-bit per-millisecond sequence, so IDs sort by creation time and two workers with different
numbers can never produce the same ID.

    id = (ms_since_epoch << 22) | (worker << 12) | sequence
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

EPOCH_MS = 1_704_067_200_000
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

TIMESTAMP_BITS = 42
WORKER_BITS = 10
SEQUENCE_BITS = 12

WORKER_SHIFT = SEQUENCE_BITS
TIMESTAMP_SHIFT = WORKER_BITS + SEQUENCE_BITS

MAX_TIMESTAMP = (1 << TIMESTAMP_BITS) - 1
MAX_WORKER = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_ID = (1 << (TIMESTAMP_BITS + WORKER_BITS + SEQUENCE_BITS)) - 1


def compose(ms_since_epoch: int, worker: int, sequence: int) -> int:
    """Pack the three parts into one ID, raising ValueError that names any part out of range."""
    if ms_since_epoch < 0:
        raise ValueError(
            f"ms_since_epoch {ms_since_epoch} is before the Snowflake epoch 2024-01-01"
        )
    if ms_since_epoch > MAX_TIMESTAMP:
        raise ValueError(
            f"ms_since_epoch {ms_since_epoch} does not fit in {TIMESTAMP_BITS} bits"
            f" (max {MAX_TIMESTAMP})"
        )
    if not 0 <= worker <= MAX_WORKER:
        raise ValueError(f"worker {worker} is outside 0..{MAX_WORKER}")
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence {sequence} is outside 0..{MAX_SEQUENCE}")
    return (ms_since_epoch << TIMESTAMP_SHIFT) | (worker << WORKER_SHIFT) | sequence


def from_unix_ms(unix_ms: int, worker: int, sequence: int) -> int:
    """Compose an ID from a Unix timestamp in milliseconds instead of one relative to EPOCH."""
    if unix_ms < EPOCH_MS:
        raise ValueError(f"unix_ms {unix_ms} is before the Snowflake epoch 2024-01-01")
    return compose(unix_ms - EPOCH_MS, worker, sequence)


@dataclass(frozen=True, slots=True, order=True)
class Snowflake:
    """The decoded parts of an ID; instances order the same way the IDs themselves do."""

    ms_since_epoch: int
    worker: int
    sequence: int

    @property
    def unix_ms(self) -> int:
        """Creation time as milliseconds since the Unix epoch."""
        return EPOCH_MS + self.ms_since_epoch

    @property
    def datetime(self) -> dt.datetime:
        """Creation time as a timezone-aware UTC datetime, exact to the millisecond."""
        return EPOCH + dt.timedelta(milliseconds=self.ms_since_epoch)

    @property
    def id(self) -> int:
        """The packed 64-bit ID these parts stand for."""
        return compose(self.ms_since_epoch, self.worker, self.sequence)


def decode(snowflake_id: int) -> Snowflake:
    """Split an ID back into its timestamp, worker and sequence."""
    if not 0 <= snowflake_id <= MAX_ID:
        raise ValueError(f"snowflake_id {snowflake_id} is outside 0..{MAX_ID}")
    return Snowflake(
        ms_since_epoch=snowflake_id >> TIMESTAMP_SHIFT,
        worker=(snowflake_id >> WORKER_SHIFT) & MAX_WORKER,
        sequence=snowflake_id & MAX_SEQUENCE,
    )


def wall_clock_ms() -> int:
    """Current Unix time in milliseconds, the default clock of SnowflakeGenerator."""
    return time.time_ns() // 1_000_000


class SnowflakeGenerator:
    """Hands out strictly increasing, never repeated IDs for one worker number.

    The generator keeps a logical clock that never goes backwards: if the wall clock steps
    back it keeps counting from the last millisecond it used, and when the 4096 sequence
    numbers of a millisecond are spent it moves on to the next millisecond at once instead
    of waiting, letting the wall clock catch up later. It holds no lock and is meant for one
    asyncio event loop thread; share it across threads only behind your own lock.
    """

    def __init__(self, worker: int, clock: Callable[[], int] = wall_clock_ms) -> None:
        if not 0 <= worker <= MAX_WORKER:
            raise ValueError(f"worker {worker} is outside 0..{MAX_WORKER}")
        self._worker = worker
        self._clock = clock
        self._last_ms = -1
        self._sequence = MAX_SEQUENCE

    @property
    def worker(self) -> int:
        """The worker number embedded in every ID this generator makes."""
        return self._worker

    def next_id(self) -> int:
        """Return the next ID; raises ValueError if the clock reads a time before the epoch."""
        now_ms = self._clock() - EPOCH_MS
        if now_ms < 0:
            raise ValueError(
                f"clock reads {now_ms + EPOCH_MS}, before the Snowflake epoch 2024-01-01"
            )
        if now_ms > self._last_ms:
            ms, sequence = now_ms, 0
        elif self._sequence < MAX_SEQUENCE:
            ms, sequence = self._last_ms, self._sequence + 1
        else:
            ms, sequence = self._last_ms + 1, 0
        new_id = compose(ms, self._worker, sequence)
        self._last_ms, self._sequence = ms, sequence
        return new_id
