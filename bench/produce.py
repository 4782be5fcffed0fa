"""Putting benchmark traffic on Kafka: all at once (pre-fill) or at a steady rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.traffic import Identity, Update, headers
from config.settings import KafkaSettings
from worker.kafka import client_options, ensure_topics
from worker.receiver.publisher import LINGER_MS

_CHUNK = 5_000


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

    @property
    def achieved_rate(self) -> float:
        span = self.finished - self.started
        return self.records / span if span > 0 else 0.0


class PacedClient(StrEnum):
    """The paced phases' Kafka client."""

    #: librdkafka (``confluent-kafka``): its produce call is a few microseconds of C, and a
    #: thread of its own sends, so the load generator takes little of the machine it measures.
    LIBRDKAFKA = "librdkafka"
    #: aiokafka, the receiver's client: about 0.3 ms of this process's CPU per record (0.3 of a
    #: core at 900 msg/s, round 13), taken from the consumer and the store on a 2-core machine.
    AIOKAFKA = "aiokafka"


async def paced(
    kafka: KafkaSettings,
    stream: Iterable[Update],
    rate: float,
    seconds: float,
    track: bool = True,
    client: PacedClient = PacedClient.LIBRDKAFKA,
) -> PacedLog:
    """Publish ``stream`` at ``rate`` records per second for ``seconds``, one record at a time.

    Each record is stamped with the time it is handed to the producer, which is also its Kafka
    timestamp; the producer lingers as long as the receiver's does (``LINGER_MS``, 1 ms; before
    round 5 it lingered 5 ms, which added about 4 ms to every record). Either client acknowledges
    as the receiver's does (every in-sync replica, idempotent). Without ``track`` the send times
    are not kept (a long soak needs only the pace).
    """
    sender = _Librdkafka(kafka) if client is PacedClient.LIBRDKAFKA else _Aiokafka(kafka)
    await sender.start()
    log = PacedLog()
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
            ms = int(time.time() * 1000)
            await sender.send(kafka.topic, u, ms)
            log.records += 1
            if u.is_edit:
                log.edits += 1
            elif track:
                log.sent_at[u.identity] = ms / 1000
        await sender.finish()
        log.finished = time.time()
    finally:
        await sender.close()
    return log


class _Aiokafka:
    def __init__(self, kafka: KafkaSettings) -> None:
        self._producer = _producer(kafka, linger_ms=LINGER_MS)
        self._acks: list[asyncio.Future[object]] = []

    async def start(self) -> None:
        await self._producer.start()

    async def send(self, topic: str, u: Update, ms: int) -> None:
        self._acks.append(
            await self._producer.send(topic, u.raw, key=u.key, headers=headers(ms), timestamp_ms=ms)
        )
        if len(self._acks) >= 1_000:
            await self.finish()

    async def finish(self) -> None:
        await asyncio.gather(*self._acks)
        self._acks.clear()

    async def close(self) -> None:
        await self._producer.stop()


class _Librdkafka:
    def __init__(self, kafka: KafkaSettings) -> None:
        if kafka.security_protocol != "PLAINTEXT":
            raise ValueError(
                "the librdkafka paced client speaks plaintext only; "
                "use --paced-client aiokafka for a secured Kafka"
            )
        try:
            from confluent_kafka import Producer
        except ImportError as e:
            raise RuntimeError(
                "the paced phases' default client needs confluent-kafka (pip install "
                "-e '.[bench]'), or run them with --paced-client aiokafka"
            ) from e
        self._producer = Producer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                "client.id": "tgbridge-bench",
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": LINGER_MS,
                # aiokafka's (and Java's) key hashing, so a chat lands where the receiver puts it.
                "partitioner": "murmur2_random",
            }
        )
        self._failed: list[str] = []
        self._sent = 0

    async def start(self) -> None:
        # Connect and learn the topic's partitions before the clock starts.
        await asyncio.to_thread(self._producer.list_topics, timeout=30)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._failed.append(str(err))

    async def send(self, topic: str, u: Update, ms: int) -> None:
        hdrs: list[tuple[str, str | bytes | None]] = [*headers(ms)]
        self._producer.produce(
            topic,
            u.raw,
            key=u.key,
            headers=hdrs,
            timestamp=ms,
            on_delivery=self._delivered,
        )
        self._sent += 1
        if self._sent % 64 == 0:
            self._producer.poll(0)  # runs the delivery reports that have arrived
        if self._failed:
            raise RuntimeError(f"Kafka refused a paced record: {self._failed[0]}")

    async def finish(self) -> None:
        left = await asyncio.to_thread(self._producer.flush, 60)
        if left or self._failed:
            raise RuntimeError(
                f"{left} paced records unacknowledged after 60 s; first refusal: "
                f"{self._failed[0] if self._failed else 'none'}"
            )

    async def close(self) -> None:
        await asyncio.to_thread(self._producer.flush, 5)
