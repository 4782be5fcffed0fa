"""Tests for consumers.decode: realistic Bot API updates, identity rules, bad input, and fuzzing."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.decode import decode_update
from consumers.model import (
    Attachment,
    ChatInfo,
    DecodedMessage,
    DecodeError,
    DeletedMessages,
    MessageIdentity,
    NoMessage,
)

BOT = 7000000001
OTHER_BOT = 7000000002
DATE = 1717171717

ADA = {
    "id": 5001,
    "is_bot": False,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "username": "ada",
    "language_code": "en",
}
BOB = {"id": 5002, "is_bot": False, "first_name": "Bob"}
HELPER_BOT = {"id": 6001, "is_bot": True, "first_name": "Helper", "username": "helper_bot"}
PRIVATE_CHAT = {
    "id": 5001,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "username": "ada",
    "type": "private",
}
GROUP_CHAT = {"id": -4001234567, "title": "Family", "type": "group"}
SUPERGROUP_CHAT = {
    "id": -1001987654321,
    "title": "Engineers",
    "username": "eng",
    "type": "supergroup",
}
FORUM_CHAT = {"id": -1002222222222, "title": "Forum", "is_forum": True, "type": "supergroup"}
CHANNEL_CHAT = {"id": -1001234567890, "title": "News", "username": "news", "type": "channel"}

EMOJI_TEXT = "Hi \U0001f600 @bob see https://x.io"
EMOJI_ENTITIES = [
    {"offset": 3, "length": 2, "type": "bold"},
    {"offset": 6, "length": 4, "type": "mention"},
    {"offset": 15, "length": 12, "type": "url"},
]

PRIVATE_TEXT = {
    "update_id": 900000001,
    "message": {
        "message_id": 17,
        "from": ADA,
        "chat": PRIVATE_CHAT,
        "date": DATE,
        "text": EMOJI_TEXT,
        "entities": EMOJI_ENTITIES,
    },
}


def photo_sizes(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "file_id": f"{prefix}-s",
            "file_unique_id": f"{prefix}-us",
            "file_size": 1400,
            "width": 90,
            "height": 67,
        },
        {
            "file_id": f"{prefix}-m",
            "file_unique_id": f"{prefix}-um",
            "file_size": 21000,
            "width": 320,
            "height": 240,
        },
        {
            "file_id": f"{prefix}-x",
            "file_unique_id": f"{prefix}-ux",
            "file_size": 88000,
            "width": 1280,
            "height": 960,
        },
        {
            "file_id": f"{prefix}-l",
            "file_unique_id": f"{prefix}-ul",
            "file_size": 61000,
            "width": 800,
            "height": 600,
        },
    ]


GROUP_PHOTO = {
    "update_id": 900000002,
    "message": {
        "message_id": 301,
        "from": BOB,
        "chat": GROUP_CHAT,
        "date": DATE,
        "photo": photo_sizes("AgACPhoto"),
        "caption": "Look at this \u2014 caf\u00e9",
        "caption_entities": [{"offset": 13, "length": 6, "type": "italic"}],
    },
}


def supergroup_message(message_id: int, **fields: Any) -> dict[str, Any]:
    message = {"message_id": message_id, "from": ADA, "chat": SUPERGROUP_CHAT, "date": DATE}
    message.update(fields)
    return {"update_id": 900000100 + message_id, "message": message}


VIDEO = supergroup_message(
    401,
    video={
        "duration": 12,
        "width": 1920,
        "height": 1080,
        "file_name": "clip.mp4",
        "mime_type": "video/mp4",
        "thumbnail": {"file_id": "thumb", "file_unique_id": "uthumb", "width": 320, "height": 180},
        "file_id": "BAACVideo",
        "file_unique_id": "uVideo",
        "file_size": 2345678,
    },
)
DOCUMENT = supergroup_message(
    402,
    document={
        "file_name": "report.pdf",
        "mime_type": "application/pdf",
        "file_id": "BQACDoc",
        "file_unique_id": "uDoc",
        "file_size": 52311,
    },
    caption="Q2 report",
)
VOICE = supergroup_message(
    403,
    voice={
        "duration": 4,
        "mime_type": "audio/ogg",
        "file_id": "AwACVoice",
        "file_unique_id": "uVoice",
        "file_size": 9876,
    },
)
STICKER = supergroup_message(
    404,
    sticker={
        "width": 512,
        "height": 512,
        "emoji": "\U0001f44d",
        "set_name": "Animals",
        "is_animated": False,
        "is_video": False,
        "type": "regular",
        "file_id": "CAACSticker",
        "file_unique_id": "uSticker",
        "file_size": 24000,
    },
)
AUDIO = supergroup_message(
    405,
    audio={
        "duration": 215,
        "file_name": "song.mp3",
        "mime_type": "audio/mpeg",
        "title": "Song",
        "performer": "Band",
        "file_id": "CQACAudio",
        "file_unique_id": "uAudio",
        "file_size": 3456789,
    },
)
ANIMATION = supergroup_message(
    406,
    animation={
        "file_name": "cat.mp4",
        "mime_type": "video/mp4",
        "duration": 3,
        "width": 480,
        "height": 270,
        "file_id": "CgACAnim",
        "file_unique_id": "uAnim",
        "file_size": 150000,
    },
    document={
        "file_name": "cat.mp4",
        "mime_type": "video/mp4",
        "file_id": "CgACAnim",
        "file_unique_id": "uAnim",
        "file_size": 150000,
    },
)
VIDEO_NOTE = supergroup_message(
    407,
    video_note={
        "duration": 9,
        "length": 384,
        "file_id": "DQACNote",
        "file_unique_id": "uNote",
        "file_size": 400000,
    },
)
PAID_MEDIA = supergroup_message(
    408,
    paid_media={
        "star_count": 25,
        "paid_media": [
            {"type": "preview", "width": 1280, "height": 720},
            {"type": "photo", "photo": photo_sizes("Paid")},
            {
                "type": "video",
                "video": {
                    "duration": 5,
                    "width": 640,
                    "height": 360,
                    "file_id": "PaidVideo",
                    "file_unique_id": "uPaidVideo",
                },
            },
        ],
    },
)

EDITED = {
    "update_id": 900000003,
    "edited_message": {
        "message_id": 17,
        "from": ADA,
        "chat": PRIVATE_CHAT,
        "date": DATE,
        "edit_date": DATE + 60,
        "text": "Hi, corrected",
    },
}

CHANNEL_POST = {
    "update_id": 900000004,
    "channel_post": {
        "message_id": 88,
        "sender_chat": CHANNEL_CHAT,
        "chat": CHANNEL_CHAT,
        "date": DATE,
        "author_signature": "Editor",
        "text": "Breaking news",
    },
}

FORUM_TOPIC = {
    "update_id": 900000005,
    "message": {
        "message_id": 1250,
        "message_thread_id": 42,
        "from": BOB,
        "chat": FORUM_CHAT,
        "date": DATE,
        "is_topic_message": True,
        "reply_to_message": {
            "message_id": 42,
            "from": ADA,
            "chat": FORUM_CHAT,
            "date": DATE - 1000,
            "message_thread_id": 42,
            "forum_topic_created": {"name": "Releases", "icon_color": 7322096},
            "is_topic_message": True,
        },
        "text": "v2 is out",
    },
}

GENERAL_TOPIC = {
    "update_id": 900000006,
    "message": {
        "message_id": 1251,
        "from": BOB,
        "chat": FORUM_CHAT,
        "date": DATE,
        "text": "in General",
    },
}

REPLY = supergroup_message(
    501,
    text="agreed",
    reply_to_message={
        "message_id": 500,
        "from": BOB,
        "chat": SUPERGROUP_CHAT,
        "date": DATE - 10,
        "text": "ship it?",
    },
)

FORWARD_ORIGIN = {
    "type": "channel",
    "chat": CHANNEL_CHAT,
    "message_id": 77,
    "author_signature": "Editor",
    "date": DATE - 3600,
}
FORWARDED = {
    "update_id": 900000007,
    "message": {
        "message_id": 18,
        "from": ADA,
        "chat": PRIVATE_CHAT,
        "date": DATE,
        "forward_origin": FORWARD_ORIGIN,
        "forward_from_chat": CHANNEL_CHAT,
        "forward_from_message_id": 77,
        "forward_signature": "Editor",
        "forward_date": DATE - 3600,
        "text": "Breaking news",
    },
}


def album_part(message_id: int, prefix: str) -> dict[str, Any]:
    return supergroup_message(
        message_id, media_group_id="13719875301478", photo=photo_sizes(prefix)
    )


ALBUM = [album_part(601, "AlbumOne"), album_part(602, "AlbumTwo")]

BUSINESS_CHAT = {"id": 5003, "first_name": "Carol", "username": "carol", "type": "private"}
BUSINESS_MESSAGE = {
    "update_id": 900000008,
    "business_message": {
        "business_connection_id": "AbCdEfConn1",
        "message_id": 3301,
        "from": {"id": 5003, "is_bot": False, "first_name": "Carol"},
        "chat": BUSINESS_CHAT,
        "date": DATE,
        "text": "Is the shop open?",
    },
}
EDITED_BUSINESS_MESSAGE = {
    "update_id": 900000009,
    "edited_business_message": {
        "business_connection_id": "AbCdEfConn1",
        "message_id": 3301,
        "from": {"id": 5003, "is_bot": False, "first_name": "Carol"},
        "chat": BUSINESS_CHAT,
        "date": DATE,
        "edit_date": DATE + 5,
        "text": "Is the shop open today?",
    },
}
DELETED_BUSINESS_MESSAGES = {
    "update_id": 900000010,
    "deleted_business_messages": {
        "business_connection_id": "AbCdEfConn1",
        "chat": BUSINESS_CHAT,
        "message_ids": [3301, 3302],
    },
}

NEW_MEMBERS = {
    "update_id": 900000011,
    "message": {
        "message_id": 302,
        "from": ADA,
        "chat": GROUP_CHAT,
        "date": DATE,
        "new_chat_participant": BOB,
        "new_chat_member": BOB,
        "new_chat_members": [BOB, HELPER_BOT],
    },
}
PINNED = supergroup_message(
    502,
    pinned_message={
        "message_id": 500,
        "from": BOB,
        "chat": SUPERGROUP_CHAT,
        "date": DATE - 10,
        "text": "ship it?",
    },
)
MIGRATE_TO = {
    "update_id": 900000012,
    "message": {
        "message_id": 303,
        "from": ADA,
        "chat": GROUP_CHAT,
        "date": DATE,
        "migrate_to_chat_id": -1009876543210,
    },
}
MIGRATE_FROM = {
    "update_id": 900000013,
    "message": {
        "message_id": 1,
        "from": {
            "id": 1087968824,
            "is_bot": True,
            "first_name": "Group",
            "username": "GroupAnonymousBot",
        },
        "sender_chat": {"id": -1009876543210, "title": "Family", "type": "supergroup"},
        "chat": {"id": -1009876543210, "title": "Family", "type": "supergroup"},
        "date": DATE,
        "migrate_from_chat_id": -4001234567,
    },
}
NEW_CHAT_PHOTO = {
    "update_id": 900000014,
    "message": {
        "message_id": 304,
        "from": ADA,
        "chat": GROUP_CHAT,
        "date": DATE,
        "new_chat_photo": photo_sizes("ChatPhoto"),
    },
}

CALLBACK_QUERY = {
    "update_id": 900000015,
    "callback_query": {
        "id": "4382bfdwdsb323b2d9",
        "from": ADA,
        "message": PRIVATE_TEXT["message"],
        "chat_instance": "-8890",
        "data": "vote:yes",
    },
}
FUTURE_UPDATE = {"update_id": 1, "guest_message": {"message_id": 1, "chat": PRIVATE_CHAT}}
FUTURE_FIELD = supergroup_message(
    503, text="hello", hologram={"file_id": "H", "layers": [1, 2, 3]}, is_from_the_future=True
)

MESSAGE_SAMPLES = [
    PRIVATE_TEXT,
    GROUP_PHOTO,
    VIDEO,
    DOCUMENT,
    VOICE,
    STICKER,
    AUDIO,
    ANIMATION,
    VIDEO_NOTE,
    PAID_MEDIA,
    EDITED,
    CHANNEL_POST,
    FORUM_TOPIC,
    GENERAL_TOPIC,
    REPLY,
    FORWARDED,
    *ALBUM,
    BUSINESS_MESSAGE,
    EDITED_BUSINESS_MESSAGE,
    NEW_MEMBERS,
    PINNED,
    MIGRATE_TO,
    MIGRATE_FROM,
    NEW_CHAT_PHOTO,
    FUTURE_FIELD,
]
ALL_SAMPLES = [*MESSAGE_SAMPLES, DELETED_BUSINESS_MESSAGES, CALLBACK_QUERY, FUTURE_UPDATE]

REASONS = {
    "not_json",
    "not_an_object",
    "no_update_id",
    "bad_message",
    "date_before_epoch",
    "date_out_of_range",
}


def decode(update: Any, bot_id: int = BOT) -> Any:
    return decode_update(orjson.dumps(update), bot_id)


def decode_message(update: dict[str, Any], bot_id: int = BOT) -> DecodedMessage:
    result = decode(update, bot_id)
    assert isinstance(result, DecodedMessage)
    return result


def only_attachment(update: dict[str, Any]) -> Attachment:
    (attachment,) = decode_message(update).attachments
    return attachment


def reason_of(raw: bytes) -> str:
    with pytest.raises(DecodeError) as caught:
        decode_update(raw, BOT)
    assert str(caught.value).startswith(caught.value.reason + ": ")
    return caught.value.reason


def test_private_text_keeps_entities_in_utf16_units() -> None:
    raw = (
        b'{"update_id":900000001,"message":{"message_id":17,'
        b'"from":{"id":5001,"is_bot":false,"first_name":"Ada","last_name":"Lovelace"},'
        b'"chat":{"id":5001,"first_name":"Ada","last_name":"Lovelace","type":"private"},'
        b'"date":1717171717,"text":"Hi \\ud83d\\ude00 @bob see https://x.io",'
        b'"entities":[{"offset":3,"length":2,"type":"bold"},'
        b'{"offset":6,"length":4,"type":"mention"},{"offset":15,"length":12,"type":"url"}]}}'
    )
    result = decode_update(raw, BOT)
    assert isinstance(result, DecodedMessage)
    assert result.text == EMOJI_TEXT
    assert result.entities is not None
    assert result.entities.encode() == orjson.dumps(EMOJI_ENTITIES)
    utf16 = EMOJI_TEXT.encode("utf-16-le")
    mention = orjson.loads(result.entities)[1]
    start, end = 2 * mention["offset"], 2 * (mention["offset"] + mention["length"])
    assert utf16[start:end].decode("utf-16-le") == "@bob"


def test_private_text() -> None:
    result = decode_message(PRIVATE_TEXT)
    assert result.update_type == "message"
    assert result.identity == MessageIdentity(5001, f"bot:{BOT}", 17)
    assert result.chat == ChatInfo(5001, "private", "Ada Lovelace", "ada", False)
    assert (result.author_id, result.author_name, result.author_is_bot) == (
        5001,
        "Ada Lovelace",
        False,
    )
    assert result.thread_id == 0
    assert result.attachments == ()
    assert (result.sent_at, result.edited_at, result.is_edit) == (DATE, None, False)
    assert result.service is None
    assert result.reply_to_telegram_id is None
    assert result.forward_origin is None
    assert result.media_group_id is None
    assert result.business_connection_id is None
    assert orjson.loads(result.raw_message) == PRIVATE_TEXT["message"]


def test_group_photo_keeps_the_largest_size_and_caption() -> None:
    result = decode_message(GROUP_PHOTO)
    assert result.identity.scope == f"bot:{BOT}"
    assert result.chat.type == "group"
    assert result.chat.title == "Family"
    assert result.text == "Look at this \u2014 caf\u00e9"
    assert result.entities == '[{"offset":13,"length":6,"type":"italic"}]'
    assert result.attachments == (
        Attachment("photo", "AgACPhoto-x", "AgACPhoto-ux", 88000, None, 1280, 960, None, None),
    )


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        (
            VIDEO,
            Attachment(
                "video", "BAACVideo", "uVideo", 2345678, "video/mp4", 1920, 1080, 12, "clip.mp4"
            ),
        ),
        (
            DOCUMENT,
            Attachment(
                "document",
                "BQACDoc",
                "uDoc",
                52311,
                "application/pdf",
                None,
                None,
                None,
                "report.pdf",
            ),
        ),
        (VOICE, Attachment("voice", "AwACVoice", "uVoice", 9876, "audio/ogg", None, None, 4, None)),
        (
            STICKER,
            Attachment("sticker", "CAACSticker", "uSticker", 24000, None, 512, 512, None, None),
        ),
        (
            AUDIO,
            Attachment(
                "audio", "CQACAudio", "uAudio", 3456789, "audio/mpeg", None, None, 215, "song.mp3"
            ),
        ),
        (
            VIDEO_NOTE,
            Attachment("video_note", "DQACNote", "uNote", 400000, None, 384, 384, 9, None),
        ),
    ],
    ids=["video", "document", "voice", "sticker", "audio", "video_note"],
)
def test_single_file_attachments(update: dict[str, Any], expected: Attachment) -> None:
    assert only_attachment(update) == expected


def test_animation_is_not_repeated_as_a_document() -> None:
    assert only_attachment(ANIMATION) == Attachment(
        "animation", "CgACAnim", "uAnim", 150000, "video/mp4", 480, 270, 3, "cat.mp4"
    )


def test_document_caption_is_the_text() -> None:
    result = decode_message(DOCUMENT)
    assert result.text == "Q2 report"
    assert result.entities is None


def test_paid_media_keeps_files_and_skips_previews() -> None:
    kinds = [(a.kind, a.file_id) for a in decode_message(PAID_MEDIA).attachments]
    assert kinds == [("paid_photo", "Paid-x"), ("paid_video", "PaidVideo")]


def test_edited_message() -> None:
    result = decode_message(EDITED)
    assert result.update_type == "edited_message"
    assert result.is_edit
    assert (result.sent_at, result.edited_at) == (DATE, DATE + 60)
    assert result.identity == decode_message(PRIVATE_TEXT).identity


def test_channel_post_author_is_the_channel() -> None:
    result = decode_message(CHANNEL_POST)
    assert result.identity == MessageIdentity(-1001234567890, "chat", 88)
    assert result.chat == ChatInfo(-1001234567890, "channel", "News", "news", False)
    assert (result.author_id, result.author_name, result.author_is_bot) == (
        -1001234567890,
        "News",
        False,
    )


def test_anonymous_admin_author_is_the_chat() -> None:
    result = decode_message(MIGRATE_FROM)
    assert result.author_id == -1009876543210
    assert not result.author_is_bot


def test_bot_author() -> None:
    result = decode_message(supergroup_message(504, **{"from": HELPER_BOT, "text": "beep"}))
    assert (result.author_id, result.author_name, result.author_is_bot) == (6001, "Helper", True)


def test_forum_topic_message_has_its_thread() -> None:
    result = decode_message(FORUM_TOPIC)
    assert result.thread_id == 42
    assert result.chat.is_forum
    assert result.identity == MessageIdentity(-1002222222222, "chat", 1250)


def test_general_topic_message_is_thread_zero() -> None:
    assert decode_message(GENERAL_TOPIC).thread_id == 0


def test_reply_thread_outside_forums_is_not_a_topic() -> None:
    update = supergroup_message(505, message_thread_id=500, text="x")
    assert decode_message(update).thread_id == 0


def test_reply() -> None:
    assert decode_message(REPLY).reply_to_telegram_id == 500


def test_external_reply_counts_only_in_the_same_chat() -> None:
    same = {"origin": {"type": "user", "sender_user": BOB, "date": DATE}, "chat": SUPERGROUP_CHAT}
    same_chat = supergroup_message(506, text="x", external_reply={**same, "message_id": 9})
    other_chat = supergroup_message(
        507, text="x", external_reply={**same, "chat": CHANNEL_CHAT, "message_id": 9}
    )
    assert decode_message(same_chat).reply_to_telegram_id == 9
    assert decode_message(other_chat).reply_to_telegram_id is None


def test_forward_origin_is_kept_as_json() -> None:
    result = decode_message(FORWARDED)
    assert result.forward_origin is not None
    assert result.forward_origin.encode() == orjson.dumps(FORWARD_ORIGIN)


def test_legacy_forward_fields_are_collected() -> None:
    update = copy.deepcopy(FORWARDED)
    del update["message"]["forward_origin"]
    result = decode_message(update)
    assert result.forward_origin is not None
    assert orjson.loads(result.forward_origin) == {
        "forward_from_chat": CHANNEL_CHAT,
        "forward_from_message_id": 77,
        "forward_signature": "Editor",
        "forward_date": DATE - 3600,
    }


def test_empty_forward_origin_is_kept_and_wins_over_legacy_fields() -> None:
    result = decode_message(supergroup_message(511, forward_origin={}, forward_date=DATE - 60))
    assert result.forward_origin == "{}"


def test_wrong_forward_origin_falls_back_to_legacy_fields() -> None:
    result = decode_message(supergroup_message(512, forward_origin=[], forward_date=DATE - 60))
    assert result.forward_origin == f'{{"forward_date":{DATE - 60}}}'
    assert decode_message(supergroup_message(513, forward_origin=None)).forward_origin is None


def test_album_parts_share_the_media_group() -> None:
    first, second = (decode_message(part) for part in ALBUM)
    assert first.media_group_id == second.media_group_id == "13719875301478"
    assert first.identity != second.identity
    assert first.attachments[0].file_id == "AlbumOne-x"
    assert second.attachments[0].file_id == "AlbumTwo-x"


def test_business_message_identity_is_per_connection() -> None:
    result = decode_message(BUSINESS_MESSAGE)
    assert result.identity == MessageIdentity(5003, "biz:AbCdEfConn1", 3301)
    assert result.business_connection_id == "AbCdEfConn1"
    assert decode_message(BUSINESS_MESSAGE, OTHER_BOT).identity == result.identity


def test_edited_business_message() -> None:
    result = decode_message(EDITED_BUSINESS_MESSAGE)
    assert result.update_type == "edited_business_message"
    assert result.is_edit
    assert result.edited_at == DATE + 5
    assert result.identity == decode_message(BUSINESS_MESSAGE).identity


def test_deleted_business_messages() -> None:
    result = decode(DELETED_BUSINESS_MESSAGES)
    assert result == DeletedMessages(
        "deleted_business_messages",
        ChatInfo(5003, "private", "Carol", "carol", False),
        "AbCdEfConn1",
        (
            MessageIdentity(5003, "biz:AbCdEfConn1", 3301),
            MessageIdentity(5003, "biz:AbCdEfConn1", 3302),
        ),
    )


@pytest.mark.parametrize(
    ("update", "service"),
    [
        (NEW_MEMBERS, "new_chat_members"),
        (PINNED, "pinned_message"),
        (MIGRATE_TO, "migrate_to_chat_id"),
        (MIGRATE_FROM, "migrate_from_chat_id"),
        (NEW_CHAT_PHOTO, "new_chat_photo"),
        (supergroup_message(508, forum_topic_closed={}), "forum_topic_closed"),
        (supergroup_message(509, video_chat_started={}), "video_chat_started"),
    ],
)
def test_service_messages(update: dict[str, Any], service: str) -> None:
    result = decode_message(update)
    assert result.service == service
    assert result.text is None


def test_service_is_the_first_service_field_in_key_order() -> None:
    pin = {"message_id": 1, "chat": SUPERGROUP_CHAT, "date": DATE}
    first = supergroup_message(514, pinned_message=pin, new_chat_title="T", photo=[])
    assert decode_message(first).service == "pinned_message"
    second = supergroup_message(515, new_chat_title="T", photo=[], pinned_message=pin)
    assert decode_message(second).service == "new_chat_title"


def test_migration_ids() -> None:
    to = decode_message(MIGRATE_TO)
    assert (to.migrate_to_chat_id, to.migrate_from_chat_id) == (-1009876543210, None)
    start = decode_message(MIGRATE_FROM)
    assert (start.migrate_to_chat_id, start.migrate_from_chat_id) == (None, -4001234567)
    assert start.identity == MessageIdentity(-1009876543210, "chat", 1)


def test_new_chat_photo_is_an_attachment() -> None:
    assert only_attachment(NEW_CHAT_PHOTO).kind == "chat_photo"


def test_callback_query_is_no_message() -> None:
    assert decode(CALLBACK_QUERY) == NoMessage("callback_query")


def test_future_update_type_is_no_message() -> None:
    assert decode(FUTURE_UPDATE) == NoMessage("guest_message")


def test_update_without_a_type_is_empty() -> None:
    assert decode({"update_id": 5}) == NoMessage("empty")


def test_the_first_key_after_update_id_is_the_type() -> None:
    assert decode({"callback_query": {}, "update_id": 5, "message": None}) == NoMessage(
        "callback_query"
    )


def test_unknown_message_fields_survive_in_raw_message() -> None:
    result = decode_message(FUTURE_FIELD)
    assert result.text == "hello"
    raw = orjson.loads(result.raw_message)
    assert raw["hologram"] == {"file_id": "H", "layers": [1, 2, 3]}
    assert raw["is_from_the_future"] is True


def test_basic_group_identity_differs_per_bot() -> None:
    first = decode_message(GROUP_PHOTO, BOT).identity
    second = decode_message(GROUP_PHOTO, OTHER_BOT).identity
    assert first.scope == f"bot:{BOT}"
    assert second.scope == f"bot:{OTHER_BOT}"
    assert first != second


def test_supergroup_identity_is_the_same_for_every_bot() -> None:
    first = decode_message(REPLY, BOT).identity
    assert first == decode_message(REPLY, OTHER_BOT).identity
    assert first == MessageIdentity(-1001987654321, "chat", 501)


@pytest.mark.parametrize(
    ("chat", "scope", "chat_type"),
    [
        ({"id": -1001987654321}, "chat", "supergroup"),
        ({"id": -4001234567}, f"bot:{BOT}", "group"),
        ({"id": 5001}, f"bot:{BOT}", "private"),
        ({"id": -1001987654321, "type": "sender"}, f"bot:{BOT}", "sender"),
    ],
)
def test_scope_without_or_with_unknown_chat_type(
    chat: dict[str, Any], scope: str, chat_type: str
) -> None:
    result = decode_message(
        {"update_id": 1, "message": {"message_id": 1, "chat": chat, "date": DATE}}
    )
    assert result.identity.scope == scope
    assert result.chat.type == chat_type


def test_channel_without_type_is_a_channel() -> None:
    update = copy.deepcopy(CHANNEL_POST)
    del update["channel_post"]["chat"]["type"]
    result = decode_message(update)
    assert (result.chat.type, result.identity.scope) == ("channel", "chat")


def test_wrong_optional_types_are_ignored() -> None:
    update = supergroup_message(
        510,
        text=5,
        caption=["x"],
        entities="bold",
        photo={"file_id": "x"},
        video=[1],
        document={"file_id": 3, "file_unique_id": "u"},
        sticker={"file_id": "s", "file_unique_id": "us", "width": "512", "file_size": -1},
        media_group_id=7,
        edit_date="soon",
        is_topic_message=True,
        message_thread_id="42",
        reply_to_message={"message_id": "500"},
        forward_origin="someone",
        migrate_to_chat_id=True,
        sender_chat={"id": "x"},
        **{"from": {"id": 5001.0}},
    )
    update["message"]["chat"] = {"id": -1001987654321, "type": 5, "title": 9, "is_forum": "yes"}
    result = decode_message(update)
    assert result.text is None
    assert result.entities is None
    assert result.attachments == (
        Attachment("sticker", "s", "us", None, None, None, None, None, None),
    )
    assert result.chat == ChatInfo(-1001987654321, "supergroup", None, None, False)
    assert result.media_group_id is None
    assert result.edited_at is None
    assert result.thread_id == 0
    assert result.reply_to_telegram_id is None
    assert result.forward_origin is None
    assert result.migrate_to_chat_id is None
    assert (result.author_id, result.author_name) == (None, None)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"\xff", b"[1,]", b'{"update_id":1}x', b'"\\ud800"', b"1e999", b"[" * 2000],
)
def test_not_json(raw: bytes) -> None:
    assert reason_of(raw) == "not_json"


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"update"', b"null", b"true", b"[{}]"])
def test_not_an_object(raw: bytes) -> None:
    assert reason_of(raw) == "not_an_object"


@pytest.mark.parametrize(
    "update",
    [
        {},
        {"message": {}},
        {"update_id": "1"},
        {"update_id": True},
        {"update_id": 1.0},
        {"update_id": None},
    ],
)
def test_no_update_id(update: dict[str, Any]) -> None:
    assert reason_of(orjson.dumps(update)) == "no_update_id"


def message_with(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 1,
        "chat": {"id": 5001, "type": "private"},
        "date": DATE,
    }
    for key, value in changes.items():
        if value is ...:
            del message[key]
        else:
            message[key] = value
    return message


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (None, "message is null"),
        ([1], "message is an array"),
        (message_with(message_id=...), "message.message_id is missing"),
        (message_with(message_id="1"), "message.message_id is a string"),
        (message_with(message_id=True), "message.message_id is a boolean"),
        (message_with(message_id=1 << 63), "message.message_id is out of the 64-bit range"),
        (message_with(chat=...), "message.chat is missing"),
        (message_with(chat=5001), "message.chat is a number"),
        (message_with(chat={"type": "private"}), "message.chat.id is missing"),
        (message_with(chat={"id": "5001"}), "message.chat.id is a string"),
        (message_with(date=...), "message.date is missing"),
        (message_with(date=1717171717.5), "message.date is a number"),
        (message_with(date=False), "message.date is a boolean"),
    ],
)
def test_bad_message(message: Any, field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode({"update_id": 1, "message": message})
    assert caught.value.reason == "bad_message"
    assert str(caught.value).startswith(f"bad_message: {field}")


@pytest.mark.parametrize("connection_id", [..., None, "", 12])
def test_business_message_needs_a_connection(connection_id: Any) -> None:
    update = copy.deepcopy(BUSINESS_MESSAGE)
    if connection_id is ...:
        del update["business_message"]["business_connection_id"]
    else:
        update["business_message"]["business_connection_id"] = connection_id
    with pytest.raises(DecodeError, match=r"business_message\.business_connection_id"):
        decode(update)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"business_connection_id": None}, "business_connection_id"),
        ({"chat": None}, "chat"),
        ({"chat": {"id": "5003"}}, "chat.id"),
        ({"message_ids": None}, "message_ids"),
        ({"message_ids": 3301}, "message_ids"),
        ({"message_ids": [3301, "3302"]}, "message_ids[1]"),
        ({"message_ids": [True]}, "message_ids[0]"),
    ],
)
def test_bad_deleted_business_messages(change: dict[str, Any], field: str) -> None:
    update = copy.deepcopy(DELETED_BUSINESS_MESSAGES)
    update["deleted_business_messages"].update(change)
    with pytest.raises(DecodeError) as caught:
        decode(update)
    assert caught.value.reason == "bad_message"
    assert str(caught.value).startswith(f"bad_message: deleted_business_messages.{field} ")


def test_deleted_business_messages_not_an_object() -> None:
    with pytest.raises(DecodeError, match="bad_message: deleted_business_messages is an array"):
        decode({"update_id": 1, "deleted_business_messages": []})


def test_date_bounds() -> None:
    assert decode({"update_id": 1, "message": message_with(date=1704067200)}).sent_at == 1704067200
    with pytest.raises(DecodeError) as caught:
        decode({"update_id": 1, "message": message_with(date=1704067199)})
    assert caught.value.reason == "date_before_epoch"
    assert "message.date" in str(caught.value)
    with pytest.raises(DecodeError) as caught:
        decode({"update_id": 1, "message": message_with(date=1 << 40)})
    assert caught.value.reason == "date_out_of_range"


def test_message_too_deep_to_encode_again_is_bad() -> None:
    nested = b"[" * 600 + b"]" * 600
    raw = b'{"update_id":1,"message":' + orjson.dumps(message_with())[:-1] + b',"x":' + nested
    assert reason_of(raw + b"}}") == "bad_message"


def test_message_identity_is_a_frozen_value() -> None:
    identity = decode_message(PRIVATE_TEXT).identity
    same = MessageIdentity(chat_id=5001, scope=f"bot:{BOT}", telegram_message_id=17)
    assert identity == same and hash(identity) == hash(same)
    assert {identity: 1}[same] == 1
    assert identity != MessageIdentity(5001, f"bot:{BOT}", 18)
    assert repr(same) == f"MessageIdentity(chat_id=5001, scope='bot:{BOT}', telegram_message_id=17)"
    assert pickle.loads(pickle.dumps(identity)) == identity
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.telegram_message_id = 18  # type: ignore[misc]


def test_decode_error_is_picklable_and_readable() -> None:
    error = DecodeError("bad_message", "message.chat.id is missing")
    assert str(error) == "bad_message: message.chat.id is missing"
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.reason, copied.detail, str(copied)) == (error.reason, error.detail, str(error))


INT32_MAX = (1 << 31) - 1


def is_int64(value: Any) -> bool:
    return type(value) is int and -(1 << 63) <= value < 1 << 63


def assert_storable(result: Any) -> None:
    """Every decoded value fits the column it is written to."""
    if isinstance(result, NoMessage):
        assert isinstance(result.update_type, str)
        return
    assert isinstance(result.chat, ChatInfo)
    assert is_int64(result.chat.chat_id)
    assert isinstance(result.chat.type, str)
    assert type(result.chat.is_forum) is bool
    if isinstance(result, DeletedMessages):
        assert result.business_connection_id
        for identity in result.identities:
            assert is_int64(identity.telegram_message_id)
            assert identity.scope == f"biz:{result.business_connection_id}"
        return
    assert isinstance(result, DecodedMessage)
    assert result.identity.chat_id == result.chat.chat_id
    assert is_int64(result.identity.telegram_message_id)
    assert result.identity.scope == "chat" or result.identity.scope.startswith(("bot:", "biz:"))
    assert is_int64(result.thread_id) and result.thread_id >= 0
    for value in (
        result.author_id,
        result.reply_to_telegram_id,
        result.migrate_to_chat_id,
        result.migrate_from_chat_id,
        result.edited_at,
    ):
        assert value is None or is_int64(value)
    assert type(result.author_is_bot) is bool and type(result.is_edit) is bool
    assert type(result.sent_at) is int
    for text in (result.text, result.author_name, result.media_group_id, result.service):
        assert text is None or isinstance(text, str)
    for json_text in (result.entities, result.forward_origin):
        assert json_text is None or isinstance(orjson.loads(json_text), list | dict)
    for attachment in result.attachments:
        assert isinstance(attachment.file_id, str) and isinstance(attachment.file_unique_id, str)
        for small in (attachment.width, attachment.height, attachment.duration):
            assert small is None or (type(small) is int and 0 <= small <= INT32_MAX)
        assert attachment.file_size is None or is_int64(attachment.file_size)
    assert isinstance(orjson.loads(result.raw_message), dict)


def decode_or_reason(raw: bytes) -> Any:
    try:
        result = decode_update(raw, BOT)
    except DecodeError as error:
        assert error.reason in REASONS
        return error.reason
    assert_storable(result)
    return result


@pytest.mark.parametrize("update", ALL_SAMPLES)
def test_samples_are_storable(update: dict[str, Any]) -> None:
    assert not isinstance(decode_or_reason(orjson.dumps(update)), str)


WRONG_VALUES = [
    None,
    True,
    0,
    -1,
    1 << 63,
    (1 << 64) - 1,
    1.5,
    "",
    "x",
    [],
    [1],
    ["x"],
    {},
    {"id": 1},
]


@pytest.mark.parametrize("update", ALL_SAMPLES)
def test_every_field_replaced_or_removed_raises_only_decode_error(update: dict[str, Any]) -> None:
    for path in paths(update):
        for value in [*WRONG_VALUES, ...]:
            mutated = copy.deepcopy(update)
            parent = mutated
            for key in path[:-1]:
                parent = parent[key]
            if value is not ...:
                parent[path[-1]] = value
            elif isinstance(parent, dict):
                del parent[path[-1]]
            decode_or_reason(orjson.dumps(mutated))


FIELD_NAMES = sorted(
    {
        "update_id",
        "message",
        "edited_message",
        "channel_post",
        "business_message",
        "deleted_business_messages",
        "message_id",
        "chat",
        "id",
        "type",
        "date",
        "edit_date",
        "from",
        "sender_chat",
        "text",
        "caption",
        "entities",
        "photo",
        "video",
        "document",
        "file_id",
        "file_unique_id",
        "file_size",
        "width",
        "height",
        "length",
        "paid_media",
        "reply_to_message",
        "external_reply",
        "forward_origin",
        "forward_date",
        "is_topic_message",
        "message_thread_id",
        "business_connection_id",
        "message_ids",
        "new_chat_members",
        "migrate_to_chat_id",
    }
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(1 << 64), max_value=1 << 65)
    | st.sampled_from([0, 1, -1, DATE, 1704067199, -1001987654321, (1 << 63) - 1, 1 << 63])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)


def as_json(value: Any) -> bytes:
    """JSON bytes for any value, big integers included (orjson cannot write those)."""
    return json.dumps(value).encode()


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_error(raw: bytes) -> None:
    decode_or_reason(raw)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_raises_only_decode_error(value: Any) -> None:
    decode_or_reason(as_json(value))


update_types = st.sampled_from(
    [
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "callback_query",
    ]
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(update_types, json_values, st.integers() | json_scalars)
def test_arbitrary_updates_raise_only_decode_error(
    update_type: str, body: Any, update_id: Any
) -> None:
    decode_or_reason(as_json({"update_id": update_id, update_type: body}))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside a JSON value, parents before children."""
    found = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_samples_raise_only_decode_error(data: st.DataObject) -> None:
    update = copy.deepcopy(data.draw(st.sampled_from(ALL_SAMPLES)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(update)))
        parent = update
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(json_values)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        if not paths(update):
            break
    decode_or_reason(as_json(update))
