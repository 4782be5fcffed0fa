"""Dedupe reads asked for together go out together, and each caller still gets its own row."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from config.settings import Settings
from schema.migrate import migrate
from schema.store import Store
from schema.tables import MAX_GROUPED_READ, MappingRow, MessageTables
from worker.metrics import Metrics

HOT, COLD = -1001234567890, 777


def statements(metrics: Metrics, kind: str) -> float:
    value = metrics.registry.get_sample_value(
        "tgbridge_store_request_seconds_count", {"kind": kind}
    )
    return value or 0.0


@pytest.fixture
async def counted(settings: Settings) -> Any:
    """A migrated keyspace behind a store whose statements are counted by kind."""
    metrics = Metrics()
    store = await Store.connect(settings.store, metrics)
    await migrate(store, settings.store)
    try:
        yield MessageTables(store, settings.store.keyspace), metrics
        await store.execute(
            f"DROP KEYSPACE IF EXISTS {settings.store.keyspace}", idempotent=True, kind="ddl"
        )
    finally:
        await store.close()


def row_of(chat_id: int, tg_id: int) -> MappingRow:
    return MappingRow(abs(chat_id) % 1000, tg_id % 7, chat_id * 1000 + tg_id, None)


async def test_reads_of_one_chat_in_one_pass_share_statements_and_keep_their_rows(
    counted: Any,
) -> None:
    tables, metrics = counted
    # Two chats, two numbering spaces in one of them; only even ids are stored.
    spaces = [(HOT, "c"), (COLD, "b:1"), (COLD, "b:2")]
    for chat_id, scope in spaces:
        for tg_id in range(0, 150, 2):
            r = row_of(chat_id, tg_id) if scope != "b:2" else row_of(chat_id, tg_id + 1)
            await tables.write_mapping(chat_id, scope, tg_id, r.channel_id, r.bucket, r.message_id)
    asked = [(c, s, tg) for c, s in spaces for tg in range(150)]
    asked += [(HOT, "c", 10), (HOT, "c", 11)]  # asked twice in the same pass (a reply target)
    before = statements(metrics, "read_mappings") + statements(metrics, "read_mapping")

    got = await asyncio.gather(*(tables.read_mapping(c, s, tg) for c, s, tg in asked))

    for (chat_id, scope, tg_id), row in zip(asked, got, strict=True):
        if tg_id % 2:
            assert row is None, (chat_id, scope, tg_id)
        elif scope == "b:2":
            assert row == row_of(chat_id, tg_id + 1), (chat_id, scope, tg_id)
        else:
            assert row == row_of(chat_id, tg_id), (chat_id, scope, tg_id)
    sent = statements(metrics, "read_mappings") + statements(metrics, "read_mapping")
    chunks = -(-150 // MAX_GROUPED_READ)
    assert sent - before == 3 * chunks  # 452 reads, 9 statements


async def test_a_read_alone_and_a_strong_read_go_out_on_their_own(counted: Any) -> None:
    tables, metrics = counted
    await tables.write_mapping(COLD, "c", 5, 1, 2, 3)
    assert await tables.read_mapping(COLD, "c", 5) == MappingRow(1, 2, 3, None)
    assert await tables.read_mapping(COLD, "c", 6) is None
    assert await tables.read_mapping(COLD, "c", 5, strong=True) == MappingRow(1, 2, 3, None)
    assert statements(metrics, "read_mapping") == 3
    assert statements(metrics, "read_mappings") == 0


async def test_a_failed_grouped_read_fails_every_caller_and_the_next_pass_reads_again(
    counted: Any, settings: Settings
) -> None:
    tables, _ = counted
    await tables.write_mapping(HOT, "c", 1, 1, 2, 3)
    missing = MessageTables(tables.store, settings.store.keyspace + "_absent")
    results = await asyncio.wait_for(
        asyncio.gather(
            *(missing.read_mapping(HOT, "c", tg) for tg in range(5)), return_exceptions=True
        ),
        timeout=30,
    )
    assert all(isinstance(r, Exception) and "_absent" in str(r) for r in results), results
    # Nothing is left waiting on the failed group: the same reads go out again.
    got = await asyncio.gather(*(tables.read_mapping(HOT, "c", tg) for tg in range(3)))
    assert got == [None, MappingRow(1, 2, 3, None), None]


async def test_a_cancelled_first_reader_leaves_the_others_their_rows(counted: Any) -> None:
    tables, _ = counted
    await tables.write_mapping(HOT, "c", 2, 1, 2, 3)
    for pause in (0, 1):  # cancelled before the group's read goes out, and while it is out
        first = asyncio.create_task(tables.read_mapping(HOT, "c", 1))
        others = [asyncio.create_task(tables.read_mapping(HOT, "c", tg)) for tg in (2, 3)]
        await asyncio.sleep(0)  # all three have asked; the first leads the group
        for _ in range(pause):
            await asyncio.sleep(0)
        first.cancel()
        got = await asyncio.wait_for(asyncio.gather(*others), timeout=10)
        assert got == [MappingRow(1, 2, 3, None), None]
        assert first.cancelled()


async def test_a_batch_of_reads_is_one_statement_per_space_and_a_failed_space_says_so(
    counted: Any, settings: Settings
) -> None:
    tables, metrics = counted
    for tg_id in range(0, 100, 2):
        await tables.write_mapping(HOT, "c", tg_id, 1, 2, 1000 + tg_id)
    await tables.write_mapping(COLD, "b:1", 7, 3, 4, 5)
    asked = [(HOT, "c", tg) for tg in range(100)] + [(HOT, "c", 4), (COLD, "b:1", 7)]
    before = statements(metrics, "read_mappings") + statements(metrics, "read_mapping")

    found = await tables.read_mappings(asked)

    assert found == {
        (HOT, "c"): {tg: MappingRow(1, 2, 1000 + tg, None) for tg in range(0, 100, 2)},
        (COLD, "b:1"): {7: MappingRow(3, 4, 5, None)},
    }
    sent = statements(metrics, "read_mappings") + statements(metrics, "read_mapping")
    assert sent - before == -(-100 // MAX_GROUPED_READ) + 1  # 102 identities, 3 statements
    missing = MessageTables(tables.store, settings.store.keyspace + "_absent")
    failed = await missing.read_mappings(asked)
    assert set(failed) == {(HOT, "c"), (COLD, "b:1")}
    assert all(isinstance(e, Exception) and "_absent" in str(e) for e in failed.values())
