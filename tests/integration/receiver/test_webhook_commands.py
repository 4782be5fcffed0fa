"""`tgbridge webhook set|info|delete` against the stand-in, delivering to the receiver."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from click.testing import CliRunner, Result
from recv_support import (
    TOKEN,
    WEBHOOK_SECRET,
    WEBHOOK_TOKEN,
    Running,
    bot_id_of,
    corpus,
    make_settings,
    read_all,
    wait_until,
)
from support.stack import KAFKA

import worker.receiver.cli as receiver_cli
from config import Settings
from config.settings import DEFAULT_ALLOWED_UPDATES
from worker.lifecycle import EXIT_CONFIG
from worker.standin import StandIn

pytestmark = pytest.mark.integration

BOT_ID = bot_id_of(WEBHOOK_TOKEN)


async def invoke(monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str) -> Result:
    """Run a webhook command in a thread (it runs its own event loop) with these settings."""
    monkeypatch.setattr(receiver_cli, "_settings", lambda: settings)
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, receiver_cli.webhook_group, list(args))


async def test_set_delivers_to_the_receiver_then_info_and_delete(
    standin: StandIn, recv_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    updates = corpus(30, first_id=50_000)
    for raw in updates:
        standin.enqueue(raw, WEBHOOK_TOKEN)
    bots = [
        {"token": WEBHOOK_TOKEN, "mode": "webhook", "webhook_secret": WEBHOOK_SECRET},
        {"token": TOKEN, "mode": "polling"},
    ]
    settings = make_settings(KAFKA, recv_topic, bots=bots, api_base_url=standin.base_url)
    port = settings.telegram.webhook_port
    settings.telegram.webhook_public_url = f"http://127.0.0.1:{port}/"
    async with Running(settings):
        result = await invoke(monkeypatch, settings, "set")
        assert result.exit_code == 0, result.output
        url = f"http://127.0.0.1:{port}/telegram/{BOT_ID}"
        assert result.output.strip() == f"bot {BOT_ID}: webhook set to {url}"
        hook = standin.webhook(WEBHOOK_TOKEN)
        assert hook is not None and hook.url == url
        assert hook.secret_token == WEBHOOK_SECRET
        assert hook.allowed_updates == list(DEFAULT_ALLOWED_UPDATES)
        assert hook.max_connections == 40
        assert standin.webhook(TOKEN) is None, "the polling bot keeps polling"
        await wait_until(lambda: not standin.pending(WEBHOOK_TOKEN), 20, "delivery")

        info = await invoke(monkeypatch, settings, "info", "--bot", str(BOT_ID))
        assert info.exit_code == 0, info.output
        assert f"url: {url}" in info.output
        assert "pending_update_count: 0" in info.output
        assert "message_reaction" in info.output
        assert WEBHOOK_TOKEN not in info.output and WEBHOOK_SECRET not in info.output

        standin.enqueue(b'{"update_id":60000,"poll":{"id":"p"}}', WEBHOOK_TOKEN)
        deleted = await invoke(monkeypatch, settings, "delete", "--bot", str(BOT_ID))
        assert deleted.exit_code == 0, deleted.output
        assert standin.webhook(WEBHOOK_TOKEN) is None
    assert Counter(r.value for r in await read_all(KAFKA, recv_topic)) >= Counter(updates)


async def test_set_refuses_without_public_url_or_for_a_polling_bot(
    standin: StandIn, recv_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bots = [
        {"token": WEBHOOK_TOKEN, "mode": "webhook", "webhook_secret": WEBHOOK_SECRET},
        {"token": TOKEN, "mode": "polling"},
    ]
    settings = make_settings(KAFKA, recv_topic, bots=bots, api_base_url=standin.base_url)
    result = await invoke(monkeypatch, settings, "set")
    assert result.exit_code == EXIT_CONFIG
    assert "TGBRIDGE_TELEGRAM__WEBHOOK_PUBLIC_URL" in result.output
    settings.telegram.webhook_public_url = "https://bot.example.com"
    result = await invoke(monkeypatch, settings, "set", "--bot", str(bot_id_of(TOKEN)))
    assert result.exit_code == EXIT_CONFIG
    assert "polling mode" in result.output
    assert standin.calls(WEBHOOK_TOKEN) == [] and standin.calls(TOKEN) == []


async def test_telegram_errors_are_reported_without_the_token(
    standin: StandIn, recv_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bots = [{"token": WEBHOOK_TOKEN, "mode": "webhook", "webhook_secret": WEBHOOK_SECRET}]
    settings = make_settings(KAFKA, recv_topic, bots=bots, api_base_url=standin.base_url)
    standin.fail_next(
        1, status=401, description="Unauthorized", method="getWebhookInfo", token=WEBHOOK_TOKEN
    )
    result = await invoke(monkeypatch, settings, "info")
    assert result.exit_code != 0
    assert "Unauthorized" in result.output
    assert WEBHOOK_TOKEN not in result.output


async def test_pending_updates_are_kept_unless_dropping_is_asked_for(
    standin: StandIn, recv_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bots = [{"token": WEBHOOK_TOKEN, "mode": "webhook", "webhook_secret": WEBHOOK_SECRET}]
    settings = make_settings(KAFKA, recv_topic, bots=bots, api_base_url=standin.base_url)
    # Nobody listens there: Telegram keeps the update pending.
    settings.telegram.webhook_public_url = "http://127.0.0.1:9"
    standin.enqueue(b'{"update_id":1,"message":{"chat":{"id":1}}}', WEBHOOK_TOKEN)
    assert (await invoke(monkeypatch, settings, "set")).exit_code == 0
    assert len(standin.pending(WEBHOOK_TOKEN)) == 1
    assert (await invoke(monkeypatch, settings, "delete")).exit_code == 0
    assert len(standin.pending(WEBHOOK_TOKEN)) == 1
    dropped = await invoke(monkeypatch, settings, "set", "--drop-pending-updates")
    assert dropped.exit_code == 0 and "pending updates dropped" in dropped.output
    assert standin.pending(WEBHOOK_TOKEN) == []
