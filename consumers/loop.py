"""The consumer loop: Kafka records in, stored messages out, offsets committed only after.

Each batch from ``getmany`` is decoded, grouped so that updates of one Telegram message, replies
and their targets, and every update of a chat that is migrating stay in order while the rest run
concurrently, written, and only then committed. When the store is unavailable the batch is
abandoned uncommitted, the partitions are paused and sought back, and the loop probes the store
until it answers. A record that can never be processed goes to the dead-letter topic and the
partition moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from cassandra import DriverException

from config.settings import WorkerSettings
from consumers.deadletter import DeadLetter, DeadLetters
from consumers.decode import decode_update
from consumers.model import (
    DecodedMessage,
    DecodeError,
    DeletedMessages,
    MessageIdentity,
    NoMessage,
)
from consumers.writer import KeySpaceExhaustedError, MessageWriter, Outcome
from schema.breaker import BreakerOpenError
from schema.store import Store, StoreUnavailableError
from worker.metrics import Metrics

log = logging.getLogger(__name__)

UNAVAILABLE = (StoreUnavailableError, BreakerOpenError)
#: Update types counted by name; anything else (a future type) is counted as "other".
KNOWN_UPDATE_TYPES = frozenset(
    "business_connection message_reaction message_reaction_count inline_query "
    "chosen_inline_result callback_query shipping_query pre_checkout_query purchased_paid_media "
    "poll poll_answer my_chat_member chat_member chat_join_request chat_boost removed_chat_boost "
    "empty".split()
)
MAX_ATTEMPTS = 3


@dataclass(slots=True)
class BatchStats:
    records: int = 0
    new: int = 0
    duplicates: int = 0
    edits: int = 0
    deletions: int = 0
    no_message: int = 0
    dead_lettered: int = 0

    def add(self, other: BatchStats) -> None:
        for field in self.__slots__:
            setattr(self, field, getattr(self, field) + getattr(other, field))


class _Abandon(Exception):
    """The batch cannot finish now (store or Kafka unavailable); nothing of it is committed."""


def _header(record: Any, name: str) -> bytes | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value)
    return None


class ConsumerLoop:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        writer: MessageWriter,
        dead_letters: DeadLetters,
        store: Store,
        metrics: Metrics,
        settings: WorkerSettings,
    ) -> None:
        self.consumer = consumer
        self.writer = writer
        self.dead_letters = dead_letters
        self.store = store
        self.metrics = metrics
        self.settings = settings
        self.stats = BatchStats()
        self.paused_for_store = False
        #: Per partition, the offset after the last record written and committed.
        self.progress: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self._semaphore = asyncio.Semaphore(settings.concurrency)

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        loop = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                # Waits for the in-flight batch to be written and committed (or abandoned)
                # before the partitions go to another replica.
                async with loop._lock:
                    log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))

        return Listener()

    async def run(
        self, stop: asyncio.Event, until: dict[TopicPartition, int] | None = None
    ) -> None:
        """Consume until ``stop`` is set (or, with ``until``, every partition reached its end)."""
        while not stop.is_set():
            if until is not None and self._reached(until):
                return
            batch = await self.consumer.getmany(
                timeout_ms=500, max_records=self.settings.batch_max_records
            )
            if until is not None:
                batch = self._trim(batch, until)
            if not batch:
                continue
            async with self._lock:
                done = await self.process(batch)
            if not done:
                await self._wait_for_store(stop)

    async def process(self, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Write a batch and commit it; False when it was abandoned and sought back."""
        started = time.perf_counter()
        records = [r for recs in batch.values() for r in recs]
        self.metrics.batch_size.observe(len(records))
        groups: dict[Hashable, list[tuple[Any, Any]]] = defaultdict(list)
        owner: dict[MessageIdentity, Hashable] = {}
        for record, decoded in self._decode_all(records):
            key = self._group_key(record, decoded)
            if isinstance(decoded, DecodedMessage):
                # A message joins the group that already holds its identity or, for a reply,
                # its target, so replies resolve the same way however the batch is scheduled.
                ident = decoded.identity
                target = None
                if decoded.reply_to_telegram_id is not None:
                    target = MessageIdentity(
                        ident.chat_id, ident.scope, decoded.reply_to_telegram_id
                    )
                key = owner.get(ident) or (owner.get(target) if target else None) or key
                owner[ident] = key
            groups[key].append((record, decoded))
        stats = BatchStats(records=len(records))
        results = await asyncio.gather(
            *(self._run_group(g, stats) for g in groups.values()), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            unexpected = [f for f in failures if not isinstance(f, _Abandon)]
            if unexpected:
                raise unexpected[0]
            for tp, recs in batch.items():
                self.consumer.seek(tp, recs[0].offset)
            log.warning("batch abandoned, nothing committed: %s", failures[0])
            return False
        offsets = {tp: recs[-1].offset + 1 for tp, recs in batch.items()}
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions; their new owner re-reads and dedupes.
            log.warning("commit refused after a rebalance: %s", exc)
        self.stats.add(stats)
        self.progress.update(offsets)
        for tp, offset in offsets.items():
            high = self.consumer.highwater(tp)
            if high is not None:
                self.metrics.consumer_lag.labels(str(tp.partition)).set(max(0, high - offset))
        log.debug("batch of %d in %.3f s", len(records), time.perf_counter() - started)
        return True

    def _decode_all(self, records: list[Any]) -> list[tuple[Any, Any]]:
        out: list[tuple[Any, Any]] = []
        for record in records:
            self.metrics.records_consumed.inc()
            bot = _header(record, "bot_id")
            if bot is None or not bot.isdigit():
                out.append(
                    (record, DecodeError("no_bot_id", "the record has no numeric bot_id header"))
                )
                continue
            try:
                out.append((record, decode_update(record.value or b"", int(bot))))
            except DecodeError as exc:
                out.append((record, exc))
        return out

    @staticmethod
    def _group_key(record: Any, decoded: Any) -> Hashable:
        if isinstance(decoded, DecodedMessage):
            if decoded.migrate_to_chat_id is not None or decoded.migrate_from_chat_id is not None:
                return ("chat", record.key)
            return decoded.identity
        if isinstance(decoded, DeletedMessages):
            return ("chat", record.key)
        return ("offset", record.topic, record.partition, record.offset)

    async def _run_group(self, items: list[tuple[Any, Any]], stats: BatchStats) -> None:
        async with self._semaphore:
            for record, decoded in items:
                await self._handle(record, decoded, stats)

    async def _handle(self, record: Any, decoded: Any, stats: BatchStats) -> None:
        if isinstance(decoded, DecodeError):
            await self._dead_letter(record, DeadLetter(decoded.reason, str(decoded), 1), stats)
            return
        if isinstance(decoded, NoMessage):
            kind = decoded.update_type if decoded.update_type in KNOWN_UPDATE_TYPES else "other"
            self.metrics.no_message_records.labels(kind).inc()
            stats.no_message += 1
            return
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await self._write(record, decoded, stats)
                return
            except UNAVAILABLE as exc:
                raise _Abandon(str(exc)) from exc
            except KeySpaceExhaustedError as exc:
                await self._dead_letter(
                    record, DeadLetter("key_space_exhausted", str(exc), attempt), stats
                )
                return
            except Exception as exc:
                # The store refused this record (or the record broke an assumption): retry a
                # little in case it was passing, then dead-letter it so the partition moves on.
                log.warning(
                    "record failed (attempt %d/%d): %s",
                    attempt,
                    MAX_ATTEMPTS,
                    exc,
                    extra={"partition": record.partition, "offset": record.offset},
                )
                if attempt == MAX_ATTEMPTS:
                    reason = (
                        "store_rejected" if isinstance(exc, DriverException) else "unprocessable"
                    )
                    await self._dead_letter(
                        record, DeadLetter(reason, f"{type(exc).__name__}: {exc}", attempt), stats
                    )
                    return
                await asyncio.sleep(0.2 * 2**attempt)

    async def _write(self, record: Any, decoded: Any, stats: BatchStats) -> None:
        if isinstance(decoded, DeletedMessages):
            received = _header(record, "received_at")
            at_ms = int(received) if received and received.isdigit() else record.timestamp
            stats.deletions += await self.writer.delete(decoded, at_ms)
            self.metrics.deletions_applied.inc(len(decoded.identities))
            return
        outcome = await self.writer.store(decoded)
        if outcome is Outcome.DUPLICATE:
            stats.duplicates += 1
            self.metrics.duplicates_skipped.inc()
            return
        if outcome is Outcome.NEW:
            stats.new += 1
            self.metrics.messages_written.inc()
        else:
            stats.edits += 1
            self.metrics.edits_applied.inc()
        now = time.time()
        self.metrics.e2e_from_kafka.observe(max(0.0, now - record.timestamp / 1000))
        self.metrics.e2e_from_telegram.observe(max(0.0, now - decoded.sent_at))

    async def _dead_letter(self, record: Any, letter: DeadLetter, stats: BatchStats) -> None:
        log.error(
            "dead-lettered: %s",
            letter.error,
            extra={
                "reason": letter.reason,
                "chat_key": (record.key or b"").decode(errors="replace"),
                "partition": record.partition,
                "offset": record.offset,
            },
        )
        try:
            await self.dead_letters.send(record, letter)
        except KafkaError as exc:
            raise _Abandon(f"dead-letter topic unavailable: {exc}") from exc
        stats.dead_lettered += 1

    async def _wait_for_store(self, stop: asyncio.Event) -> None:
        """Pause intake and probe the store until it answers; keep polling to stay in the group."""
        self.paused_for_store = True
        delay = 0.5
        try:
            while not stop.is_set():
                self.consumer.pause(*self.consumer.assignment())
                wait = max(delay, self.store.breaker.seconds_until_probe())
                deadline = time.monotonic() + wait
                while not stop.is_set() and time.monotonic() < deadline:
                    stray = await self.consumer.getmany(timeout_ms=200)
                    for tp, recs in stray.items():  # from partitions assigned while paused
                        self.consumer.seek(tp, recs[0].offset)
                    self.consumer.pause(*self.consumer.assignment())
                try:
                    await self.store.execute(
                        "SELECT release_version FROM system.local", idempotent=False, kind="probe"
                    )
                except UNAVAILABLE:
                    delay = min(delay * 2, 10.0)
                    continue
                log.info("store reachable again; resuming")
                return
        finally:
            self.consumer.resume(*self.consumer.assignment())
            self.paused_for_store = False

    def _reached(self, until: dict[TopicPartition, int]) -> bool:
        return all(self.progress.get(tp, 0) >= end for tp, end in until.items())

    @staticmethod
    def _trim(
        batch: dict[TopicPartition, list[Any]], until: dict[TopicPartition, int]
    ) -> dict[TopicPartition, list[Any]]:
        out = {}
        for tp, recs in batch.items():
            end = until.get(tp)
            kept = [r for r in recs if end is not None and r.offset < end]
            if kept:
                out[tp] = kept
        return out
