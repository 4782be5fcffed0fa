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
