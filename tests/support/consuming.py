"""Run a real consumer replica in-process and read back what it stored."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any

import orjson

from config.settings import Settings
from consumers.app import consumer_parts
from consumers.loop import BatchStats
from schema.store import Store
from worker.metrics import Metrics


async def consume(
    settings: Settings,
    records: int,
    metrics: Metrics | None = None,
    timeout: float = 90.0,
    group_id: str | None = None,
) -> BatchStats:
    """Run one replica until it has written and committed ``records`` records."""
    metrics = metrics or Metrics()
    stop = asyncio.Event()
    async with consumer_parts(settings, metrics, group_id=group_id) as parts:
        task = asyncio.create_task(parts.loop.run(stop))
        deadline = time.monotonic() + timeout
        while parts.loop.stats.records < records:
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                stop.set()
                await task
                raise AssertionError(
                    f"consumed {parts.loop.stats.records} of {records} records in {timeout} s"
                )
            await asyncio.sleep(0.1)
        stop.set()
        await task
        return parts.loop.stats


async def stored_rows(store: Store, keyspace: str) -> list[Any]:
    return await store.execute(
        "SELECT channel_id, bucket, message_id, chat_id, thread_id, telegram_scope, "
        "telegram_message_id, content, deleted, sent_at, edited_at, reply_to_message_id, "
        f"reply_to_telegram_id, attachments, author_id FROM {keyspace}.messages",
        idempotent=True,
    )


def checksum(rows: list[Any]) -> str:
    """One digest over every stored column of every row, independent of row order."""
    lines = sorted(repr(tuple(r)) for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def expected_texts(
    updates: list[bytes], bot_id: int = 42
) -> dict[tuple[int, str, int], str | None]:
    """What a user expects to read: each message's newest text (edits win by edit date)."""
    best: dict[tuple[int, str, int], tuple[int, str | None]] = {}
    for raw in updates:
        u = orjson.loads(raw)
        kind = next(k for k in u if k != "update_id")
        m = u[kind]
        chat = m["chat"]
        scope = "chat" if chat["type"] in ("supergroup", "channel") else f"bot:{bot_id}"
        key = (chat["id"], scope, m["message_id"])
        stamp = m.get("edit_date", m["date"])
        text = m.get("text", m.get("caption"))
        if key not in best or stamp > best[key][0]:
            best[key] = (stamp, text)
    return {k: v[1] for k, v in best.items()}


async def until(check: Callable[[], bool], what: str, within_s: float) -> None:
    """Wait until ``check()`` holds; fail naming ``what`` after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"{what} within {within_s} s"
        await asyncio.sleep(0.02)
