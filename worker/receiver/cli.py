"""``tgbridge receiver`` and ``tgbridge webhook set|info|delete``.

Nothing printed here ever shows a token: Telegram's answers and errors pass through
:func:`~worker.receiver.redact.redact` first. aiogram is imported only when a command runs: it
takes seconds to import, which every other ``tgbridge`` command would otherwise pay.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import TYPE_CHECKING, NoReturn

import click

from config import BotSettings, ReceiveMode, Settings
from worker.lifecycle import (
    EXIT_CONFIG,
    EXIT_CRASH,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    install_stop_signals,
)
from worker.metrics import Metrics
from worker.receiver.bots import ReceiverConfigError, check_bots
from worker.receiver.redact import describe, redact

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)


def _settings() -> Settings:
    # Imported here: worker.cli imports this module while registering its commands.
    from worker.cli import settings_or_exit

    return settings_or_exit()


def _tokens(settings: Settings) -> list[str]:
    return [b.token.get_secret_value() for b in settings.telegram.bots]


@click.command("receiver")
def receiver_command() -> None:
    """Receive Telegram updates (long polling and webhook bots) and publish them to Kafka."""
    settings = _settings()
    raise SystemExit(asyncio.run(_serve(settings)))


async def _serve(settings: Settings) -> int:
    tokens = _tokens(settings)
    try:
        check_bots(settings.telegram)
    except ReceiverConfigError as exc:
        log.error("receiver cannot start: %s", redact(str(exc), tokens))
        return EXIT_CONFIG
    from worker.http import start_ops_server
    from worker.receiver.app import run_receiver
    from worker.receiver.health import ReceiverHealth
    from worker.receiver.publisher import KafkaUnavailable

    stop = asyncio.Event()
    install_stop_signals(stop)
    metrics, health = Metrics(), ReceiverHealth()
    limit = settings.worker.pending_update_limit

    async def readiness() -> list[str]:
        problems = [] if health.kafka_ok else ["Kafka has not acknowledged the latest publish"]
        problems += [
            f"bot {bot_id}: Telegram holds {n} pending updates (limit {limit})"
            for bot_id, n in health.pending_update_count.items()
            if limit and n > limit
        ]
        return problems

    w = settings.worker
    runner = await start_ops_server(metrics, readiness, w.metrics_host, w.metrics_port)
    try:
        await run_receiver(settings, metrics, stop, health=health)
    except ReceiverConfigError as exc:
        log.error("receiver cannot start: %s", redact(str(exc), tokens))
        return EXIT_CONFIG
    except KafkaUnavailable as exc:
        log.error("receiver cannot start: %s", redact(str(exc), tokens))
        return EXIT_UNAVAILABLE
    except Exception as exc:
        trace = "".join(traceback.format_exception(exc))
        log.error("receiver crashed: %s", redact(trace, tokens))
        return EXIT_CRASH
    finally:
        await runner.cleanup()
    return EXIT_OK


@click.group("webhook")
def webhook_group() -> None:
    """Set, show or delete the Telegram webhook of the configured bots."""


_bot_option = click.option(
    "--bot", "bot_id", type=int, default=None, help="Only this bot (its numeric id)."
)
_drop_option = click.option(
    "--drop-pending-updates",
    is_flag=True,
    default=False,
    help="Also discard the updates Telegram holds for the bot (they are lost).",
)


@webhook_group.command("set")
@_bot_option
@click.option(
    "--drop-pending-updates/--keep-pending-updates",
    default=None,
    help="Discard the updates Telegram holds for the bot (they are lost). "
    "Default: TGBRIDGE_TELEGRAM__DROP_PENDING_UPDATES, which is off.",
)
def webhook_set(bot_id: int | None, drop_pending_updates: bool | None) -> None:
    """Point Telegram at this receiver: WEBHOOK_PUBLIC_URL + WEBHOOK_PATH, with the bot's secret."""
    settings = _settings()
    telegram = settings.telegram
    drop = telegram.drop_pending_updates if drop_pending_updates is None else drop_pending_updates
    if not telegram.webhook_public_url:
        _fail("set TGBRIDGE_TELEGRAM__WEBHOOK_PUBLIC_URL (e.g. https://bot.example.com)")
    bots = _select(settings, bot_id, webhook_only=True)
    for bot in bots:
        if bot.webhook_secret is None:
            _fail(f"bot {bot.bot_id} has no webhook_secret: give it one in TGBRIDGE_TELEGRAM__BOTS")
    base = (telegram.webhook_public_url or "").rstrip("/")

    async def apply(bot: BotSettings, client: Bot) -> None:
        url = base + telegram.webhook_path.replace("{bot_id}", str(bot.bot_id))
        assert bot.webhook_secret is not None
        await client.set_webhook(
            url=url,
            secret_token=bot.webhook_secret.get_secret_value(),
            allowed_updates=list(telegram.allowed_updates),
            max_connections=telegram.webhook_max_connections,
            drop_pending_updates=drop,
        )
        dropped = " (pending updates dropped)" if drop else ""
        click.echo(f"bot {bot.bot_id}: webhook set to {url}{dropped}")

    _run_each(settings, bots, apply)


@webhook_group.command("info")
@_bot_option
def webhook_info(bot_id: int | None) -> None:
    """Show what Telegram knows of each bot's webhook and how many updates wait."""
    settings = _settings()

    async def show(bot: BotSettings, client: Bot) -> None:
        info = await client.get_webhook_info()
        last_error = "none"
        if info.last_error_date is not None:
            when = info.last_error_date.astimezone(UTC).isoformat()
            last_error = f"{when} {info.last_error_message or ''}".strip()
        lines = [
            f"bot {bot.bot_id}",
            f"  url: {info.url or '(none: long polling)'}",
            f"  pending_update_count: {info.pending_update_count}",
            f"  last_error: {last_error}",
            f"  max_connections: {info.max_connections or '-'}",
            f"  allowed_updates: {', '.join(info.allowed_updates or []) or '(default)'}",
        ]
        click.echo(redact("\n".join(lines), _tokens(settings)))

    _run_each(settings, _select(settings, bot_id, webhook_only=False), show)


@webhook_group.command("delete")
@_bot_option
@_drop_option
def webhook_delete(bot_id: int | None, drop_pending_updates: bool) -> None:
    """Remove the webhook so the bot can be long polled again."""
    settings = _settings()

    async def apply(bot: BotSettings, client: Bot) -> None:
        await client.delete_webhook(drop_pending_updates=drop_pending_updates)
        dropped = " (pending updates dropped)" if drop_pending_updates else ""
        click.echo(f"bot {bot.bot_id}: webhook deleted{dropped}")

    _run_each(settings, _select(settings, bot_id, webhook_only=False), apply)


def _select(settings: Settings, bot_id: int | None, *, webhook_only: bool) -> list[BotSettings]:
    telegram = settings.telegram
    bots = telegram.bots
    if bot_id is not None:
        bots = [b for b in bots if b.bot_id == bot_id]
        if not bots:
            _fail(f"no configured bot has id {bot_id}")
    if webhook_only:
        if bot_id is not None and telegram.mode_of(bots[0]) is not ReceiveMode.WEBHOOK:
            _fail(f"bot {bot_id} is in polling mode; a webhook would stop its long polling")
        bots = [b for b in bots if telegram.mode_of(b) is ReceiveMode.WEBHOOK]
    if not bots:
        _fail("no bot to act on" + (" (no bot is in webhook mode)" if webhook_only else ""))
    return bots


def _run_each(
    settings: Settings,
    bots: list[BotSettings],
    action: Callable[[BotSettings, Bot], Awaitable[None]],
) -> None:
    from aiogram.exceptions import TelegramAPIError, TelegramNetworkError

    from worker.receiver.app import make_bot

    tokens = _tokens(settings)

    async def run() -> int:
        code = EXIT_OK
        for bot in bots:
            client = make_bot(bot, settings.telegram)
            try:
                await action(bot, client)
            except TelegramNetworkError as exc:
                click.echo(
                    f"bot {bot.bot_id}: Telegram unreachable: {describe(exc, tokens)}", err=True
                )
                code = EXIT_UNAVAILABLE
            except TelegramAPIError as exc:
                click.echo(f"bot {bot.bot_id}: Telegram refused: {describe(exc, tokens)}", err=True)
                code = code or EXIT_CRASH
            finally:
                await client.session.close()
        return code

    raise SystemExit(asyncio.run(run()))


def _fail(message: str) -> NoReturn:
    click.echo(f"tgbridge: {message}", err=True)
    raise SystemExit(EXIT_CONFIG)
