"""Reading the dead-letter topic and re-publishing chosen records after a fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from config.settings import KafkaSettings
from consumers.deadletter import HEADER_PREFIX
from worker.kafka import client_options, durable_producer, partitions_of


@dataclass(frozen=True, slots=True)
class Letter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def ref(self) -> str:
        """How an operator names this record: ``PARTITION:OFFSET`` of the dead-letter topic."""
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str:
        for k, v in self.headers:
            if k == name:
                return v.decode(errors="replace")
        return ""

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(HEADER_PREFIX)]


async def read_letters(settings: KafkaSettings, limit: int | None = None) -> list[Letter]:
    """Every dead-lettered record (up to ``limit``), oldest first per partition."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [
            TopicPartition(settings.dlq_topic, p)
            for p in await partitions_of(settings, settings.dlq_topic)
        ]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        # Read up to the end offsets seen at the start; track progress from the records themselves.
        reached = dict(starts)
        letters: list[Letter] = []
        while any(reached[tp] < ends[tp] for tp in tps):
            if limit is not None and len(letters) >= limit:
                break
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, recs in batch.items():
                for r in recs:
                    if r.offset < ends[tp]:
                        letters.append(
                            Letter(r.partition, r.offset, r.key, r.value or b"", list(r.headers))
                        )
                    reached[tp] = max(reached[tp], r.offset + 1)
        return letters[:limit] if limit is not None else letters
    finally:
        await consumer.stop()


async def republish(settings: KafkaSettings, letters: Iterable[Letter]) -> int:
    """Send the records back to the main topic as they first arrived; returns how many."""
    producer = durable_producer(settings, f"{settings.client_id}-dlq-republish")
    await producer.start()
    try:
        sent = 0
        for letter in letters:
            await producer.send_and_wait(
                settings.topic, letter.value, key=letter.key, headers=letter.original_headers
            )
            sent += 1
        return sent
    finally:
        await producer.stop()
