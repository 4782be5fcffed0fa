"""The ceiling: the consumer's own statements driven straight through the driver, no Kafka.

Updates are decoded before the clock starts; then ``MessageWriter.store`` (the exact sequence of
reads, lightweight transactions and writes the consumer issues for each message) runs over a
fresh keyspace with ``concurrency`` lanes. An update goes to the lane of its Telegram identity, so
an edit always follows its original, as it does in the consumer. Each concurrency level runs
over all the traffic; the best one is the ceiling.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.procfs import CpuMeter
from consumers.decode import decode_update
from consumers.model import DecodedMessage
from consumers.writer import MessageWriter
from schema.store import Store
from schema.tables import MessageTables
from worker.demo.traffic import BOT_ID
from worker.lifecycle import freeze_startup_heap


@dataclass
class CeilingRun:
    concurrency: int
    messages: int
    seconds: float
    cpu_cores: dict[str, float]
    other_processes: list[tuple[str, float]]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
            "messages_per_s": round(self.rate, 1),
            "cpu_cores": self.cpu_cores,
            "other_processes": self.other_processes,
        }


def decode_all(raws: Sequence[bytes]) -> list[DecodedMessage]:
    out = []
    for raw in raws:
        decoded = decode_update(raw, BOT_ID)
        if not isinstance(decoded, DecodedMessage):
            raise ValueError(f"the benchmark traffic holds a {type(decoded).__name__}")
        out.append(decoded)
    return out


def lanes(messages: Sequence[DecodedMessage], concurrency: int) -> list[list[DecodedMessage]]:
    """Split messages over ``concurrency`` lanes by identity, keeping each lane in order."""
    out: list[list[DecodedMessage]] = [[] for _ in range(concurrency)]
    for m in messages:
        i = m.identity
        key = b"%d/%s/%d" % (i.chat_id, i.scope.encode(), i.telegram_message_id)
        out[zlib.crc32(key) % concurrency].append(m)
    return out


async def drive(
    store: Store, keyspace: str, messages: Sequence[DecodedMessage], concurrency: int,
    pids: dict[str, int],
) -> CeilingRun:
    """Store every message with ``concurrency`` lanes into a migrated, empty ``keyspace``."""
    writer = MessageWriter(MessageTables(store, keyspace))
    work = lanes(messages, concurrency)

    async def lane(items: list[DecodedMessage]) -> None:
        for m in items:
            await writer.store(m)

    # The consumer freezes its heap once started; the ceiling's driver gets the same, or its
    # full collections would walk every pre-decoded update (a handicap the consumer lacks).
    freeze_startup_heap()
    meter = CpuMeter(pids)
    meter.start()
    started = time.perf_counter()
    await asyncio.gather(*(lane(items) for items in work))
    seconds = time.perf_counter() - started
    return CeilingRun(
        concurrency, len(messages), seconds, meter.stop(seconds), meter.others(seconds)
    )
