"""The operator's tools, run as a user runs them: history, export, replay and dlq."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
from support.consuming import consume, stored_rows
from support.stack import process_env

from config.settings import Settings
from schema.store import Store
from worker.demo.traffic import supergroup, text_message, update

CHAT = supergroup(-1_007_000_000_001)
DAY = 864_000  # seconds in a 10-day bucket


async def tgbridge(settings: Settings, tmp: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        *args,
        env=process_env(settings),
        cwd=tmp,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def fill(produce: Any, count: int, start: int = 1_767_225_600, step: int = 3600 * 24) -> None:
    """``count`` messages one day apart: they span several 10-day buckets."""
    for i in range(1, count + 1):
        msg = text_message(i, CHAT, start + (i - 1) * step, f"message {i}")
        await produce(update(i, "message", msg), key=str(CHAT["id"]).encode())


async def test_history_walks_buckets_newest_first_and_pages(
    settings: Settings, store: Store, produce: Any, tmp_path: Path
) -> None:
    await fill(produce, 45)  # 45 days: 5 or 6 buckets
    await consume(settings, 45)
    rows = await stored_rows(store, settings.store.keyspace)
    assert len({r.bucket for r in rows}) >= 5

    code, out, err = await tgbridge(
        settings, tmp_path, "history", "--chat", str(CHAT["id"]), "--limit", "30", "--json"
    )
    assert code == 0, err
    got = [orjson.loads(line) for line in out.splitlines()]
    assert [m["content"] for m in got] == [f"message {i}" for i in range(45, 15, -1)]
    ids = [m["message_id"] for m in got]
    assert ids == sorted(ids, reverse=True)

    code, out, _ = await tgbridge(
        settings,
        tmp_path,
        "history",
        "--chat",
        str(CHAT["id"]),
        "--before",
        str(ids[-1]),
        "--limit",
        "100",
        "--json",
    )
    assert [orjson.loads(x)["content"] for x in out.splitlines()] == [
        f"message {i}" for i in range(15, 0, -1)
    ]

    code, out, _ = await tgbridge(settings, tmp_path, "export", "--chat", str(CHAT["id"]))
    assert code == 0
    assert [orjson.loads(x)["content"] for x in out.splitlines()] == [
        f"message {i}" for i in range(1, 46)
    ]

    code, _, err = await tgbridge(settings, tmp_path, "history", "--chat", "-42")
    assert code == 1 and "no messages stored for chat -42" in err


async def test_replay_reports_zero_new_rows_on_an_ingested_topic(
    settings: Settings, store: Store, produce: Any, tmp_path: Path
) -> None:
    await fill(produce, 20, step=60)
    await consume(settings, 20)
    code, out, err = await tgbridge(settings, tmp_path, "replay")
    assert code == 0, err
    assert "20 records read, 0 new rows, 20 duplicates" in out
    assert "replay:" in err or "records" in out  # plain progress lines when not on a terminal


async def test_dlq_lists_reasons_and_republishes_after_a_fix(
    settings: Settings, store: Store, produce: Any, tmp_path: Path
) -> None:
    too_old = text_message(1, CHAT, 1_600_000_000, "from 2020")  # before the id epoch
    await produce(update(1, "message", too_old), key=b"x")
    await produce(b'{"update_id": 2}', key=b"x", bot_id=7)
    await produce(b"\xff\xfe not json", key=b"x")
    await consume(settings, 3)

    code, out, err = await tgbridge(settings, tmp_path, "dlq", "list", "--json")
    assert code == 0, err
    letters = [orjson.loads(x) for x in out.splitlines()]
    assert sorted(x["reason"] for x in letters) == ["date_before_epoch", "not_json"]

    # "After a fix": re-publish the bad JSON one; it is dead-lettered again, nothing is lost.
    ref = next(x["ref"] for x in letters if x["reason"] == "not_json")
    code, out, err = await tgbridge(settings, tmp_path, "dlq", "republish", ref)
    assert code == 0, err
    assert "re-published 1 record(s)" in out
    code, out, err = await tgbridge(settings, tmp_path, "dlq", "republish", "99:99")
    assert code != 0 and "99:99" in err
