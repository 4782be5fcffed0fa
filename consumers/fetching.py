"""How long Kafka holds the consumer's fetches, fitted to the traffic.

With Kafka's defaults (answer once one byte is there, else after 500 ms) an idle consumer costs
nothing, but steady traffic costs a fetch round per record or two: at 900 msg/s the broker
answers about as many fetches a second, each with a record, and the consumer's loop wakes for
each. Gathering (``fetch_gather_ms``) makes every fetch wait a few milliseconds for more
records, or 64 KiB: a fetch round every 5 ms at most, whatever the rate, but also when no record
comes. So :class:`FetchPace` gathers only while records arrive faster than that: from twice the
gathering's own rate (400 records/s at 5 ms), measured over a second, until the rate falls under
it (200/s) or a fetch round brings nothing (the loop's ``getmany`` waited 200-500 ms in vain).
Then the configured settings are back, and an idle or trickling consumer does not poll. A
backlog is unaffected: its fetches find 64 KiB at once.

aiokafka builds each fetch request from its fetcher's settings when it sends it, and has no
public way to change them on a running consumer; this sets the two attributes it reads. If a
release renames them, the consumer says so once and keeps its configured settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from config.settings import WorkerSettings

log = logging.getLogger(__name__)

#: While gathering, Kafka answers as soon as this much is there.
GATHER_BYTES = 64 * 1024
#: How long the record rate is counted before it is compared.
RATE_WINDOW_S = 1.0
_WAIT = "_fetch_max_wait_ms"
_MIN_BYTES = "_fetch_min_bytes"


class FetchPace:
    """Switches a consumer's fetches between gathering (a steady flow) and waiting (idle)."""

    def __init__(
        self,
        consumer: Any,
        settings: WorkerSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._clock = clock
        gather_ms = min(settings.fetch_gather_ms, settings.fetch_max_wait_ms)
        self._idle = (settings.fetch_max_wait_ms, settings.fetch_min_bytes)
        self._gather = (gather_ms, max(GATHER_BYTES, settings.fetch_min_bytes))
        self._enabled = settings.fetch_gather_ms > 0
        #: Records per second at which gathering starts, and under which it stops.
        self.start_rate = 2000 / gather_ms if gather_ms else float("inf")
        self.stop_rate = self.start_rate / 2
        self._fetcher: Any = None
        self._since = clock()
        self._counted = 0
        self.gathering = False

    def after_fetch(self, records: int) -> None:
        """Called after each ``getmany``, with how many records it returned."""
        if not self._enabled:
            return
        now = self._clock()
        if records == 0:
            want = False
        else:
            self._counted += records
            if now - self._since < RATE_WINDOW_S:
                return
            rate = self._counted / (now - self._since)
            want = rate >= (self.stop_rate if self.gathering else self.start_rate)
        self._since, self._counted = now, 0
        if want != self.gathering:
            self._switch(want)

    def _switch(self, gather: bool) -> None:
        fetcher = self._fetcher or self._find_fetcher()
        if fetcher is None:
            return
        self.gathering = gather
        wait_ms, min_bytes = self._gather if gather else self._idle
        setattr(fetcher, _WAIT, wait_ms)
        setattr(fetcher, _MIN_BYTES, min_bytes)

    def _find_fetcher(self) -> Any:
        fetcher = getattr(self._consumer, "_fetcher", None)
        if fetcher is None or not all(hasattr(fetcher, a) for a in (_WAIT, _MIN_BYTES)):
            self._enabled = False
            log.warning(
                "this aiokafka has no fetch settings to adapt (%s, %s); fetches keep "
                "fetch_min_bytes and fetch_max_wait_ms as configured",
                _WAIT,
                _MIN_BYTES,
            )
            return None
        self._fetcher = fetcher
        return fetcher
