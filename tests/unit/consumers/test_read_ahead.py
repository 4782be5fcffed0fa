"""The consumer loop reading a batch ahead: the next batch's dedupe reads go out while a batch
waits for its own, and the rules of the batch read still hold across the two.

The broker and the store are stand-ins here, so that the order of events can be set exactly;
the integration tests run the same loop against the real Kafka and Cassandra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from config.settings import WorkerSettings
from consumers.loop import ConsumerLoop
from consumers.model import DecodedMessage
from consumers.writer import UNREAD, Outcome
from worker.demo.traffic import supergroup, text_message, update
from worker.metrics import Metrics

TP = TopicPartition("updates", 0)
CHAT = supergroup(-1_009_000_000_077)
DATE = 1_767_225_600


@dataclass(frozen=True)
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


def record(offset: int, raw: bytes) -> _Record:
    # With no live window (the settings below) every record is read before it is written.
    return _Record("updates", 0, offset, b"c", raw, (("bot_id", b"42"),), 1_700_000_000_000)


class _Broker:
    """One partition whose batches come out one fetch at a time; offsets are committed here."""

    def __init__(self, batches: list[list[_Record]]) -> None:
        self.batches = batches
        self.committed: dict[TopicPartition, int] = {}
        self.fetches: list[int] = []  # the timeout of each fetch

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        self.fetches.append(timeout_ms)
        await asyncio.sleep(0)
        return {TP: self.batches.pop(0)} if self.batches else {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)

    def highwater(self, tp: TopicPartition) -> int:
        return 2


class _Writer:
    """Nothing is stored yet. The second batch's reads answer late, after the first batch's
    message has been written: they could not see the mapping it wrote."""

    def __init__(self) -> None:
        self.reads: list[list[int]] = []
        self.stored: list[tuple[int, bool, Any]] = []

    async def seen_all(self, messages: Sequence[DecodedMessage]) -> list[Any]:
        self.reads.append([m.identity.telegram_message_id for m in messages])
        if len(self.reads) == 2:
            await asyncio.sleep(0.05)
        return [None] * len(messages)

    async def store(self, m: DecodedMessage, *, live: bool = False, seen: Any = UNREAD) -> Any:
        self.stored.append((m.identity.telegram_message_id, m.is_edit, seen))
        return Outcome.EDIT if m.is_edit else Outcome.NEW


async def test_a_batch_read_ahead_reads_again_for_a_message_the_batch_before_wrote() -> None:
    original = text_message(7, CHAT, DATE, "draft")
    edit = {**original, "text": "final", "edit_date": DATE + 5}
    broker = _Broker([
        [record(0, update(1, "message", original))],
        [record(1, update(2, "edited_message", edit))],
    ])
    writer = _Writer()
    loop = ConsumerLoop(
        broker,  # type: ignore[arg-type]
        writer,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # nothing is dead-lettered here
        None,  # type: ignore[arg-type]  # the store is only probed after a failure
        Metrics(),
        WorkerSettings(live_window_s=0),
    )
    await asyncio.wait_for(loop.run(asyncio.Event(), {TP: 2}), 5)

    # The edit's batch was fetched without waiting, and its read sent, before the original's
    # batch started: both reads were out together.
    assert broker.fetches[:2] == [500, 0]
    assert writer.reads == [[7], [7]]
    # The original was stored first. Its write finished while the edit's read was out, so the
    # edit's "not stored" is stale: the edit reads again instead of trusting it.
    assert writer.stored == [(7, False, None), (7, True, UNREAD)]
    assert broker.committed == {TP: 2}
    assert (loop.stats.new, loop.stats.edits) == (1, 1)
