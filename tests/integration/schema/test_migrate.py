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


async def test_a_migration_that_crashed_after_adding_its_columns_runs_again(
    settings: Settings, store: Store
) -> None:
    # 0003 adds the channel owner's columns, one ALTER each. A crash after the first ALTER but
    # before the migration was recorded leaves one column and no record; the next `migrate`
    # must finish it, not fail on the column that is there.
    ks = settings.store.keyspace
    await store.execute(f"ALTER TABLE {ks}.channels DROP owner_scope", idempotent=True)
    await store.execute(f"DELETE FROM {ks}.schema_migrations WHERE version = 3", idempotent=True)
    from schema.migrate import MigrationError

    with pytest.raises(MigrationError, match="lacks migrations 0003"):
        await check_migrated(store, ks)
    result = await migrate(store, settings.store)
    assert result.applied == ["0003_channel_owner"]
    await check_migrated(store, ks)
    cols = await store.execute(
        "SELECT column_name FROM system_schema.columns "
        "WHERE keyspace_name = ? AND table_name = 'channels'",
        (ks,),
        idempotent=True,
    )
    assert {"owner_chat_id", "owner_scope"} <= {c.column_name for c in cols}


async def test_a_keyspace_migrated_by_a_newer_version_is_refused(
    settings: Settings, store: Store
) -> None:
    # An older replica would write a layout it does not know (e.g. claim a key at the offset a
    # channel's owner writes unclaimed): it must refuse to start, saying why.
    ks = settings.store.keyspace
    newer = len(load_migrations()) + 1
    await store.execute(
        f"INSERT INTO {ks}.schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
        (newer, "from_the_future", "0" * 16),
        idempotent=True,
    )
    from schema.migrate import MigrationError

    with pytest.raises(MigrationError, match=f"has migrations {newer:04d}, newer than"):
        await check_migrated(store, ks)


async def test_a_channel_binding_and_its_owner_are_made_once(
    settings: Settings, store: Store
) -> None:
    from schema.tables import ChannelBinding, MessageTables

    tables = MessageTables(store, settings.store.keyspace)
    first = ChannelBinding(10_555, 10_555, "bot:1")
    assert await tables.claim_channel(10_555, 0, first) == first
    # A second bot binding the same chat gets the first binding back, owner included.
    assert await tables.claim_channel(10_555, 0, ChannelBinding(10_555, 10_555, "bot:2")) == first
    assert await tables.read_channel(10_555, 0) == first
    # A binding without an owner reads back without one.
    plain = ChannelBinding(-4_000_555)
    assert await tables.claim_channel(-4_000_555, 0, plain) == plain
    assert await tables.read_channel(-4_000_555, 0) == plain
    assert await tables.claim_channel(-4_000_555, 0, ChannelBinding(7, 7, "chat")) == plain
