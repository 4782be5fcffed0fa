"""`tgbridge demo`: the whole bridge on a bundled sample, with a local stand-in for Telegram.

The sample goes through the receiver's real path (long polling against the stand-in, Kafka with
acks=all), a consumer stores it, and the history of the sample chat is printed. The bridge then
keeps running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from importlib import resources

from pydantic import SecretStr

from config.settings import BotSettings, ReceiveMode, Settings
from consumers.app import consumer_parts
from schema.history import walk
from schema.tables import MessageTables
from worker.metrics import Metrics
from worker.receiver.app import run_receiver
from worker.standin import StandIn

log = logging.getLogger(__name__)

DEMO_TOKEN = "1000000001:demo-token-for-the-local-stand-in"
DEMO_CHAT = -1001234567890


def sample_updates() -> list[bytes]:
    text = resources.files("worker.demo").joinpath("sample.jsonl").read_bytes()
    return [line for line in text.splitlines() if line.strip()]


def demo_settings(settings: Settings, api_base_url: str) -> Settings:
    telegram = settings.telegram.model_copy(
        update={
            "bots": [BotSettings(token=SecretStr(DEMO_TOKEN), mode=ReceiveMode.POLLING)],
            "api_base_url": api_base_url,
            "poll_timeout_s": 1,
        }
    )
    return settings.model_copy(update={"telegram": telegram})


async def run_demo(settings: Settings, stop: asyncio.Event, echo: Callable[[str], None]) -> None:
    samples = sample_updates()
    metrics = Metrics()
    async with StandIn([DEMO_TOKEN]) as standin:
        settings = demo_settings(settings, standin.base_url)
        for raw in samples:
            standin.enqueue(raw, DEMO_TOKEN)
        receiver_stop = asyncio.Event()
        receiver = asyncio.create_task(run_receiver(settings, metrics, receiver_stop))
        async with consumer_parts(settings, metrics) as parts:
            consumer_stop = asyncio.Event()
            consumer = asyncio.create_task(parts.loop.run(consumer_stop))
            try:
                await _wait_for(
                    lambda: parts.loop.stats.records >= len(samples), receiver, consumer
                )
                s = parts.loop.stats
                echo(
                    f"\n{len(samples)} sample updates went through Telegram stand-in → receiver → "
                    f"Kafka → consumer: {s.new} messages stored, {s.edits} edits, "
                    f"{s.duplicates} duplicates skipped, {s.deletions} deletions, "
                    f"{s.no_message} updates without a message.\n"
                )
                tables = MessageTables(parts.store, settings.store.keyspace)
                channel = await tables.read_channel(DEMO_CHAT, 0)
                echo(f"History of the sample chat {DEMO_CHAT}, newest first:\n")
                if channel is not None:
                    from consumers.cli import _line

                    async for row in walk(tables, channel.channel_id, limit=20):
                        echo("  " + _line(row))
                echo(
                    f"\nTry: tgbridge history --chat {DEMO_CHAT} --json   |   "
                    f"tgbridge export --chat {DEMO_CHAT}\n"
                    "The bridge keeps running; press Ctrl-C to stop it."
                )
                await stop.wait()
            finally:
                receiver_stop.set()
                consumer_stop.set()
                await asyncio.gather(receiver, consumer, return_exceptions=True)


async def _wait_for(
    done: Callable[[], bool], *tasks: asyncio.Task[None], timeout: float = 180.0
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        for task in tasks:
            if task.done():
                task.result()
                raise RuntimeError("the demo bridge stopped before the sample was stored")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sample was not stored within {timeout:.0f} s")
        await asyncio.sleep(0.2)
