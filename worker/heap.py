"""Giving the C heap's free pages back to the system, now and then.

Values over 512 bytes (a record's payload, a fetched batch, a statement's answer) come from
glibc's ``malloc``, not from Python's own allocator. glibc returns memory to the system only
from the top of its heap, and only past a threshold that grows with the largest block freed so
far. When a burst of traffic holds more records in flight than usual, the heap grows; once they
are gone, the free space sits between blocks still in use, and the resident size keeps the
burst's high-water mark. In a 30-minute soak at 2,330 msg/s the consumer's ``malloc`` heap went
from 15.5 to 17.0 MiB in one such burst and stayed there with about 2 MiB of it free
(``BENCHMARKS.md``, round 20): a step in the memory graph that is not a leak.

``malloc_trim(0)`` releases every whole free page in every arena, so after each call the
resident size follows what is in use. It takes the arenas' locks for as long as it walks their
free lists: 0.13-0.95 ms (0.26 on average) on the consumer's heap, measured over 30 trims at
2,330 msg/s. Between trims the pages freed and used again come back, so the resident size moves
by a MiB or so around its level instead of stepping up from it. Where the C library is not
glibc (musl, macOS) there is no such call, and nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_trim = _load_trim()


def can_trim() -> bool:
    """Whether this process's C library has ``malloc_trim`` (glibc)."""
    return _trim is not None


def resident_bytes() -> int | None:
    """This process's resident set size, from ``/proc`` (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def trim_heap() -> bool:
    """Give every whole free page of the C heap back to the system; False if there is no way."""
    if _trim is None:
        return False
    _trim(0)
    return True


async def trim_heap_every(
    interval_s: float, on_trim: Callable[[float, int], None] | None = None
) -> None:
    """Call :func:`trim_heap` every ``interval_s`` seconds until cancelled.

    ``on_trim(seconds, released_bytes)`` hears about each call: how long it held the loop, and
    how much the resident size fell (0 if it did not). Runs on the caller's event loop; without
    ``malloc_trim`` it returns at once.
    """
    if _trim is None or interval_s <= 0:
        return
    while True:
        await asyncio.sleep(interval_s)
        before = resident_bytes()
        started = time.perf_counter()
        trim_heap()
        took = time.perf_counter() - started
        after = resident_bytes()
        released = max(0, before - after) if before is not None and after is not None else 0
        log.debug(
            "heap trimmed", extra={"seconds": round(took, 6), "released_bytes": released}
        )
        if on_trim is not None:
            on_trim(took, released)
