"""From a Telegram stand-in through the receiver, Kafka and a consumer into Cassandra."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from pydantic import SecretStr
from support.consuming import expected_texts, stored_rows

from config.settings import BotSettings, ReceiveMode, Settings
from consumers.app import consumer_parts
from schema.store import Store
from worker.demo.traffic import generate
from worker.metrics import Metrics
from worker.receiver.app import run_receiver
from worker.standin import StandIn

POLL_TOKEN = "700000001:e2e-polling-token-aaaaaaaaaaaaaaaa"
HOOK_TOKEN = "700000002:e2e-webhook-token-bbbbbbbbbbbbbbbb"
SECRET = "e2e-secret"
HOOK_PORT = 18_443


def bridge_settings(settings: Settings, api: str) -> Settings:
    telegram = settings.telegram.model_copy(
        update={
            "bots": [
                BotSettings(token=SecretStr(POLL_TOKEN), mode=ReceiveMode.POLLING),
                BotSettings(
                    token=SecretStr(HOOK_TOKEN),
                    mode=ReceiveMode.WEBHOOK,
                    webhook_secret=SecretStr(SECRET),
                ),
            ],
            "api_base_url": api,
            "poll_timeout_s": 1,
            "webhook_host": "127.0.0.1",
            "webhook_port": HOOK_PORT,
        }
    )
    return settings.model_copy(update={"telegram": telegram})


async def test_updates_by_polling_and_webhook_become_one_row_per_message(
    settings: Settings, store: Store, topics: None
) -> None:
    updates = list(generate(2000, chats=150, seed=61))
    polled, posted = updates[:1500], updates[1500:]
    async with StandIn([POLL_TOKEN, HOOK_TOKEN]) as api:
        s = bridge_settings(settings, api.base_url)
        for raw in polled:
            api.enqueue(raw, POLL_TOKEN)
        receiver_stop, consumer_stop = asyncio.Event(), asyncio.Event()
        receiver = asyncio.create_task(run_receiver(s, Metrics(), receiver_stop))
        async with consumer_parts(s, Metrics()) as parts:
            consumer = asyncio.create_task(parts.loop.run(consumer_stop))
            await _until(lambda: _open(HOOK_PORT), 30, "the webhook server")
            url = f"http://127.0.0.1:{HOOK_PORT}/telegram/700000002"
            async with aiohttp.ClientSession() as http:
                for raw in posted:
                    async with http.post(
                        url, data=raw, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
                    ) as r:
                        assert r.status == 200
            total = len(polled) + len(posted)
            await _until(lambda: _true(parts.loop.stats.records >= total), 120, "every record")
            receiver_stop.set()
            consumer_stop.set()
            await asyncio.gather(receiver, consumer)
        assert api.confirmed_up_to(POLL_TOKEN) >= max(_ids(polled))

    rows = await stored_rows(store, settings.store.keyspace)
    # Private chats are numbered per bot, so each transport's bot has its own identities.
    expected = expected_texts(polled, 700000001) | expected_texts(posted, 700000002)
    got = {(r.chat_id, r.telegram_scope, r.telegram_message_id): r.content for r in rows}
    assert got == expected
    assert len(rows) == len(expected)


def _ids(updates: list[bytes]) -> list[int]:
    import orjson

    return [orjson.loads(u)["update_id"] for u in updates]


async def _open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def _true(value: bool) -> bool:
    return value


async def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.2)
