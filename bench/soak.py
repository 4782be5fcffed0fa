"""The soak: minutes of steady traffic at half the ingest rate, watching resident memory.

Memory is sampled every two seconds. The slope is fitted over the second half of the soak, once
caches, the allocator's arenas and the driver's pools have settled; the whole-soak slope is
reported beside it. "Flat" means the second-half slope is under ``FLAT_MIB_PER_HOUR``. Settling
takes up to 15 minutes at ~950 msg/s on the 2-core machine, so the default soak lasts 30
(``bench.__main__.FULL_SOAK_MINUTES``).

The soak opens with a backlog: ``BACKLOG_S`` seconds of its traffic published at once, then the
steady rate, as a consumer meets the topic after a restart or a deploy. Catching up fills the
pipeline (``batch_max_records`` in flight), and the allocators keep the high-water mark of that
depth: Python's arenas and glibc's heap are pinned by a few objects that outlive it. Without the
backlog the first time the pipeline fills is wherever the store first stalls (a compaction, a
flush), and when that falls in the fitted half it shows as a step of 1-2 MiB held to the end:
not growth, but a slope over 5 MiB/h (round 22's BD; ``python -m bench.stall`` reproduces it,
and shows that a consumer that has caught up with a backlog before takes no step at a stall).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterable
from typing import Any

from bench.latency import histogram_view
from bench.offsets import caught_up
from bench.process import ConsumerProcess, Target
from bench.procfs import CpuMeter
from bench.produce import paced, prefill
from bench.scrape import HistogramDelta
from bench.summaries import slope
from bench.traffic import Update
from config.settings import KafkaSettings

FLAT_MIB_PER_HOUR = 5.0
SAMPLE_EVERY_S = 2.0
#: Seconds of the soak's traffic published at once before its steady rate (see the module).
BACKLOG_S = 10.0


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

    sampler = asyncio.create_task(sample())
    updates = iter(stream)
    try:
        # The backlog is caught up before the figures start: its records are seconds late by
        # design, and the soak's latency and CPU are those of the steady rate.
        backlog = await prefill(kafka, itertools.islice(updates, int(rate * BACKLOG_S)))
        await caught_up(kafka, target.group, target.topic)
        before = await consumer.metrics()
        meter = CpuMeter({"consumer": consumer.pid, **pids})
        meter.start()
        started = time.time()
        log = await paced(kafka, updates, rate, minutes * 60, track=False)
        await caught_up(kafka, target.group, target.topic)
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
        "backlog_records": backlog,
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
