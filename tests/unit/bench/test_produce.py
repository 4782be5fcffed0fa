"""The paced sender keeps an even pace, however slowly Kafka acknowledges what it sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import bench.produce as produce
from bench.produce import paced
from bench.traffic import updates
from config.settings import KafkaSettings

ACK_DELAY_S = 0.1


class _SlowAcks:
    """Stands in for the producer client: every send is acknowledged ``ACK_DELAY_S`` later."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.sent = 0
        self._fail_at = fail_at

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[object]:
        self.sent += 1
        ack: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.sent == self._fail_at:
            ack.set_exception(RuntimeError(f"Kafka refused record {self.sent}"))
        else:
            asyncio.get_running_loop().call_later(ACK_DELAY_S, ack.set_result, self.sent)
        return ack


def _kafka() -> KafkaSettings:
    return KafkaSettings(topic="bench.paced", dlq_topic="bench.paced.dlq")


async def test_slow_acknowledgements_do_not_hold_the_pace_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 3,000 records at 2,000/s. Until round 21 the sender waited for every thousandth record's
    # acknowledgement: here that was a 100 ms stop every half second, and a burst after it.
    monkeypatch.setattr(produce, "_producer", lambda kafka, linger_ms: _SlowAcks())
    log = await paced(_kafka(), updates(10**6), rate=2_000, seconds=1.5)
    assert log.records == 3_000
    assert log.max_lag_s < ACK_DELAY_S / 2, f"the sender stood still for {log.max_lag_s:.3f} s"
    # Every new message's acknowledgement is timed from its stamp.
    assert len(log.acked) == len(log.sent_at) > 2_000
    assert min(d for _, d in log.acked) >= ACK_DELAY_S * 0.9


async def test_a_send_kafka_refused_stops_the_phase_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(produce, "_producer", lambda kafka, linger_ms: _SlowAcks(fail_at=10))
    with pytest.raises(RuntimeError, match="refused record 10"):
        await paced(_kafka(), updates(10**6), rate=20_000, seconds=0.5)
