"""The store's socket I/O, on the process's event loop and on the driver's own thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from support.connections import reading

from config.settings import StoreIO
from schema.reactor import LoopConnection
from schema.store import Store, StoreUnavailableError


@pytest.mark.parametrize("io", list(StoreIO))
async def test_statements_round_trip_in_either_io_mode(make_settings: Any, io: StoreIO) -> None:
    settings = make_settings(store__io=io.value, store__keyspace="system")
    store = await Store.connect(settings.store)
    try:
        on_loop = issubclass(store.cluster.connection_class, LoopConnection)
        assert on_loop is (io is StoreIO.EVENT_LOOP)
        # Many statements at once, each answer back with its own rows.
        names = ["local", "peers", "paxos", "batches"]
        rows = await asyncio.gather(
            *(
                store.execute(
                    "SELECT table_name FROM system_schema.tables "
                    "WHERE keyspace_name = ? AND table_name = ?",
                    ("system", name),
                    idempotent=True,
                )
                for name in names * 50
            )
        )
        assert [r[0].table_name for r in rows] == names * 50
    finally:
        await store.close()


async def test_answers_complete_on_the_loops_own_thread(make_settings: Any) -> None:
    # The driver's own request path (the short one never leaves the loop's thread at all).
    settings = make_settings(store__keyspace="system", store__lean_requests=False)
    store = await Store.connect(settings.store)
    seen: list[int] = []
    original = store.session.execute_async

    def spying(*args: Any, **kwargs: Any) -> Any:
        response = original(*args, **kwargs)
        response.add_callback(lambda _rows: seen.append(threading.get_ident()))
        return response

    store.session.execute_async = spying  # type: ignore[method-assign]
    try:
        for _ in range(20):
            await store.execute("SELECT release_version FROM system.local", idempotent=True)
    finally:
        await store.close()
    # No hand-over between threads: the loop read every answer itself.
    assert seen == [threading.get_ident()] * 20


@pytest.mark.parametrize("lean", [True, False], ids=["short-path", "driver-path"])
async def test_a_request_timeout_fires_on_the_loop(make_settings: Any, lean: bool) -> None:
    # The connections stop reading, so no answer can arrive: every attempt times out, and the
    # caller is told the store is unavailable rather than left waiting.
    settings = make_settings(
        store__keyspace="system",
        store__request_timeout_s=0.2,
        store__retry_max_s=0.01,
        store__lean_requests=lean,
    )
    store = await Store.connect(settings.store)
    probe = "SELECT release_version FROM system.local"
    try:
        await store.execute(probe, idempotent=True)  # prepared while answers still come
        deaf = reading(store, False)
        async with asyncio.timeout(10):
            with pytest.raises(StoreUnavailableError, match="OperationTimedOut"):
                await store.execute(probe, idempotent=True)
        reading(store, True, deaf)
        rows = await store.execute(probe, idempotent=True)
        assert rows[0].release_version
    finally:
        await store.close()

