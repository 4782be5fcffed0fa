"""The soak: minutes of steady traffic at half the ingest rate, watching resident memory.

Memory is sampled every two seconds. The slope is fitted over the second half of the soak, once
caches, the allocator's arenas and the driver's pools have settled; the whole-soak slope is
reported beside it. "Flat" means the second-half slope is under ``FLAT_MIB_PER_HOUR``. Settling
takes up to 15 minutes at ~950 msg/s on the 2-core machine, so the default soak lasts 30
(``bench.__main__.FULL_SOAK_MINUTES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

from bench.latency import histogram_view
from bench.offsets import GroupWatch, end_offsets
from bench.process import ConsumerProcess, Target
from bench.procfs import CpuMeter
from bench.produce import paced
from bench.scrape import HistogramDelta
from bench.summaries import slope
from bench.traffic import Update
from config.settings import KafkaSettings

FLAT_MIB_PER_HOUR = 5.0
SAMPLE_EVERY_S = 2.0


async def soak(
    kafka: KafkaSettings,
    target: Target,
    consumer: ConsumerProcess,
    stream: Iterable[Update],
    rate: float,
    minutes: float,
    pids: dict[str, int],
) -> dict[str, Any]:
    samples: list[tuple[float, float]] = []

    async def sample() -> None:
        while True:
            rss = consumer.rss_mib()
            if rss is not None:
                samples.append((time.time(), rss))
            await asyncio.sleep(SAMPLE_EVERY_S)

    before = await consumer.metrics()
    meter = CpuMeter({"consumer": consumer.pid, **pids})
    meter.start()
    started = time.time()
    sampler = asyncio.create_task(sample())
    try:
        log = await paced(kafka, stream, rate, minutes * 60, track=False)
        ends = await end_offsets(kafka, target.topic)
        async with GroupWatch(kafka, target.group, target.topic) as watch:
            await watch.until(ends, within_s=300)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    cpu = meter.stop(time.time() - started)
    others = meter.others(time.time() - started)
    after = await consumer.metrics()
    half = samples[len(samples) // 2 :]
    per_hour = [(t / 3600, rss) for t, rss in half]
    whole = [(t / 3600, rss) for t, rss in samples]
    second_half = slope(per_hour)
    return {
        "minutes": minutes,
        "target_rate": round(rate, 1),
        "achieved_rate": round(log.achieved_rate, 1),
        "records": log.records,
        "rss_start_mib": round(samples[0][1], 1) if samples else None,
        "rss_end_mib": round(samples[-1][1], 1) if samples else None,
        "rss_max_mib": round(max(r for _, r in samples), 1) if samples else None,
        "slope_mib_per_hour_second_half": round(second_half, 2),
        "slope_mib_per_hour_whole": round(slope(whole), 2),
        "flat": abs(second_half) < FLAT_MIB_PER_HOUR,
        "cpu_cores": cpu,
        "other_processes": others,
        "kafka_to_row_histogram": histogram_view(
            HistogramDelta.between(before, after, "tgbridge_e2e_from_kafka_seconds")
        ),
        "rss_samples": [(round(t - started, 1), round(r, 2)) for t, r in samples],
    }
