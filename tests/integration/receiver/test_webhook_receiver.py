"""The webhook endpoint into the real Kafka: 200 only once stored, and nothing in from strangers."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from typing import Any

import aiohttp
import orjson
import pytest
from recv_support import (
    OTHER_SECRET,
    TOKEN,
    WEBHOOK_SECRET,
    WEBHOOK_TOKEN,
    Running,
    bot_id_of,
    corpus,
    make_settings,
    read_all,
    update_ids_by_key,
    wait_until,
)
from support.stack import KAFKA

from config import Settings
from worker.metrics import Metrics
from worker.receiver.app import run_receiver
from worker.receiver.bots import ReceiverConfigError
from worker.receiver.webhook import SECRET_HEADER

pytestmark = pytest.mark.integration

BOT_ID = bot_id_of(WEBHOOK_TOKEN)
OTHER_ID = bot_id_of(TOKEN)


def webhook_settings(topic: str, **telegram: Any) -> Settings:
    bots = [
        {"token": WEBHOOK_TOKEN, "mode": "webhook", "webhook_secret": WEBHOOK_SECRET},
        {"token": TOKEN, "mode": "webhook", "webhook_secret": OTHER_SECRET},
    ]
    return make_settings(KAFKA, topic, bots=bots, telegram={"max_body_bytes": 4096, **telegram})


async def test_every_update_posted_is_stored_once_byte_identical(recv_topic: str) -> None:
    updates = corpus(300, first_id=20_000)
    by_chat: dict[bytes, list[bytes]] = defaultdict(list)
    for raw in updates:
        update = orjson.loads(raw)
        payload = next(v for k, v in update.items() if k != "update_id")
        chat = payload.get("chat") or (payload.get("message") or {}).get("chat") or {}
        by_chat[str(chat.get("id", "bot")).encode()].append(raw)
    headers = {SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"}
    statuses: list[int] = []
    async with Running(webhook_settings(recv_topic)) as rx, aiohttp.ClientSession() as http:

        async def post_chat(raws: list[bytes]) -> None:
            # Concurrent across chats, one at a time within a chat, as Telegram delivers.
            for raw in raws:
                async with http.post(rx.url(BOT_ID), data=raw, headers=headers) as resp:
                    statuses.append(resp.status)

        await asyncio.gather(*(post_chat(raws) for raws in by_chat.values()))
        published = rx.metrics.updates_published.labels(str(BOT_ID), "webhook")._value.get()
    assert statuses == [200] * len(updates)
    assert published == len(updates)
    records = await read_all(KAFKA, recv_topic)
    assert Counter(r.value for r in records) == Counter(updates)
    for key, ids in update_ids_by_key(records).items():
        assert ids == sorted(ids), f"order of chat {key!r}"
    assert dict(records[0].headers)["transport"] == b"webhook"
    assert {dict(r.headers)["bot_id"] for r in records} == {str(BOT_ID).encode()}


REFUSALS = [
    # (what, path bot id, headers, body, status, reason)
    ("wrong secret", BOT_ID, {SECRET_HEADER: "guess"}, b'{"update_id":1}', 401, "bad_secret"),
    (
        "other bot's secret",
        BOT_ID,
        {SECRET_HEADER: OTHER_SECRET},
        b'{"update_id":1}',
        401,
        "bad_secret",
    ),
    ("missing secret", BOT_ID, {}, b'{"update_id":1}', 401, "bad_secret"),
    (
        "oversized",
        BOT_ID,
        {SECRET_HEADER: WEBHOOK_SECRET},
        b'{"update_id":1,"t":"' + b"x" * 5000 + b'"}',
        413,
        "too_large",
    ),
    ("not JSON", BOT_ID, {SECRET_HEADER: WEBHOOK_SECRET}, b"update_id=1", 400, "bad_json"),
    ("JSON array", BOT_ID, {SECRET_HEADER: WEBHOOK_SECRET}, b'[{"update_id":1}]', 400, "bad_json"),
    (
        "no update_id",
        BOT_ID,
        {SECRET_HEADER: WEBHOOK_SECRET},
        b'{"message":{}}',
        400,
        "no_update_id",
    ),
    (
        "boolean update_id",
        BOT_ID,
        {SECRET_HEADER: WEBHOOK_SECRET},
        b'{"update_id":true}',
        400,
        "no_update_id",
    ),
    ("unknown bot", 999, {SECRET_HEADER: WEBHOOK_SECRET}, b'{"update_id":1}', 404, "unknown_bot"),
]


async def test_refusals_publish_nothing_and_are_counted(
    recv_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with Running(webhook_settings(recv_topic)) as rx, aiohttp.ClientSession() as http:
        for what, bot_id, headers, body, status, reason in REFUSALS:
            label = bot_id if reason != "unknown_bot" else "unknown"
            before = rx.rejected(reason, label)
            async with http.post(rx.url(bot_id), data=body, headers=headers) as resp:
                assert resp.status == status, what
                assert WEBHOOK_SECRET not in await resp.text()
            assert rx.rejected(reason, label) == before + 1, what

        async def chunks() -> Any:
            for _ in range(10):
                yield b" " * 1000
            yield b'{"update_id":1}'

        # Without a Content-Length, the limit is enforced while reading.
        chunked = {SECRET_HEADER: WEBHOOK_SECRET}
        async with http.post(rx.url(BOT_ID), data=chunks(), headers=chunked) as resp:
            assert resp.status == 413
        # A valid update after all that is the only record.
        ok = {SECRET_HEADER: WEBHOOK_SECRET}
        async with http.post(rx.url(BOT_ID), data=b'{"update_id":77}', headers=ok) as resp:
            assert resp.status == 200
        async with http.get(rx.url(BOT_ID)) as resp:
            assert resp.status == 405
    records = await read_all(KAFKA, recv_topic)
    assert [r.value for r in records] == [b'{"update_id":77}']
    assert WEBHOOK_SECRET not in caplog.text and WEBHOOK_TOKEN not in caplog.text


async def test_telegram_ip_allow_list(recv_topic: str) -> None:
    settings = webhook_settings(recv_topic, restrict_to_telegram_ips=True)
    async with Running(settings) as rx, aiohttp.ClientSession() as http:
        headers = {SECRET_HEADER: WEBHOOK_SECRET}
        async with http.post(rx.url(BOT_ID), data=b'{"update_id":1}', headers=headers) as resp:
            assert resp.status == 403
        assert rx.rejected("forbidden_ip", BOT_ID) == 1
    assert await read_all(KAFKA, recv_topic) == []


async def test_webhook_bot_without_secret_refuses_to_start(recv_topic: str) -> None:
    settings = make_settings(KAFKA, recv_topic, bots=[{"token": WEBHOOK_TOKEN, "mode": "webhook"}])
    with pytest.raises(ReceiverConfigError) as info:
        await run_receiver(settings, Metrics(), asyncio.Event())
    assert str(BOT_ID) in str(info.value)
    assert WEBHOOK_TOKEN.partition(":")[2] not in str(info.value)


async def test_stop_under_load_keeps_every_update_answered_200(recv_topic: str) -> None:
    updates = corpus(400, first_id=60_000)
    headers = {SECRET_HEADER: WEBHOOK_SECRET}
    answered: dict[bytes, int] = {}
    rx = Running(webhook_settings(recv_topic))
    await rx.__aenter__()
    async with aiohttp.ClientSession() as http:

        async def post(raw: bytes) -> None:
            try:
                async with http.post(rx.url(BOT_ID), data=raw, headers=headers) as resp:
                    answered[raw] = resp.status
            except aiohttp.ClientError:
                answered[raw] = 0

        posts = [asyncio.create_task(post(raw)) for raw in updates]
        await wait_until(
            lambda: sum(1 for s in answered.values() if s == 200) >= 50, 20, "50 answers"
        )
        await rx.__aexit__(None, None, None)
        await asyncio.gather(*posts)
    stored = Counter(r.value for r in await read_all(KAFKA, recv_topic))
    ok = [raw for raw, status in answered.items() if status == 200]
    assert len(ok) >= 50
    assert all(stored[raw] == 1 for raw in ok), "a 200 always means stored"
    assert set(answered.values()) <= {200, 0, 503}, "the rest is refused, so Telegram retries"
