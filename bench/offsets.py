"""Kafka positions: the end of a topic, and how far a consumer group has committed."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from config.settings import KafkaSettings
from worker.kafka import client_options, partitions_of


async def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    tps = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
    if not tps:
        raise RuntimeError(f"the topic {topic} has no partitions")
    consumer = AIOKafkaConsumer(**client_options(kafka), client_id="tgbridge-bench-offsets")
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


class GroupWatch:
    """Polls a group's committed offsets until they reach given ends."""

    def __init__(self, kafka: KafkaSettings, group: str, topic: str) -> None:
        self.group = group
        self.topic = topic
        self._admin = AIOKafkaAdminClient(**client_options(kafka), client_id="tgbridge-bench-watch")

    async def __aenter__(self) -> GroupWatch:
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._admin.close()

    async def committed(self) -> dict[int, int]:
        found = await self._admin.list_consumer_group_offsets(self.group)
        return {
            tp.partition: meta.offset
            for tp, meta in found.items()
            if tp.topic == self.topic and meta.offset >= 0
        }

    async def until(self, ends: dict[int, int], within_s: float, every: float = 0.2) -> float:
        """Wait until every partition is committed up to its end; returns when (unix seconds)."""
        deadline = time.monotonic() + within_s
        while True:
            have = await self.committed()
            if all(have.get(p, 0) >= end for p, end in ends.items()):
                return time.time()
            if time.monotonic() > deadline:
                behind = sum(max(0, end - have.get(p, 0)) for p, end in ends.items())
                raise TimeoutError(f"group {self.group} still {behind} records behind")
            await asyncio.sleep(every)


async def caught_up(kafka: KafkaSettings, group: str, topic: str, within_s: float = 300) -> float:
    """Wait until ``group`` has committed ``topic`` up to its end as of now; returns when."""
    ends = await end_offsets(kafka, topic)
    async with GroupWatch(kafka, group, topic) as watch:
        return await watch.until(ends, within_s)
