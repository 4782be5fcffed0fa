"""Ingest and replay: one consumer process reads a pre-filled topic to its end.

The rate is records from the first one consumed to the moment the group's committed offsets
reach the topic's end, so process start-up and the group join are left out (and reported apart).
Resident memory is sampled throughout; the peak is the kernel's high-water mark (VmHWM).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.offsets import GroupWatch, end_offsets
from bench.process import ConsumerProcess, Target
from bench.procfs import CpuMeter
from bench.scrape import HistogramDelta, Scrape
from config.settings import KafkaSettings


@dataclass
class DrainResult:
    records: int
    seconds: float
    startup_s: float
    counters: dict[str, float]
    peak_rss_mib: float
    rss_samples: list[tuple[float, float]]
    cpu_cores: dict[str, float]
    other_processes: list[tuple[str, float]]
    store_time: dict[str, dict[str, float]]
    batch_mean: float | None
    exit_code: int | None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "messages_per_s": round(self.rate, 1),
            "startup_s": round(self.startup_s, 2),
            "counters": self.counters,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "cpu_cores": self.cpu_cores,
            "other_processes": self.other_processes,
            "store_time": self.store_time,
            "batch_mean_records": None if self.batch_mean is None else round(self.batch_mean, 1),
            "exit_code": self.exit_code,
        }


def counters_of(s: Scrape) -> dict[str, float]:
    names = {
        "consumed": "tgbridge_records_consumed_total",
        "new": "tgbridge_messages_written_total",
        "edits": "tgbridge_edits_applied_total",
        "duplicates": "tgbridge_duplicates_skipped_total",
        "dead_lettered": "tgbridge_records_dead_lettered_total",
        "store_errors": "tgbridge_store_errors_total",
    }
    return {k: s.value(v) for k, v in names.items()}


def store_time(before: Scrape, after: Scrape) -> dict[str, dict[str, float]]:
    """Per statement kind: how many requests, their mean latency, and total seconds waited."""
    out = {}
    kinds = after.label_values("tgbridge_store_request_seconds_count", "kind")
    for kind in sorted(kinds):
        h = HistogramDelta.between(before, after, "tgbridge_store_request_seconds", kind=kind)
        if h.count:
            out[kind] = {
                "requests": h.count,
                "mean_ms": round((h.mean or 0) * 1000, 2),
                "total_s": round(h.total, 2),
            }
    return out


async def drain(
    kafka: KafkaSettings,
    target: Target,
    log_path: Path,
    extra_env: dict[str, str],
    pids: dict[str, int],
    within_s: float,
    on_start: Callable[[ConsumerProcess], Awaitable[None]] | None = None,
) -> DrainResult:
    """Run a consumer over ``target.topic`` until ``target.group`` has committed all of it."""
    ends = await end_offsets(kafka, target.topic)
    total = sum(ends.values())
    consumer = ConsumerProcess(target, log_path, extra_env)
    await consumer.start()
    samples: list[tuple[float, float]] = []
    try:
        if on_start is not None:
            await on_start(consumer)
        first = await _first_record(consumer, samples)
        meter = CpuMeter({"consumer": consumer.pid, **pids})
        meter.start()
        before = await consumer.metrics()
        sampler = asyncio.create_task(_sample_rss(consumer, samples))
        try:
            async with GroupWatch(kafka, target.group, target.topic) as watch:
                done = await watch.until(ends, within_s)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        cpu = meter.stop(done - first)
        others = meter.others(done - first)
        after = await consumer.metrics()
        peak = consumer.peak_rss_mib() or 0.0
    finally:
        code = await consumer.stop()
    batches = HistogramDelta.between(Scrape({}), after, "tgbridge_batch_records")
    return DrainResult(
        records=total,
        seconds=done - first,
        startup_s=first - consumer.started_at,
        counters=counters_of(after),
        peak_rss_mib=peak,
        rss_samples=samples,
        cpu_cores=cpu,
        other_processes=others,
        store_time=store_time(before, after),
        batch_mean=batches.mean,
        exit_code=code,
    )


async def _first_record(consumer: ConsumerProcess, samples: list[tuple[float, float]]) -> float:
    """Poll until the consumer has taken its first records; returns about when (unix seconds)."""
    while True:
        try:
            s = await consumer.metrics()
        except (OSError, TimeoutError):  # the metrics server is not up yet
            await asyncio.sleep(0.05)
            continue
        now = time.time()
        rss = consumer.rss_mib()
        if rss is not None:
            samples.append((now, rss))
        if s.value("tgbridge_records_consumed_total") > 0:
            return now
        await asyncio.sleep(0.05)


async def _sample_rss(consumer: ConsumerProcess, samples: list[tuple[float, float]]) -> None:
    while True:
        rss = consumer.rss_mib()
        if rss is not None:
            samples.append((time.time(), rss))
        await asyncio.sleep(0.5)
