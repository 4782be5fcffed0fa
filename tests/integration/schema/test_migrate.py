"""`tgbridge migrate` against the real store: idempotent, race-safe, and the tables as designed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from config.settings import Settings
from schema.migrate import check_migrated, load_migrations, migrate
from schema.store import Store
from worker.cli import main


def test_migrate_twice_second_run_has_nothing_pending(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TGBRIDGE_STORE__KEYSPACE", settings.store.keyspace)
    monkeypatch.setenv("TGBRIDGE_STORE__PORT", str(settings.store.port))
    runner = CliRunner()
    try:
        first = runner.invoke(main, ["migrate"])
        assert first.exit_code == 0, first.output
        assert "applied 0001_initial" in first.output
        second = runner.invoke(main, ["migrate"])
        assert second.exit_code == 0, second.output
        assert "nothing pending" in second.output
    finally:
        asyncio.run(_drop(settings))


async def _drop(settings: Settings) -> None:
    s = await Store.connect(settings.store)
    await s.execute(f"DROP KEYSPACE IF EXISTS {settings.store.keyspace}", idempotent=True)
    await s.close()


async def test_two_migrations_at_once_apply_each_migration_once(settings: Settings) -> None:
    a, b = await Store.connect(settings.store), await Store.connect(settings.store)
    try:
        results = await asyncio.gather(migrate(a, settings.store), migrate(b, settings.store))
        applied = [r.applied for r in results]
        everything = len(load_migrations())
        assert sorted(map(len, applied)) == [0, everything]
        rows = await a.execute(
            f"SELECT version FROM {settings.store.keyspace}.schema_migrations", idempotent=True
        )
        assert sorted(r.version for r in rows) == list(range(1, everything + 1))
        await check_migrated(a, settings.store.keyspace)
    finally:
        await a.execute(f"DROP KEYSPACE IF EXISTS {settings.store.keyspace}", idempotent=True)
        await a.close()
        await b.close()


async def test_tables_read_back_with_keys_order_and_compaction(
    settings: Settings, store: Store
) -> None:
    ks = settings.store.keyspace

    async def q(cql: str, *params: Any) -> list[Any]:
        return await store.execute(cql, params, idempotent=True)

    [keyspace] = await q(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?", ks
    )
    assert keyspace.replication["class"].endswith("NetworkTopologyStrategy")
    assert keyspace.replication["datacenter1"] == "1"

    cols = await q(
        "SELECT column_name, kind, position, clustering_order FROM system_schema.columns "
        "WHERE keyspace_name = ? AND table_name = 'messages'",
        ks,
    )
    keys = {
        c.column_name: (c.kind, c.position, c.clustering_order) for c in cols if c.kind != "regular"
    }
    assert keys == {
        "channel_id": ("partition_key", 0, "none"),
        "bucket": ("partition_key", 1, "none"),
        "message_id": ("clustering", 0, "desc"),
    }
    [table] = await q(
        "SELECT compaction, gc_grace_seconds FROM system_schema.tables "
        "WHERE keyspace_name = ? AND table_name = 'messages'",
        ks,
    )
    assert table.compaction["class"].endswith("TimeWindowCompactionStrategy")
    assert table.compaction["compaction_window_unit"] == "DAYS"
    assert table.compaction["compaction_window_size"] == "10"
    assert table.gc_grace_seconds == 86400
    # The claimed tables keep their Paxos state three hours, not a day (0002).
    claimed = await q(
        "SELECT table_name, gc_grace_seconds FROM system_schema.tables WHERE keyspace_name = ?",
        ks,
    )
    grace = {t.table_name: t.gc_grace_seconds for t in claimed}
    assert grace["message_keys"] == grace["channels"] == 10800

    mapping = await q(
        "SELECT column_name, kind FROM system_schema.columns "
        "WHERE keyspace_name = ? AND table_name = 'telegram_message_mapping'",
        ks,
    )
    kinds = {c.column_name: c.kind for c in mapping}
    assert {k for k, v in kinds.items() if v == "partition_key"} == {
        "chat_id",
        "scope",
        "telegram_message_id",
    }
    assert {"channel_id", "bucket", "message_id"} <= set(kinds)


async def test_an_unmigrated_keyspace_is_reported_with_the_fix(settings: Settings) -> None:
    s = await Store.connect(settings.store)
    try:
        from schema.migrate import MigrationError

        with pytest.raises(MigrationError, match="run `tgbridge migrate`"):
            await check_migrated(s, settings.store.keyspace)
    finally:
        await s.close()
