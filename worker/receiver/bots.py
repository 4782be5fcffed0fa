"""Which bots the receiver serves, and the configurations it refuses to serve."""

from __future__ import annotations

from config import BotSettings, ReceiveMode, TelegramSettings


class ReceiverConfigError(Exception):
    """The receiver cannot run as configured; the message says what to change."""


def check_bots(telegram: TelegramSettings) -> None:
    """Refuse a configuration the receiver cannot serve safely, naming the bot id (never the
    token): no bots, a bot twice, a webhook bot without its own secret."""
    if not telegram.bots:
        raise ReceiverConfigError("no bots configured: set TGBRIDGE_TELEGRAM__BOTS")
    seen: set[int] = set()
    for bot in telegram.bots:
        if bot.bot_id in seen:
            raise ReceiverConfigError(f"bot {bot.bot_id} is configured twice")
        seen.add(bot.bot_id)
        if telegram.mode_of(bot) is ReceiveMode.WEBHOOK and bot.webhook_secret is None:
            raise ReceiverConfigError(
                f"bot {bot.bot_id} is in webhook mode but has no webhook_secret: give it one "
                "in TGBRIDGE_TELEGRAM__BOTS so strangers cannot post updates"
            )


def bots_in(telegram: TelegramSettings, mode: ReceiveMode) -> list[BotSettings]:
    return [b for b in telegram.bots if telegram.mode_of(b) is mode]
