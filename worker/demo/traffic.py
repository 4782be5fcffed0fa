"""Synthetic Telegram traffic shaped like real chats, for the demo, the tests and the benchmarks.

Updates are built as the Bot API sends them (plain JSON objects): many chats with a few hot ones
taking most of the volume, about 10% edits, media with captions, replies, albums, forum topics,
channel posts and business messages. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

BASE_DATE = 1_767_225_600  # 2026-01-01T00:00:00Z
BOT_ID = 7_000_000_001

_WORDS = (
    "hello world deploy kafka scylla bucket snowflake replay edit photo sunny"
    " привет мир 你好 🙂 🚀 café naïve"
).split()


def user(uid: int) -> dict[str, Any]:
    return {"id": uid, "is_bot": False, "first_name": f"User{uid}", "username": f"user{uid}"}


def supergroup(chat_id: int, forum: bool = False) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "title": f"Group {chat_id}", "type": "supergroup"}
    if forum:
        chat["is_forum"] = True
    return chat


def private(uid: int) -> dict[str, Any]:
    return {"id": uid, "first_name": f"User{uid}", "type": "private"}


def channel(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "title": f"Channel {chat_id}", "type": "channel"}


def text_message(
    message_id: int, chat: dict[str, Any], date: int, text: str, author: int | None = 1
) -> dict[str, Any]:
    msg: dict[str, Any] = {"message_id": message_id, "date": date, "chat": chat, "text": text}
    if author is not None:
        msg["from"] = user(author)
    return msg


def update(update_id: int, kind: str, message: dict[str, Any]) -> bytes:
    return orjson.dumps({"update_id": update_id, kind: message})


@dataclass
class _Chat:
    chat: dict[str, Any]
    kind: str = "message"
    next_id: int = 1
    sent: list[tuple[int, int]] = field(default_factory=list)  # (message_id, date)
    forum: bool = False


def generate(
    n: int, chats: int = 1000, seed: int = 7, start_date: int = BASE_DATE
) -> Iterator[bytes]:
    """Yield ``n`` raw updates across ``chats`` chats; 5 hot chats carry about half the volume."""
    rng = random.Random(seed)
    pool: list[_Chat] = []
    for i in range(chats):
        roll = i % 20
        if roll == 0:
            pool.append(_Chat(channel(-1_001_000_000_000 - i), kind="channel_post"))
        elif roll == 1:
            pool.append(_Chat(supergroup(-1_002_000_000_000 - i, forum=True), forum=True))
        elif roll in (2, 3):
            pool.append(_Chat(private(10_000 + i)))
        else:
            pool.append(_Chat(supergroup(-1_003_000_000_000 - i)))
    hot = pool[:5]
    date = start_date
    last_edit = 0
    for update_id in range(1, n + 1):
        c = rng.choice(hot) if rng.random() < 0.5 else rng.choice(pool)
        date += rng.choice((0, 0, 1))
        if c.sent and rng.random() < 0.1:
            mid, sent = rng.choice(c.sent[-50:])
            msg = _content(rng, mid, c, sent)
            # Strictly increasing edit dates, so "the newest edit wins" has one right answer.
            last_edit = max(date, sent + 1, last_edit + 1)
            msg["edit_date"] = last_edit
            kind = "edited_channel_post" if c.kind == "channel_post" else "edited_message"
            yield update(update_id, kind, msg)
            continue
        mid = c.next_id
        c.next_id += 1
        msg = _content(rng, mid, c, date)
        if c.sent and rng.random() < 0.15:
            reply_id, reply_date = rng.choice(c.sent[-20:])
            msg["reply_to_message"] = _content(rng, reply_id, c, reply_date)
        c.sent.append((mid, date))
        if len(c.sent) > 200:
            del c.sent[:100]
        yield update(update_id, c.kind, msg)


def _content(rng: random.Random, mid: int, c: _Chat, date: int) -> dict[str, Any]:
    author = None if c.kind == "channel_post" else rng.randint(1, 500)
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 12)))
    msg = text_message(mid, c.chat, date, text, author)
    if c.kind == "channel_post":
        msg["sender_chat"] = c.chat
    if c.forum and rng.random() < 0.7:
        msg["message_thread_id"] = rng.choice((3, 5, 8))
        msg["is_topic_message"] = True
    if rng.random() < 0.2:
        del msg["text"]
        msg["caption"] = text
        fid = f"AgAC{mid:08d}{c.chat['id']}"
        msg["photo"] = [
            {
                "file_id": fid + "s",
                "file_unique_id": f"u{mid}s",
                "width": 90,
                "height": 90,
                "file_size": 1200,
            },
            {
                "file_id": fid,
                "file_unique_id": f"u{mid}",
                "width": 1280,
                "height": 960,
                "file_size": 98_000,
            },
        ]
    return msg
