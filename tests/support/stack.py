"""Where the real services of the test run listen, and unique names for per-test data."""

from __future__ import annotations

import os
import uuid
from typing import Any

KAFKA = f"127.0.0.1:{os.environ.get('TGBRIDGE_DEV_KAFKA_PORT', '9092')}"
CASSANDRA_PORT = int(os.environ.get("TGBRIDGE_DEV_CASSANDRA_PORT", "9042"))


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def process_env(settings: Any, **extra: str) -> dict[str, str]:
    """The environment of a `tgbridge` subprocess pointed at this test's services and names."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TGBRIDGE_") or k.startswith("TGBRIDGE_DEV_")
    }
    env.update(
        TGBRIDGE_KAFKA__BOOTSTRAP_SERVERS=KAFKA,
        TGBRIDGE_KAFKA__TOPIC=settings.kafka.topic,
        TGBRIDGE_KAFKA__DLQ_TOPIC=settings.kafka.dlq_topic,
        TGBRIDGE_STORE__PORT=str(settings.store.port),
        TGBRIDGE_STORE__KEYSPACE=settings.store.keyspace,
        TGBRIDGE_WORKER__GROUP_ID=settings.worker.group_id,
        TGBRIDGE_WORKER__METRICS_PORT="0",
        TGBRIDGE_WORKER__LOG_FORMAT="json",
    )
    env.update(extra)
    return env
