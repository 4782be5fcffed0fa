"""The consumer's runtime: uvloop, the GIL switch interval the settings ask for, a frozen heap."""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref

from config.settings import Settings
from worker.lifecycle import freeze_startup_heap, run_fast


async def _where_am_i() -> tuple[str, float]:
    return type(asyncio.get_running_loop()).__module__, sys.getswitchinterval()


def test_runs_on_uvloop_with_the_switch_interval_given() -> None:
    before = sys.getswitchinterval()
    try:
        module, interval = run_fast(_where_am_i(), switch_interval_ms=0.5)
        assert module.startswith("uvloop")
        assert interval == 0.0005
    finally:
        sys.setswitchinterval(before)


def test_without_an_interval_the_process_keeps_its_own() -> None:
    before = sys.getswitchinterval()
    _, interval = run_fast(_where_am_i())
    assert interval == before


def test_the_consumer_default_is_shorter_than_pythons() -> None:
    assert Settings().worker.switch_interval_ms == 0.5


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_a_frozen_heap_is_left_alone_and_later_garbage_still_collected() -> None:
    thresholds = gc.get_threshold()
    before = _Node()
    try:
        frozen = freeze_startup_heap()
        assert frozen > 0
        assert not any(o is before for o in gc.get_objects())  # no collection walks it now
        after = weakref.ref(_Node())
        gc.collect()
        assert after() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_once_started_a_batch_in_flight_sets_off_no_young_collection() -> None:
    # A batch's worth of live objects (a few thousand: records, decoded updates, statements)
    # is what a young collection would walk, and find no garbage in.
    thresholds = gc.get_threshold()
    passes: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    try:
        freeze_startup_heap()
        gc.callbacks.append(count)
        in_flight = [{"offset": i} for i in range(5_000)]
        gc.callbacks.remove(count)
        assert len(in_flight) == 5_000
        assert passes == []
    finally:
        if count in gc.callbacks:
            gc.callbacks.remove(count)
        gc.unfreeze()
        gc.set_threshold(*thresholds)
