"""The benchmark's traffic: the demo generator's updates, laid out as the receiver publishes them.

Each phase of a run gets its own *epoch*: the same shape of traffic (thousands of chats, five hot
ones carrying about half of it, about 10% edits, photos with captions, replies, forum topics,
channel posts) with Telegram message ids and dates moved out of every other epoch's way, so a
latency or soak phase writes new messages instead of re-reading duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from consumers.model import Scope
from worker.demo.traffic import BASE_DATE, BOT_ID, generate

#: Telegram message ids of epoch ``e`` start above ``e * ID_STRIDE``.
ID_STRIDE = 10_000_000
#: Each epoch starts 30 days after the previous one.
DATE_STRIDE = 30 * 86_400
CHATS = 3_000
SEED = 7

_MESSAGE_ID = re.compile(rb'"message_id":(\d+)')

Identity = tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class Update:
    """One raw update with what the benchmark needs to follow it into the store."""

    raw: bytes
    key: bytes
    identity: Identity
    is_edit: bool


def updates(n: int, epoch: int = 0, chats: int = CHATS, seed: int = SEED) -> Iterator[Update]:
    """``n`` updates of the given epoch, deterministic for (epoch, chats, seed)."""
    shift = epoch * ID_STRIDE
    raws = generate(n, chats=chats, seed=seed + epoch, start_date=BASE_DATE + epoch * DATE_STRIDE)
    for raw in raws:
        if shift:
            raw = _MESSAGE_ID.sub(lambda m: b'"message_id":%d' % (int(m[1]) + shift), raw)
        yield describe(raw)


def describe(raw: bytes) -> Update:
    update = orjson.loads(raw)
    kind = next(k for k in update if k != "update_id")
    message = update[kind]
    chat = message["chat"]
    scope = Scope.CHAT if chat["type"] in ("supergroup", "channel") else Scope.bot(BOT_ID)
    return Update(
        raw,
        b"%d" % chat["id"],
        (chat["id"], scope, message["message_id"]),
        kind.startswith("edited_"),
    )


def headers(received_at_ms: int) -> list[tuple[str, bytes]]:
    """The receiver's record headers (``worker.receiver.keys.record_headers``)."""
    return [
        ("bot_id", b"%d" % BOT_ID),
        ("received_at", b"%d" % received_at_ms),
        ("transport", b"bench"),
    ]
