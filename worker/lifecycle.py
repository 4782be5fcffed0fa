"""Process lifecycle: the first SIGTERM/SIGINT asks for a graceful stop, a second exits at once."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

log = logging.getLogger(__name__)

#: Exit codes that let an orchestrator tell a configuration mistake from a crash.
EXIT_OK = 0
EXIT_CRASH = 1
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3
EXIT_FORCED = 130

T = TypeVar("T")


def run_fast(main: Coroutine[Any, Any, T], switch_interval_ms: float | None = None) -> T:
    """Run ``main`` on uvloop, optionally with a shorter GIL switch interval.

    With ``TGBRIDGE_STORE__IO=driver_thread`` (and with TLS) the CQL driver reads answers on its
    own I/O thread and hands each one to the event loop; both threads share the GIL, and a thread
    that wants it waits up to the switch interval (Python's default is 5 ms) for the other to let
    go. Under load every statement paid that wait on its way in and out, so the consumer sets it
    shorter (``TGBRIDGE_WORKER__SWITCH_INTERVAL_MS``). With the default ``event_loop`` I/O the
    statements stay on the loop's thread, and only the driver's background threads (heartbeats,
    metadata) still take the GIL now and then. uvloop makes the loop's wake-ups cheaper.
    """
    if switch_interval_ms is not None:
        sys.setswitchinterval(switch_interval_ms / 1000)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


#: The cyclic collector's first threshold once started (Python's is 700): a young collection
#: when this many more container objects have been made than freed. tgbridge's steady state
#: makes no reference cycles (``BENCHMARKS.md``, round 19), so a young collection finds no
#: garbage and only walks what is in flight; at 700 those walks took 8-11% of the consumer's
#: time at full speed, at 10,000 about 2%.
YOUNG_THRESHOLD = 10_000


def freeze_startup_heap() -> int:
    """Exempt everything built so far from the cyclic garbage collector, and make its young
    collections rarer (:data:`YOUNG_THRESHOLD`); returns how many objects were frozen.

    A started consumer holds some 80,000 long-lived objects (the driver's schema metadata,
    prepared statements, pydantic and Kafka client state). Python's full collection walks all of
    them every few seconds, 50-80 ms each time under load: every record in flight waits that
    long. Frozen objects are never scanned again, so a full collection only walks what was
    allocated since. Call once, after start-up, from the process's own event loop.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    return gc.get_freeze_count()


def install_stop_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on the first SIGTERM or SIGINT; exit immediately on the second."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(EXIT_FORCED)
        log.info("%s: stopping intake and draining", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
