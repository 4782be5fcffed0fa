"""The dead-letter topic: a record that can never be processed, with the reason it could not.

The original bytes, key and headers are kept; ``dlq.*`` headers say why, where it came from and
how often it was tried, so ``tgbridge dlq`` can list and re-publish it after a fix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from worker.metrics import Metrics

HEADER_PREFIX = "dlq."


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    error: str
    attempts: int


def dead_letter_headers(record: Any, letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The record's own headers (minus any earlier dlq.* ones) plus why and whence."""
    kept = [(k, v) for k, v in (record.headers or ()) if not k.startswith(HEADER_PREFIX)]
    return [
        *kept,
        ("dlq.reason", letter.reason.encode()),
        ("dlq.error", letter.error[:2000].encode(errors="replace")),
        ("dlq.source_topic", record.topic.encode()),
        ("dlq.partition", str(record.partition).encode()),
        ("dlq.offset", str(record.offset).encode()),
        ("dlq.attempts", str(letter.attempts).encode()),
        ("dlq.at", str(int(time.time() * 1000)).encode()),
    ]


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, topic: str, metrics: Metrics) -> None:
        self.producer = producer
        self.topic = topic
        self.metrics = metrics

    async def send(self, record: Any, letter: DeadLetter) -> None:
        """Publish and wait for Kafka's acknowledgement: only then may the source be committed."""
        await self.producer.send_and_wait(
            self.topic,
            value=record.value,
            key=record.key,
            headers=dead_letter_headers(record, letter),
        )
        self.metrics.dead_lettered.labels(letter.reason).inc()
