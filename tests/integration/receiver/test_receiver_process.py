"""`tgbridge receiver` as a real process: killed, stopped, misconfigured; nothing ever lost."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from recv_support import (
    TOKEN,
    WEBHOOK_TOKEN,
    bot_id_of,
    corpus,
    free_port,
    read_all,
    receiver_env,
    spawn,
    wait_until,
)
from support.stack import KAFKA

from worker.lifecycle import EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE
from worker.standin import StandIn

pytestmark = pytest.mark.integration


async def test_sigkill_between_publish_and_confirm_loses_nothing(
    standin: StandIn, recv_topic: str, tmp_path: Path
) -> None:
    first = corpus(60, first_id=30_000)
    for raw in first:
        standin.enqueue(raw, TOKEN)
    env = receiver_env(standin, recv_topic, [{"token": TOKEN, "mode": "polling"}])
    standin.hold_get_updates()
    process = await spawn(env, tmp_path)
    try:
        await standin.wait_for_held(1, within=20)
        standin.release_get_updates()
        # The next getUpdates would confirm the batch: hold it, then kill the receiver.
        standin.hold_get_updates()
        await standin.wait_for_held(1, within=20)
        published = await read_all(KAFKA, recv_topic)
        assert Counter(r.value for r in published) == Counter(first)
        process.kill()
        assert await asyncio.wait_for(process.wait(), 10) == -signal.SIGKILL
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    await asyncio.sleep(0.3)  # the stand-in notices the closed connection
    standin.release_get_updates()
    assert standin.confirmed_up_to(TOKEN) == 0, "the confirming call never reached Telegram"

    second = corpus(20, first_id=30_060)
    for raw in second:
        standin.enqueue(raw, TOKEN)
    process = await spawn(env, tmp_path)
    try:
        await wait_until(lambda: standin.confirmed_up_to(TOKEN) >= 30_079, 30, "all confirmed")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == EXIT_OK
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    values = Counter(r.value for r in await read_all(KAFKA, recv_topic))
    missing = [raw for raw in first + second if values[raw] == 0]
    assert not missing, f"{len(missing)} updates lost"
    assert all(values[raw] == 1 for raw in second)


async def test_sigterm_confirms_what_was_published_within_the_deadline(
    standin: StandIn, recv_topic: str, tmp_path: Path
) -> None:
    updates = corpus(40, first_id=40_000)
    for raw in updates:
        standin.enqueue(raw, TOKEN)
    env = receiver_env(
        standin,
        recv_topic,
        [{"token": TOKEN}],
        TGBRIDGE_TELEGRAM__POLL_TIMEOUT_S="50",
        TGBRIDGE_WORKER__SHUTDOWN_TIMEOUT_S="8",
    )
    standin.hold_get_updates()
    process = await spawn(env, tmp_path)
    try:
        await standin.wait_for_held(1, within=20)
        standin.release_get_updates()
        standin.hold_get_updates()
        # Published, and the long poll that would confirm is held: now stop.
        await standin.wait_for_held(1, within=20)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        # The receiver abandons its long poll and sends one last, confirming getUpdates.
        await standin.wait_for_held(2, within=10)
        await asyncio.sleep(0.2)
        standin.release_get_updates()
        code = await asyncio.wait_for(process.wait(), 10)
        elapsed = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == EXIT_OK
    assert elapsed < 8
    assert standin.confirmed_up_to(TOKEN) == 40_039
    confirm = standin.calls(TOKEN, "getUpdates")[-1]
    assert (confirm["offset"], confirm["limit"], confirm["timeout"]) == (40_040, 1, 0)
    assert Counter(r.value for r in await read_all(KAFKA, recv_topic)) == Counter(updates)
    stderr = (tmp_path / "receiver.log").read_text()
    assert "confirmed updates below 40040" in stderr
    assert TOKEN not in stderr and TOKEN.partition(":")[2] not in stderr


async def test_webhook_bot_without_secret_exits_with_config_code(
    standin: StandIn, recv_topic: str, tmp_path: Path
) -> None:
    env = receiver_env(standin, recv_topic, [{"token": WEBHOOK_TOKEN, "mode": "webhook"}])
    process = await spawn(env, tmp_path)
    assert await asyncio.wait_for(process.wait(), 20) == EXIT_CONFIG
    stderr = (tmp_path / "receiver.log").read_text()
    assert f"bot {bot_id_of(WEBHOOK_TOKEN)}" in stderr and "webhook_secret" in stderr
    assert WEBHOOK_TOKEN.partition(":")[2] not in stderr


async def test_unreachable_kafka_exits_with_unavailable_code(
    standin: StandIn, recv_topic: str, tmp_path: Path
) -> None:
    env = receiver_env(
        standin,
        recv_topic,
        [{"token": TOKEN}],
        TGBRIDGE_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
    )
    process = await spawn(env, tmp_path)
    assert await asyncio.wait_for(process.wait(), 30) == EXIT_UNAVAILABLE
    assert standin.calls(TOKEN) == [], "nothing is taken from Telegram without Kafka"
    stderr = (tmp_path / "receiver.log").read_text()
    assert "Kafka" in stderr and TOKEN not in stderr
