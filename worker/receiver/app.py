"""The receiver process: every bot's intake (long polling or webhook) feeding one Kafka producer.

Start-up order is Kafka first (nothing is taken from Telegram that cannot be stored), then the
bots. Shutdown runs the other way within ``worker.shutdown_timeout_s``: stop intake, let
publishes in flight finish, confirm polled offsets to Telegram, flush and close the producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from config import BotSettings, ReceiveMode, Settings, TelegramSettings
from worker.metrics import Metrics
from worker.receiver.backoff import Backoff
from worker.receiver.bots import ReceiverConfigError, bots_in, check_bots
from worker.receiver.health import ReceiverHealth
from worker.receiver.polling import PollingReceiver
from worker.receiver.publisher import Publisher
from worker.receiver.redact import describe
from worker.receiver.webhook import WebhookServer

log = logging.getLogger(__name__)

#: How often a webhook bot's backlog (getWebhookInfo's pending_update_count) is read.
PENDING_INTERVAL_S = 30.0


def make_bot(bot: BotSettings, telegram: TelegramSettings) -> Bot:
    """An aiogram Bot talking to ``telegram.api_base_url`` (Telegram, or a local Bot API server)."""
    api = TelegramAPIServer.from_base(telegram.api_base_url)
    return Bot(bot.token.get_secret_value(), session=AiohttpSession(api=api))


async def run_receiver(
    settings: Settings,
    metrics: Metrics,
    stop: asyncio.Event,
    *,
    health: ReceiverHealth | None = None,
    backoff: Callable[[], Backoff] = Backoff,
    on_ready: Callable[[WebhookServer | None], None] | None = None,
) -> None:
    """Receive until ``stop`` is set, then drain and return; raise if the receiver cannot run.

    ``health`` is kept up to date for a readiness probe; ``backoff`` makes each bot's retry
    policy; ``on_ready`` is called once intake has started, with the webhook server if any.
    """
    telegram = settings.telegram
    check_bots(telegram)
    health = health if health is not None else ReceiverHealth()
    tokens = [b.token.get_secret_value() for b in telegram.bots]
    webhook_bots = bots_in(telegram, ReceiveMode.WEBHOOK)
    polling_bots = bots_in(telegram, ReceiveMode.POLLING)
    deadline = settings.worker.shutdown_timeout_s

    async with AsyncExitStack() as stack:
        publisher = Publisher(settings.kafka, max_value_bytes=telegram.max_body_bytes)
        stack.push_async_callback(publisher.stop)
        await publisher.start()
        health.kafka_ok = True

        bots: dict[int, Bot] = {}
        for b in telegram.bots:
            bots[b.bot_id] = make_bot(b, telegram)
            stack.push_async_callback(bots[b.bot_id].session.close)

        server: WebhookServer | None = None
        if webhook_bots:
            try:
                server = WebhookServer(
                    webhook_bots,
                    telegram,
                    publisher,
                    metrics,
                    health,
                    shutdown_timeout_s=min(deadline, settings.kafka.publish_timeout_s + 1),
                )
                await server.start()
            except OSError as exc:
                raise ReceiverConfigError(
                    f"cannot listen on {telegram.webhook_host}:{telegram.webhook_port}: {exc}"
                ) from None
            finally:
                if server is not None:
                    stack.push_async_callback(server.stop)

        draining = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        watchers: list[asyncio.Task[None]] = []
        stack.push_async_callback(_cancel, tasks, watchers)
        for b in polling_bots:
            receiver = PollingReceiver(
                b, telegram, bots[b.bot_id], publisher, metrics, health, backoff()
            )
            tasks.append(asyncio.create_task(receiver.run(draining), name=f"poll-{b.bot_id}"))
        for b in webhook_bots:
            watcher = _watch_pending(b.bot_id, bots[b.bot_id], metrics, health, draining, tokens)
            watchers.append(asyncio.create_task(watcher, name=f"pending-{b.bot_id}"))
        if on_ready is not None:
            on_ready(server)

        crashed = await _until_stop_or_crash(stop, tasks)
        draining.set()
        log.info("receiver stopping: intake closed, draining within %.0f s", deadline)
        try:
            async with asyncio.timeout(deadline):
                if server is not None:
                    await server.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                await publisher.flush()
        except TimeoutError:
            log.warning("receiver did not drain within %.0f s; leaving the rest", deadline)
        await _cancel(tasks, watchers)
        if crashed is not None:
            raise crashed
    log.info("receiver stopped")


async def _cancel(*groups: list[asyncio.Task[None]]) -> None:
    """Cancel what is still running (a deadline passed, or start-up failed) and wait for it."""
    tasks = [t for group in groups for t in group]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _until_stop_or_crash(
    stop: asyncio.Event, tasks: list[asyncio.Task[None]]
) -> BaseException | None:
    """Wait for ``stop``; a polling task that ends on its own is a crash, returned here."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    for task in tasks:
        if task.done():
            if not task.cancelled() and task.exception() is not None:
                return task.exception()
            return RuntimeError(f"{task.get_name()} ended before the receiver was stopped")
    return None


async def _watch_pending(
    bot_id: int,
    bot: Bot,
    metrics: Metrics,
    health: ReceiverHealth,
    draining: asyncio.Event,
    tokens: list[str],
) -> None:
    """Keep Telegram's backlog for a webhook bot in the gauge and the health object."""
    gauge = metrics.pending_updates.labels(str(bot_id))
    while not draining.is_set():
        try:
            info = await bot.get_webhook_info(request_timeout=10)
        except Exception as exc:
            log.warning("bot %d: getWebhookInfo failed: %s", bot_id, describe(exc, tokens))
        else:
            gauge.set(info.pending_update_count)
            health.pending_update_count[bot_id] = info.pending_update_count
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(draining.wait(), PENDING_INTERVAL_S)
