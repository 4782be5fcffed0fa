"""What the consumer stores for one Telegram update, as produced by :mod:`consumers.decode`.

Everything here is plain data, not changed after decoding: no IO and no Telegram library types.
:class:`MessageIdentity` (a dict and set key) and :class:`NoMessage` are frozen, and so hashable.
The others, built for every message, are ordinary slotted dataclasses, equal by value but not
hashable: a frozen dataclass pays an ``object.__setattr__`` call per field each time it is built,
and nothing hashes them or changes them after decoding.
"""

from __future__ import annotations

from dataclasses import dataclass


class Scope:
    """Scope strings: the numbering space a Telegram message id belongs to.

    Supergroups and channels number messages per chat; private chats and basic groups per
    account (so each bot sees its own ids); business messages per business account.
    """

    CHAT = "chat"
    BOT_PREFIX = "bot:"
    BUSINESS_PREFIX = "biz:"

    @staticmethod
    def bot(bot_id: int) -> str:
        """The scope of a private chat or basic group seen by the bot ``bot_id``."""
        return f"bot:{bot_id}"

    @staticmethod
    def business(business_connection_id: str) -> str:
        """The scope of messages that arrived through one business connection."""
        return f"biz:{business_connection_id}"


@dataclass(frozen=True, slots=True, init=False)
class MessageIdentity:
    """Who a Telegram message is: the dedupe key shared by every copy of the same message."""

    chat_id: int
    scope: str
    telegram_message_id: int

    def __init__(self, chat_id: int, scope: str, telegram_message_id: int) -> None:
        # The generated frozen __init__ calls object.__setattr__ per field. Setting the slots
        # through their descriptors builds it in 2/3 the time (once per decoded message, and
        # again in the consumer loop), and it is just as frozen afterwards.
        _set_chat_id(self, chat_id)
        _set_scope(self, scope)
        _set_telegram_message_id(self, telegram_message_id)


# The slots' own descriptors; vars(), since the class attributes are typed as the field values.
_set_chat_id = vars(MessageIdentity)["chat_id"].__set__
_set_scope = vars(MessageIdentity)["scope"].__set__
_set_telegram_message_id = vars(MessageIdentity)["telegram_message_id"].__set__


@dataclass(slots=True)
class Attachment:
    """One file attached to a message (for photos, only the largest size)."""

    kind: str
    file_id: str
    file_unique_id: str
    file_size: int | None
    mime_type: str | None
    width: int | None
    height: int | None
    duration: int | None
    file_name: str | None


@dataclass(slots=True)
class ChatInfo:
    """The chat a message or deletion belongs to, as Telegram described it in that update."""

    chat_id: int
    type: str
    title: str | None
    username: str | None
    is_forum: bool


@dataclass(slots=True)
class DecodedMessage:
    """A new or edited message, with the fields the store keeps in columns.

    ``entities`` and ``forward_origin`` are JSON text exactly as Telegram sent them;
    ``raw_message`` is the whole message object as JSON, so no field is ever lost.
    """

    update_type: str
    identity: MessageIdentity
    chat: ChatInfo
    thread_id: int
    author_id: int | None
    author_name: str | None
    author_is_bot: bool
    text: str | None
    entities: str | None
    attachments: tuple[Attachment, ...]
    reply_to_telegram_id: int | None
    forward_origin: str | None
    media_group_id: str | None
    sent_at: int
    edited_at: int | None
    is_edit: bool
    service: str | None
    migrate_to_chat_id: int | None
    migrate_from_chat_id: int | None
    business_connection_id: str | None
    raw_message: bytes


@dataclass(slots=True)
class DeletedMessages:
    """Messages a business account deleted, all in one chat."""

    update_type: str
    chat: ChatInfo
    business_connection_id: str
    identities: tuple[MessageIdentity, ...]


@dataclass(frozen=True, slots=True)
class NoMessage:
    """An update that stores nothing; the consumer counts it by type and commits past it."""

    update_type: str


class DecodeError(Exception):
    """An update that cannot be decoded; ``reason`` is a short stable code for metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[DecodeError], tuple[str, str]]:
        return (DecodeError, (self.reason, self.detail))


Decoded = DecodedMessage | DeletedMessages | NoMessage
