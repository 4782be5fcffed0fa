"""Prometheus metrics of every tgbridge process.

Each process builds one :class:`Metrics` on its own registry and passes it down; label sets stay
small (bot id, transport, reason, partition), never a chat id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: Fine below 100 ms, where the latency target sits, so a dashboard can split the end-to-end time.
_KAFKA_DELAY_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    60, 300, 3600,
)
_E2E_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


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
        self.records_consumed = Counter(
            "tgbridge_records_consumed_total", "Kafka records consumed.", registry=r
        )
        self.messages_written = Counter(
            "tgbridge_messages_written_total",
            "New messages stored (one per Telegram message).",
            registry=r,
        )
        self.duplicates_skipped = Counter(
            "tgbridge_duplicates_skipped_total",
            "Records whose message was already stored.",
            registry=r,
        )
        self.edits_applied = Counter(
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
        self.consumer_lag = Gauge(
            "tgbridge_consumer_lag",
            "Records between the committed position and the end of the partition.",
            ["partition"],
            registry=r,
        )
        self.batch_size = Histogram(
            "tgbridge_batch_records",
            "Records per consumed batch.",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=r,
        )
        self.store_latency = Histogram(
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
        self.e2e_from_telegram = Histogram(
            "tgbridge_e2e_from_telegram_seconds",
            "From the message's Telegram date to its row written (1 s resolution).",
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self.e2e_from_kafka = Histogram(
            "tgbridge_e2e_from_kafka_seconds",
            "From the Kafka record's timestamp to its row written.",
            buckets=_E2E_BUCKETS,
            registry=r,
        )
        self.kafka_delay = Histogram(
            "tgbridge_kafka_delay_seconds",
            "From the Kafka record's timestamp to the consumer starting on it (publishing, the "
            "broker, fetching and the wait for the consumer's event loop; the rest of the "
            "end-to-end time is the statements).",
            buckets=_KAFKA_DELAY_BUCKETS,
            registry=r,
        )
