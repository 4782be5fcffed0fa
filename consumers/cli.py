"""``tgbridge consumer``, ``history`` and ``export``: writing messages and reading them back."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import orjson
from aiokafka.errors import KafkaError

from config.settings import Settings
from consumers.loop import BatchStats
from schema.breaker import BreakerOpenError
from schema.history import message_dict, walk
from schema.migrate import MigrationError, check_migrated
from schema.store import Store, StoreUnavailableError
from schema.tables import MessageTables
from worker.kafka import KafkaSetupError, KafkaUnavailableError
from worker.lifecycle import EXIT_CONFIG, EXIT_UNAVAILABLE, install_stop_signals, run_fast
from worker.metrics import Metrics

T = TypeVar("T")


def run_or_exit(
    main: Callable[[], Awaitable[T]], switch_interval_ms: float | None = None
) -> T:
    """Run ``main``; a setup problem ends with one line and its exit code, never a traceback."""
    try:
        return run_fast(main(), switch_interval_ms)  # type: ignore[arg-type]
    except (StoreUnavailableError, BreakerOpenError, KafkaError, KafkaUnavailableError) as exc:
        click.echo(f"tgbridge: {exc}", err=True)
        raise SystemExit(EXIT_UNAVAILABLE) from None
    except (MigrationError, KafkaSetupError) as exc:
        click.echo(f"tgbridge: {exc}", err=True)
        raise SystemExit(EXIT_CONFIG) from None


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

    run_or_exit(main, settings.worker.switch_interval_ms)


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
        f" [{flag}]" for flag, on in (("edited", row.edited_at), ("deleted", row.deleted)) if on
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
                click.echo(
                    f"no messages stored for chat {chat_id}"
                    + (f" topic {thread_id}" if thread_id else ""),
                    err=True,
                )
                return 1
            async for row in walk(
                tables, channel.channel_id, before=before, after=after, limit=limit
            ):
                if as_json:
                    sys.stdout.buffer.write(
                        orjson.dumps(message_dict(row), option=orjson.OPT_APPEND_NEWLINE)
                    )
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
            async for row in walk(tables, channel.channel_id, after=0, limit=None):
                out.write(orjson.dumps(message_dict(row), option=orjson.OPT_APPEND_NEWLINE))
            out.flush()
            return 0
        finally:
            await store.close()

    raise SystemExit(run_or_exit(main))


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO time like 2026-01-31T12:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command()
@click.option("--from-time", help="Start at the first record at or after this time (ISO 8601).")
@click.option("--to-time", help="Stop before the first record at or after this time.")
@click.option("--group", help="Consumer group (default: a new tgbridge-replay-<time> group).")
def replay(from_time: str | None, to_time: str | None, group: str | None) -> None:
    """Re-read the topic into the store (backfill); already stored messages stay as they are."""
    from consumers.replay import replay as run_replay
    from worker.cli import settings_or_exit

    start, end = _when(from_time), _when(to_time)
    settings = settings_or_exit()
    group_id = group or f"tgbridge-replay-{datetime.now(UTC):%Y%m%dT%H%M%S}"

    async def main() -> BatchStats:
        stop = asyncio.Event()
        install_stop_signals(stop)
        return await run_replay(settings, group_id, start, end, stop)

    s = run_or_exit(main)
    click.echo(
        f"replay done (group {group_id}): {s.records} records read, {s.new} new rows, "
        f"{s.duplicates} duplicates, {s.edits} edits, {s.deletions} deletions, "
        f"{s.no_message} without a message, {s.dead_lettered} dead-lettered"
    )


@click.group()
def dlq() -> None:
    """List dead-lettered records and re-publish chosen ones after a fix."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dlq_list(limit: int, as_json: bool) -> None:
    """Show dead-lettered records with their reasons."""
    from consumers.dlq import read_letters
    from worker.cli import settings_or_exit

    settings = settings_or_exit()
    letters = run_or_exit(lambda: read_letters(settings.kafka, limit))
    for x in letters:
        row = {
            "ref": x.ref,
            "reason": x.header("dlq.reason"),
            "error": x.header("dlq.error"),
            "source": "{}/{}@{}".format(
                x.header("dlq.source_topic"), x.header("dlq.partition"), x.header("dlq.offset")
            ),
            "attempts": x.header("dlq.attempts"),
            "bytes": len(x.value),
        }
        if as_json:
            click.echo(orjson.dumps(row).decode())
        else:
            click.echo(f"{row['ref']:>10}  {row['reason']:<20} {row['source']}  {row['error']}")
    if not letters and not as_json:
        click.echo(f"the dead-letter topic {settings.kafka.dlq_topic} is empty", err=True)


@dlq.command("republish")
@click.argument("refs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead-lettered record.")
def dlq_republish(refs: tuple[str, ...], everything: bool) -> None:
    """Send records (PARTITION:OFFSET as `dlq list` shows) back to the main topic."""
    from consumers.dlq import read_letters, republish
    from worker.cli import settings_or_exit

    if not refs and not everything:
        raise click.UsageError("name records as PARTITION:OFFSET, or pass --all")
    settings = settings_or_exit()

    async def main() -> int:
        letters = await read_letters(settings.kafka)
        chosen = letters if everything else [x for x in letters if x.ref in set(refs)]
        missing = set(refs) - {x.ref for x in chosen}
        if missing:
            raise click.UsageError(f"not in the dead-letter topic: {', '.join(sorted(missing))}")
        return await republish(settings.kafka, chosen)

    click.echo(f"re-published {run_or_exit(main)} record(s) to {settings.kafka.topic}")


@click.command()
def demo() -> None:
    """Run the bridge on a bundled sample through a local Telegram stand-in, print the history."""
    from worker.cli import settings_or_exit
    from worker.demo.run import run_demo

    settings = settings_or_exit()

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run_demo(settings, stop, click.echo)

    run_or_exit(main)
