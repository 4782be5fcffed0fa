"""The consumer pipeline's small parts: its write slots and its per-record tallies."""

from __future__ import annotations

import asyncio
import dataclasses

from consumers.loop import BatchStats, _Slots


def test_adding_tallies_adds_every_field() -> None:
    fields = [f.name for f in dataclasses.fields(BatchStats)]
    total = BatchStats(**{name: 1 for name in fields})
    total.add(BatchStats(**{name: i + 2 for i, name in enumerate(fields)}))
    assert dataclasses.asdict(total) == {name: i + 3 for i, name in enumerate(fields)}


async def test_slots_hold_at_most_n_writers_and_serve_them_in_order() -> None:
    slots = _Slots(2)
    busy = 0
    most = 0
    order: list[int] = []
    release = asyncio.Event()

    async def writer(i: int) -> None:
        nonlocal busy, most
        await slots.acquire()
        try:
            busy += 1
            most = max(most, busy)
            order.append(i)
            await release.wait()
        finally:
            busy -= 1
            slots.release()

    tasks = [asyncio.create_task(writer(i)) for i in range(6)]
    await asyncio.sleep(0.01)
    assert (busy, order) == (2, [0, 1])
    release.set()
    await asyncio.gather(*tasks)
    assert most == 2
    assert order == [0, 1, 2, 3, 4, 5]


async def test_a_cancelled_waiter_gives_its_slot_on() -> None:
    slots = _Slots(1)
    await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    behind = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    waiting.cancel()  # cancelled while waiting: it never held the slot
    await asyncio.sleep(0)
    slots.release()
    await asyncio.wait_for(behind, 1)  # the slot skipped the cancelled waiter
    handed = asyncio.create_task(slots.acquire())  # ``behind`` still holds the slot
    await asyncio.sleep(0)
    slots.release()  # hands it to ``handed``...
    handed.cancel()  # ...which is cancelled before it could run with it
    await asyncio.gather(handed, return_exceptions=True)
    assert handed.cancelled()
    await asyncio.wait_for(slots.acquire(), 1)  # so the slot came back
