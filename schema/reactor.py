"""The CQL driver's sockets on the caller's asyncio event loop instead of on a thread of its own.

With the driver's own reactors (libev, asyncore, its asyncio one) every request and every answer
crosses between two threads: the event loop hands the request to the I/O thread, and the I/O
thread hands the answer back with ``call_soon_threadsafe``. Each crossing wakes a thread and
passes the GIL. On a busy two-core machine those wake-ups, not the store, were most of a
statement's time (``BENCHMARKS.md``, round 6).

:func:`loop_connection_class` returns a driver ``Connection`` class bound to one running loop.
Its sockets are that loop's transports: a request is written from the loop's thread straight
to the socket, and an answer is decoded in ``data_received`` on the same thread, so the
awaiting coroutine resumes in the same loop pass. The driver's other threads (connecting,
heartbeats, reconnection, metadata) still work: what they send or schedule is handed to the
loop with ``call_soon_threadsafe``, and they block only their own thread while they wait.

Constraints, each checked or kept by :class:`~schema.store.Store`:

* the loop must keep running while the driver works: ``Cluster.connect``, ``prepare`` and
  ``shutdown`` block, so they run in worker threads (``asyncio.to_thread``);
* a connection is never opened on the loop's thread (the driver waits for it to be ready),
  and this class refuses to be;
* no TLS: the store falls back to the driver's libev thread when TLS is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from cassandra.connection import Connection, ConnectionShutdown

log = logging.getLogger(__name__)


def _soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> bool:
    """Run ``callback`` on ``loop``'s thread; False when the loop is already closed."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop is closed: the process is ending
        return False
    return True


class _Timer:
    """A request timeout on the loop, cancellable from any thread (the driver's ``Timer`` API)."""

    __slots__ = ("_cancelled", "_handle", "_loop", "_owner")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        owner: int,
        timeout: float,
        callback: Callable[[], Any],
    ) -> None:
        self._loop = loop
        self._owner = owner
        self._handle: asyncio.TimerHandle | None = None
        self._cancelled = False
        if threading.get_ident() == owner:
            self._handle = loop.call_later(timeout, callback)
        else:
            _soon(loop, self._arm, timeout, callback)

    def _arm(self, timeout: float, callback: Callable[[], Any]) -> None:
        if not self._cancelled:
            self._handle = self._loop.call_later(timeout, callback)

    def cancel(self) -> None:
        self._cancelled = True
        if threading.get_ident() == self._owner:
            self._cancel_here()
        else:
            _soon(self._loop, self._cancel_here)

    def _cancel_here(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


class _Protocol(asyncio.Protocol):
    def __init__(self, connection: LoopConnection) -> None:
        self._connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connection._attached(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        conn = self._connection
        conn._iobuf.write(data)
        conn.process_io_buffer()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._lost(exc)


class LoopConnection(Connection):  # type: ignore[misc]
    """A driver connection whose socket is a transport of one asyncio loop (see the module)."""

    #: Set on the subclass :func:`loop_connection_class` makes for one loop.
    _loop: asyncio.AbstractEventLoop
    _loop_thread: int
    is_closed: bool

    @classmethod
    def initialize_reactor(cls) -> None:
        """Nothing to start: the loop is the caller's, and already running."""

    @classmethod
    def handle_fork(cls) -> None:
        """Nothing to reset: a forked child makes its own loop and its own class."""

    @classmethod
    def create_timer(cls, timeout: float, callback: Callable[[], Any]) -> _Timer:
        return _Timer(cls._loop, cls._loop_thread, timeout, callback)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            # The driver waits for a new connection to be ready; on the loop's own thread that
            # wait would stop the loop that makes it ready.
            raise RuntimeError("a store connection cannot be opened on its event loop's thread")
        if self._loop.is_closed():
            # A store that outlived its loop (never closed) keeps reconnecting from the driver's
            # threads: refuse before a socket is opened, so none is left behind.
            raise ConnectionShutdown("the store's event loop is closed")
        Connection.__init__(self, *args, **kwargs)
        if self.ssl_context is not None:
            raise RuntimeError("TLS store connections use the driver's own I/O thread")
        self._transport: asyncio.Transport | None = None
        self._handed_over = False  # the socket belongs to the transport once it is made
        self._pending: list[bytes] = []
        self._connect_socket()  # a blocking connect, on the driver's thread
        self._socket.setblocking(False)
        if not _soon(self._loop, self._open):  # the loop closed while this one connected
            with contextlib.suppress(OSError):
                self._socket.close()
            raise ConnectionShutdown("the store's event loop is closed")
        self._send_options_message()

    def _open(self) -> None:
        if self.is_closed:
            self._socket.close()
            return
        self._handed_over = True
        task = self._loop.create_task(
            self._loop.create_connection(lambda: _Protocol(self), sock=self._socket)
        )
        task.add_done_callback(self._open_done)

    def _open_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.defunct(ConnectionShutdown("opening the connection was cancelled"))
        elif (exc := task.exception()) is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self.defunct(exc)

    def _attached(self, transport: asyncio.Transport) -> None:
        if self.is_closed:
            transport.close()
            return
        self._transport = transport
        self._flush()  # what was sent before the transport was made

    def _lost(self, exc: Exception | None) -> None:
        self._transport = None
        if exc is not None:
            self.defunct(exc)
        else:
            log.debug("connection %s closed by the server", self.endpoint)
            self.close()

    def push(self, data: bytes) -> None:
        if threading.get_ident() == self._loop_thread:
            self._write(data)
        elif not _soon(self._loop, self._write, data):
            self.defunct(ConnectionShutdown("the store's event loop is closed"))

    def _write(self, data: bytes) -> None:
        """Queue ``data``; everything queued in one pass of the loop goes out in one send."""
        if self.is_closed or self.is_defunct:
            return
        self._pending.append(data)
        if self._transport is not None and len(self._pending) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._transport is not None and self._pending:
            pending, self._pending = self._pending, []
            self._transport.writelines(pending)

    def close(self) -> None:
        with self.lock:
            if self.is_closed:
                return
            self.is_closed = True
        log.debug("closing connection to %s", self.endpoint)
        if threading.get_ident() == self._loop_thread:
            self._close_here()
        elif not _soon(self._loop, self._close_here):
            with contextlib.suppress(OSError):
                self._socket.close()
        if not self.is_defunct:
            msg = f"Connection to {self.endpoint} was closed"
            if self.last_error:
                msg += f": {self.last_error}"
            # Nothing in flight is left waiting.
            self.error_all_requests(ConnectionShutdown(msg))
            self.connected_event.set()

    def _close_here(self) -> None:
        self._pending.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        elif not self._handed_over and self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()


def loop_connection_class(loop: asyncio.AbstractEventLoop) -> type[LoopConnection]:
    """A :class:`LoopConnection` class bound to ``loop``; call it on that loop's thread."""
    return type(
        "LoopConnection",
        (LoopConnection,),
        {"_loop": loop, "_loop_thread": threading.get_ident()},
    )
