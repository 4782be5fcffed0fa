"""Replay and backfill: re-read the topic (or a time range of it) through the normal write path.

A replay runs in its own consumer group by default, so the live consumers are untouched, and
stops at the end offsets it saw when it started. Writes are idempotent, so replaying what is
already stored changes nothing and reports it as duplicates: a replay reads every message's
mapping first, however recent its record (no live window).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from config.settings import KafkaSettings, Settings
from consumers.app import consumer_parts
from consumers.loop import BatchStats, ConsumerLoop
from worker.kafka import KafkaSetupError, partitions_of
from worker.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    start: dict[TopicPartition, int]
    end: dict[TopicPartition, int]

    @property
    def total(self) -> int:
        return sum(max(0, self.end[tp] - self.start[tp]) for tp in self.start)

    def done(self, progress: dict[TopicPartition, int]) -> int:
        return sum(
            max(0, min(progress.get(tp, s), self.end[tp]) - s) for tp, s in self.start.items()
        )


async def plan_replay(
    consumer: AIOKafkaConsumer,
    settings: KafkaSettings,
    from_time: datetime | None,
    to_time: datetime | None,
) -> ReplayPlan:
    """Offsets to start at and to stop before, per partition, fixed when the replay starts."""
    topic = settings.topic
    tps = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
    if not tps:
        raise KafkaSetupError(f"Kafka topic {topic!r} does not exist: nothing to replay")
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    starts = await consumer.beginning_offsets(tps)

    async def at(when: datetime, default: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        found = await consumer.offsets_for_times({tp: int(when.timestamp() * 1000) for tp in tps})
        return {tp: (found[tp].offset if found.get(tp) else default[tp]) for tp in tps}

    if from_time is not None:
        starts = await at(from_time, ends)
    if to_time is not None:
        ends = await at(to_time, ends)
    for tp in tps:
        consumer.seek(tp, starts[tp])
    return ReplayPlan(starts, ends)


async def replay(
    settings: Settings,
    group_id: str,
    from_time: datetime | None = None,
    to_time: datetime | None = None,
    stop: asyncio.Event | None = None,
) -> BatchStats:
    stop = stop or asyncio.Event()
    metrics = Metrics()
    worker = settings.worker.model_copy(update={"live_window_s": 0.0})
    settings = settings.model_copy(update={"worker": worker})
    async with consumer_parts(settings, metrics, group_id=group_id, subscribe=False) as parts:
        plan = await plan_replay(parts.consumer, settings.kafka, from_time, to_time)
        parts.loop.progress.update(plan.start)
        reporter = asyncio.create_task(_report(parts.loop, plan))
        try:
            await parts.loop.run(stop, until=plan.end)
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
        return parts.loop.stats


async def _report(loop: ConsumerLoop, plan: ReplayPlan) -> None:
    """A progress bar on a terminal, plain progress lines (every 5 s) otherwise."""
    started = time.monotonic()
    total = plan.total
    if sys.stderr.isatty():
        with Progress(
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8.0f} rec/s"),
            TimeRemainingColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task("replay", total=total, rate=0.0)
            while True:
                done = plan.done(loop.progress)
                rate = done / max(time.monotonic() - started, 1e-6)
                bar.update(task, completed=done, rate=rate)
                await asyncio.sleep(0.5)
    while True:
        await asyncio.sleep(5)
        done = plan.done(loop.progress)
        elapsed = time.monotonic() - started
        rate = done / max(elapsed, 1e-6)
        eta = (total - done) / rate if rate else float("inf")
        print(
            f"replay: {done}/{total} records, {total - done} left, {rate:.0f} rec/s, "
            f"about {eta:.0f} s to go",
            file=sys.stderr,
            flush=True,
        )
