"""Versioned CQL migrations: apply what is pending, record it, and do nothing the second time.

Migrations are the files ``schema/migrations/NNNN_name.cql``, the one source of truth for the
schema. A lightweight-transaction lock keeps two ``tgbridge migrate`` processes from applying
the same migration at once; every statement is also ``IF NOT EXISTS`` (or an ``ADD`` of columns,
skipped when they exist) so a crash mid-way is safe to re-run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from config.settings import StoreSettings
from schema.store import Store

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.cql$")
LOCK_TTL_S = 300


class MigrationError(Exception):
    """The migrations or the keyspace are not in a state tgbridge can work with."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def statements(self, keyspace: str, scylla: bool) -> list[str]:
        options = "AND tombstone_gc = {'mode': 'repair'}" if scylla else ""
        body = "\n".join(
            line for line in self.text.splitlines() if not line.lstrip().startswith("--")
        )
        body = body.replace("{keyspace}", keyspace).replace("{table_options}", options)
        return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("schema.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must run 1, 2, 3... without gaps, got {versions}")
    return found


def keyspace_cql(settings: StoreSettings, scylla: bool) -> str:
    replication = ", ".join(f"'{dc}': {rf}" for dc, rf in sorted(settings.replication.items()))
    cql = (
        f"CREATE KEYSPACE IF NOT EXISTS {settings.keyspace} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', {replication}}} AND durable_writes = true"
    )
    if scylla:
        # Lightweight transactions (the dedupe gate) are not supported with tablets.
        cql += " AND tablets = {'enabled': false}"
    return cql


@dataclass(frozen=True, slots=True)
class MigrateResult:
    applied: list[str]
    version: int


async def migrate(
    store: Store, settings: StoreSettings, lock_wait_s: float = 300.0
) -> MigrateResult:
    """Create the keyspace if needed and apply every pending migration, under a lock."""
    ks = settings.keyspace
    scylla = store.is_scylla
    await store.execute(keyspace_cql(settings, scylla), idempotent=True, kind="ddl")
    await store.execute(
        f"CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (version int PRIMARY KEY, "
        "name text, checksum text, applied_at timestamp)",
        idempotent=True,
        kind="ddl",
    )
    await store.execute(
        f"CREATE TABLE IF NOT EXISTS {ks}.schema_lock (name text PRIMARY KEY, owner text, "
        "acquired_at timestamp)",
        idempotent=True,
        kind="ddl",
    )
    owner = f"{socket.gethostname()}/{uuid.uuid4()}"
    await _acquire(store, ks, owner, lock_wait_s)
    try:
        return await _apply_pending(store, settings, scylla)
    finally:
        await store.execute(
            f"DELETE FROM {ks}.schema_lock WHERE name = 'migrate' IF owner = ?",
            (owner,),
            idempotent=True,
            write=True,
            kind="ddl",
        )


async def _acquire(store: Store, ks: str, owner: str, wait_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        rows = await store.execute(
            f"INSERT INTO {ks}.schema_lock (name, owner, acquired_at) VALUES ('migrate', ?, ?) "
            f"IF NOT EXISTS USING TTL {LOCK_TTL_S}",
            (owner, datetime.now(UTC)),
            idempotent=True,
            write=True,
            kind="ddl",
        )
        if rows[0].applied:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise MigrationError(
                f"another migrate ({rows[0].owner}) holds the schema lock; it expires by itself "
                f"within {LOCK_TTL_S} s"
            )
        log.info("waiting for another migrate (%s) to finish", rows[0].owner)
        await asyncio.sleep(1.0)


async def _apply_pending(store: Store, settings: StoreSettings, scylla: bool) -> MigrateResult:
    ks = settings.keyspace
    done = {
        row.version: row
        for row in await store.execute(
            f"SELECT version, name, checksum FROM {ks}.schema_migrations",
            idempotent=True,
            kind="ddl",
        )
    }
    applied = []
    migrations = load_migrations()
    for m in migrations:
        if m.version in done:
            if done[m.version].checksum != m.checksum:
                raise MigrationError(
                    f"migration {m.version:04d}_{m.name} was changed after it was applied; "
                    "add a new migration instead"
                )
            continue
        for statement in m.statements(ks, scylla):
            if await _columns_added_already(store, ks, statement):
                log.info("%04d_%s: columns already there: %s", m.version, m.name, statement)
                continue
            await store.execute(statement, idempotent=True, kind="ddl")
        await store.execute(
            f"INSERT INTO {ks}.schema_migrations (version, name, checksum, applied_at) "
            "VALUES (?, ?, ?, ?)",
            (m.version, m.name, m.checksum, datetime.now(UTC)),
            idempotent=True,
            write=True,
            kind="ddl",
        )
        applied.append(f"{m.version:04d}_{m.name}")
        log.info("applied migration %04d_%s", m.version, m.name)
    return MigrateResult(applied, migrations[-1].version if migrations else 0)


_ADD_COLUMNS = re.compile(r"^ALTER TABLE (\w+)\.(\w+) ADD (?:\((.+)\)|(\w+ .+))$", re.S | re.I)


async def _columns_added_already(store: Store, keyspace: str, statement: str) -> bool:
    """Whether ``statement`` is an ``ALTER TABLE ... ADD`` whose columns all exist.

    CQL has no ``ADD IF NOT EXISTS`` on every server tgbridge supports, so a migration that
    crashed after its ``ALTER`` but before it was recorded is made safe to re-run here.
    """
    match = _ADD_COLUMNS.match(" ".join(statement.split()))
    if match is None:
        return False
    if match[1] != keyspace:
        raise MigrationError(f"migration statement alters another keyspace: {statement}")
    if match[4]:  # one column: its type may hold commas (map<text, int>)
        wanted = {match[4].split()[0]}
    else:
        wanted = {part.split()[0] for part in match[3].split(",")}
    rows = await store.execute(
        "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
        (keyspace, match[2]),
        idempotent=True,
        kind="ddl",
    )
    present = {r.column_name for r in rows}
    return wanted <= present


async def check_migrated(store: Store, keyspace: str) -> None:
    """Raise :class:`MigrationError` unless ``keyspace`` has exactly the migrations this
    version of tgbridge knows: none missing, and none from a newer version (whose layout this
    one would write wrongly)."""
    # Ask the server, not the driver's schema metadata, which may lag behind another process.
    tables = await store.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
        (keyspace,),
        idempotent=True,
        kind="ddl",
    )
    if "schema_migrations" not in {t.table_name for t in tables}:
        raise MigrationError(f"keyspace {keyspace!r} is not migrated: run `tgbridge migrate` first")
    rows = await store.execute(
        f"SELECT version FROM {keyspace}.schema_migrations", idempotent=True, kind="ddl"
    )
    have = {r.version for r in rows}
    want = {m.version for m in load_migrations()}
    if want - have:
        missing = ", ".join(f"{v:04d}" for v in sorted(want - have))
        raise MigrationError(
            f"keyspace {keyspace!r} lacks migrations {missing}: run `tgbridge migrate`"
        )
    if have - want:
        newer = ", ".join(f"{v:04d}" for v in sorted(have - want))
        raise MigrationError(
            f"keyspace {keyspace!r} has migrations {newer}, newer than this tgbridge knows: "
            "run the version that applied them"
        )
