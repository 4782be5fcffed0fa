"""Dedupe and write: one stored row per Telegram message, however often it arrives.

For a message the order is: look the identity up in ``telegram_message_mapping`` (a replay
stops here, cheaply); resolve the channel; claim a message key in ``message_keys`` with
``IF NOT EXISTS`` (two different messages can never share one); write the row; then write the
mapping. Keys are derived from the message and claims are never released, so every replica
racing on one message walks the same probes, gets the same key and writes the same row and
mapping: one lightweight transaction per new message is enough. The row is written before the
mapping, so a mapping always points at a written row and a crash between the two is repaired by
the next delivery.

Live traffic (records seconds old) skips the read where it can: a message whose key is derived
from it alone (its numbering space owns the channel, or it is a supergroup's or channel's own
message; not an edit, reply, migration or business message) is written straight away, row then
mapping. If it was a redelivery after all, its row is rewritten with the very cells it has.

Edits write with the edit time as CQL timestamp, so the newest edit wins in any order. A
business deletion marks the mapping (also before its message arrives) and soft-deletes the row
with the deletion time, so a replayed original can never bring it back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Hashable, Sequence
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any, Generic, TypeVar

from consumers.keys import (
    bucket_of_message,
    claim_probes,
    default_channel_id,
    message_key,
    needs_claim,
    owner_for,
    write_timestamp_us,
)
from consumers.model import DecodedMessage, DeletedMessages, MessageIdentity, Scope
from schema.tables import ChannelBinding, KeyOwner, MappingRow, MessageTables, ts, unset

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Outcome(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    EDIT = "edit"
    #: Written without a dedupe read (live traffic): new, or a duplicate rewritten unchanged.
    WRITTEN = "written"


class Unread(Enum):
    """The dedupe read has not been made: :meth:`MessageWriter.store` makes it."""

    UNREAD = 0


UNREAD = Unread.UNREAD


class KeySpaceExhaustedError(Exception):
    """Every probe of a message's key was owned by another message (never seen in practice)."""


class LRU(Generic[K, V]):
    """A small bounded cache, so memory stays flat however many chats pass through."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class BucketNotes:
    """The buckets this process has noted, per channel the few it noted last.

    Keyed by (channel, bucket), the notes grew by one entry for every channel at each 10-day
    bucket boundary, until the cache was full. In the benchmark's soak, whose calendar runs
    about 600 times faster than the clock, that was 3,000 chats at once, 0.8 MiB in one step
    (round 21). Per channel the memory is now the same whichever bucket its traffic is in. A
    bucket no longer kept is noted again when a message comes for it (the note is an
    idempotent write).
    """

    #: Buckets kept per channel: the current one, the last, and one more for an edit or a
    #: backlog that lags behind.
    KEEP = 3

    def __init__(self, size: int) -> None:
        self._kept: LRU[int, tuple[int, ...]] = LRU(size)

    def __contains__(self, key: tuple[int, int]) -> bool:
        channel_id, bucket = key
        kept = self._kept.get(channel_id)
        return kept is not None and bucket in kept

    def add(self, channel_id: int, bucket: int) -> None:
        kept = self._kept.get(channel_id) or ()
        self._kept.put(channel_id, (bucket, *(b for b in kept if b != bucket))[: self.KEEP])

    def __len__(self) -> int:
        return len(self._kept)


class MessageWriter:
    def __init__(self, tables: MessageTables, cache_size: int = 50_000) -> None:
        self.tables = tables
        self._channels: LRU[tuple[int, int], ChannelBinding] = LRU(cache_size)
        self._chats: LRU[int, tuple[Any, ...]] = LRU(cache_size)
        self._buckets = BucketNotes(cache_size)

    async def store(
        self, m: DecodedMessage, *, live: bool = False, seen: MappingRow | Unread | None = UNREAD
    ) -> Outcome:
        """Store ``m`` once. ``live`` says its record is seconds old, so almost surely new: a
        message whose key needs no claim is then written without its dedupe read (see
        :meth:`_store_derived`).

        ``seen`` is the dedupe read already made for ``m`` (its mapping row, or ``None`` for
        none) by a caller that read a whole batch's at once. It must still hold: a mapping once
        written never changes its key, but an absent one may appear if an earlier update of the
        same message was being written meanwhile.
        """
        ident = m.identity
        if seen is UNREAD:
            if live and _may_skip_read(m):
                channel = await self.channel_of(m)
                if not needs_claim(ident, channel, m.thread_id):
                    return await self._store_derived(m, channel.channel_id)
            existing = await self.tables.read_mapping(
                ident.chat_id, ident.scope, ident.telegram_message_id
            )
        else:
            existing = seen
        if existing is not None and existing.message_id is not None:
            if not m.is_edit:
                return Outcome.DUPLICATE
            assert existing.channel_id is not None and existing.bucket is not None
            await self._write_row(
                m,
                existing.channel_id,
                existing.bucket,
                existing.message_id,
                await self._reply_key(m),
            )
            return Outcome.EDIT

        await self._follow_migration(m)
        channel = await self.channel_of(m)
        channel_id = channel.channel_id
        bucket = bucket_of_message(m)
        # The key claim, the reply target's lookup and the chat and bucket notes do not depend
        # on each other: they run together, and only the claim and the lookup gate the row.
        side = self._notes(m, channel_id, bucket)
        claim = self._claim(ident, channel, bucket, m)
        if side or m.reply_to_telegram_id is not None:
            message_id, reply_to, *_ = await _all(claim, self._reply_key(m), *side)
        else:
            message_id, reply_to = await claim, None
        await self._write_row(m, channel_id, bucket, message_id, reply_to)

        # The mapping comes last, so it only ever points at a row that was written. A plain
        # write suffices: keys are derived from the message (and claimed, where two numbering
        # spaces can meet), so replicas racing on one message write the same key and mapping.
        await self.tables.write_mapping(
            ident.chat_id, ident.scope, ident.telegram_message_id, channel_id, bucket, message_id
        )
        if ident.scope.startswith(Scope.BUSINESS_PREFIX):
            await self._apply_early_deletion(ident, existing, channel_id, bucket, message_id)
        return Outcome.NEW

    async def seen_all(
        self, messages: Sequence[DecodedMessage]
    ) -> list[MappingRow | Unread | None]:
        """The dedupe reads of many messages at once, in their order, for :meth:`store`'s
        ``seen``: each chat and numbering space is one read (see
        :meth:`MessageTables.read_mappings`). A message whose read failed gets ``UNREAD``, so
        that :meth:`store` reads it again, and fails or retries there as it would have."""
        found = await self.tables.read_mappings(
            [(i.chat_id, i.scope, i.telegram_message_id) for i in (m.identity for m in messages)]
        )
        out: list[MappingRow | Unread | None] = []
        for m in messages:
            i = m.identity
            rows = found[(i.chat_id, i.scope)]
            if isinstance(rows, BaseException):
                out.append(UNREAD)
            else:
                out.append(rows.get(i.telegram_message_id))
        return out

    async def _store_derived(self, m: DecodedMessage, channel_id: int) -> Outcome:
        """Row, then mapping, with no dedupe read: two statements instead of three.

        Only for a message whose key is derived from it alone (no claim: its numbering space owns
        the channel, or it is a supergroup's own), and no edit, reply, migration or business
        message. A duplicate that comes this way (a redelivery, replicas racing) rewrites its row
        with the very cells it has: the same key, the same values, the same write timestamp (the
        send time), so nothing stored changes and an edit stored since still wins. The mapping
        still comes after the row.
        """
        ident = m.identity
        bucket = bucket_of_message(m)
        side = self._notes(m, channel_id, bucket)
        message_id = message_key(ident, m.sent_at)
        row = self._write_row(m, channel_id, bucket, message_id, None)
        if side:
            await _all(row, *side)
        else:
            await row
        await self.tables.write_mapping(
            ident.chat_id, ident.scope, ident.telegram_message_id, channel_id, bucket, message_id
        )
        return Outcome.WRITTEN

    async def _apply_early_deletion(
        self,
        ident: MessageIdentity,
        seen: MappingRow | None,
        channel_id: int,
        bucket: int,
        message_id: int,
    ) -> None:
        """Soft-delete a business message whose deletion was recorded before it was stored.

        Only business messages can be deleted by an update. The deletion marks the mapping and
        then reads it; this path writes the mapping and then reads it, both at quorum, so at
        least one of the two sees the other and applies the deletion.
        """
        mark = seen.deleted_at if seen is not None else None
        if mark is None:
            row = await self.tables.read_mapping(
                ident.chat_id, ident.scope, ident.telegram_message_id, strong=True
            )
            mark = row.deleted_at if row is not None else None
        if mark is not None:
            await self.tables.soft_delete(channel_id, bucket, message_id, mark)

    async def delete(self, d: DeletedMessages, deleted_at_ms: int) -> int:
        """Soft-delete each message (or mark it for when it arrives); returns how many."""
        deleted_at = datetime.fromtimestamp(deleted_at_ms / 1000, UTC)
        for ident in d.identities:
            await self.tables.mark_deleted(
                ident.chat_id, ident.scope, ident.telegram_message_id, deleted_at_ms
            )
            # Read after marking: either this read sees the message's mapping, or the message's
            # own read after writing its mapping sees the mark. One of them applies it.
            row = await self.tables.read_mapping(
                ident.chat_id, ident.scope, ident.telegram_message_id, strong=True
            )
            if row is not None and row.message_id is not None:
                assert row.channel_id is not None and row.bucket is not None
                await self.tables.soft_delete(
                    row.channel_id, row.bucket, row.message_id, deleted_at
                )
        return len(d.identities)

    async def channel_of(self, m: DecodedMessage) -> ChannelBinding:
        """The channel ``m``'s chat (or forum topic) is stored under, bound once and for all;
        if ``m`` binds it, to the chat's own channel with ``m``'s numbering space as owner."""
        return await self._bound(m.chat.chat_id, m.thread_id, m)

    async def _bound(
        self, chat_id: int, thread_id: int, first: DecodedMessage | None
    ) -> ChannelBinding:
        cached = self._channels.get((chat_id, thread_id))
        if cached is not None:
            return cached
        channel = await self.tables.read_channel(chat_id, thread_id)
        if channel is None:
            own = default_channel_id(chat_id, thread_id)
            wanted = ChannelBinding(own) if first is None else owner_for(first, own)
            channel = await self.tables.claim_channel(chat_id, thread_id, wanted)
        self._channels.put((chat_id, thread_id), channel)
        return channel

    async def _follow_migration(self, m: DecodedMessage) -> None:
        """A basic group upgraded to a supergroup keeps its history under the old channel."""
        if m.migrate_to_chat_id is not None:
            old, new = m.chat.chat_id, m.migrate_to_chat_id
        elif m.migrate_from_chat_id is not None:
            old, new = m.migrate_from_chat_id, m.chat.chat_id
        else:
            return
        # The old chat is bound with no owner here: this message may not be of its space.
        channel = await self._bound(old, 0, None)
        # The new chat writes into the old channel under the old channel's owner, if any.
        bound = await self.tables.claim_channel(new, 0, channel)
        self._channels.put((new, 0), bound)

    async def _claim(
        self, ident: MessageIdentity, channel: ChannelBinding, bucket: int, m: DecodedMessage
    ) -> int:
        if not needs_claim(ident, channel, m.thread_id):
            return message_key(ident, m.sent_at)
        me = KeyOwner(ident.chat_id, ident.scope, ident.telegram_message_id)
        probes = list(claim_probes(ident, channel))
        for probe in probes:
            candidate = message_key(ident, m.sent_at, probe)
            if await self.tables.claim_key(channel.channel_id, bucket, candidate, me) == me:
                return candidate
        raise KeySpaceExhaustedError(f"no free message key after {len(probes)} probes")

    def _notes(self, m: DecodedMessage, channel_id: int, bucket: int) -> list[Awaitable[None]]:
        """The chat and bucket notes this process has not written yet (not yet awaited)."""
        side: list[Awaitable[None]] = []
        if self._chats.get(m.chat.chat_id) != _chat_meta(m):
            side.append(self._note_chat(m))
        if (channel_id, bucket) not in self._buckets:
            side.append(self._note_bucket(channel_id, bucket))
        return side

    async def _note_chat(self, m: DecodedMessage) -> None:
        c = m.chat
        await self.tables.write_chat(c.chat_id, c.type, c.title, c.username, c.is_forum, m.sent_at)
        self._chats.put(c.chat_id, _chat_meta(m))

    async def _note_bucket(self, channel_id: int, bucket: int) -> None:
        await self.tables.note_bucket(channel_id, bucket)
        self._buckets.add(channel_id, bucket)

    async def _reply_key(self, m: DecodedMessage) -> int | None:
        """The stored key of the message ``m`` replies to, if that one is stored."""
        if m.reply_to_telegram_id is None:
            return None
        target = await self.tables.read_mapping(
            m.identity.chat_id, m.identity.scope, m.reply_to_telegram_id
        )
        return target.message_id if target else None

    async def _write_row(
        self,
        m: DecodedMessage,
        channel_id: int,
        bucket: int,
        message_id: int,
        reply_to: int | None,
    ) -> None:
        values = (
            m.chat.chat_id,
            m.thread_id,
            m.identity.scope,
            m.identity.telegram_message_id,
            m.update_type,
            unset(m.author_id),
            unset(m.author_name),
            m.author_is_bot,
            _edited(m.text, m.is_edit),
            _edited(m.entities, m.is_edit),
            _edited(list(m.attachments) or None, m.is_edit),
            unset(reply_to),
            unset(m.reply_to_telegram_id),
            unset(m.forward_origin),
            unset(m.media_group_id),
            unset(m.service),
            unset(m.business_connection_id),
            ts(m.sent_at),
            ts(m.edited_at),
            m.raw_message,
        )
        await self.tables.write_message(
            channel_id, bucket, message_id, values, write_timestamp_us(m)
        )


def found_key(seen: MappingRow | Unread | None) -> bool:
    """Whether a dedupe read found the message's key: then it holds for good (a key once mapped
    never changes), however long ago the read was made."""
    return isinstance(seen, MappingRow) and seen.message_id is not None


def already_stored(m: DecodedMessage, seen: MappingRow | Unread | None) -> bool:
    """Whether ``seen`` shows ``m`` stored already, so :meth:`MessageWriter.store` would only
    answer ``Outcome.DUPLICATE`` (an edit still rewrites its row)."""
    return found_key(seen) and not m.is_edit


def _chat_meta(m: DecodedMessage) -> tuple[Any, ...]:
    c = m.chat
    return (c.type, c.title, c.username, c.is_forum)


def _may_skip_read(m: DecodedMessage) -> bool:
    """Whether ``m`` could be stored without its dedupe read, if its key needs no claim.

    Not edits (they write no mapping), replies (a redelivered reply would pick up a reply key
    stored since), migrations (they bind channels) or business messages (a deletion may have
    reached them first).
    """
    return not (
        m.is_edit
        or m.reply_to_telegram_id is not None
        or m.migrate_to_chat_id is not None
        or m.migrate_from_chat_id is not None
        or m.identity.scope.startswith(Scope.BUSINESS_PREFIX)
    )


async def _all(*aws: Awaitable[Any]) -> list[Any]:
    """Await all at once; the first failure is raised once every one has finished."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def _edited(value: Any, is_edit: bool) -> Any:
    """An edit replaces the whole content, so a field it lacks is cleared (a cell tombstone,
    paid only by edits); a new message leaves absent fields unset and writes no tombstone."""
    if value is None and is_edit:
        return None
    return unset(value)
