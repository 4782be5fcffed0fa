"""How long Kafka holds the consumer's fetches (``TGBRIDGE_WORKER__FETCH_GATHER_MS``)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from config.settings import WorkerSettings
from consumers.fetching import GATHER_BYTES, FetchPace

IDLE = (500, 1)
GATHER = (5, GATHER_BYTES)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(wait_ms: int = 500, min_bytes: int = 1) -> SimpleNamespace:
    """A consumer whose fetcher holds the two settings aiokafka builds fetch requests from."""
    return SimpleNamespace(
        _fetcher=SimpleNamespace(_fetch_max_wait_ms=wait_ms, _fetch_min_bytes=min_bytes)
    )


def sent(consumer: SimpleNamespace) -> tuple[int, int]:
    return consumer._fetcher._fetch_max_wait_ms, consumer._fetcher._fetch_min_bytes


def flow(pace: FetchPace, clock: Clock, per_second: int, seconds: float = 1.0) -> None:
    """Fetches of one record each, ``per_second`` of them, for ``seconds``."""
    for _ in range(int(per_second * seconds)):
        clock.now += 1 / per_second
        pace.after_fetch(1)


def test_a_steady_flow_gathers_and_a_round_without_records_stops_it() -> None:
    consumer, clock = client(), Clock()
    pace = FetchPace(consumer, WorkerSettings(), clock)
    assert (pace.start_rate, pace.stop_rate) == (400, 200)
    flow(pace, clock, 900, seconds=0.9)
    assert sent(consumer) == IDLE, "the rate is judged over a whole second"
    flow(pace, clock, 900, seconds=0.2)
    assert sent(consumer) == GATHER
    clock.now += 0.2
    pace.after_fetch(0)
    assert sent(consumer) == IDLE


def test_a_trickle_never_gathers_so_it_costs_no_polling() -> None:
    consumer, clock = client(), Clock()
    pace = FetchPace(consumer, WorkerSettings(), clock)
    flow(pace, clock, 350, seconds=5)
    assert sent(consumer) == IDLE
    assert not pace.gathering


def test_gathering_holds_down_to_half_its_starting_rate() -> None:
    consumer, clock = client(), Clock()
    pace = FetchPace(consumer, WorkerSettings(), clock)
    flow(pace, clock, 500, seconds=1.1)
    assert sent(consumer) == GATHER
    flow(pace, clock, 250, seconds=3)
    assert sent(consumer) == GATHER, "between the two rates, gathering goes on"
    flow(pace, clock, 150, seconds=2)
    assert sent(consumer) == IDLE


def test_gathering_never_lowers_what_the_operator_configured() -> None:
    consumer, clock = client(wait_ms=2, min_bytes=1 << 20), Clock()
    settings = WorkerSettings(fetch_max_wait_ms=2, fetch_min_bytes=1 << 20)
    pace = FetchPace(consumer, settings, clock)
    flow(pace, clock, 2000, seconds=1.1)
    assert sent(consumer) == (2, 1 << 20)


def test_zero_keeps_the_configured_settings() -> None:
    consumer, clock = client(wait_ms=250), Clock()
    pace = FetchPace(consumer, WorkerSettings(fetch_gather_ms=0, fetch_max_wait_ms=250), clock)
    flow(pace, clock, 5000, seconds=2)
    assert sent(consumer) == (250, 1)


def test_a_client_without_those_settings_is_named_once_and_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer, clock = SimpleNamespace(_fetcher=SimpleNamespace(max_wait=500)), Clock()
    pace = FetchPace(consumer, WorkerSettings(), clock)
    with caplog.at_level(logging.WARNING, logger="consumers.fetching"):
        flow(pace, clock, 1000, seconds=3)
        pace.after_fetch(0)
        flow(pace, clock, 1000, seconds=3)
    assert [r.getMessage() for r in caplog.records] == [
        "this aiokafka has no fetch settings to adapt (_fetch_max_wait_ms, _fetch_min_bytes); "
        "fetches keep fetch_min_bytes and fetch_max_wait_ms as configured"
    ]
    assert consumer._fetcher.__dict__ == {"max_wait": 500}
    assert not pace.gathering
