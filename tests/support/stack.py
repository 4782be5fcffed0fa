"""Where the real services of the test run listen, and unique names for per-test data."""

from __future__ import annotations

import os
import uuid

KAFKA = f"127.0.0.1:{os.environ.get('TGBRIDGE_DEV_KAFKA_PORT', '9092')}"
CASSANDRA_PORT = int(os.environ.get("TGBRIDGE_DEV_CASSANDRA_PORT", "9042"))


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
