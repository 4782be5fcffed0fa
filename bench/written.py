"""When a message was written, read back from the store.

A message's row carries its Telegram time as write timestamp, so its own ``writetime`` says
nothing about when it was written. The mapping row that follows it is different: it is written
with no ``USING TIMESTAMP``, so its write timestamp is the one the driver stamps on the statement
when the consumer issues it, right after the message row was acknowledged. That is the moment the
benchmark calls "row written" (the machine's clock, microseconds; the Kafka record time is taken
from the same clock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from bench.traffic import Identity
from schema.store import Store


async def mapping_written_at(
    store: Store, keyspace: str, identities: Iterable[Identity], concurrency: int = 64
) -> dict[Identity, float]:
    """Unix seconds at which each identity's mapping was inserted; missing ones are left out."""
    cql = (
        f"SELECT writetime(message_id) AS written FROM {keyspace}.telegram_message_mapping "
        "WHERE chat_id = ? AND scope = ? AND telegram_message_id = ?"
    )
    found: dict[Identity, float] = {}
    queue = list(identities)
    gate = asyncio.Semaphore(concurrency)

    async def one(ident: Identity) -> None:
        async with gate:
            rows = await store.execute(cql, ident, idempotent=True, kind="bench")
        if rows and rows[0].written is not None:
            found[ident] = rows[0].written / 1_000_000

    await asyncio.gather(*(one(i) for i in queue))
    return found


async def drop_keyspace(store: Store, keyspace: str) -> None:
    await store.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", idempotent=True, kind="ddl")
