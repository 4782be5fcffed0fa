"""Kafka goes down under a running receiver and comes back: nothing is confirmed or answered 200
while it is down, and every update arrives once it is back. Uses a private broker, so the shared
one other tests use never stops."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest
from recv_support import (
    TOKEN,
    WEBHOOK_SECRET,
    WEBHOOK_TOKEN,
    PrivateKafka,
    Running,
    bot_id_of,
    corpus,
    delete_topic,
    make_settings,
    read_all,
    wait_until,
)

from worker.receiver.health import ReceiverHealth
from worker.receiver.webhook import SECRET_HEADER
from worker.standin import StandIn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TOPIC = "test.recv.outage"


async def test_outage_confirms_nothing_answers_503_and_loses_nothing(
    standin: StandIn, private_kafka: PrivateKafka
) -> None:
    bots = [
        {"token": TOKEN, "mode": "polling"},
        {"token": WEBHOOK_TOKEN, "mode": "webhook", "webhook_secret": WEBHOOK_SECRET},
    ]
    settings = make_settings(
        private_kafka.bootstrap,
        TOPIC,
        bots=bots,
        api_base_url=standin.base_url,
        kafka={"publish_timeout_s": 1.5},
    )
    polled = corpus(60, first_id=70_000)
    posted = corpus(60, first_id=80_000)
    headers = {SECRET_HEADER: WEBHOOK_SECRET}
    health = ReceiverHealth()

    async with Running(settings, health=health) as rx, aiohttp.ClientSession() as http:
        url = rx.url(bot_id_of(WEBHOOK_TOKEN))

        async def post(raw: bytes) -> int:
            async with http.post(url, data=raw, headers=headers) as resp:
                return resp.status

        for raw in polled[:20]:
            standin.enqueue(raw, TOKEN)
        assert await asyncio.gather(*(post(r) for r in posted[:20])) == [200] * 20
        await wait_until(lambda: standin.confirmed_up_to(TOKEN) == 70_019, 20, "phase 1")

        await private_kafka.stop()
        for raw in polled[20:40]:
            standin.enqueue(raw, TOKEN)
        statuses = await asyncio.gather(*(post(r) for r in posted[20:40]))
        assert statuses == [503] * 20, "no 200 without Kafka's acknowledgement"
        assert rx.rejected("kafka_unavailable", bot_id_of(WEBHOOK_TOKEN)) == 20
        assert not health.kafka_ok
        await asyncio.sleep(2)
        assert standin.confirmed_up_to(TOKEN) == 70_019, "nothing confirmed while Kafka is down"

        await private_kafka.start()
        for raw in polled[40:]:
            standin.enqueue(raw, TOKEN)
        # Telegram retries what got a 503; the rest is new.
        remaining = list(posted[20:])
        while remaining:
            statuses = await asyncio.gather(*(post(r) for r in remaining))
            remaining = [r for r, s in zip(remaining, statuses, strict=True) if s != 200]
            if remaining:
                await asyncio.sleep(0.5)
        await wait_until(lambda: standin.confirmed_up_to(TOKEN) == 70_059, 60, "polling caught up")
        assert health.kafka_ok

    values = Counter(r.value for r in await read_all(private_kafka.bootstrap, TOPIC))
    missing = [raw for raw in polled + posted if values[raw] == 0]
    assert not missing, f"{len(missing)} updates lost"
    await delete_topic(private_kafka.bootstrap, TOPIC)
