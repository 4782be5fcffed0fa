"""Where a Telegram message is stored: its channel, bucket and Snowflake message id.

Ids are derived from the message itself, never from when or where it is processed, so every
replica, every restart and every replay into an empty keyspace computes the same key with no
per-replica configuration:

* the 42-bit timestamp is the message's Telegram ``date`` (whole seconds) plus a 0-999 ms
  offset taken from a hash of its numbering space (chat and scope), so messages of one space
  sort by time and then by Telegram id;
* the 22 bits of worker and sequence carry the low 22 bits of the Telegram message id, which
  are distinct for all messages of one space sent in the same second.

Two different numbering spaces can still meet in one channel (two bots in a basic group or in
one user's private chats, a migrated group). The ``message_keys`` claim catches that rare
collision, and the next *probe* moves the id to another millisecond offset of the same second,
deterministically. Where only one numbering space can ever write (see :func:`needs_claim`), and
for the space that owns a channel, there is nothing to catch and the key is not claimed; the
others keep off the owner's offset (:func:`claim_probes`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from consumers.model import DecodedMessage, MessageIdentity, Scope
from schema.buckets import bucket_of_unix_ms
from schema.snowflake import EPOCH_MS, MAX_SEQUENCE, SEQUENCE_BITS, compose
from schema.tables import ChannelBinding

MAX_PROBES = 64
_LOW_BITS = 22
_TOPIC_FLAG = 1 << 62


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def space_offset(chat_id: int, scope: str) -> int:
    """The millisecond offset (0-999) of a numbering space's first key candidates."""
    return _hash64(f"{chat_id}:{scope}") % 1000


def message_key(identity: MessageIdentity, sent_at: int, probe: int = 0) -> int:
    """The Snowflake id of ``identity`` sent at unix second ``sent_at``, for the given probe."""
    if not 0 <= probe < MAX_PROBES:
        raise ValueError(f"probe {probe} outside 0..{MAX_PROBES - 1}")
    offset = (space_offset(identity.chat_id, identity.scope) + probe) % 1000
    low = identity.telegram_message_id & ((1 << _LOW_BITS) - 1)
    return compose(sent_at * 1000 - EPOCH_MS + offset, low >> SEQUENCE_BITS, low & MAX_SEQUENCE)


def bucket_of_message(message: DecodedMessage) -> int:
    """Messages are bucketed by when they were sent, so edits and replays never move them."""
    return bucket_of_unix_ms(message.sent_at * 1000)


def default_channel_id(chat_id: int, thread_id: int) -> int:
    """A chat's own channel id is its chat id; a forum topic gets a hash flagged by bit 62.

    Chat ids stay far below 2**62, so a topic channel can never equal a chat's.
    """
    if thread_id == 0:
        return chat_id
    return _TOPIC_FLAG | (_hash64(f"{chat_id}/{thread_id}") & (_TOPIC_FLAG - 1))


def owner_for(message: DecodedMessage, channel_id: int) -> ChannelBinding:
    """The binding a message makes when it is the first to bind its chat to ``channel_id``.

    Its own numbering space owns the channel if the channel is the chat's own. (A binding made
    for another chat, as a migration makes, has no owner.)
    """
    if channel_id != default_channel_id(message.chat.chat_id, message.thread_id):
        return ChannelBinding(channel_id)
    return ChannelBinding(channel_id, message.chat.chat_id, message.identity.scope)


def _owns(identity: MessageIdentity, channel: ChannelBinding) -> bool:
    return channel.owner_chat_id == identity.chat_id and channel.owner_scope == identity.scope


def needs_claim(identity: MessageIdentity, channel: ChannelBinding, thread_id: int) -> bool:
    """Whether the message's key must be claimed in ``message_keys`` before its row is written.

    Not when the message's numbering space owns the channel: the first space to bind a chat to
    its own channel owns it (migration 0003), every other space claims its keys and none of
    them ever takes a key at the owner's millisecond offset (:func:`claim_probes`). Within the
    owner's space two messages could share a key only with ids 2**22 apart sent in the same
    second, and Telegram's ids rise by one per message in a chat (in private chats and basic
    groups, by one per message of the bot's whole account).

    Nor, for channels bound before owners were recorded, when the message is a supergroup's or
    channel's (numbered by Telegram per chat) and is stored in that chat's own channel or forum
    topic. Such a channel holds that one numbering space and nothing else: migrations only ever
    lead a *new* supergroup into its *old* basic group's channel, and other chats' channels have
    other ids. Everywhere else the claim decides.
    """
    if _owns(identity, channel):
        return False
    return identity.scope != Scope.CHAT or channel.channel_id != default_channel_id(
        identity.chat_id, thread_id
    )


def claim_probes(identity: MessageIdentity, channel: ChannelBinding) -> Iterator[int]:
    """The probes a claimed key walks: all of them, less any at the channel owner's offset.

    The owner's keys are never claimed, so the claim could not see them; keeping off their
    millisecond offset is what keeps every other key in the channel apart from them.
    """
    if channel.owner_chat_id is None or channel.owner_scope is None:
        yield from range(MAX_PROBES)
        return
    taken = space_offset(channel.owner_chat_id, channel.owner_scope)
    base = space_offset(identity.chat_id, identity.scope)
    for probe in range(MAX_PROBES):
        if (base + probe) % 1000 != taken:
            yield probe


def write_timestamp_us(message: DecodedMessage) -> int:
    """The CQL write timestamp: the edit time for edits, else the send time (microseconds).

    Using the source's time makes the newest edit win whatever order updates are processed in.
    """
    return (message.edited_at or message.sent_at) * 1_000_000
