"""The code that owns tgbridge's tables: every statement, prepared and parameterized.

Nothing from a message is ever pasted into CQL; the keyspace name comes from validated settings.
Absent values are bound as ``UNSET_VALUE`` so a missing field writes no tombstone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cassandra.query import UNSET_VALUE

from schema.store import Store

Row = Any

#: The most identities one grouped mapping read names (ScyllaDB refuses more than 100 partition
#: keys in one query by default: ``max_partition_key_restrictions_per_query``).
MAX_GROUPED_READ = 64


@dataclass(frozen=True, slots=True)
class MappingRow:
    channel_id: int | None
    bucket: int | None
    message_id: int | None
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyOwner:
    chat_id: int
    scope: str
    telegram_message_id: int


@dataclass(frozen=True, slots=True)
class ChannelBinding:
    """Where a chat (or forum topic) is stored, and the numbering space that owns its keys.

    The owner, ``(owner_chat_id, owner_scope)``, is recorded when a chat is bound to its own
    channel by one of its own messages (migration 0003; bindings made before it have none). The
    owner's messages use their derived keys unclaimed; every other numbering space in the
    channel claims its keys and keeps off the owner's millisecond offset.
    """

    channel_id: int
    owner_chat_id: int | None = None
    owner_scope: str | None = None


#: Content columns of ``messages``, in bind order after the key.
MESSAGE_COLUMNS = (
    "chat_id",
    "thread_id",
    "telegram_scope",
    "telegram_message_id",
    "update_type",
    "author_id",
    "author_name",
    "author_is_bot",
    "content",
    "entities",
    "attachments",
    "reply_to_message_id",
    "reply_to_telegram_id",
    "forward_origin",
    "media_group_id",
    "service",
    "business_connection_id",
    "sent_at",
    "edited_at",
    "raw",
)

DELETED_PLACEHOLDER = "[deleted]"


def unset(value: Any) -> Any:
    return UNSET_VALUE if value is None else value


def ts(unix_seconds: int | None) -> Any:
    return UNSET_VALUE if unix_seconds is None else datetime.fromtimestamp(unix_seconds, UTC)


class MessageTables:
    """Async operations on one keyspace's tables, over a shared :class:`Store`."""

    def __init__(self, store: Store, keyspace: str) -> None:
        self.store = store
        ks = keyspace
        self._read_mapping = (
            f"SELECT channel_id, bucket, message_id, deleted_at FROM {ks}.telegram_message_mapping "
            "WHERE chat_id = ? AND scope = ? AND telegram_message_id = ?"
        )
        self._read_mappings = (
            "SELECT telegram_message_id, channel_id, bucket, message_id, deleted_at "
            f"FROM {ks}.telegram_message_mapping "
            "WHERE chat_id = ? AND scope = ? AND telegram_message_id IN ?"
        )
        #: Mapping reads asked for in this pass of the event loop, by chat and numbering space.
        self._waiting: dict[tuple[int, str], dict[int, list[asyncio.Future[MappingRow | None]]]]
        self._waiting = {}
        self._reading: set[asyncio.Task[None]] = set()
        self._write_mapping = (
            f"UPDATE {ks}.telegram_message_mapping SET channel_id = ?, bucket = ?, message_id = ? "
            "WHERE chat_id = ? AND scope = ? AND telegram_message_id = ?"
        )
        self._mark_deleted = (
            f"UPDATE {ks}.telegram_message_mapping USING TIMESTAMP ? SET deleted_at = ? "
            "WHERE chat_id = ? AND scope = ? AND telegram_message_id = ?"
        )
        self._claim_key = (
            f"INSERT INTO {ks}.message_keys "
            "(channel_id, bucket, message_id, chat_id, scope, telegram_message_id) "
            "VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        cols = ", ".join(MESSAGE_COLUMNS)
        marks = ", ".join("?" for _ in MESSAGE_COLUMNS)
        self._write_message = (
            f"INSERT INTO {ks}.messages (channel_id, bucket, message_id, {cols}) "
            f"VALUES (?, ?, ?, {marks}) USING TIMESTAMP ?"
        )
        self._soft_delete = (
            f"UPDATE {ks}.messages USING TIMESTAMP ? SET deleted = true, deleted_at = ?, "
            "content = ? WHERE channel_id = ? AND bucket = ? AND message_id = ?"
        )
        self._note_bucket = f"INSERT INTO {ks}.channel_buckets (channel_id, bucket) VALUES (?, ?)"
        self._read_channel = (
            f"SELECT channel_id, owner_chat_id, owner_scope FROM {ks}.channels "
            "WHERE chat_id = ? AND thread_id = ?"
        )
        self._claim_channel = (
            f"INSERT INTO {ks}.channels (chat_id, thread_id, channel_id, owner_chat_id, "
            "owner_scope) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        self._write_chat = (
            f"INSERT INTO {ks}.chats (chat_id, type, title, username, is_forum) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._buckets_before = (
            f"SELECT bucket FROM {ks}.channel_buckets WHERE channel_id = ? AND bucket <= ? LIMIT ?"
        )
        self._buckets_after = (
            f"SELECT bucket FROM {ks}.channel_buckets WHERE channel_id = ? AND bucket >= ? "
            "ORDER BY bucket ASC LIMIT ?"
        )
        self._page_before = (
            f"SELECT * FROM {ks}.messages WHERE channel_id = ? AND bucket = ? AND message_id < ? "
            "LIMIT ?"
        )
        self._page_after = (
            f"SELECT * FROM {ks}.messages WHERE channel_id = ? AND bucket = ? AND message_id > ? "
            "ORDER BY message_id ASC LIMIT ?"
        )

    async def read_mapping(
        self, chat_id: int, scope: str, tg_id: int, *, strong: bool = False
    ) -> MappingRow | None:
        """The identity's mapping row, if any.

        The reads asked for in one pass of the event loop for one chat and numbering space go
        out together, as one statement naming up to ``MAX_GROUPED_READ`` identities: the first
        to ask waits one pass for the others, then reads for all. A replay of a busy chat's
        records costs a fraction of a statement each. A read alone goes out as before, routed to
        its partition's replica.

        ``strong`` reads at the write consistency level, so the read sees every write that
        was acknowledged before it started (a quorum read after quorum writes); it is never
        grouped, so it starts at once.
        """
        if strong:
            return await self._read_one(chat_id, scope, tg_id, strong=True)
        group = (chat_id, scope)
        waiting = self._waiting.get(group)
        if waiting is not None:  # another read of this chat leads this pass
            answer: asyncio.Future[MappingRow | None] = asyncio.get_running_loop().create_future()
            waiting.setdefault(tg_id, []).append(answer)
            return await answer
        waiting = self._waiting[group] = {tg_id: []}
        try:
            await asyncio.sleep(0)  # the other records of this pass ask meanwhile
        finally:
            del self._waiting[group]
            joined = len(waiting) > 1 or bool(waiting[tg_id])
            if joined:
                # A task of its own reads for all, so that no caller's cancellation (this
                # one's included) leaves the others waiting.
                task = asyncio.ensure_future(self._answer(group, waiting))
                self._reading.add(task)
                task.add_done_callback(self._reading.discard)
        if not joined:
            return await self._read_one(chat_id, scope, tg_id, strong=False)
        mine: asyncio.Future[MappingRow | None] = asyncio.get_running_loop().create_future()
        waiting[tg_id].append(mine)  # before the task reads: it has not started yet
        return await mine

    async def read_mappings(
        self, identities: Sequence[tuple[int, str, int]]
    ) -> dict[tuple[int, str], dict[int, MappingRow] | BaseException]:
        """The mapping rows of many identities at once, by chat and numbering space.

        Each chat and numbering space is read as one statement per ``MAX_GROUPED_READ``
        identities (a single identity as the routed single-partition read), all at once. A
        space whose read failed gets its exception instead of its rows, so the caller can read
        those identities again one by one; an identity with no mapping is absent from its dict.
        """
        groups: dict[tuple[int, str], dict[int, None]] = {}
        for chat_id, scope, tg_id in identities:
            groups.setdefault((chat_id, scope), {})[tg_id] = None
        keys = list(groups)
        found = await asyncio.gather(
            *(self._read_many(key, list(groups[key])) for key in keys), return_exceptions=True
        )
        return dict(zip(keys, found, strict=True))

    async def _answer(
        self,
        group: tuple[int, str],
        waiting: dict[int, list[asyncio.Future[MappingRow | None]]],
    ) -> None:
        """Read every identity of ``group`` asked for in one pass; each caller gets its row."""
        try:
            found = await self._read_many(group, list(waiting))
        except BaseException as exc:
            for answers in waiting.values():
                for answer in answers:
                    if answer.done():
                        continue
                    if isinstance(exc, asyncio.CancelledError):
                        answer.cancel()
                    else:
                        answer.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for key, answers in waiting.items():
            row = found.get(key)
            for answer in answers:
                if not answer.done():  # a caller cancelled meanwhile is skipped
                    answer.set_result(row)

    async def _read_many(self, group: tuple[int, str], ids: list[int]) -> dict[int, MappingRow]:
        if len(ids) == 1:
            row = await self._read_one(*group, ids[0], strong=False)
            return {} if row is None else {ids[0]: row}
        if len(ids) > MAX_GROUPED_READ:
            found: dict[int, MappingRow] = {}
            for part in await asyncio.gather(
                *(
                    self._read_many(group, ids[i : i + MAX_GROUPED_READ])
                    for i in range(0, len(ids), MAX_GROUPED_READ)
                )
            ):
                found.update(part)
            return found
        rows = await self.store.execute(
            self._read_mappings, (*group, ids), idempotent=True, kind="read_mappings"
        )
        return {r.telegram_message_id: _mapping_row(r) for r in rows}

    async def _read_one(
        self, chat_id: int, scope: str, tg_id: int, *, strong: bool
    ) -> MappingRow | None:
        rows = await self.store.execute(
            self._read_mapping,
            (chat_id, scope, tg_id),
            idempotent=True,
            write=strong,
            kind="read_mapping",
        )
        return _mapping_row(rows[0]) if rows else None

    async def write_mapping(
        self, chat_id: int, scope: str, tg_id: int, channel_id: int, bucket: int, message_id: int
    ) -> None:
        """Point the identity at its stored row; a deletion mark on it is left as it is."""
        await self.store.execute(
            self._write_mapping,
            (channel_id, bucket, message_id, chat_id, scope, tg_id),
            idempotent=True,
            write=True,
            kind="write_mapping",
        )

    async def mark_deleted(self, chat_id: int, scope: str, tg_id: int, deleted_at_ms: int) -> None:
        await self.store.execute(
            self._mark_deleted,
            (
                deleted_at_ms * 1000,
                datetime.fromtimestamp(deleted_at_ms / 1000, UTC),
                chat_id,
                scope,
                tg_id,
            ),
            idempotent=True,
            write=True,
            kind="write_mapping",
        )

    async def claim_key(
        self, channel_id: int, bucket: int, message_id: int, owner: KeyOwner
    ) -> KeyOwner:
        """Claim a message key for ``owner``; returns whoever owns it now."""
        rows = await self.store.execute(
            self._claim_key,
            (channel_id, bucket, message_id, owner.chat_id, owner.scope, owner.telegram_message_id),
            idempotent=True,
            write=True,
            kind="lwt_key",
        )
        r = rows[0]
        if r.applied:
            return owner
        return KeyOwner(r.chat_id, r.scope, r.telegram_message_id)

    async def write_message(
        self,
        channel_id: int,
        bucket: int,
        message_id: int,
        values: Sequence[Any],
        timestamp_us: int,
    ) -> None:
        await self.store.execute(
            self._write_message,
            (channel_id, bucket, message_id, *values, timestamp_us),
            idempotent=True,
            write=True,
            kind="write_message",
        )

    async def soft_delete(
        self, channel_id: int, bucket: int, message_id: int, deleted_at: datetime
    ) -> None:
        stamp = int(deleted_at.timestamp() * 1_000_000)
        await self.store.execute(
            self._soft_delete,
            (stamp, deleted_at, DELETED_PLACEHOLDER, channel_id, bucket, message_id),
            idempotent=True,
            write=True,
            kind="write_message",
        )

    async def note_bucket(self, channel_id: int, bucket: int) -> None:
        await self.store.execute(
            self._note_bucket,
            (channel_id, bucket),
            idempotent=True,
            write=True,
            kind="write_bucket",
        )

    async def read_channel(self, chat_id: int, thread_id: int) -> ChannelBinding | None:
        rows = await self.store.execute(
            self._read_channel, (chat_id, thread_id), idempotent=True, kind="read_channel"
        )
        if not rows:
            return None
        r = rows[0]
        return ChannelBinding(r.channel_id, r.owner_chat_id, r.owner_scope)

    async def claim_channel(
        self, chat_id: int, thread_id: int, binding: ChannelBinding
    ) -> ChannelBinding:
        """Bind a chat (or topic) unless it is bound already; returns the binding that holds."""
        rows = await self.store.execute(
            self._claim_channel,
            (
                chat_id,
                thread_id,
                binding.channel_id,
                unset(binding.owner_chat_id),
                unset(binding.owner_scope),
            ),
            idempotent=True,
            write=True,
            kind="lwt_channel",
        )
        r = rows[0]
        if r.applied:
            return binding
        return ChannelBinding(int(r.channel_id), r.owner_chat_id, r.owner_scope)

    async def write_chat(
        self,
        chat_id: int,
        type_: str,
        title: str | None,
        username: str | None,
        is_forum: bool,
        as_of_unix: int,
    ) -> None:
        await self.store.execute(
            self._write_chat,
            (chat_id, type_, unset(title), unset(username), is_forum, as_of_unix * 1_000_000),
            idempotent=True,
            write=True,
            kind="write_chat",
        )

    async def buckets(
        self, channel_id: int, start: int, newest_first: bool, limit: int
    ) -> list[int]:
        cql = self._buckets_before if newest_first else self._buckets_after
        rows = await self.store.execute(
            cql, (channel_id, start, limit), idempotent=True, kind="read_history"
        )
        return [r.bucket for r in rows]

    async def page(
        self, channel_id: int, bucket: int, bound: int, newest_first: bool, limit: int
    ) -> list[Row]:
        cql = self._page_before if newest_first else self._page_after
        return await self.store.execute(
            cql, (channel_id, bucket, bound, limit), idempotent=True, kind="read_history"
        )


def _mapping_row(r: Row) -> MappingRow:
    return MappingRow(r.channel_id, r.bucket, r.message_id, r.deleted_at)
