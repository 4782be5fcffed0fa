"""Prometheus metrics of every tgbridge process.

Each process builds one :class:`Metrics` on its own registry and passes it down; label sets stay
small (bot id, transport, reason, partition), never a chat id.

The consumer's per-record and per-statement metrics are :class:`LoopCounter` and
:class:`LoopHistogram`: they are only ever updated on the consumer's event loop, so they need no
lock. ``prometheus_client``'s own types take one per update and walk a histogram's buckets in
Python, about 1.3 µs an observation; the consumer makes six or seven per message
(``BENCHMARKS.md``, round 9). Both are exposed on the same page, under the same names.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: Fine below 100 ms, where the latency target sits, so a dashboard can split the end-to-end time.
_KAFKA_DELAY_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    60, 300, 3600,
)
_E2E_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class _Tally:
    """One labelled child of a loop metric: plain numbers, changed on one thread only."""

    __slots__ = ("_bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("counters can only go up")
        self.total += amount

    def observe(self, value: float) -> None:
        # A bound is inclusive ("le"): bisect_left puts a value equal to a bound in its bucket.
        self.counts[bisect_left(self._bounds, value)] += 1
        self.total += value


class _LoopMetric(Collector):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        bounds: tuple[float, ...] = (),
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._bounds = bounds
        self._children: dict[tuple[str, ...], _Tally] = {}
        if not self.labelnames:
            self._children[()] = _Tally(bounds)
        registry.register(self)

    def labels(self, *values: str) -> _Tally:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values!r}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = _Tally(self._bounds)
        return child

    def describe(self) -> list[Metric]:
        return list(self._families(with_samples=False))

    def collect(self) -> Iterator[Metric]:
        return self._families(with_samples=True)

    def _families(self, with_samples: bool) -> Iterator[Metric]:
        raise NotImplementedError


class LoopCounter(_LoopMetric):
    """A counter changed only on one event loop's thread (no lock); ``inc`` as a Counter's."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry,
    ) -> None:
        super().__init__(name, documentation, labelnames, registry)

    def inc(self, amount: float = 1) -> None:
        self._children[()].inc(amount)

    def _families(self, with_samples: bool) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if with_samples:
            for values, child in list(self._children.items()):
                family.add_metric(list(values), child.total)
        yield family


class LoopHistogram(_LoopMetric):
    """A histogram observed only on one event loop's thread (no lock, one bisect a value)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        bounds = tuple(float(b) for b in buckets)
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: buckets must be distinct and ascending")
        super().__init__(name, documentation, labelnames, registry, bounds)

    def observe(self, value: float) -> None:
        self._children[()].observe(value)

    def _families(self, with_samples: bool) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if with_samples:
            edges = [repr(b) for b in self._bounds] + ["+Inf"]  # as prometheus_client writes them
            for values, child in list(self._children.items()):
                cumulative, buckets = 0, []
                for edge, n in zip(edges, child.counts, strict=True):
                    cumulative += n
                    buckets.append((edge, cumulative))
                family.add_metric(list(values), buckets, child.total)
        yield family


class Metrics:
    """The counters, gauges and histograms; one instance per process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # Receiver
        self.updates_received = Counter(
            "tgbridge_updates_received_total",
            "Updates received from Telegram.",
            ["bot_id", "transport"],
            registry=r,
        )
        self.updates_published = Counter(
            "tgbridge_updates_published_total",
            "Updates acknowledged by Kafka.",
            ["bot_id", "transport"],
            registry=r,
        )
        self.updates_rejected = Counter(
            "tgbridge_updates_rejected_total",
            "Webhook requests refused, by reason (bad_secret, too_large, bad_json, no_update_id, "
            "unknown_bot, forbidden_ip, kafka_unavailable).",
            ["bot_id", "reason"],
            registry=r,
        )
        self.publish_latency = Histogram(
            "tgbridge_publish_seconds",
            "Time from receiving an update to Kafka's acknowledgement.",
            ["transport"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.pending_updates = Gauge(
            "tgbridge_telegram_pending_updates",
            "Telegram's pending_update_count for a webhook bot.",
            ["bot_id"],
            registry=r,
        )
        # Consumer
        self.records_consumed = LoopCounter(
            "tgbridge_records_consumed_total", "Kafka records consumed.", registry=r
        )
        self.messages_written = LoopCounter(
            "tgbridge_messages_written_total",
            "New messages stored (one per Telegram message).",
            registry=r,
        )
        self.duplicates_skipped = LoopCounter(
            "tgbridge_duplicates_skipped_total",
            "Records whose message was already stored.",
            registry=r,
        )
        self.edits_applied = LoopCounter(
            "tgbridge_edits_applied_total", "Edits written to stored messages.", registry=r
        )
        self.deletions_applied = Counter(
            "tgbridge_deletions_applied_total", "Business deletions recorded.", registry=r
        )
        self.no_message_records = Counter(
            "tgbridge_records_without_message_total",
            "Records of update types that carry no message, committed past.",
            ["update_type"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "tgbridge_records_dead_lettered_total",
            "Records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.offset_commits = LoopCounter(
            "tgbridge_offset_commits_total",
            "Offset commits sent to Kafka (each covers the partitions with newly written records).",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "tgbridge_consumer_lag",
            "Records between the committed position and the end of the partition.",
            ["partition"],
            registry=r,
        )
        self.batch_size = LoopHistogram(
            "tgbridge_batch_records",
            "Records per consumed batch.",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=r,
        )
        self.store_latency = LoopHistogram(
            "tgbridge_store_request_seconds",
            "CQL request latency, by statement kind.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "tgbridge_store_errors_total", "CQL requests that failed.", ["kind"], registry=r
        )
        self.breaker_state = Gauge(
            "tgbridge_store_breaker_open",
            "1 while the store's circuit breaker is open (or half-open), else 0.",
            registry=r,
        )
        self.e2e_from_telegram = LoopHistogram(
            "tgbridge_e2e_from_telegram_seconds",
            "From the message's Telegram date to its row written (1 s resolution).",
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self.e2e_from_kafka = LoopHistogram(
            "tgbridge_e2e_from_kafka_seconds",
            "From the Kafka record's timestamp to its row written.",
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self.kafka_delay = LoopHistogram(
            "tgbridge_kafka_delay_seconds",
            "From the Kafka record's timestamp to the consumer starting on it (publishing, the "
            "broker, fetching and the wait for the consumer's event loop; the rest of the "
            "end-to-end time is the statements).",
            buckets=_KAFKA_DELAY_BUCKETS,
            registry=r,
        )
        # Process
        self.heap_trim_seconds = Counter(
            "tgbridge_heap_trim_seconds_total",
            "Time spent giving the C heap's free pages back to the system (malloc_trim).",
            registry=r,
        )
        self.heap_released_bytes = Counter(
            "tgbridge_heap_released_bytes_total",
            "Resident memory given back to the system by malloc_trim.",
            registry=r,
        )

    def heap_trimmed(self, seconds: float, released_bytes: int) -> None:
        """Count one :func:`worker.heap.trim_heap_every` call."""
        self.heap_trim_seconds.inc(seconds)
        self.heap_released_bytes.inc(released_bytes)
