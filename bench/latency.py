"""Latency from the Kafka record's time to the row written, at a steady rate below capacity.

A paced producer stamps every record (its Kafka timestamp) and remembers the stamp of each new
message; after the consumer has committed them all, each message's "row written" time is read
back from the store (see :mod:`bench.written`). Edits write no mapping and are left out of the
distribution. The consumer's own ``tgbridge_e2e_from_kafka_seconds`` histogram over the same
window is reported beside it, at that histogram's bucket resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.drain import store_time
from bench.offsets import caught_up
from bench.process import ConsumerProcess, Target
from bench.procfs import CpuMeter
from bench.produce import paced
from bench.scrape import HistogramDelta
from bench.summaries import latency_summary
from bench.traffic import Identity, Update
from bench.written import mapping_written_at
from config.settings import KafkaSettings
from schema.store import Store
from worker.lifecycle import freeze_startup_heap


@dataclass
class Latency:
    target_rate: float
    achieved_rate: float
    records: int
    measured: int
    missing: int
    summary: dict[str, float | int]
    histogram: dict[str, Any]
    kafka_delay: dict[str, Any] | None = None
    store_time: dict[str, dict[str, float]] | None = None
    timeline: list[tuple[float, int, float, float]] | None = None
    warm_up_s: float = 0.0
    warm_up_summary: dict[str, float | int] | None = None
    cpu_cores: dict[str, float] | None = None
    #: Record time -> the runner's producer seeing Kafka's acknowledgement (steady window).
    kafka_ack: dict[str, float | int] | None = None
    #: How evenly the runner kept its pace: worst lag (ms), records sent over 5 ms late.
    pace: dict[str, float | int] | None = None
    #: The consumer's fetched batches and offset commits per second over the whole phase.
    loop_rates: dict[str, float] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "target_rate": round(self.target_rate, 1),
            "achieved_rate": round(self.achieved_rate, 1),
            "records": self.records,
            "new_messages_measured": self.measured,
            "missing": self.missing,
            **self.summary,
            "consumer_histogram": self.histogram,
            "kafka_delay_histogram": self.kafka_delay,
            "record_to_kafka_ack": self.kafka_ack,
            "pace": self.pace,
            "consumer_loop_per_s": self.loop_rates,
            "store_time": self.store_time,
            "cpu_cores": self.cpu_cores,
            "warm_up_s": self.warm_up_s,
            "warm_up": self.warm_up_summary,
            "timeline_s_n_p50ms_maxms": self.timeline,
        }


def histogram_view(h: HistogramDelta) -> dict[str, Any]:
    """A consumer histogram over a window: p50/p99 as bucket ranges, share within 50 ms."""
    def bucket(q: float) -> str | None:
        found = h.quantile(q)
        if found is None:
            return None
        lower, upper = found
        return f"{lower * 1000:g}-{upper * 1000:g} ms"

    share = h.share_at_most(0.05)
    return {
        "observations": h.count,
        "mean_ms": None if h.mean is None else round(h.mean * 1000, 2),
        "p50_bucket": bucket(0.50),
        "p99_bucket": bucket(0.99),
        "share_within_50ms": None if share is None else round(share, 4),
    }


def lateness(sent: dict[Identity, float], written: dict[Identity, float]) -> list[float]:
    return [written[i] - t for i, t in sent.items() if i in written]


def timeline(
    sent: dict[Identity, float], written: dict[Identity, float], step_s: float = 1.0
) -> list[tuple[float, int, float, float]]:
    """Per ``step_s`` of send time: (offset s, messages, median ms, max ms), to show stalls."""
    if not sent:
        return []
    start = min(sent.values())
    windows: dict[int, list[float]] = {}
    for ident, t in sent.items():
        if ident in written:
            windows.setdefault(int((t - start) / step_s), []).append(written[ident] - t)
    out = []
    for w in sorted(windows):
        ds = sorted(windows[w])
        out.append(
            (w * step_s, len(ds), round(ds[len(ds) // 2] * 1000, 1), round(ds[-1] * 1000, 1))
        )
    return out


async def kafka_to_row(
    kafka: KafkaSettings,
    target: Target,
    consumer: ConsumerProcess,
    store: Store,
    stream: Iterable[Update],
    rate: float,
    seconds: float,
    warm_up_s: float = 0.0,
    pids: dict[str, int] | None = None,
) -> Latency:
    """Publish at ``rate`` for ``warm_up_s + seconds`` and measure record time to row written.

    The consumer was just started: for its first ``warm_up_s`` of traffic its caches are cold
    (every chat's first message reads the chat's channel and notes the chat and its bucket).
    Those messages are reported apart; the distribution is that of the ``seconds`` after them.
    """
    # The runner's own heap (pre-fill bookkeeping) is frozen as the consumer's is, so a full
    # collection in this process does not hold stamped records back from Kafka.
    freeze_startup_heap()
    before = await consumer.metrics()
    meter = CpuMeter({"consumer": consumer.pid, **(pids or {})})
    meter.start()
    log = await paced(kafka, stream, rate, warm_up_s + seconds)
    await caught_up(kafka, target.group, target.topic)
    cpu = meter.stop(log.finished - log.started)
    after = await consumer.metrics()
    written = await mapping_written_at(store, target.keyspace, log.sent_at)
    cut = log.started + warm_up_s
    steady = {i: t for i, t in log.sent_at.items() if t >= cut}
    early = {i: t for i, t in log.sent_at.items() if t < cut}
    delays = lateness(steady, written)
    early_delays = lateness(early, written)
    span = max(log.finished - log.started, 1e-9)

    def per_s(name: str) -> float:
        return round((after.value(name) - before.value(name)) / span, 1)

    return Latency(
        target_rate=rate,
        achieved_rate=log.achieved_rate,
        records=log.records,
        measured=len(delays),
        missing=len(log.sent_at) - len(delays) - len(early_delays),
        summary=latency_summary(delays),
        warm_up_s=warm_up_s,
        warm_up_summary=latency_summary(early_delays) if early else None,
        cpu_cores=cpu,
        pace={"max_lag_ms": round(log.max_lag_s * 1000, 1), "late_records": log.late},
        loop_rates={
            "batches": per_s("tgbridge_batch_records_count"),
            "offset_commits": per_s("tgbridge_offset_commits_total"),
        },
        kafka_ack=latency_summary([d for t, d in log.acked if t >= cut]),
        histogram=histogram_view(
            HistogramDelta.between(before, after, "tgbridge_e2e_from_kafka_seconds")
        ),
        # Record time -> the consumer starting on it: Kafka's part, and the wait for its loop.
        kafka_delay=histogram_view(
            HistogramDelta.between(before, after, "tgbridge_kafka_delay_seconds")
        ),
        store_time=store_time(before, after),
        timeline=timeline(steady, written),
    )
