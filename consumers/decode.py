"""Decode one raw Telegram Bot API update (JSON bytes) into what the consumer stores.

Pure and tolerant: it works on the dicts orjson parses, so unknown and future fields survive in
``raw_message``, optional fields of the wrong type are ignored, and only a message that cannot be
identified raises. The only exception it ever raises is :class:`DecodeError`.
"""

from __future__ import annotations

from typing import Any

import orjson

from consumers.model import (
    Attachment,
    ChatInfo,
    Decoded,
    DecodedMessage,
    DecodeError,
    DeletedMessages,
    MessageIdentity,
    NoMessage,
    Scope,
)
from schema.snowflake import EPOCH_MS, MAX_TIMESTAMP

MESSAGE_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_message",
        "edited_business_message",
    }
)
EDIT_UPDATES = frozenset({"edited_message", "edited_channel_post", "edited_business_message"})
BUSINESS_UPDATES = frozenset({"business_message", "edited_business_message"})
CHANNEL_UPDATES = frozenset({"channel_post", "edited_channel_post"})
DELETED_UPDATE = "deleted_business_messages"

#: Message fields whose presence makes a message a service message; ``service`` names the field.
SERVICE_FIELDS = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "channel_chat_created",
        "message_auto_delete_timer_changed",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "successful_payment",
        "refunded_payment",
        "users_shared",
        "user_shared",
        "chat_shared",
        "gift",
        "unique_gift",
        "gift_upgrade_sent",
        "connected_website",
        "write_access_allowed",
        "passport_data",
        "proximity_alert_triggered",
        "boost_added",
        "chat_background_set",
        "chat_owner_left",
        "chat_owner_changed",
        "checklist_tasks_done",
        "checklist_tasks_added",
        "direct_message_price_changed",
        "paid_message_price_changed",
        "forum_topic_created",
        "forum_topic_edited",
        "forum_topic_closed",
        "forum_topic_reopened",
        "general_forum_topic_hidden",
        "general_forum_topic_unhidden",
        "giveaway_created",
        "giveaway_completed",
        "managed_bot_created",
        "poll_option_added",
        "poll_option_deleted",
        "suggested_post_approved",
        "suggested_post_approval_failed",
        "suggested_post_declined",
        "suggested_post_paid",
        "suggested_post_refunded",
        "video_chat_scheduled",
        "video_chat_started",
        "video_chat_ended",
        "video_chat_participants_invited",
        "web_app_data",
        "community_chat_added",
        "community_chat_removed",
        "community_chat_joined",
    }
)

#: Single-file media fields, in the order their attachments are listed. Photos are separate.
FILE_FIELDS = (
    "live_photo",
    "video",
    "animation",
    "audio",
    "voice",
    "video_note",
    "document",
    "sticker",
)

#: Pre-2024 forward fields, collected into one object when ``forward_origin`` is absent.
LEGACY_FORWARD_FIELDS = (
    "forward_from",
    "forward_from_chat",
    "forward_from_message_id",
    "forward_signature",
    "forward_sender_name",
    "forward_date",
)

# The fields each rarer part of a message is read from, as sets: a message without any of them
# (most messages) is told in one set check.
_FORWARD_FIELDS = frozenset({"forward_origin", *LEGACY_FORWARD_FIELDS})
_REPLY_FIELDS = frozenset({"reply_to_message", "external_reply"})
_FILE_FIELDS = frozenset(FILE_FIELDS)
_ATTACHMENT_FIELDS = frozenset({"photo", *FILE_FIELDS, "paid_media", "new_chat_photo"})
_RARE_FIELDS = _FORWARD_FIELDS | _REPLY_FIELDS | SERVICE_FIELDS | _ATTACHMENT_FIELDS

#: Message dates the Snowflake ids can represent, in unix seconds.
FIRST_DATE = EPOCH_MS // 1000
LAST_DATE = (EPOCH_MS + MAX_TIMESTAMP) // 1000

#: Chat ids at or below this belong to supergroups and channels ("-100..." ids).
PER_CHAT_ID_LIMIT = -1_000_000_000_000
PER_CHAT_TYPES = frozenset({"supergroup", "channel"})

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_INT32_MAX = (1 << 31) - 1

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def decode_update(raw: bytes, bot_id: int) -> Decoded:
    """Decode one update as Telegram sent it, for the bot ``bot_id``; raises only DecodeError."""
    try:
        update = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("not_json", str(exc)) from None
    if type(update) is not dict:
        raise DecodeError("not_an_object", f"the update is {_json_type(update)}")
    if type(update.get("update_id")) is not int:
        problem = _problem(update, "update_id", "an integer")
        raise DecodeError("no_update_id", f"update_id {problem}")
    for update_type in update:
        if update_type != "update_id":
            break
    else:
        return NoMessage("empty")
    if update_type in MESSAGE_UPDATES:
        return _decode_message(update_type, update, bot_id)
    if update_type == DELETED_UPDATE:
        return _decode_deleted(update_type, update)
    return NoMessage(update_type)


def _decode_message(update_type: str, update: dict[str, Any], bot_id: int) -> DecodedMessage:
    # Spelled out: this runs once per message, so the checks every message needs (_int64,
    # _str, ...) are inline, not calls, and the rarer fields are looked for only when present.
    message = update[update_type]
    if type(message) is not dict:
        raise _bad(update, update_type, "", "an object")
    message_id = message.get("message_id")
    if type(message_id) is not int or not _INT64_MIN <= message_id <= _INT64_MAX:
        raise _bad(message, "message_id", update_type, "an integer")
    chat = _chat_info(message, update_type)
    chat_id = chat.chat_id
    date = message.get("date")
    if type(date) is not int:
        raise _bad(message, "date", update_type, "an integer")
    if date < FIRST_DATE:
        raise DecodeError("date_before_epoch", f"{update_type}.date {date} is before 2024-01-01")
    if date > LAST_DATE:
        raise DecodeError("date_out_of_range", f"{update_type}.date {date} is after {LAST_DATE}")

    business_connection_id = None
    if update_type in BUSINESS_UPDATES:
        business_connection_id = message.get("business_connection_id")
        if type(business_connection_id) is not str or not business_connection_id:
            raise _bad(message, "business_connection_id", update_type, "a non-empty string")
        scope = Scope.business(business_connection_id)
    elif chat.type in PER_CHAT_TYPES:
        scope = Scope.CHAT
    else:
        scope = Scope.bot(bot_id)

    try:
        raw_message = orjson.dumps(message)
    except orjson.JSONEncodeError as exc:
        raise DecodeError("bad_message", f"{update_type} cannot be encoded again: {exc}") from None

    thread_id = 0
    if message.get("is_topic_message") is True:
        topic = message.get("message_thread_id")
        if type(topic) is int and 0 < topic <= _INT64_MAX:
            thread_id = topic

    author_id = author_name = None
    author_is_bot = False
    sender_chat = message.get("sender_chat")
    if type(sender_chat) is dict:
        author_id = sender_chat.get("id")
        if type(author_id) is int and _INT64_MIN <= author_id <= _INT64_MAX:
            author_name = _title(sender_chat) or _str(sender_chat.get("username"))
        else:
            author_id = None
    if author_id is None:
        user = message.get("from")
        if type(user) is dict:
            author_id = user.get("id")
            if type(author_id) is int and _INT64_MIN <= author_id <= _INT64_MAX:
                author_name = _full_name(user) or _str(user.get("username"))
                author_is_bot = user.get("is_bot") is True
            else:
                author_id = None

    text = message.get("text")
    if type(text) is str:
        entities = message.get("entities")
    else:
        text = message.get("caption")
        if type(text) is str:
            entities = message.get("caption_entities")
        else:
            text = entities = None

    edited_at = message.get("edit_date")
    if type(edited_at) is not int or not 0 <= edited_at <= LAST_DATE:
        edited_at = None

    # Most messages carry none of the rarer fields (forwards, replies, service fields, files):
    # one set check in C rules them all out, instead of a lookup per field. The service field is
    # still the first service key in the message's order.
    forward_origin = reply_to = service = migrate_to_chat_id = migrate_from_chat_id = None
    attachments: tuple[Attachment, ...] = ()
    if not _RARE_FIELDS.isdisjoint(message):
        rare = _RARE_FIELDS.intersection(message)
        if not rare.isdisjoint(_FORWARD_FIELDS):
            forward_origin = message.get("forward_origin")
            if type(forward_origin) is not dict:
                forward_origin = {k: message[k] for k in LEGACY_FORWARD_FIELDS if k in message}
                forward_origin = forward_origin or None
            if forward_origin is not None:
                forward_origin = _json_text(forward_origin)
        if not rare.isdisjoint(_REPLY_FIELDS):
            reply_to = _reply_to(message, chat_id)
        if not rare.isdisjoint(SERVICE_FIELDS):
            for key in message:
                if key in SERVICE_FIELDS:
                    service = key
                    break
            # Both are service fields, so they are only looked for here.
            migrate_to_chat_id = _int64(message.get("migrate_to_chat_id"))
            migrate_from_chat_id = _int64(message.get("migrate_from_chat_id"))
        if not rare.isdisjoint(_ATTACHMENT_FIELDS):
            attachments = _attachments(message)

    media_group_id = message.get("media_group_id")
    if type(media_group_id) is not str:
        media_group_id = None

    # Positional, in field order: passing 21 keywords costs 0.8 µs more per message.
    return DecodedMessage(
        update_type,
        MessageIdentity(chat_id, scope, message_id),  # identity
        chat,
        thread_id,
        author_id,
        author_name,
        author_is_bot,
        text,
        _json_text(entities) if type(entities) is list else None,  # entities
        attachments,
        reply_to,  # reply_to_telegram_id
        forward_origin,
        media_group_id,
        date,  # sent_at
        edited_at,
        update_type in EDIT_UPDATES,  # is_edit
        service,
        migrate_to_chat_id,
        migrate_from_chat_id,
        business_connection_id,
        raw_message,
    )


def _decode_deleted(update_type: str, update: dict[str, Any]) -> DeletedMessages:
    deleted = update[update_type]
    if type(deleted) is not dict:
        raise _bad(update, update_type, "", "an object")
    connection_id = deleted.get("business_connection_id")
    if type(connection_id) is not str or not connection_id:
        raise _bad(deleted, "business_connection_id", update_type, "a non-empty string")
    chat = _chat_info(deleted, update_type)
    message_ids = deleted.get("message_ids")
    if type(message_ids) is not list:
        raise _bad(deleted, "message_ids", update_type, "an array")
    scope = Scope.business(connection_id)
    identities = []
    for index, message_id in enumerate(message_ids):
        if _int64(message_id) is None:
            raise _bad(message_ids, index, f"{update_type}.message_ids", "an integer")
        identities.append(MessageIdentity(chat.chat_id, scope, message_id))
    return DeletedMessages(update_type, chat, connection_id, tuple(identities))


def _chat_info(parent: dict[str, Any], update_type: str) -> ChatInfo:
    """The ``chat`` of a message or deletion; a chat without an integer id is a bad message."""
    chat = parent.get("chat")
    if type(chat) is not dict:
        raise _bad(parent, "chat", update_type, "an object")
    chat_id = chat.get("id")
    if type(chat_id) is not int or not _INT64_MIN <= chat_id <= _INT64_MAX:
        raise _bad(chat, "id", f"{update_type}.chat", "an integer")
    chat_type = chat.get("type")
    if type(chat_type) is not str:
        if chat_id <= PER_CHAT_ID_LIMIT:
            chat_type = "channel" if update_type in CHANNEL_UPDATES else "supergroup"
        else:
            chat_type = "group" if chat_id < 0 else "private"
    # _title and _str spelled out: this runs once per message or deletion.
    title = chat.get("title")
    if type(title) is not str or not title:
        title = _full_name(chat)
    username = chat.get("username")
    if type(username) is not str:
        username = None
    return ChatInfo(chat_id, chat_type, title, username, chat.get("is_forum") is True)


def _attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    """Every file of the message; a document that repeats the animation is left out."""
    found: list[Attachment] = []
    photo = _largest_photo("photo", message.get("photo"))
    if photo is not None:
        found.append(photo)
    if not _FILE_FIELDS.isdisjoint(message):
        for kind in FILE_FIELDS:
            media = message.get(kind)
            if type(media) is dict:
                _add(found, _file(kind, media))
    paid = message.get("paid_media")
    if type(paid) is dict and type(items := paid.get("paid_media")) is list:
        for item in items:
            if type(item) is dict:
                _add(found, _largest_photo("paid_photo", item.get("photo")))
                if type(video := item.get("video")) is dict:
                    _add(found, _file("paid_video", video))
                if type(live_photo := item.get("live_photo")) is dict:
                    _add(found, _file("paid_live_photo", live_photo))
    if "new_chat_photo" in message:
        _add(found, _largest_photo("chat_photo", message["new_chat_photo"]))
    return tuple(found)


def _add(found: list[Attachment], attachment: Attachment | None) -> None:
    if attachment is not None:
        # A loop, not all() over a generator: the list is short, mostly empty.
        unique_id = attachment.file_unique_id
        for other in found:
            if other.file_unique_id == unique_id:
                return
        found.append(attachment)


def _largest_photo(kind: str, sizes: Any) -> Attachment | None:
    """The largest of a list of PhotoSize objects (by area, then bytes; later wins a tie)."""
    if type(sizes) is not list:
        return None
    best = None
    best_area = best_size = -1
    for size in sizes:
        if (
            type(size) is dict
            and type(size.get("file_id")) is str
            and type(size.get("file_unique_id")) is str
        ):
            # _int32(...) or 0 and _int64(...) or 0, spelled out.
            width = size.get("width")
            if type(width) is not int or not 0 <= width <= _INT32_MAX:
                width = 0
            height = size.get("height")
            if type(height) is not int or not 0 <= height <= _INT32_MAX:
                height = 0
            file_size = size.get("file_size")
            if type(file_size) is not int or not _INT64_MIN <= file_size <= _INT64_MAX:
                file_size = 0
            # (area, file_size) >= (best_area, best_size), without building the tuples.
            area = width * height
            if area > best_area or (area == best_area and file_size >= best_size):
                best, best_area, best_size = size, area, file_size
    return None if best is None else _file(kind, best)


def _file(kind: str, media: dict[str, Any]) -> Attachment | None:
    """One file object (Video, Document, PhotoSize, ...); None without string file ids."""
    file_id = media.get("file_id")
    file_unique_id = media.get("file_unique_id")
    if type(file_id) is not str or type(file_unique_id) is not str:
        return None
    width = _int32(media.get("width"))
    height = _int32(media.get("height"))
    if width is None and height is None:
        width = height = _int32(media.get("length"))
    file_size = _int64(media.get("file_size"))
    if file_size is not None and file_size < 0:
        file_size = None
    mime_type = _str(media.get("mime_type"))
    duration = _int32(media.get("duration"))
    file_name = _str(media.get("file_name"))
    return Attachment(
        kind, file_id, file_unique_id, file_size, mime_type, width, height, duration, file_name
    )


def _reply_to(message: dict[str, Any], chat_id: int) -> int | None:
    """The id of the message replied to, when it is in the same chat."""
    reply = message.get("reply_to_message")
    if type(reply) is dict and (reply_id := _int64(reply.get("message_id"))) is not None:
        return reply_id
    external = message.get("external_reply")
    if type(external) is dict:
        origin_chat = external.get("chat")
        if type(origin_chat) is dict and _int64(origin_chat.get("id")) == chat_id:
            return _int64(external.get("message_id"))
    return None


def _title(chat: dict[str, Any]) -> str | None:
    title = chat.get("title")
    return title if type(title) is str and title else _full_name(chat)


def _full_name(person: dict[str, Any]) -> str | None:
    first = person.get("first_name")
    last = person.get("last_name")
    if type(first) is not str:
        first = ""
    if type(last) is str and last:
        return f"{first} {last}" if first else last
    return first or None


def _str(value: Any) -> str | None:
    return value if type(value) is str else None


def _int64(value: Any) -> int | None:
    return value if type(value) is int and _INT64_MIN <= value <= _INT64_MAX else None


def _int32(value: Any) -> int | None:
    """A non-negative int that fits a CQL ``int`` column (sizes and durations)."""
    return value if type(value) is int and 0 <= value <= _INT32_MAX else None


def _json_text(value: Any) -> str | None:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return None


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _problem(container: dict[str, Any] | list[Any], key: str | int, expected: str) -> str:
    """Why ``container[key]`` is not ``expected``, in words for a DecodeError detail."""
    if isinstance(container, dict) and key not in container:
        return "is missing"
    value = container[key]  # type: ignore[index]
    if type(value) is int and expected == "an integer":
        return "is out of the 64-bit range"
    if value == "" and type(value) is str:
        return "is empty"
    return f"is {_json_type(value)}, not {expected}"


def _bad(
    container: dict[str, Any] | list[Any], key: str | int, parent: str, expected: str
) -> DecodeError:
    if type(key) is int:
        path = f"{parent}[{key}]"
    else:
        path = f"{parent}.{key}" if parent else str(key)
    return DecodeError("bad_message", f"{path} {_problem(container, key, expected)}")
