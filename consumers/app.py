"""Wiring of one consumer replica: store, Kafka consumer, dead-letter producer, loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from config.settings import Settings
from consumers.deadletter import DeadLetters
from consumers.fetching import FetchPace
from consumers.loop import ConsumerLoop
from consumers.writer import MessageWriter
from schema.migrate import check_migrated
from schema.store import Store
from schema.tables import MessageTables
from worker.heap import trim_heap_every
from worker.http import start_ops_server
from worker.kafka import client_options, durable_producer, ensure_topics
from worker.lifecycle import freeze_startup_heap
from worker.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass
class ConsumerParts:
    store: Store
    consumer: AIOKafkaConsumer
    loop: ConsumerLoop


@asynccontextmanager
async def consumer_parts(
    settings: Settings,
    metrics: Metrics,
    group_id: str | None = None,
    subscribe: bool = True,
) -> AsyncIterator[ConsumerParts]:
    """Build everything a consumer needs; closes it in reverse order on exit.

    With ``subscribe`` the consumer joins ``group_id`` (default: the live group) and gets
    partitions by rebalance; without, the caller assigns partitions itself (replay).
    """
    async with AsyncExitStack() as stack:
        store = await Store.connect(settings.store, metrics)
        stack.push_async_callback(store.close)
        await check_migrated(store, settings.store.keyspace)
        await ensure_topics(settings.kafka, settings.kafka.topic, settings.kafka.dlq_topic)

        producer = durable_producer(settings.kafka, f"{settings.kafka.client_id}-dlq")
        await producer.start()
        stack.push_async_callback(producer.stop)

        consumer = AIOKafkaConsumer(
            **client_options(settings.kafka),
            client_id=f"{settings.kafka.client_id}-consumer",
            group_id=group_id or settings.worker.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.worker.batch_max_records,
            fetch_max_bytes=min(settings.worker.max_inflight_bytes, 52_428_800),
            max_partition_fetch_bytes=min(settings.worker.max_inflight_bytes, 1_048_576),
            fetch_min_bytes=settings.worker.fetch_min_bytes,
            fetch_max_wait_ms=settings.worker.fetch_max_wait_ms,
        )
        tables = MessageTables(store, settings.store.keyspace)
        loop = ConsumerLoop(
            consumer,
            MessageWriter(tables),
            DeadLetters(producer, settings.kafka.dlq_topic, metrics),
            store,
            metrics,
            settings.worker,
            FetchPace(consumer, settings.worker),
        )
        if subscribe:
            consumer.subscribe([settings.kafka.topic], listener=loop.rebalance_listener())
        await consumer.start()
        # Stopping the consumer leaves the group at once, so a restart costs one rebalance.
        stack.push_async_callback(consumer.stop)
        yield ConsumerParts(store, consumer, loop)


async def run_consumer(
    settings: Settings, metrics: Metrics, stop: asyncio.Event, metrics_port: int | None = None
) -> None:
    """Run one replica until ``stop``; in-flight work gets ``shutdown_timeout_s`` to finish."""
    async with consumer_parts(settings, metrics) as parts:
        port = settings.worker.metrics_port if metrics_port is None else metrics_port
        runner = await start_ops_server(
            metrics, lambda: consumer_readiness(parts), settings.worker.metrics_host, port
        )
        trimming = asyncio.create_task(
            trim_heap_every(settings.worker.heap_trim_interval_s, metrics.heap_trimmed)
        )
        try:
            frozen = freeze_startup_heap()
            log.info(
                "consumer started",
                extra={"group_id": settings.worker.group_id, "frozen_objects": frozen},
            )
            await _run_until_stopped(parts.loop, stop, settings.worker.shutdown_timeout_s)
        finally:
            trimming.cancel()
            with suppress(asyncio.CancelledError):
                await trimming
            await runner.cleanup()
        s = parts.loop.stats
        log.info(
            "consumer stopped",
            extra={
                "records": s.records,
                "new": s.new,
                "duplicates": s.duplicates,
                "edits": s.edits,
            },
        )


async def _run_until_stopped(loop: ConsumerLoop, stop: asyncio.Event, deadline_s: float) -> None:
    task = asyncio.create_task(loop.run(stop))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        try:
            await asyncio.wait_for(task, deadline_s)
        except TimeoutError:
            log.warning("in-flight batch abandoned at the shutdown deadline; not committed")
            return
    task.result()


async def consumer_readiness(parts: ConsumerParts) -> list[str]:
    problems = []
    if not parts.consumer.assignment():
        problems.append(
            "no partitions assigned (joining the group, or more replicas than partitions)"
        )
    if parts.loop.paused_for_store:
        problems.append("store unavailable: partitions paused")
    else:
        try:
            await parts.store.execute(
                "SELECT release_version FROM system.local", idempotent=False, kind="probe"
            )
        except Exception as exc:
            problems.append(f"store unreachable: {type(exc).__name__}")
    return problems
