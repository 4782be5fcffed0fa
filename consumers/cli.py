"""``tgbridge consumer``, ``history`` and ``export``: writing messages and reading them back."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, TypeVar

import click
import orjson
from aiokafka.errors import KafkaError

from config.settings import Settings
from schema.breaker import BreakerOpenError
from schema.history import message_dict, walk
from schema.migrate import MigrationError, check_migrated
from schema.store import Store, StoreUnavailableError
from schema.tables import MessageTables
from worker.kafka import KafkaSetupError
from worker.lifecycle import EXIT_CONFIG, EXIT_UNAVAILABLE, install_stop_signals
from worker.metrics import Metrics

T = TypeVar("T")


def run_or_exit(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main``; a setup problem ends with one line and its exit code, never a traceback."""
    try:
        return asyncio.run(main())  # type: ignore[arg-type]
    except (MigrationError, KafkaSetupError) as exc:
        click.echo(f"tgbridge: {exc}", err=True)
        raise SystemExit(EXIT_CONFIG) from None
    except (StoreUnavailableError, BreakerOpenError, KafkaError) as exc:
        click.echo(f"tgbridge: {exc}", err=True)
        raise SystemExit(EXIT_UNAVAILABLE) from None


@click.command()
@click.option("--metrics-port", type=int, help="Override TGBRIDGE_WORKER__METRICS_PORT (0: off).")
def consumer(metrics_port: int | None) -> None:
    """Run one consumer replica: Kafka to the store, exactly once in effect."""
    from consumers.app import run_consumer
    from worker.cli import settings_or_exit

    settings = settings_or_exit()

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run_consumer(settings, Metrics(), stop, metrics_port)

    run_or_exit(main)


async def _open(settings: Settings) -> tuple[Store, MessageTables]:
    store = await Store.connect(settings.store)
    try:
        await check_migrated(store, settings.store.keyspace)
    except BaseException:
        await store.close()
        raise
    return store, MessageTables(store, settings.store.keyspace)


def _line(row: Any) -> str:
    when = row.sent_at.replace(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S") if row.sent_at else "?"
    who = row.author_name or (str(row.author_id) if row.author_id else "?")
    text = row.content if row.content is not None else f"<{row.service or 'media'}>"
    flags = "".join(
        f" [{flag}]"
        for flag, on in (("edited", row.edited_at), ("deleted", row.deleted))
        if on
    )
    extra = f" +{len(row.attachments)} file(s)" if row.attachments else ""
    return f"{row.message_id}  {when}  {who}: {text}{extra}{flags}"


@click.command()
@click.option("--chat", "chat_id", type=int, required=True, help="Telegram chat id.")
@click.option("--topic", "thread_id", type=int, default=0, help="Forum topic (message_thread_id).")
@click.option("--before", type=int, help="Only messages older than this message id.")
@click.option("--after", type=int, help="Only messages newer than this message id (oldest first).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def history(
    chat_id: int, thread_id: int, before: int | None, after: int | None, limit: int, as_json: bool
) -> None:
    """Show a chat's stored messages, newest first."""
    from worker.cli import settings_or_exit

    if before is not None and after is not None:
        raise click.UsageError("give --before or --after, not both")
    settings = settings_or_exit()

    async def main() -> int:
        store, tables = await _open(settings)
        try:
            channel = await tables.read_channel(chat_id, thread_id)
            if channel is None:
                click.echo(f"no messages stored for chat {chat_id}" + (f" topic {thread_id}" if thread_id else ""), err=True)
                return 1
            async for row in walk(tables, channel, before=before, after=after, limit=limit):
                if as_json:
                    sys.stdout.buffer.write(orjson.dumps(message_dict(row), option=orjson.OPT_APPEND_NEWLINE))
                else:
                    click.echo(_line(row))
            return 0
        finally:
            await store.close()

    raise SystemExit(run_or_exit(main))


@click.command()
@click.option("--chat", "chat_id", type=int, required=True, help="Telegram chat id.")
@click.option("--topic", "thread_id", type=int, default=0, help="Forum topic (message_thread_id).")
def export(chat_id: int, thread_id: int) -> None:
    """Stream a chat's messages as JSON lines, oldest first."""
    from worker.cli import settings_or_exit

    settings = settings_or_exit()

    async def main() -> int:
        store, tables = await _open(settings)
        try:
            channel = await tables.read_channel(chat_id, thread_id)
            if channel is None:
                click.echo(f"no messages stored for chat {chat_id}", err=True)
                return 1
            out = sys.stdout.buffer
            async for row in walk(tables, channel, after=0, limit=None):
                out.write(orjson.dumps(message_dict(row), option=orjson.OPT_APPEND_NEWLINE))
            out.flush()
            return 0
        finally:
            await store.close()

    raise SystemExit(run_or_exit(main))
