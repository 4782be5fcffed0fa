"""The loop-bound driver connection's timers and guards, on a real event loop and real threads."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from cassandra.connection import ConnectionShutdown

from schema.reactor import loop_connection_class


async def test_a_timer_armed_from_another_thread_fires_on_the_loops_thread() -> None:
    cls = loop_connection_class(asyncio.get_running_loop())
    fired = asyncio.Event()
    where: list[int] = []

    def callback() -> None:
        where.append(threading.get_ident())
        fired.set()

    # The driver arms request timeouts and heartbeats from its own threads too.
    await asyncio.to_thread(cls.create_timer, 0.01, callback)
    async with asyncio.timeout(5):
        await fired.wait()
    assert where == [threading.get_ident()]


async def test_a_timer_cancelled_from_another_thread_never_fires() -> None:
    cls = loop_connection_class(asyncio.get_running_loop())
    fired: list[str] = []
    here = cls.create_timer(0.05, lambda: fired.append("armed on the loop"))
    there = await asyncio.to_thread(cls.create_timer, 0.05, lambda: fired.append("armed away"))
    await asyncio.to_thread(here.cancel)
    await asyncio.to_thread(there.cancel)
    await asyncio.sleep(0.2)
    assert fired == []


async def test_a_connection_is_never_opened_on_its_loops_thread() -> None:
    # The driver waits for a new connection to be ready; doing that on the loop would hang it.
    cls = loop_connection_class(asyncio.get_running_loop())
    with pytest.raises(RuntimeError, match="event loop's thread"):
        cls("127.0.0.1")


def test_a_store_that_outlived_its_loop_opens_no_socket() -> None:
    # A store never closed keeps reconnecting from the driver's threads after its loop is gone.
    # Each attempt must fail without leaving a connected socket behind.
    loop = asyncio.new_event_loop()
    cls = loop_connection_class(loop)
    loop.close()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        failed: list[BaseException] = []

        def reconnect() -> None:  # from another thread, as the driver's reconnection does
            try:
                cls("127.0.0.1", port=port)
            except BaseException as exc:
                failed.append(exc)

        attempt = threading.Thread(target=reconnect)
        attempt.start()
        attempt.join(10)
        assert [type(e) for e in failed] == [ConnectionShutdown]
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing connected
