"""Putting benchmark traffic on Kafka: all at once (pre-fill) or at a steady rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

from aiokafka import AIOKafkaProducer

from bench.traffic import Identity, Update, headers
from config.settings import KafkaSettings
from worker.kafka import client_options, ensure_topics
from worker.receiver.publisher import LINGER_MS

_CHUNK = 5_000
#: A paced record sent this much after its time is counted late (the pace is uneven).
LATE_S = 0.005


def _producer(kafka: KafkaSettings, linger_ms: int) -> AIOKafkaProducer:
    # The receiver's producer settings: every in-sync replica acknowledges, idempotent.
    return AIOKafkaProducer(
        **client_options(kafka),
        client_id="tgbridge-bench",
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
    )


async def prefill(kafka: KafkaSettings, stream: Iterable[Update], age_s: float = 0.0) -> int:
    """Create ``kafka.topic`` and publish every update of ``stream``; returns how many.

    Each record is stamped (Kafka timestamp and ``received_at``) ``age_s`` seconds in the past,
    as a backlog's records would be.
    """
    await ensure_topics(kafka, kafka.topic, kafka.dlq_topic)
    producer = _producer(kafka, linger_ms=20)
    await producer.start()
    sent = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for u in stream:
            stamp_ms = int((time.time() - age_s) * 1000)
            pending.append(
                await producer.send(
                    kafka.topic, u.raw, key=u.key, headers=headers(stamp_ms), timestamp_ms=stamp_ms
                )
            )
            sent += 1
            if len(pending) >= _CHUNK:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def _unacknowledged(acks: list[asyncio.Future[object]]) -> list[asyncio.Future[object]]:
    """The sends Kafka has not acknowledged yet, without waiting for them (a failed one raises).

    Until round 21 the paced sender waited here for all of its last thousand records: every
    0.4 s at 2,300 msg/s it stood still for as long as the newest record's acknowledgement took
    (10-40 ms beside the consumer), then sent what had fallen due meanwhile in one burst. Only
    when Kafka falls a whole chunk behind does it wait, as a pre-fill does.
    """
    pending = []
    for ack in acks:
        if ack.done():
            ack.result()  # raises what Kafka refused
        else:
            pending.append(ack)
    if len(pending) >= _CHUNK:
        await asyncio.gather(*pending)
        return []
    return pending


def _note_ack(acked: list[tuple[float, float]], stamp: float, _: object) -> None:
    acked.append((stamp, time.time() - stamp))


@dataclass
class PacedLog:
    """When each new message's record was stamped (unix seconds); edits are only counted."""

    sent_at: dict[Identity, float] = field(default_factory=dict)
    records: int = 0
    edits: int = 0
    started: float = 0.0
    finished: float = 0.0
    #: How far behind its schedule the sender fell at worst (seconds).
    max_lag_s: float = 0.0
    #: Records handed to the producer more than :data:`LATE_S` after they fell due.
    late: int = 0
    #: Per tracked new message: (stamp, seconds from the stamp to Kafka's acknowledgement).
    acked: list[tuple[float, float]] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        span = self.finished - self.started
        return self.records / span if span > 0 else 0.0


async def paced(
    kafka: KafkaSettings,
    stream: Iterable[Update],
    rate: float,
    seconds: float,
    track: bool = True,
) -> PacedLog:
    """Publish ``stream`` at ``rate`` records per second for ``seconds``, one record at a time.

    Each record is stamped with the time it is handed to the producer, which is also its Kafka
    timestamp; the producer lingers as long as the receiver's does (``LINGER_MS``, 1 ms; before
    round 5 it lingered 5 ms, which added about 4 ms to every record). Without ``track`` the send
    times are not kept (a long soak needs only the pace).
    """
    producer = _producer(kafka, linger_ms=LINGER_MS)
    await producer.start()
    log = PacedLog()
    acks: list[asyncio.Future[object]] = []
    try:
        log.started = time.time()
        start = time.monotonic()
        total = int(rate * seconds)
        for i, u in enumerate(stream):
            if i >= total:
                break
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                log.max_lag_s = max(log.max_lag_s, -delay)
                if -delay > LATE_S:
                    log.late += 1
            stamp = time.time()
            ms = int(stamp * 1000)
            ack = await producer.send(
                kafka.topic, u.raw, key=u.key, headers=headers(ms), timestamp_ms=ms
            )
            acks.append(ack)
            log.records += 1
            if u.is_edit:
                log.edits += 1
            elif track:
                log.sent_at[u.identity] = ms / 1000
                ack.add_done_callback(partial(_note_ack, log.acked, ms / 1000))
            if len(acks) >= _CHUNK:
                acks = await _unacknowledged(acks)
        await asyncio.gather(*acks)
        log.finished = time.time()
    finally:
        await producer.stop()
    return log
