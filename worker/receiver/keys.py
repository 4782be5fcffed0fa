"""The Kafka record of an update: key, value and headers.

The key keeps one chat's updates in order on one partition: the chat's id as ASCII decimal. An
update that belongs to no chat (inline queries, polls, payments, business connections) is keyed by
its bot, ``bot:<bot_id>``. The value is the update's raw bytes. The token never appears here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Transport = Literal["polling", "webhook"]

#: Update types whose payload carries ``chat`` (an object with the chat's ``id``). Types from a
#: future API version are looked up the same way, so their chat's order is kept too.
CHAT_UPDATES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record, ready to send."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def chat_id_of(update: dict[str, Any]) -> int | None:
    """The chat an update belongs to: ``<payload>.chat.id``, else ``<payload>.message.chat.id``.

    The second form is a callback query's message (accessible or not). None when there is no
    integer chat id (an inline callback query, an inline query, a poll, ...).
    """
    for name, payload in update.items():
        if name == "update_id" or not isinstance(payload, dict):
            continue
        chat_id = _chat_id(payload.get("chat"))
        if chat_id is None:
            chat_id = _chat_id(_get(payload.get("message"), "chat"))
        if chat_id is not None:
            return chat_id
    return None


def kafka_key(update: dict[str, Any], bot_id: int) -> bytes:
    chat_id = chat_id_of(update)
    if chat_id is None:
        return b"bot:%d" % bot_id
    return b"%d" % chat_id


def record_headers(
    bot_id: int, received_at_ms: int, transport: Transport
) -> list[tuple[str, bytes]]:
    return [
        ("bot_id", b"%d" % bot_id),
        ("received_at", b"%d" % received_at_ms),
        ("transport", transport.encode()),
    ]


def build_record(
    raw: bytes, update: dict[str, Any], bot_id: int, received_at_ms: int, transport: Transport
) -> Record:
    """The record of one update; ``raw`` is stored as is, ``update`` is its parsed form."""
    return Record(kafka_key(update, bot_id), raw, record_headers(bot_id, received_at_ms, transport))


def _get(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


def _chat_id(chat: Any) -> int | None:
    chat_id = _get(chat, "id")
    return chat_id if type(chat_id) is int else None
