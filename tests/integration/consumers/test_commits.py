"""Offset commits against the real Kafka: a slow answer to a commit holds no record back.

On a busy machine Kafka takes 10-200 ms to answer an offset commit. The consumer commits every
0.2 s and whenever its pipeline runs dry, so if the loop waited for each answer before fetching
again, the records that arrived meanwhile would wait too. Here every commit is slowed down to a
second; records keep arriving one at a time, and each must still start within a fraction of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from support.consuming import until

from config.settings import Settings
from consumers.app import ConsumerParts, consumer_parts
from consumers.loop import COMMIT_OVERDUE_S
from schema.store import Store
from worker.demo.traffic import generate
from worker.metrics import Metrics

SLOW_COMMIT_S = 1.0
RECORDS = 30
GAP_S = 0.05


def started_within(metrics: Metrics, seconds: str) -> tuple[float, float]:
    """(records started within ``seconds`` of their Kafka time, records started at all)."""
    name = "tgbridge_kafka_delay_seconds"
    within = metrics.registry.get_sample_value(f"{name}_bucket", {"le": seconds})
    total = metrics.registry.get_sample_value(f"{name}_count")
    return within or 0.0, total or 0.0


async def joined(parts: ConsumerParts) -> None:
    """Wait until the replica has its partitions, so no record waits for the group to form."""
    await until(lambda: bool(parts.consumer.assignment()), "partitions assigned", 30)
    await asyncio.sleep(0.3)


async def test_a_slow_commit_holds_no_record_back(
    settings: Settings, store: Store, produce: Callable[..., Any]
) -> None:
    metrics = Metrics()
    stop = asyncio.Event()
    async with consumer_parts(settings, metrics) as parts:
        commit = parts.consumer.commit
        commits: list[dict[TopicPartition, int]] = []

        async def slow_commit(offsets: dict[TopicPartition, int]) -> None:
            await asyncio.sleep(SLOW_COMMIT_S)  # a coordinator that takes its time
            await commit(offsets)
            commits.append(dict(offsets))

        parts.consumer.commit = slow_commit  # type: ignore[method-assign]
        task = asyncio.create_task(parts.loop.run(stop))
        try:
            await joined(parts)
            for raw in generate(RECORDS, chats=5, seed=11):
                await produce(raw)
                await asyncio.sleep(GAP_S)
            await until(lambda: started_within(metrics, "+Inf")[1] == RECORDS, "all started", 30)
            within, total = started_within(metrics, "0.25")
            assert within == total, (
                f"{total - within:.0f} of {total:.0f} records started more than 0.25 s after "
                f"Kafka had them: they waited for a commit ({SLOW_COMMIT_S} s) to be answered"
            )
            # The commits still happen, in order, and reach the last record.
            await until(lambda: parts.loop.stats.records == RECORDS, "all committed", 30)
        finally:
            stop.set()
            await task
        assert commits, "nothing was committed"
        tps = sorted(parts.consumer.assignment())
        ends = await parts.consumer.end_offsets(tps)
        assert {tp: await parts.consumer.committed(tp) or 0 for tp in tps} == ends


async def test_a_commit_kafka_leaves_unanswered_stops_the_intake_until_it_answers(
    settings: Settings, store: Store, produce: Callable[..., Any]
) -> None:
    """Written records wait for a commit to be counted as done; while Kafka does not answer
    one, they would pile up without end if the loop went on taking records."""
    metrics = Metrics()
    stop = asyncio.Event()
    answer = asyncio.Event()
    async with consumer_parts(settings, metrics) as parts:
        commit = parts.consumer.commit

        async def stuck_commit(offsets: dict[TopicPartition, int]) -> None:
            await answer.wait()  # a coordinator that does not answer until told to
            await commit(offsets)

        parts.consumer.commit = stuck_commit  # type: ignore[method-assign]
        task = asyncio.create_task(parts.loop.run(stop))
        try:
            await joined(parts)
            updates = list(generate(20, chats=5, seed=12))
            for raw in updates:
                await produce(raw)
                await asyncio.sleep(0.15)  # 3 s in all, the first commit stuck from the start
            _, started = started_within(metrics, "+Inf")
            assert 1 <= started <= 12, (
                f"{started:.0f} of {len(updates)} records started while a commit went "
                f"unanswered for {COMMIT_OVERDUE_S} s and more"
            )
            answer.set()
            await until(lambda: parts.loop.stats.records == len(updates), "all committed", 30)
        finally:
            answer.set()
            stop.set()
            await task
        tps = sorted(parts.consumer.assignment())
        ends = await parts.consumer.end_offsets(tps)
        assert {tp: await parts.consumer.committed(tp) or 0 for tp in tps} == ends
