"""Long polling against the Bot API stand-in into the real Kafka: every update once, as sent."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import aiohttp
import orjson
import pytest
from recv_support import (
    TOKEN,
    bot_id_of,
    corpus,
    fast_backoff,
    make_settings,
    read_all,
    update_ids_by_key,
    wait_until,
)
from support.stack import KAFKA

from worker.metrics import Metrics
from worker.receiver.app import run_receiver
from worker.receiver.health import ReceiverHealth
from worker.standin import StandIn

pytestmark = pytest.mark.integration


async def start(settings, metrics: Metrics, health: ReceiverHealth | None = None):  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_receiver(settings, metrics, stop, health=health, backoff=fast_backoff)
    )
    return stop, task


async def test_every_update_arrives_once_byte_identical_in_chat_order(
    standin: StandIn, recv_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    updates = corpus(320)
    for raw in updates[:150]:
        standin.enqueue(raw, TOKEN)
    settings = make_settings(
        KAFKA, recv_topic, bots=[{"token": TOKEN, "mode": "polling"}], api_base_url=standin.base_url
    )
    metrics = Metrics()
    health = ReceiverHealth()
    stop, task = await start(settings, metrics, health)
    last_id = orjson.loads(updates[-1])["update_id"]
    await wait_until(
        lambda: standin.confirmed_up_to(TOKEN) >= orjson.loads(updates[149])["update_id"],
        30,
        "first wave",
    )
    # The rest arrive while the receiver long-polls, a few at a time.
    for i in range(150, len(updates), 17):
        for raw in updates[i : i + 17]:
            standin.enqueue(raw, TOKEN)
        await asyncio.sleep(0.02)
    await wait_until(lambda: standin.confirmed_up_to(TOKEN) >= last_id, 30, "all confirmed")
    stop.set()
    await asyncio.wait_for(task, 15)

    records = await read_all(KAFKA, recv_topic)
    values = [r.value for r in records]
    assert Counter(values) == Counter(updates), "each update exactly once, byte for byte"
    sent_order = {orjson.loads(raw)["update_id"]: n for n, raw in enumerate(updates)}
    for key, ids in update_ids_by_key(records).items():
        assert ids == sorted(ids, key=sent_order.__getitem__), f"order of key {key!r}"
    headers = dict(records[0].headers)
    assert headers["bot_id"] == str(bot_id_of(TOKEN)).encode()
    assert headers["transport"] == b"polling"
    assert headers["received_at"].isdigit()
    assert {r.key for r in records} >= {b"11", b"-1001000000001", b"bot:%d" % bot_id_of(TOKEN)}
    assert standin.pending(TOKEN) == []
    label = str(bot_id_of(TOKEN))
    assert metrics.updates_published.labels(label, "polling")._value.get() == len(updates)
    assert health.kafka_ok
    assert TOKEN not in caplog.text and TOKEN.partition(":")[2] not in caplog.text


async def test_telegram_errors_back_off_and_lose_nothing(
    standin: StandIn, recv_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    updates = corpus(40, first_id=5000)
    for raw in updates:
        standin.enqueue(raw, TOKEN)
    standin.fail_next(2, status=502, description="Bad Gateway", token=TOKEN)
    standin.fail_next(
        1, status=429, description="Too Many Requests: retry after 1", retry_after=1, token=TOKEN
    )
    standin.fail_next(1, status=500, description="Internal Server Error", token=TOKEN)
    settings = make_settings(
        KAFKA, recv_topic, bots=[{"token": TOKEN}], api_base_url=standin.base_url
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop, task = await start(settings, Metrics())
    await wait_until(lambda: standin.confirmed_up_to(TOKEN) >= 5039, 30, "all confirmed")
    # The 429 asked for a one second wait, which was honoured.
    assert loop.time() - started >= 1.0
    stop.set()
    await asyncio.wait_for(task, 15)
    assert Counter(r.value for r in await read_all(KAFKA, recv_topic)) == Counter(updates)
    calls = standin.calls(TOKEN, "getUpdates")
    assert 5 <= len(calls) <= 12, "errors are retried with back-off, not in a tight loop"
    assert "429" in caplog.text
    assert TOKEN not in caplog.text


async def test_webhook_conflict_is_logged_clearly_then_polling_resumes(
    standin: StandIn, recv_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    updates = corpus(5, first_id=9000)
    for raw in updates:
        standin.enqueue(raw, TOKEN)
    async with aiohttp.ClientSession() as http:
        base = f"{standin.base_url}/bot{TOKEN}"
        # The stand-in delivers to this URL (nobody listens): updates stay queued.
        await http.post(f"{base}/setWebhook", json={"url": "http://127.0.0.1:9/hook"})
        settings = make_settings(
            KAFKA, recv_topic, bots=[{"token": TOKEN}], api_base_url=standin.base_url
        )
        stop, task = await start(settings, Metrics())
        await wait_until(lambda: "webhook delete" in caplog.text, 10, "the conflict log line")
        assert standin.confirmed_up_to(TOKEN) == 0
        await http.post(f"{base}/deleteWebhook")
    await wait_until(lambda: standin.confirmed_up_to(TOKEN) >= 9004, 20, "polling resumed")
    stop.set()
    await asyncio.wait_for(task, 15)
    conflict = [r for r in caplog.records if "409" in r.getMessage()]
    assert conflict and conflict[0].levelno == logging.ERROR
    assert Counter(r.value for r in await read_all(KAFKA, recv_topic)) == Counter(updates)


async def test_stop_during_long_poll_confirms_what_was_published(
    standin: StandIn, recv_topic: str
) -> None:
    updates = corpus(30, first_id=7000)
    for raw in updates:
        standin.enqueue(raw, TOKEN)
    settings = make_settings(
        KAFKA,
        recv_topic,
        bots=[{"token": TOKEN}],
        api_base_url=standin.base_url,
        telegram={"poll_timeout_s": 50},
    )
    stop, task = await start(settings, Metrics())
    await wait_until(lambda: len(standin.calls(TOKEN, "getUpdates")) >= 2, 20, "the long poll")
    loop = asyncio.get_running_loop()
    stopping = loop.time()
    stop.set()
    await asyncio.wait_for(task, 15)
    assert loop.time() - stopping < 5, "a 50 s long poll does not delay the stop"
    assert standin.confirmed_up_to(TOKEN) == 7029
    last = standin.calls(TOKEN, "getUpdates")[-1]
    assert last["offset"] == 7030
