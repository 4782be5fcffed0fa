"""Giving the C heap's free pages back: the resident size follows what is held, not a burst."""

from __future__ import annotations

import asyncio
import platform

import pytest

from worker import heap
from worker.metrics import Metrics

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
MiB = 1024 * 1024


def test_on_glibc_the_trim_is_found() -> None:
    if not GLIBC:
        pytest.skip("malloc_trim is glibc's; elsewhere the consumer does nothing")
    assert heap.can_trim()
    assert heap.resident_bytes() is not None


def test_a_burst_freed_between_survivors_leaves_the_resident_size_until_trimmed() -> None:
    if not GLIBC:
        pytest.skip("malloc_trim is glibc's; elsewhere the consumer does nothing")
    heap.trim_heap()
    baseline = heap.resident_bytes()
    assert baseline is not None
    # A burst of record-sized values (over 512 bytes, so from malloc, not Python's allocator);
    # every 32nd outlives the burst, as a few records in flight do, and pins the heap's top.
    burst = [bytes(2048) + i.to_bytes(4, "little") for i in range(40_000)]
    survivors = burst[::32]
    del burst
    held = heap.resident_bytes()
    assert held is not None
    assert held - baseline > 50 * MiB, "the freed burst should still be resident before a trim"

    assert heap.trim_heap()

    after = heap.resident_bytes()
    assert after is not None
    assert held - after > 40 * MiB, f"trim gave back {(held - after) / MiB:.1f} MiB"
    assert len(survivors) == 1250 and survivors[-1][-4:] == (39_968).to_bytes(4, "little")


async def test_the_periodic_trim_reports_each_call_and_stops_when_cancelled() -> None:
    if not GLIBC:
        pytest.skip("malloc_trim is glibc's; elsewhere the consumer does nothing")
    calls: list[tuple[float, int]] = []
    task = asyncio.create_task(heap.trim_heap_every(0.01, lambda s, b: calls.append((s, b))))
    async with asyncio.timeout(5):
        while len(calls) < 3:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(seconds >= 0 and released >= 0 for seconds, released in calls)


async def test_an_interval_of_zero_never_trims() -> None:
    calls: list[tuple[float, int]] = []
    await asyncio.wait_for(heap.trim_heap_every(0, lambda s, b: calls.append((s, b))), 1)
    assert calls == []


def test_each_trim_is_counted_on_the_metrics_page() -> None:
    m = Metrics()
    m.heap_trimmed(0.002, 3 * MiB)
    m.heap_trimmed(0.001, 0)
    assert m.registry.get_sample_value("tgbridge_heap_trim_seconds_total") == pytest.approx(0.003)
    assert m.registry.get_sample_value("tgbridge_heap_released_bytes_total") == 3 * MiB
