"""Waiting for a quiet machine before a measured phase.

The machine is shared: other test runs load the same two cores and the same Cassandra. Before
each measured phase the runner waits (up to a limit) until the whole machine has been nearly idle
for a few seconds, and records how long it waited and how busy the machine still was.
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.procfs import machine_busy_seconds

#: Cores the machine may use while "quiet": Kafka's and Cassandra's own idle housekeeping.
QUIET_CORES = 0.3
WINDOW_S = 5.0


async def busy_cores(window_s: float = WINDOW_S) -> float:
    busy0, total0 = machine_busy_seconds()
    await asyncio.sleep(window_s)
    busy1, total1 = machine_busy_seconds()
    if total1 <= total0:
        return 0.0
    return (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1)


async def wait_quiet(max_wait_s: float) -> dict[str, float | bool]:
    """Wait until the machine uses under ``QUIET_CORES`` for ``WINDOW_S``, or ``max_wait_s``."""
    started = time.monotonic()
    while True:
        cores = await busy_cores()
        waited = time.monotonic() - started
        if cores < QUIET_CORES:
            return {"quiet": True, "waited_s": round(waited, 1), "busy_cores": round(cores, 2)}
        if waited >= max_wait_s:
            return {"quiet": False, "waited_s": round(waited, 1), "busy_cores": round(cores, 2)}
