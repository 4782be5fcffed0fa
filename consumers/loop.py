"""The consumer loop: Kafka records in, stored messages out, offsets committed only after.

Each batch from ``getmany`` is decoded, its backlog records' dedupe reads made at once (the
duplicates among them are done there; while the pipeline is light, the next batch's reads go out
before it starts), grouped so that updates of one Telegram message, replies and their targets,
and every update of a chat that is migrating stay in order while the rest run concurrently,
written, and only then committed. When the store is unavailable the batch is
abandoned uncommitted, the partitions are paused and sought back, and the loop probes the store
until it answers. A record that can never be processed goes to the dead-letter topic and the
partition moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from cassandra import DriverException

from config.settings import WorkerSettings
from consumers.deadletter import DeadLetter, DeadLetters
from consumers.decode import decode_update
from consumers.fetching import FetchPace
from consumers.model import (
    DecodedMessage,
    DecodeError,
    DeletedMessages,
    MessageIdentity,
    NoMessage,
)
from consumers.writer import (
    UNREAD,
    KeySpaceExhaustedError,
    MessageWriter,
    Outcome,
    Unread,
    already_stored,
    found_key,
)
from schema.breaker import BreakerOpenError
from schema.store import Store, StoreUnavailableError
from schema.tables import MappingRow
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
        # Spelled out: this runs once per record, and a loop over the fields costs 3 µs.
        self.records += other.records
        self.new += other.new
        self.duplicates += other.duplicates
        self.edits += other.edits
        self.deletions += other.deletions
        self.no_message += other.no_message
        self.dead_lettered += other.dead_lettered


class _Abandon(Exception):
    """The record cannot be written now (store or Kafka unavailable); nothing of it is committed."""


#: How often written offsets are committed while records keep flowing.
COMMIT_INTERVAL_S = 0.2
#: How long a commit may stay unanswered before the loop takes no more records until it is.
COMMIT_OVERDUE_S = 1.0


@dataclass(slots=True, eq=False)
class _Entry:
    """One dispatched record of a partition: done once written (or dead-lettered)."""

    offset: int
    size: int
    stats: BatchStats
    done: bool = False


@dataclass(slots=True, eq=False)
class _Prepared:
    """A fetched, decoded batch, its dedupe reads (if any) sent, its records not started yet."""

    generation: int
    now_ms: float
    decoded: dict[TopicPartition, list[tuple[Any, Any]]]
    backlog: list[DecodedMessage]
    busy: set[Hashable]
    reads: asyncio.Future[list[MappingRow | Unread | None]] | None
    size: int


class _Slots:
    """At most ``n`` holders at once, first come first served, as ``asyncio.Semaphore``.

    Python 3.11's semaphore looks at every waiting future again on each release and each
    acquire; with hundreds of records waiting for a write slot that was some 30 look-ups a
    record. Here a release hands its slot straight to the first waiter still waiting.
    """

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self.release()  # handed a slot, then cancelled before it could use it
            raise

    def release(self) -> None:
        while self._waiting:
            slot = self._waiting.popleft()
            if not slot.done():  # a waiter cancelled meanwhile is skipped
                slot.set_result(None)
                return
        self._free += 1


def is_live(record_ms: float, now_ms: float, window_s: float) -> bool:
    """Whether a record is live traffic: written moments ago, so almost surely a new message
    that may skip its dedupe read. A window of 0 means never, even for a record stamped in the
    future by a producer whose clock runs ahead."""
    return window_s > 0 and now_ms - record_ms < window_s * 1000


def _header(record: Any, name: str) -> bytes | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value)
    return None


class ConsumerLoop:
    """A pipeline: records are dispatched as they arrive, written concurrently, committed in order.

    Each record starts as soon as it is fetched, after the records it must follow: earlier
    updates of the same Telegram message, the message a reply answers, and, for migrations and
    business deletions, earlier ones of the same chat. Up to ``concurrency`` writes run at once
    and at most ``batch_max_records`` records (and ``max_inflight_bytes``) are in flight. A
    partition's offset is committed up to its first record not yet written, every
    ``COMMIT_INTERVAL_S`` and whenever the pipeline runs dry, so nothing is committed before it
    is stored. Those commits run beside the loop, one at a time: a record fetched meanwhile
    does not wait for Kafka's answer to the commit before it starts.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        writer: MessageWriter,
        dead_letters: DeadLetters,
        store: Store,
        metrics: Metrics,
        settings: WorkerSettings,
        pace: FetchPace | None = None,
    ) -> None:
        self.consumer = consumer
        self.pace = pace
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
        self._slots = _Slots(settings.concurrency)
        self._entries: dict[TopicPartition, deque[_Entry]] = {}
        self._tails: dict[Hashable, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight_records = 0
        self._inflight_bytes = 0
        self._progressed = asyncio.Event()
        self._failure: str | None = None
        self._crash: BaseException | None = None
        self._last_commit = 0.0
        self._commit_lock = asyncio.Lock()
        self._committing: asyncio.Task[None] | None = None
        self._commit_started = 0.0
        self._refused: dict[TopicPartition, int] = {}
        #: The batch read ahead, and how many rebalances have revoked partitions so far.
        self._ahead: _Prepared | None = None
        self._generation = 0

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        loop = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                # Everything in flight is written and committed (or abandoned) before the
                # partitions go to another replica; the main loop dispatches nothing meanwhile.
                async with loop._lock:
                    loop._generation += 1  # a batch read ahead is dropped, not started
                    await loop._drain()
                    await loop._commit()
                    for tp in revoked:
                        loop._entries.pop(tp, None)
                    log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))

        return Listener()

    async def run(
        self, stop: asyncio.Event, until: dict[TopicPartition, int] | None = None
    ) -> None:
        """Consume until ``stop`` is set (or, with ``until``, every partition reached its end).

        On the way out, records in flight are finished and committed; if the caller cancels
        (a shutdown deadline), they are abandoned uncommitted.
        """
        try:
            limit = self.settings.batch_max_records
            while not stop.is_set():
                if self._crash is not None:
                    break
                if self._failure is not None:
                    await self._recover(stop)
                    continue
                self._commit_if_due()
                committing = self._committing
                if committing is not None and until is not None and not self._tasks:
                    # A bounded run (a replay) ends on what is committed: nothing is in flight,
                    # so waiting for the commit holds no record back.
                    await asyncio.wait({committing})
                if until is not None and self._reached(until):
                    break
                if (
                    committing is not None
                    and not committing.done()
                    and time.monotonic() - self._commit_started >= COMMIT_OVERDUE_S
                ):
                    # Kafka has left a commit unanswered for a second: take no more records
                    # until it answers, so written records waiting for a commit do not pile up.
                    await asyncio.wait({committing}, timeout=COMMIT_INTERVAL_S)
                    continue
                ahead = self._ahead
                if ahead is not None:
                    # A batch's dedupe reads are out. While the pipeline is light (a replay:
                    # its duplicates are done as soon as their reads answer) the next batch
                    # already fetched is decoded and its reads sent meanwhile; otherwise the
                    # batch starts now, as it would have without reading ahead.
                    light = (
                        self._inflight_records <= limit // 4
                        and self._inflight_bytes + ahead.size
                        < self.settings.max_inflight_bytes // 2
                    )
                    batch = (
                        await self.consumer.getmany(
                            timeout_ms=0, max_records=limit - self._inflight_records
                        )
                        if light
                        else {}
                    )
                    if batch and self.pace is not None:
                        self.pace.after_fetch(sum(map(len, batch.values())))
                    if until is not None:
                        batch = self._trim(batch, until)
                    after = self._prepare(batch) if batch else None
                    self._ahead = None
                    async with self._lock:
                        await self._start(ahead)
                    if after is not None:
                        await self._begin(after)
                    continue
                room = limit - self._inflight_records
                # While records are in flight, fetch again only once there is room for a
                # useful batch, so a saturated pipeline is not fed one record at a time.
                if (self._tasks and room < max(1, limit // 4)) or (
                    self._inflight_bytes >= self.settings.max_inflight_bytes
                ):
                    await self._wait_for_progress()
                    continue
                batch = await self.consumer.getmany(
                    timeout_ms=int(COMMIT_INTERVAL_S * 1000) if self._tasks else 500,
                    max_records=room,
                )
                if self.pace is not None:
                    self.pace.after_fetch(sum(map(len, batch.values())))
                if until is not None:
                    batch = self._trim(batch, until)
                if batch:
                    await self._begin(self._prepare(batch))
            # A batch read ahead was never started: nothing of it is committed, and whoever
            # consumes these partitions next reads it again.
            self._drop_ahead()
            await self._drain()
            # Committing is always safe: only the written prefix of each partition is committed.
            await self._commit()
            if self._crash is not None:
                raise self._crash
        except asyncio.CancelledError:
            self._drop_ahead()
            for task in self._tasks:
                task.cancel()
            if self._committing is not None:
                self._committing.cancel()
            raise

    def _prepare(self, batch: dict[TopicPartition, list[Any]]) -> _Prepared:
        """Decode a fetched batch and send the dedupe reads of its backlog records (not live)
        all at once, one statement per chat and numbering space
        (:meth:`MessageWriter.seen_all`). Nothing of it starts until :meth:`_start`."""
        self.metrics.batch_size.observe(sum(len(recs) for recs in batch.values()))
        now_ms = time.time() * 1000
        assigned = self.consumer.assignment()
        # Revoked while the batch was on its way: its new owner reads it.
        decoded = {tp: self._decode_all(recs) for tp, recs in batch.items() if tp in assigned}
        window = self.settings.live_window_s
        backlog = [
            d
            for pairs in decoded.values()
            for record, d in pairs
            if isinstance(d, DecodedMessage) and not is_live(record.timestamp, now_ms, window)
        ]
        busy: set[Hashable] = set()
        reads = None
        if backlog:
            # Records in flight while the reads are out may write a mapping the reads missed,
            # and so may the records of a batch read ahead of this one, which start first.
            busy = set(self._tails)
            if self._ahead is not None:
                for pairs in self._ahead.decoded.values():
                    for record, d in pairs:
                        busy.update(self._ordering(record, d)[0])
            reads = asyncio.ensure_future(self.writer.seen_all(backlog))
        return _Prepared(
            generation=self._generation,
            now_ms=now_ms,
            decoded=decoded,
            backlog=backlog,
            busy=busy,
            reads=reads,
            size=sum(len(r.value or b"") for recs in batch.values() for r in recs),
        )

    async def _begin(self, prepared: _Prepared) -> None:
        """Start a prepared batch now if it has no reads out; else keep it as the batch read
        ahead, started on the loop's next turn (after a batch fetched meanwhile is prepared)."""
        if prepared.reads is None:
            async with self._lock:
                await self._start(prepared)
        else:
            self._ahead = prepared

    def _drop_ahead(self) -> _Prepared | None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.reads is not None:
            ahead.reads.cancel()
        return ahead

    async def _start(self, prepared: _Prepared) -> None:
        """Start every record of a prepared batch, in order. The caller holds the lock, so a
        rebalance sees all or none of it.

        A record found stored by the batch's dedupe reads is done there and then: a replayed
        duplicate costs no task and no write slot. The others take their read along, so they
        do not read again. A batch prepared before a rebalance is dropped unstarted: the
        partitions' new owners (or this consumer, from the committed offsets) read it again.
        """
        seen = {}
        if prepared.reads is not None:
            rows = await prepared.reads
            seen = dict(zip(map(id, prepared.backlog), rows, strict=True))
        if prepared.generation != self._generation:
            return
        busy = prepared.busy
        now_ms = prepared.now_ms
        assigned = self.consumer.assignment()  # a rebalance waits for the lock; checked again
        for tp, pairs in prepared.decoded.items():
            if tp not in assigned:
                continue
            entries = self._entries.setdefault(tp, deque())
            for record, d in pairs:
                self.metrics.kafka_delay.observe(max(0.0, now_ms - record.timestamp) / 1000)
                entry = _Entry(record.offset, len(record.value or b""), BatchStats(records=1))
                entries.append(entry)
                if isinstance(d, NoMessage):
                    self._count_no_message(d, entry.stats)
                    entry.done = True
                    continue
                row = seen.get(id(d), UNREAD)
                if already_stored(d, row):
                    self._count_duplicate(entry.stats)
                    entry.done = True
                    continue
                chain, follows = self._ordering(record, d)
                before = [t for k in follows if (t := self._tails.get(k)) is not None]
                if (before or not busy.isdisjoint(follows)) and not found_key(row):
                    row = UNREAD  # an earlier update of it may write its mapping meanwhile
                task = asyncio.create_task(self._run_record(record, d, entry, before, row))
                for key in chain:
                    self._tails[key] = task
                self._tasks.add(task)
                self._inflight_records += 1
                self._inflight_bytes += entry.size
                task.add_done_callback(functools.partial(self._finished, chain, entry))

    @staticmethod
    def _ordering(record: Any, decoded: Any) -> tuple[tuple[Hashable, ...], tuple[Hashable, ...]]:
        """The keys a record becomes the latest of, and the keys whose latest it must follow."""
        if isinstance(decoded, DecodedMessage):
            ident = decoded.identity
            chain: tuple[Hashable, ...] = (ident,)
            if decoded.migrate_to_chat_id is not None or decoded.migrate_from_chat_id is not None:
                chain = (ident, ("chat", record.key))
            if decoded.reply_to_telegram_id is not None:
                target = MessageIdentity(ident.chat_id, ident.scope, decoded.reply_to_telegram_id)
                return chain, (*chain, target)
            return chain, chain
        if isinstance(decoded, DeletedMessages):
            chain = (("chat", record.key),)
            return chain, chain
        return (), ()

    def _finished(
        self, chain: tuple[Hashable, ...], entry: _Entry, task: asyncio.Task[None]
    ) -> None:
        self._tasks.discard(task)
        self._inflight_records -= 1
        self._inflight_bytes -= entry.size
        for key in chain:
            if self._tails.get(key) is task:
                del self._tails[key]
        self._progressed.set()

    async def _run_record(
        self,
        record: Any,
        decoded: Any,
        entry: _Entry,
        before: list[asyncio.Task[None]],
        seen: MappingRow | Unread | None,
    ) -> None:
        try:
            for task in before:
                await asyncio.shield(task)
            if self._failure is not None:
                return  # an earlier record could not be written: this one waits for the retry
            await self._slots.acquire()
            try:
                await self._handle(record, decoded, entry.stats, seen)
            finally:
                self._slots.release()
            entry.done = True
        except _Abandon as exc:
            if self._failure is None:
                self._failure = str(exc)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a defect: stop the loop rather than skip the record
            if self._failure is None:
                self._failure = f"{type(exc).__name__}: {exc}"
            if self._crash is None:
                self._crash = exc

    async def _wait_for_progress(self) -> None:
        """Wait until a record finishes (or the next commit is due)."""
        self._progressed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(COMMIT_INTERVAL_S):
                await self._progressed.wait()

    async def _drain(self) -> None:
        """Wait until every dispatched record is written or abandoned."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _commit_if_due(self) -> None:
        """Start a commit beside the loop if one is due and none is under way.

        The loop does not wait for it: Kafka answers a commit in 10-50 ms on a busy machine
        (up to 200 ms and more), and records fetched meanwhile would wait that long before
        they start. Only a commit left unanswered for ``COMMIT_OVERDUE_S`` holds the loop
        back (:meth:`run`). A commit that fails for any reason but a rebalance stops the
        loop, as one awaited here would have.
        """
        if self._committing is not None:
            return
        now = time.monotonic()
        if now - self._last_commit >= COMMIT_INTERVAL_S or not self._tasks:
            self._commit_started = now
            self._committing = task = asyncio.create_task(self._commit())
            task.add_done_callback(self._committed)

    def _committed(self, task: asyncio.Task[None]) -> None:
        self._committing = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self._crash is None:
            self._crash = exc
            self._progressed.set()

    async def _commit(self) -> None:
        """Commit each partition up to its first record not yet written."""
        async with self._commit_lock:  # one at a time, so a commit never moves an offset back
            await self._commit_written()

    async def _commit_written(self) -> None:
        self._last_commit = time.monotonic()
        # Offsets whose commit was refused (a rebalance was under way) are tried again while
        # their partition stays assigned, so the committed offset never lags behind for good.
        offsets = dict(self._refused)
        written = BatchStats()
        for tp, entries in self._entries.items():
            last = None
            while entries and entries[0].done:
                last = entries.popleft()
                written.add(last.stats)
            if last is not None:
                offsets[tp] = last.offset + 1
        self.stats.add(written)
        assigned = self.consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        self._refused = {}
        if not offsets:
            return
        self.metrics.offset_commits.inc()
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("commit refused during a rebalance; trying again: %s", exc)
            self._refused = offsets
            return
        self.progress.update(offsets)
        for tp, offset in offsets.items():
            high = self.consumer.highwater(tp)
            if high is not None:
                self.metrics.consumer_lag.labels(str(tp.partition)).set(max(0, high - offset))

    async def _recover(self, stop: asyncio.Event) -> None:
        """After a record could not be written: finish what is in flight, commit what was
        written in order, seek every partition back to its first unwritten record, and wait
        for the store. Records written after that point are read again and skipped as
        duplicates."""
        async with self._lock:
            ahead = self._drop_ahead()
            await self._drain()
            await self._commit()
            for tp, entries in self._entries.items():
                if entries:
                    self.consumer.seek(tp, entries[0].offset)
            if ahead is not None:  # its records were fetched, never started
                for tp, pairs in ahead.decoded.items():
                    if pairs and not self._entries.get(tp):
                        self.consumer.seek(tp, pairs[0][0].offset)
            self._entries.clear()
            self._tails.clear()
            log.warning("records abandoned, not committed: %s", self._failure)
            self._failure = None
        await self._wait_for_store(stop)

    def _decode_all(self, records: list[Any]) -> list[tuple[Any, Any]]:
        out: list[tuple[Any, Any]] = []
        self.metrics.records_consumed.inc(len(records))
        for record in records:
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

    def _count_duplicate(self, stats: BatchStats) -> None:
        stats.duplicates += 1
        self.metrics.duplicates_skipped.inc()

    def _count_no_message(self, decoded: NoMessage, stats: BatchStats) -> None:
        kind = decoded.update_type if decoded.update_type in KNOWN_UPDATE_TYPES else "other"
        self.metrics.no_message_records.labels(kind).inc()
        stats.no_message += 1

    async def _handle(
        self, record: Any, decoded: Any, stats: BatchStats, seen: MappingRow | Unread | None
    ) -> None:
        if isinstance(decoded, DecodeError):
            await self._dead_letter(record, DeadLetter(decoded.reason, str(decoded), 1), stats)
            return
        if isinstance(decoded, NoMessage):
            self._count_no_message(decoded, stats)
            return
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                # A retry reads again: the first attempt may have written part of it.
                await self._write(record, decoded, stats, seen if attempt == 1 else UNREAD)
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

    async def _write(
        self, record: Any, decoded: Any, stats: BatchStats, seen: MappingRow | Unread | None
    ) -> None:
        if isinstance(decoded, DeletedMessages):
            received = _header(record, "received_at")
            at_ms = int(received) if received and received.isdigit() else record.timestamp
            stats.deletions += await self.writer.delete(decoded, at_ms)
            self.metrics.deletions_applied.inc(len(decoded.identities))
            return
        live = is_live(record.timestamp, time.time() * 1000, self.settings.live_window_s)
        outcome = await self.writer.store(decoded, live=live, seen=seen)
        if outcome is Outcome.DUPLICATE:
            self._count_duplicate(stats)
            return
        if outcome is Outcome.NEW or outcome is Outcome.WRITTEN:
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
