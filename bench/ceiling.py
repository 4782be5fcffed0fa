"""The ceiling: the consumer's own statements driven straight through the driver, no Kafka.

Updates are decoded before the clock starts; then the consumer's own calls run over a fresh
keyspace: the dedupe reads of up to a batch of messages at once (``MessageWriter.seen_all``), as
the consumer makes them for each batch it fetches, and ``MessageWriter.store`` for each message
not found stored (the exact sequence of reads, lightweight transactions and writes the consumer
issues), with ``concurrency`` lanes. An update goes to the lane of its Telegram identity, so an
edit always follows its original, as it does in the consumer. As in the consumer, the next
batch is read once a quarter of the window is free, and a message whose earlier update (or
reply target) is still being written reads again in its lane. Each concurrency level runs over
all the traffic; the best one is the ceiling.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.procfs import CpuMeter
from config.settings import WorkerSettings
from consumers.decode import decode_update
from consumers.model import DecodedMessage, MessageIdentity
from consumers.writer import UNREAD, MessageWriter, Unread, already_stored, found_key
from schema.store import Store
from schema.tables import MappingRow, MessageTables
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


#: Messages read ahead and in flight at once: the consumer's batch (``batch_max_records``).
WINDOW = WorkerSettings().batch_max_records


def lane_of(m: DecodedMessage, concurrency: int) -> int:
    """The lane of ``m``'s identity, so that updates of one message keep their order."""
    i = m.identity
    return zlib.crc32(b"%d/%s/%d" % (i.chat_id, i.scope.encode(), i.telegram_message_id)) % (
        concurrency
    )


async def feed(
    writer: MessageWriter, messages: Sequence[DecodedMessage], concurrency: int, window: int
) -> None:
    """Store ``messages`` the way the consumer does, less Kafka: read ahead a batch's dedupe
    reads at once, then store each message not found stored in its identity's lane."""
    queues: list[asyncio.Queue[tuple[DecodedMessage, MappingRow | Unread | None] | None]]
    queues = [asyncio.Queue() for _ in range(concurrency)]
    pending: Counter[MessageIdentity] = Counter()  # identities in the lanes, not yet stored
    inflight = 0
    progressed = asyncio.Event()

    async def lane(queue: asyncio.Queue[tuple[DecodedMessage, Any] | None]) -> None:
        nonlocal inflight
        while (item := await queue.get()) is not None:
            m, seen = item
            try:
                await writer.store(m, seen=seen)
            except BaseException:
                progressed.set()  # the feeder finds this lane done and raises its error
                raise
            pending[m.identity] -= 1
            if not pending[m.identity]:
                del pending[m.identity]
            inflight -= 1
            progressed.set()

    workers = [asyncio.ensure_future(lane(q)) for q in queues]
    try:
        at = 0
        while at < len(messages):
            room = window - inflight
            if inflight and room < max(1, window // 4):
                progressed.clear()
                await progressed.wait()
                for w in workers:
                    if w.done():
                        w.result()
                continue
            batch = messages[at : at + room]
            at += len(batch)
            busy = set(pending)  # as the consumer: these may write a mapping the reads miss
            for m, seen in zip(batch, await writer.seen_all(batch), strict=True):
                if already_stored(m, seen):
                    continue
                i = m.identity
                target = (
                    None
                    if m.reply_to_telegram_id is None
                    else MessageIdentity(i.chat_id, i.scope, m.reply_to_telegram_id)
                )
                waits = i in busy or pending[i] > 0
                if target is not None:
                    waits = waits or target in busy or pending[target] > 0
                if waits and not found_key(seen):
                    seen = UNREAD
                pending[i] += 1
                inflight += 1
                queues[lane_of(m, concurrency)].put_nowait((m, seen))
        for q in queues:
            q.put_nowait(None)
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()


async def drive(
    store: Store, keyspace: str, messages: Sequence[DecodedMessage], concurrency: int,
    pids: dict[str, int],
) -> CeilingRun:
    """Store every message with ``concurrency`` lanes into a migrated, empty ``keyspace``."""
    writer = MessageWriter(MessageTables(store, keyspace))
    # The consumer freezes its heap once started; the ceiling's driver gets the same, or its
    # full collections would walk every pre-decoded update (a handicap the consumer lacks).
    freeze_startup_heap()
    meter = CpuMeter(pids)
    meter.start()
    started = time.perf_counter()
    await feed(writer, messages, concurrency, WINDOW)
    seconds = time.perf_counter() - started
    return CeilingRun(
        concurrency, len(messages), seconds, meter.stop(seconds), meter.others(seconds)
    )
