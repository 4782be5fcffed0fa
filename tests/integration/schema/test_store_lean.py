"""The short request path (``schema/lean.py``) against a real Cassandra.

Every other integration test runs on it too (it is the default); these pin down what it must
keep from the driver: rows and LWT answers decoded the same way, a statement the server forgot
prepared again, final errors raised as the driver raises them, timeouts that leave the
connection usable, and schema changes left to the driver.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest
from cassandra import InvalidRequest
from support.connections import reading

from schema.store import Store, StoreUnavailableError

TABLE = "lean_probe"


async def _store(make_settings: Any, **overrides: Any) -> tuple[Store, str]:
    settings = make_settings(**overrides)
    store = await Store.connect(settings.store)
    ks = settings.store.keyspace
    await store.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        idempotent=True,
        kind="ddl",
    )
    await _create_table(store, ks)
    return store, ks


async def _create_table(store: Store, ks: str) -> None:
    await store.execute(
        f"CREATE TABLE IF NOT EXISTS {ks}.{TABLE} "
        "(k bigint, c bigint, v text, PRIMARY KEY ((k), c))",
        idempotent=True,
        kind="ddl",
    )


async def _drop(store: Store, ks: str) -> None:
    try:
        await store.execute(f"DROP KEYSPACE IF EXISTS {ks}", idempotent=True, kind="ddl")
    finally:
        await store.close()


async def test_reads_writes_and_claims_take_the_short_path(make_settings: Any) -> None:
    store, ks = await _store(make_settings)
    try:
        assert store.lean is not None
        sent, handed = store.lean.sent, store.lean.handed_over
        insert = f"INSERT INTO {ks}.{TABLE} (k, c, v) VALUES (?, ?, ?)"
        await asyncio.gather(
            *(store.execute(insert, (k % 7, k, f"v{k}"), idempotent=True, write=True)
              for k in range(200))
        )
        rows = await store.execute(
            f"SELECT c, v FROM {ks}.{TABLE} WHERE k = ?", (3,), idempotent=True
        )
        assert [(r.c, r.v) for r in rows] == [(k, f"v{k}") for k in range(200) if k % 7 == 3]
        # A lightweight transaction's answer: the [applied] column and, when refused, the owner.
        claim = f"INSERT INTO {ks}.{TABLE} (k, c, v) VALUES (?, ?, ?) IF NOT EXISTS"
        first = await store.execute(claim, (100, 1, "mine"), idempotent=False, write=True)
        again = await store.execute(claim, (100, 1, "theirs"), idempotent=False, write=True)
        assert first[0].applied is True
        assert (again[0].applied, again[0].v) == (False, "mine")
        # Every one of those went the short way; none needed the driver.
        assert store.lean.sent - sent == 200 + 1 + 2
        assert store.lean.handed_over == handed
    finally:
        await _drop(store, ks)


async def test_answered_statements_leave_nothing_for_the_cycle_collector(
    make_settings: Any,
) -> None:
    # Refcounting alone must free a statement once it is answered. When the answer's callback
    # was a closure that named itself, every statement left a reference cycle with its timer,
    # its bound values and its rows, some 57 objects a message, and the cyclic collector's
    # passes over them took a fifth of the consumer's time at full speed.
    store, ks = await _store(make_settings)
    try:
        insert = f"INSERT INTO {ks}.{TABLE} (k, c, v) VALUES (?, ?, ?)"
        select = f"SELECT c, v FROM {ks}.{TABLE} WHERE k = ? AND c = ?"
        # Preparing goes through the driver's own path, which has cycles of its own: done first.
        await store.execute(insert, (1, 0, "warm"), idempotent=True, write=True)
        await store.execute(select, (1, 0), idempotent=True)
        sent = store.lean.sent if store.lean is not None else 0
        gc.collect()
        gc.disable()
        try:
            for k in range(300):
                await store.execute(insert, (k % 5, k, f"v{k}"), idempotent=True, write=True)
                rows = await store.execute(select, (k % 5, k), idempotent=True)
                assert [r.v for r in rows] == [f"v{k}"]
            unreachable = gc.collect()
        finally:
            gc.enable()
        assert store.lean is not None and store.lean.sent - sent == 600  # the short path's
        # The driver's own threads (heartbeats, metadata) may leave a few meanwhile; a cycle
        # per statement leaves thousands (9,897 before round 19).
        assert unreachable < 300, f"{unreachable} objects in cycles after 600 statements"
    finally:
        await _drop(store, ks)


async def test_schema_changes_go_through_the_driver(make_settings: Any) -> None:
    store, ks = await _store(make_settings)
    try:
        assert store.lean is not None
        sent = store.lean.sent
        await store.execute(
            f"ALTER TABLE {ks}.{TABLE} ADD extra text", idempotent=True, kind="ddl"
        )
        assert store.lean.sent == sent
        # The driver waited for the change: the next statement can use the new column at once.
        await store.execute(
            f"INSERT INTO {ks}.{TABLE} (k, c, extra) VALUES (?, ?, ?)",
            (1, 1, "x"),
            idempotent=True,
            write=True,
        )
        assert store.lean.sent == sent + 1
    finally:
        await _drop(store, ks)


async def test_a_statement_the_server_forgot_is_prepared_again(make_settings: Any) -> None:
    # Dropping a table makes Cassandra forget the statements prepared on it (as a restarted
    # node forgets all): the next EXECUTE is answered "unprepared" and the driver prepares it
    # again, then runs it.
    store, ks = await _store(make_settings)
    try:
        assert store.lean is not None
        insert = f"INSERT INTO {ks}.{TABLE} (k, c, v) VALUES (?, ?, ?)"
        select = f"SELECT v FROM {ks}.{TABLE} WHERE k = ? AND c = ?"
        await store.execute(insert, (1, 1, "before"), idempotent=True, write=True)
        assert [r.v for r in await store.execute(select, (1, 1), idempotent=True)] == ["before"]
        await store.execute(f"DROP TABLE {ks}.{TABLE}", idempotent=True, kind="ddl")
        await _create_table(store, ks)
        handed = store.lean.handed_over
        await store.execute(insert, (1, 1, "after"), idempotent=True, write=True)
        rows = await store.execute(select, (1, 1), idempotent=True)
        assert [r.v for r in rows] == ["after"]
        assert store.lean.handed_over == handed + 2
        # Prepared again on the server: from now on the short path takes them.
        await store.execute(insert, (1, 2, "later"), idempotent=True, write=True)
        assert store.lean.handed_over == handed + 2
    finally:
        await _drop(store, ks)


async def test_a_refused_statement_raises_what_the_driver_raises(make_settings: Any) -> None:
    store, ks = await _store(make_settings)
    try:
        select = f"SELECT v FROM {ks}.{TABLE} WHERE k = ?"
        # A null partition key is refused by the server, not by the client.
        with pytest.raises(InvalidRequest, match="k"):
            await store.execute(select, (None,), idempotent=True)
        driver, _ = await _store(make_settings, store__lean_requests=False)
        try:
            assert driver.lean is None
            with pytest.raises(InvalidRequest, match="k"):
                await driver.execute(select, (None,), idempotent=True)
        finally:
            await driver.close()
    finally:
        await _drop(store, ks)


async def test_timed_out_statements_leave_the_connection_usable(make_settings: Any) -> None:
    # The breaker would refuse calls after a few timeouts; here the connection is the subject.
    store, ks = await _store(make_settings, store__breaker_failures=1000)
    try:
        assert store.lean is not None
        insert = f"INSERT INTO {ks}.{TABLE} (k, c, v) VALUES (?, ?, ?)"
        select = f"SELECT c, v FROM {ks}.{TABLE} WHERE k = ?"
        for k in range(50):
            await store.execute(insert, (k, k, f"v{k}"), idempotent=True, write=True)
        # Time out many reads: their answers arrive late, on streams the connection retired.
        store.lean.timeout_s = 0.2
        deaf = reading(store, False)
        results = await asyncio.gather(
            *(store.execute(select, (k,), idempotent=False) for k in range(50)),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreUnavailableError) for r in results), results
        assert all("OperationTimedOut" in str(r) for r in results)
        store.lean.timeout_s = 10.0
        reading(store, True, deaf)
        await asyncio.sleep(0.5)  # the late answers land and are dropped
        # Each read gets its own rows, none of an earlier timed-out read's.
        for _ in range(3):
            rows = await asyncio.gather(
                *(store.execute(select, (k,), idempotent=True) for k in range(50))
            )
            assert [[(r.c, r.v) for r in rs] for rs in rows] == [
                [(k, f"v{k}")] for k in range(50)
            ]
    finally:
        await _drop(store, ks)


async def test_a_connection_closed_from_a_driver_thread_hands_over_on_the_loop(
    make_settings: Any,
) -> None:
    # The driver closes connections from its own threads (a host marked down, a pool shut
    # down) and fails what they had in flight right there. A statement in flight then is handed
    # to the driver's path from the loop's own thread, where its future lives.
    store = await Store.connect(make_settings(store__keyspace="system").store)
    try:
        assert store.lean is not None
        probe = "SELECT release_version FROM system.local"
        await store.execute(probe, idempotent=True)
        threads: list[int] = []
        fallback = store.lean._fallback

        def spy(bound: Any) -> Any:
            threads.append(threading.get_ident())
            return fallback(bound)

        store.lean._fallback = spy
        pending = asyncio.ensure_future(store.execute(probe, idempotent=True))
        await asyncio.sleep(0)  # sent, its answer not read yet
        (pool,) = store.session._pools.values()
        conns = list(pool._connections.values())
        closer = threading.Thread(target=lambda: [c.close() for c in conns])
        closer.start()
        closer.join()  # the loop reads nothing meanwhile: the statement is still in flight
        async with asyncio.timeout(20):
            try:
                rows = await pending
                assert rows[0].release_version
            except StoreUnavailableError:
                pass  # the driver had no open connection left: the caller is told so
        # Handed over at least once (retries hand over again while no connection is open),
        # always from the loop's thread.
        assert threads
        assert set(threads) == {threading.get_ident()}
    finally:
        await store.close()
