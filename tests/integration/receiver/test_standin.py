"""The Bot API stand-in behaves as Telegram does where the receiver, aiogram and the demo rely
on it. Loopback only: no Kafka involved."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import aiohttp.web
import orjson
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramConflictError, TelegramUnauthorizedError
from recv_support import TOKEN, WEBHOOK_TOKEN, bot_id_of

from worker.standin import StandIn

pytestmark = pytest.mark.integration


def update(update_id: int, text: str = "x") -> bytes:
    return b'{"update_id":%d,"message":{"text":"%s"}}' % (update_id, text.encode())


async def call(
    http: aiohttp.ClientSession, api: StandIn, method: str, token: str = TOKEN, **params: Any
) -> tuple[int, bytes]:
    async with http.post(f"{api.base_url}/bot{token}/{method}", json=params) as resp:
        return resp.status, await resp.read()


def ids(body: bytes) -> list[int]:
    return [u["update_id"] for u in orjson.loads(body)["result"]]


async def test_offset_limit_and_raw_bytes(standin: StandIn) -> None:
    raws = [update(i) for i in range(1, 8)]
    raws[2] = b'{ "update_id" : 3 , "x":"\\u00e9\\/" }'
    for raw in raws:
        standin.enqueue(raw, TOKEN)
    async with aiohttp.ClientSession() as http:
        status, body = await call(http, standin, "getUpdates", limit=3)
        assert status == 200
        assert body == b'{"ok":true,"result":[' + b",".join(raws[:3]) + b"]}"
        assert standin.confirmed_up_to(TOKEN) == 0, "no offset, nothing confirmed"
        _, body = await call(http, standin, "getUpdates", offset=3)
        assert ids(body) == [3, 4, 5, 6, 7]
        assert standin.confirmed_up_to(TOKEN) == 2
        _, body = await call(http, standin, "getUpdates", offset=-2)
        assert ids(body) == [6, 7], "a negative offset keeps only the last ones"
        assert standin.confirmed_up_to(TOKEN) == 5
        _, body = await call(http, standin, "getUpdates", offset=8, timeout=0)
        assert ids(body) == []
        assert standin.confirmed_up_to(TOKEN) == 7
    with pytest.raises(ValueError):
        standin.enqueue(update(7), TOKEN)
    with pytest.raises(ValueError):
        standin.enqueue(b'{"update_id":"9"}', TOKEN)
    assert standin.next_update_id(TOKEN) == 8


async def test_long_poll_waits_and_wakes_on_enqueue(standin: StandIn) -> None:
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        status, body = await call(http, standin, "getUpdates", timeout=0.3)
        assert (status, ids(body)) == (200, [])
        assert time.monotonic() - started >= 0.3
        poll = asyncio.create_task(call(http, standin, "getUpdates", timeout=10))
        await asyncio.sleep(0.1)
        standin.enqueue(update(1), TOKEN)
        _, body = await asyncio.wait_for(poll, 2)
        assert ids(body) == [1]


async def test_a_newer_poll_ends_the_waiting_one_with_409(standin: StandIn) -> None:
    async with aiohttp.ClientSession() as http:
        first = asyncio.create_task(call(http, standin, "getUpdates", timeout=10))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(call(http, standin, "getUpdates", timeout=0.2))
        status, body = await asyncio.wait_for(first, 2)
        assert status == 409 and b"terminated by other getUpdates" in body
        assert (await second)[0] == 200


async def test_injected_errors_and_unknown_token_or_method(standin: StandIn) -> None:
    standin.fail_next(
        1, status=429, description="Too Many Requests: retry after 3", retry_after=3, token=TOKEN
    )
    async with aiohttp.ClientSession() as http:
        status, body = await call(http, standin, "getUpdates", token=TOKEN)
        assert status == 429
        assert orjson.loads(body)["parameters"] == {"retry_after": 3}
        assert (await call(http, standin, "getUpdates"))[0] == 200
        assert (await call(http, standin, "getUpdates", token="1:nope"))[0] == 401
        assert (await call(http, standin, "sendRocket"))[0] == 404


async def test_aiogram_talks_to_it_with_form_parameters(standin: StandIn) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(standin.base_url))
    bot = Bot(WEBHOOK_TOKEN, session=session)
    try:
        me = await bot.get_me()
        assert (me.id, me.is_bot) == (bot_id_of(WEBHOOK_TOKEN), True)
        standin.enqueue(update(1), WEBHOOK_TOKEN)
        await bot.set_webhook(
            "http://127.0.0.1:9/hook",
            secret_token="abc_DEF-1",
            allowed_updates=["message", "message_reaction"],
            max_connections=7,
        )
        hook = standin.webhook(WEBHOOK_TOKEN)
        assert hook is not None
        assert (hook.secret_token, hook.allowed_updates, hook.max_connections) == (
            "abc_DEF-1",
            ["message", "message_reaction"],
            7,
        )
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        await wait_for_error(bot)
        info = await bot.get_webhook_info()
        assert info.url == "http://127.0.0.1:9/hook"
        assert info.pending_update_count == 1
        assert info.last_error_message
        await bot.delete_webhook(drop_pending_updates=True)
        assert standin.webhook(WEBHOOK_TOKEN) is None
        assert standin.pending(WEBHOOK_TOKEN) == []
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await session.close()
    bad = Bot(
        "123:wrong", session=AiohttpSession(api=TelegramAPIServer.from_base(standin.base_url))
    )
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bad.get_me()
    finally:
        await bad.session.close()


async def wait_for_error(bot: Bot) -> None:
    for _ in range(100):
        if (await bot.get_webhook_info()).last_error_date is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the failed delivery was not recorded")


async def test_webhook_delivery_with_secret_in_order_until_2xx(standin: StandIn) -> None:
    received: list[tuple[str | None, bytes]] = []
    answers = [503, 200, 200, 200]

    async def hook(request: aiohttp.web.Request) -> aiohttp.web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.read())
        )
        return aiohttp.web.Response(status=answers.pop(0) if answers else 200)

    app = aiohttp.web.Application()
    app.router.add_post("/hook", hook)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        raws = [update(1, "a"), update(2, "b"), update(3, "c")]
        for raw in raws:
            standin.enqueue(raw, TOKEN)
        async with aiohttp.ClientSession() as http:
            status, _ = await call(
                http, standin, "setWebhook", url=f"http://127.0.0.1:{port}/hook", secret_token="s_1"
            )
            assert status == 200
            for _ in range(100):
                if not standin.pending(TOKEN):
                    break
                await asyncio.sleep(0.05)
        assert [body for _, body in received] == [raws[0], *raws], "the 503 is retried, in order"
        assert {secret for secret, _ in received} == {"s_1"}
        assert standin.confirmed_up_to(TOKEN) == 3
    finally:
        await runner.cleanup()
