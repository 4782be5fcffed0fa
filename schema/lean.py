"""A short request path for prepared reads and writes, beside the driver's own.

``Session.execute_async`` builds, for every statement, a ``ResponseFuture`` with its own
``Event``, ``Condition`` and lock, a query plan generator, a retry-policy consultation and a
timer object, and then delivers the answer through a chain of callbacks. With the driver's
sockets on the consumer's loop (``schema/reactor.py``) that machinery was most of the
consumer's CPU per statement (``BENCHMARKS.md``, round 8). This path keeps what tgbridge uses:

* a live replica of the partition in the local DC, as the token-aware policy would put it first
  (the policy's full plan when there is none), and a connection borrowed from that host's pool
  (shard-aware on ScyllaDB);
* the prepared statement's id and bound values in one ``EXECUTE`` frame;
* a timeout on the loop; a stream that timed out is retired the way the driver retires it, so
  a late answer can never be taken for another request's;
* the answer's rows through the session's row factory.

Everything it does not handle goes to the driver's path, which then does what it always does:
an answer that asks for a retry elsewhere or a re-prepare (the store restarted), a connection
that broke or is busy, a pool that is gone, a host with tablet routing (ScyllaDB's tablets need
the routing hints the driver reads from answers). Server errors that are final (a timeout or an
unavailable replica reported by the coordinator, a refused statement) are raised as the driver
raises them, so the store's retries and circuit breaker see the same exceptions either way.

Only usable on the loop that owns the connections, and only for ``SELECT``, ``INSERT``,
``UPDATE`` and ``DELETE`` (schema changes need the driver's schema agreement).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import threading
from collections.abc import Callable
from typing import Any

from cassandra import ConsistencyLevel, OperationTimedOut
from cassandra.cluster import Session
from cassandra.connection import ConnectionBusy, ConnectionException
from cassandra.policies import HostDistance
from cassandra.pool import NoConnectionsAvailable
from cassandra.protocol import (
    ErrorMessage,
    ExecuteMessage,
    IsBootstrappingErrorMessage,
    OverloadedErrorMessage,
    PreparedQueryNotFound,
    ResultMessage,
    ServerError,
    TruncateError,
)
from cassandra.query import BoundStatement

_RESULT_ROWS = 2  # RESULT_KIND_ROWS
_RESULT_VOID = 1  # RESULT_KIND_VOID
#: Answers after which the driver would retry (elsewhere, or after re-preparing).
_DRIVER_HANDLES = (
    PreparedQueryNotFound,
    OverloadedErrorMessage,
    IsBootstrappingErrorMessage,
    TruncateError,
    ServerError,
)
_DML = ("SELECT", "INSERT", "UPDATE", "DELETE")

Fallback = Callable[[BoundStatement], "asyncio.Future[list[Any]]"]


@functools.lru_cache(maxsize=1024)
def is_dml(cql: str) -> bool:
    """Whether ``cql`` reads or writes rows (and so may take the short path)."""
    words = cql.split(None, 1)
    return bool(words) and words[0].upper() in _DML


class LeanPath:
    """Sends bound statements on the session's pooled connections, on ``loop``'s thread."""

    def __init__(
        self,
        session: Session,
        loop: asyncio.AbstractEventLoop,
        timeout_s: float,
        row_factory: Callable[[list[str], list[Any]], list[Any]],
        fallback: Fallback,
    ) -> None:
        self._session = session
        self._loop = loop
        self._thread = threading.get_ident()  # made on the loop's thread (Store.connect)
        self.timeout_s = timeout_s
        self._rows = row_factory
        self._fallback = fallback
        profile = session.cluster.profile_manager.default
        self._plan = profile.load_balancing_policy.make_query_plan
        self._distance = profile.load_balancing_policy.distance
        self._turn = itertools.count()
        self._fetch_size = session.default_fetch_size
        # As the driver does: a client-side write timestamp per statement, unless turned off.
        self._stamp = session.cluster.timestamp_generator if session.use_client_timestamp else None
        #: Statements sent here, and those handed to the driver's path (read by the tests).
        self.sent = 0
        self.handed_over = 0

    def on_its_loop(self) -> bool:
        """Whether the caller runs on the loop this path belongs to (the only place to use it)."""
        return threading.get_ident() == self._thread

    def execute(self, bound: BoundStatement) -> asyncio.Future[list[Any]]:
        """Send ``bound``; the future has its rows (first page), or the driver's exception."""
        result: asyncio.Future[list[Any]] = self._loop.create_future()
        if not self._send(bound, result):
            self._hand_over(bound, result)
        return result

    def replica_pool(self, bound: BoundStatement) -> Any | None:
        """The pool of a live replica of ``bound``'s partition in the local DC (its local rack
        first), or None when there is none or no routing key: then the policy's full plan.

        What the token-aware policy's plan would put first, without its generators, shuffle and
        second hash per request (15% of the consumer's CPU in a profile). Replicas take turns,
        as the policy's shuffle spreads them; a lightweight transaction always goes to the first
        live one, as the policy keeps it, so rounds on one key meet on one coordinator.
        """
        key = bound.routing_key
        token_map = self._session.cluster.metadata.token_map
        keyspace = bound.keyspace or self._session.keyspace
        if key is None or token_map is None or keyspace is None:
            return None
        try:
            replicas = token_map.get_replicas(keyspace, token_map.token_class.from_key(key))
        except Exception:  # a partitioner the driver cannot hash here: the policy decides
            return None
        n = len(replicas)
        if n == 0:
            return None
        start = 0
        if n > 1 and not bound.is_lwt() and not ConsistencyLevel.is_serial(
            bound.consistency_level
        ):
            start = next(self._turn) % n
        chosen = None
        for i in range(n):
            host = replicas[(start + i) % n]
            if not host.is_up:
                continue
            distance = self._distance(host)
            if distance == HostDistance.LOCAL_RACK:
                chosen = host
                break
            if distance == HostDistance.LOCAL and chosen is None:
                chosen = host
        if chosen is None:
            return None
        pool = self._session._pools.get(chosen)
        if pool is None or pool.is_shutdown:
            return None
        return pool

    def _send(self, bound: BoundStatement, result: asyncio.Future[list[Any]]) -> bool:
        pool = self.replica_pool(bound)
        if pool is None:
            pools = self._session._pools
            for host in self._plan(self._session.keyspace, bound):
                pool = pools.get(host)
                if pool is not None and not pool.is_shutdown:
                    break
            else:
                return False
        try:
            conn, stream = pool.borrow_connection(
                timeout=0.0,
                routing_key=bound.routing_key,
                keyspace=bound.keyspace,
                table=bound.table,
            )
        except (NoConnectionsAvailable, ConnectionException):
            return False
        features = conn.features
        if features.tablets_routing_v1 or features.tablets_routing_v2:
            _release(pool, conn, stream)
            return False
        prepared = bound.prepared_statement
        metadata, metadata_id = prepared.result_metadata_and_id
        message = ExecuteMessage(
            prepared.query_id,
            bound.values,
            bound.consistency_level,
            bound.serial_consistency_level,
            self._fetch_size,
            None,
            self._stamp() if self._stamp is not None else None,
            skip_meta=bool(metadata) and metadata_id is not None,
            result_metadata_id=metadata_id,
        )
        request = _Request(self, pool, conn, stream, bound, result)
        try:
            conn.send_msg(message, stream, request.answered, result_metadata=metadata)
        except Exception as exc:
            _release(pool, conn, stream)
            if isinstance(exc, (ConnectionException, ConnectionBusy)):
                return False  # closed or overloaded: the driver's path picks another
            raise
        request.timer = self._loop.call_later(self.timeout_s, request.timed_out)
        self.sent += 1
        return True

    def _hand_over(self, bound: BoundStatement, result: asyncio.Future[list[Any]]) -> None:
        self.handed_over += 1
        driver = self._fallback(bound)

        def relay(done: asyncio.Future[list[Any]]) -> None:
            if result.done():
                return
            exc = done.exception()
            if exc is not None:
                result.set_exception(exc)
            else:
                result.set_result(done.result())

        driver.add_done_callback(relay)


class _Request:
    """One statement sent on the short path, until its answer or its timeout settles ``result``.

    An object, not a pair of closures: the answer's callback names itself to hop back onto the
    loop, and a closure that does is a reference cycle (function, cell, function) holding its
    statement, its timer and its answer. Only the cyclic garbage collector frees those, and at
    full speed that was about 57 objects a message and a fifth of the consumer's time
    (``BENCHMARKS.md``, round 19). Nothing here points back at itself once settled: the timer,
    which holds ``timed_out``, is dropped by whichever of the two comes first.
    """

    __slots__ = ("bound", "conn", "lean", "pool", "result", "stream", "timer")

    def __init__(
        self,
        lean: LeanPath,
        pool: Any,
        conn: Any,
        stream: int,
        bound: BoundStatement,
        result: asyncio.Future[list[Any]],
    ) -> None:
        self.lean = lean
        self.pool = pool
        self.conn = conn
        self.stream = stream
        self.bound = bound
        self.result = result
        self.timer: asyncio.TimerHandle | None = None

    def answered(self, response: Any) -> None:
        lean = self.lean
        if not lean.on_its_loop():
            # A connection closed from one of the driver's threads fails what it had in flight
            # there; the future belongs to the loop.
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                lean._loop.call_soon_threadsafe(self.answered, response)
            return
        timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
        pool = self.pool
        if not pool.is_shutdown:
            pool.return_connection(self.conn)
        result = self.result
        if result.done():
            return
        if isinstance(response, ResultMessage):
            if response.kind == _RESULT_ROWS:
                result.set_result(lean._rows(response.column_names, response.parsed_rows))
            elif response.kind == _RESULT_VOID:
                result.set_result([])
            else:  # not an answer a read or a write gets: let the driver deal with it
                lean._hand_over(self.bound, result)
        elif isinstance(response, _DRIVER_HANDLES) or isinstance(response, ConnectionException):
            lean._hand_over(self.bound, result)
        elif isinstance(response, ErrorMessage):
            result.set_exception(response.to_exception())
        elif isinstance(response, BaseException):
            result.set_exception(response)
        else:
            result.set_exception(ConnectionException(f"unexpected answer: {response!r}"))

    def timed_out(self) -> None:
        self.timer = None
        conn = self.conn
        if conn._requests.pop(self.stream, None) is None:
            return  # answered in the same pass
        # The server may still answer on this stream: it stays retired until it does, as the
        # driver's own timeout leaves it.
        with conn.lock:
            conn.orphaned_request_ids.add(self.stream)
            if len(conn.orphaned_request_ids) >= conn.orphaned_threshold:
                conn.orphaned_threshold_reached = True
        if not self.pool.is_shutdown:
            self.pool.return_connection(conn, stream_was_orphaned=True)
        if not self.result.done():
            self.result.set_exception(
                OperationTimedOut(
                    {str(conn.endpoint): "client request timeout"},
                    timeout=self.lean.timeout_s,
                    in_flight=conn.in_flight,
                )
            )


def _release(pool: Any, conn: Any, stream: int) -> None:
    """Give back a stream that was borrowed but never sent (or whose send failed)."""
    with conn.lock:
        conn._requests.pop(stream, None)
        if stream not in conn.request_ids:
            conn.request_ids.append(stream)
    pool.return_connection(conn)
