"""Races, rebalances, crashes and a store outage: still exactly one row per Telegram message."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from support.consuming import expected_texts, stored_rows
from support.stack import KAFKA, process_env

from config.settings import Settings
from consumers.app import consumer_parts, consumer_readiness
from schema.breaker import BreakerOpenError
from schema.store import Store, StoreUnavailableError
from worker.demo.traffic import generate
from worker.http import start_ops_server
from worker.metrics import Metrics

ROOT = Path(__file__).resolve().parents[3]
BOT = 42


def chat_key(raw: bytes) -> bytes:
    u = orjson.loads(raw)
    return str(next(v for k, v in u.items() if k != "update_id")["chat"]["id"]).encode()


async def committed_all(settings: Settings) -> bool:
    """True when the live group's committed offsets reached the end of every partition."""
    probe = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=settings.worker.group_id)
    await probe.start()
    try:
        parts = [TopicPartition(settings.kafka.topic, p) for p in range(settings.kafka.partitions)]
        ends = await probe.end_offsets(parts)
        for tp in parts:
            if (await probe.committed(tp) or 0) < ends[tp]:
                return False
        return True
    finally:
        await probe.stop()


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.5)


def assert_one_row_per_message(rows: list[Any], updates: list[bytes]) -> None:
    expected = expected_texts(updates, BOT)
    got = {(r.chat_id, r.telegram_scope, r.telegram_message_id): r.content for r in rows}
    assert len(rows) == len(expected), "rows must equal distinct Telegram messages"
    assert got == expected
    keys = Counter((r.channel_id, r.bucket, r.message_id) for r in rows)
    assert max(keys.values()) == 1, "no message key may be shared by two messages"


#: Live traffic skips some dedupe reads; a backfill (records older than the live window) reads
#: each fetched batch's mappings before writing any of it. Both must keep the invariants.
WINDOWS = pytest.mark.parametrize("window", [300.0, 0.0], ids=["live", "backfill"])


@WINDOWS
async def test_two_replicas_racing_through_a_rebalance_with_every_update_twice(
    make_settings: Any, store: Store, produce: Any, window: float
) -> None:
    settings = make_settings(worker__live_window_s=window)
    updates = list(generate(1500, chats=120, seed=21))
    chunks = [updates[:500], updates[500:1000], updates[1000:]]

    async def publish(chunk: list[bytes]) -> None:
        for raw in chunk:  # every update delivered twice, the copy close behind
            await produce(raw, key=chat_key(raw), bot_id=BOT)
            await produce(raw, key=chat_key(raw), bot_id=BOT)

    # The traffic arrives in three waves, so that each replica has records to race on
    # whatever the speed of the pipeline: before B joins, while it joins, after A left.
    await publish(chunks[0])
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    async with contextlib.AsyncExitStack() as replica_a:
        a = await replica_a.enter_async_context(consumer_parts(settings, Metrics()))
        task_a = asyncio.create_task(a.loop.run(stop_a))
        await wait_until(lambda: _true(a.loop.stats.records > 300), 60, "replica A to start")
        async with consumer_parts(settings, Metrics()) as b:  # joining forces a rebalance
            task_b = asyncio.create_task(b.loop.run(stop_b))
            await publish(chunks[1])
            await wait_until(
                lambda: _true(b.loop.stats.records > 200), 60, "replica B to take over"
            )
            await publish(chunks[2])
            # A leaves mid-stream, as a stopped replica does: its loop finishes what is in
            # flight, then its consumer leaves the group (a second rebalance) and B takes over
            # A's partitions from A's committed offsets. (Until A's consumer stops, A keeps its
            # partitions: a stopped loop alone would strand whatever A had not fetched yet.)
            stop_a.set()
            await task_a
            await replica_a.aclose()
            await wait_until(lambda: committed_all(settings), 120, "every offset committed")
            stop_b.set()
            await task_b
    assert_one_row_per_message(await stored_rows(store, settings.store.keyspace), updates)


async def _true(value: bool) -> bool:
    return value


async def _runs(store: Store, cql: str) -> bool:
    """Whether the statement ran (False while the store is unavailable to this session)."""
    try:
        await store.execute(cql, idempotent=True)
    except (StoreUnavailableError, BreakerOpenError):
        return False
    return True


async def _answers(store: Store) -> bool:
    return await _runs(store, "SELECT release_version FROM system.local")


@WINDOWS
async def test_store_stopped_mid_ingest_loses_nothing_and_dead_letters_nothing(
    make_settings: Any, produce: Any, window: float
) -> None:
    # The breaker half-opens after 2 s, so the consumer finds the store back quickly.
    settings = make_settings(
        store__breaker_reset_s=2.0, store__request_timeout_s=2.0, worker__live_window_s=window
    )
    s = await Store.connect(settings.store)
    from schema.migrate import migrate

    await migrate(s, settings.store)
    updates = list(generate(1800, chats=80, seed=33))
    before, during = updates[:1200], updates[1200:]
    for raw in before:
        await produce(raw, key=chat_key(raw), bot_id=BOT)

    metrics = Metrics()
    stop = asyncio.Event()
    try:
        async with consumer_parts(settings, metrics) as parts:
            task = asyncio.create_task(parts.loop.run(stop))
            await wait_until(lambda: _true(parts.loop.stats.records > 100), 60, "ingest to start")
            runner = await start_ops_server(
                metrics, lambda: consumer_readiness(parts), "127.0.0.1", OPS_PORT
            )
            try:
                assert await readyz() == 200
                services(["stop", "cassandra"])
                try:
                    # The consumer may have stored all of the first wave by now; updates that
                    # arrive during the outage are ones it must write while the store is down.
                    for raw in during:
                        await produce(raw, key=chat_key(raw), bot_id=BOT)
                    await asyncio.sleep(20)
                    assert parts.loop.paused_for_store, (
                        "the consumer pauses while the store is down"
                    )
                    assert metrics.dead_lettered._metrics == {}, (
                        "nothing is dead-lettered in an outage"
                    )
                    assert await readyz() == 503
                finally:
                    services(["start", "cassandra"])
                await wait_until(
                    lambda: committed_all(settings), 180, "ingest to finish after the outage"
                )
                assert await readyz() == 200
            finally:
                await runner.cleanup()
            stop.set()
            await task
        assert metrics.dead_lettered._metrics == {}
        # The test's own session saw the store go down too; it reconnects on its own schedule.
        await wait_until(lambda: _answers(s), 60, "the test's session to reconnect")
        assert_one_row_per_message(await stored_rows(s, settings.store.keyspace), updates)
    finally:
        try:
            # Just after a restart the driver may still mark the store down for a moment.
            keyspace = settings.store.keyspace
            drop = f"DROP KEYSPACE IF EXISTS {keyspace}"
            await wait_until(lambda: _runs(s, drop), 60, "the keyspace to be dropped")
        finally:
            await s.close()


OPS_PORT = 19_188


async def readyz() -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{OPS_PORT}/readyz") as r,
    ):
        return r.status


def services(args: list[str]) -> None:
    subprocess.run([str(ROOT / "dev" / "services.sh"), *args], check=True, timeout=240)


def consumer_env(settings: Settings) -> dict[str, str]:
    return process_env(settings, TGBRIDGE_WORKER__BATCH_MAX_RECORDS="50")


async def produce_all(produce: Any, updates: list[bytes]) -> None:
    for raw in updates:
        await produce(raw, key=chat_key(raw), bot_id=BOT)


def spawn_consumer(
    env: dict[str, str], log_path: Path, mode: str = "wb"
) -> subprocess.Popen[bytes]:
    """A `tgbridge consumer` process; its output goes to ``log_path`` ("ab" appends)."""
    with log_path.open(mode) as log:
        return subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "consumer"],
            env=env, stdout=log, stderr=log, cwd=log_path.parent,
        )


async def test_sigkill_mid_batch_then_restart_loses_nothing(
    settings: Settings, store: Store, produce: Any, tmp_path: Path
) -> None:
    updates = list(generate(1500, chats=100, seed=44))
    await produce_all(produce, updates)
    log_path = tmp_path / "consumer.log"
    proc = spawn_consumer(consumer_env(settings), log_path)
    try:

        async def some_rows() -> bool:
            return len(await stored_rows(store, settings.store.keyspace)) > 200

        await wait_until(some_rows, 90, "the first consumer to write rows")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert not await committed_all(settings), "the kill must land mid-ingest"
        proc = spawn_consumer(consumer_env(settings), log_path, "ab")
        await wait_until(lambda: committed_all(settings), 180, "the restarted consumer to finish")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, log_path.read_text()
    assert_one_row_per_message(await stored_rows(store, settings.store.keyspace), updates)


async def test_sigterm_mid_ingest_exits_in_time_and_loses_nothing(
    settings: Settings, store: Store, produce: Any, tmp_path: Path
) -> None:
    updates = list(generate(3000, chats=100, seed=55))
    await produce_all(produce, updates)
    env = consumer_env(settings) | {"TGBRIDGE_WORKER__SHUTDOWN_TIMEOUT_S": "5"}
    log_path = tmp_path / "consumer.log"
    proc = spawn_consumer(env, log_path)

    async def some_rows() -> bool:
        return len(await stored_rows(store, settings.store.keyspace)) > 200

    await wait_until(some_rows, 90, "the consumer to write rows")
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    proc.wait(30)
    assert time.monotonic() - started < 5 + 5, "exits within its shutdown deadline"
    assert proc.returncode == 0, log_path.read_text()
    assert not await committed_all(settings), "SIGTERM must land mid-ingest"
    # A new replica picks up where the stopped one committed; nothing is missing.
    stop = asyncio.Event()
    async with consumer_parts(settings, Metrics()) as parts:
        task = asyncio.create_task(parts.loop.run(stop))
        await wait_until(lambda: committed_all(settings), 120, "the rest of the topic")
        stop.set()
        await task
    assert_one_row_per_message(await stored_rows(store, settings.store.keyspace), updates)


async def test_a_running_consumer_gives_its_heap_back_and_says_so_on_metrics(
    settings: Settings, store: Store, produce: Any, tmp_path: Path
) -> None:
    updates = list(generate(300, chats=20, seed=66))
    await produce_all(produce, updates)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = consumer_env(settings) | {
        "TGBRIDGE_WORKER__HEAP_TRIM_INTERVAL_S": "0.2",
        "TGBRIDGE_WORKER__METRICS_HOST": "127.0.0.1",
        "TGBRIDGE_WORKER__METRICS_PORT": str(port),
    }
    log_path = tmp_path / "consumer.log"
    proc = spawn_consumer(env, log_path)
    try:
        await wait_until(lambda: committed_all(settings), 90, "the consumer to finish")

        async def trim_seconds() -> float:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    page = await r.text()
            line = next(
                ln for ln in page.splitlines()
                if ln.startswith("tgbridge_heap_trim_seconds_total ")
            )
            return float(line.split()[1])

        async def trimmed() -> bool:
            return await trim_seconds() > 0

        await wait_until(trimmed, 10, "a trim counted on /metrics")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, log_path.read_text()
    assert_one_row_per_message(await stored_rows(store, settings.store.keyspace), updates)
