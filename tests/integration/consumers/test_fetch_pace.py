"""The consumer's fetches on the real Kafka client: gathered in a flow, never for a trickle.

:mod:`consumers.fetching` sets two settings aiokafka keeps on its fetcher; these tests read them
back from the running client while records arrive. An aiokafka upgrade that renamed them fails
here instead of silently costing a fetch round per record or two.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from support.consuming import until
from support.stack import KAFKA

from config.settings import Settings
from consumers.app import ConsumerParts, consumer_parts
from consumers.fetching import GATHER_BYTES
from schema.store import Store
from worker.demo.traffic import generate
from worker.metrics import Metrics

IDLE = (500, 1)
GATHER = (5, GATHER_BYTES)
HEADERS = [("bot_id", b"42"), ("transport", b"test")]


@pytest.fixture
async def running(
    settings: Settings, store: Store, topics: None
) -> AsyncIterator[tuple[ConsumerParts, set[tuple[int, int]]]]:
    """A consumer replica running, and every pair of fetch settings its client held."""
    seen: set[tuple[int, int]] = set()
    stop = asyncio.Event()
    async with consumer_parts(settings, Metrics()) as parts:
        fetcher = parts.consumer._fetcher
        task = asyncio.create_task(parts.loop.run(stop))

        async def watch() -> None:
            while True:
                seen.add((fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes))
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        try:
            await asyncio.sleep(0.5)
            assert seen == {IDLE}, "an idle consumer keeps Kafka's long wait"
            yield parts, seen
        finally:
            watcher.cancel()
            stop.set()
            await task


async def publish(
    settings: Settings, updates: list[bytes], gap_s: float = 0.0, every: int = 1
) -> None:
    """Publish ``updates``; with ``gap_s``, ``every`` records at a time, that long apart."""
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        acks: list[Awaitable[Any]] = []
        for i, raw in enumerate(updates, 1):
            acks.append(await producer.send(settings.kafka.topic, raw, key=b"1", headers=HEADERS))
            if gap_s and i % every == 0:
                await asyncio.gather(*acks)
                await asyncio.sleep(gap_s)
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def test_a_flow_of_records_gathers_fetches_and_idling_ends_it(
    settings: Settings, running: tuple[ConsumerParts, set[tuple[int, int]]]
) -> None:
    parts, seen = running
    # A flow of about 1,500 records a second for 3 s. The rate is counted over whole seconds,
    # so the flow has to outlast one: 4,000 records published at once were all stored within a
    # second on a host that ingests 4,000 msg/s, and no count ever closed while they flowed.
    updates = list(generate(4500, chats=200, seed=5))
    await publish(settings, updates, gap_s=0.1, every=150)
    await until(lambda: parts.loop.stats.records == len(updates), "all records stored", 90)
    assert GATHER in seen, "records flowed at well over 400/s, but fetches never gathered"
    pace = parts.loop.pace
    assert pace is not None
    await until(lambda: not pace.gathering, "back to waiting when idle", 5)
    fetcher = parts.consumer._fetcher
    assert (fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes) == IDLE


async def test_a_trickle_of_records_keeps_kafkas_long_wait(
    settings: Settings, running: tuple[ConsumerParts, set[tuple[int, int]]]
) -> None:
    parts, seen = running
    updates = list(generate(60, chats=10, seed=6))
    await publish(settings, updates, gap_s=0.03)
    await until(lambda: parts.loop.stats.records == len(updates), "all records stored", 30)
    assert seen == {IDLE}
