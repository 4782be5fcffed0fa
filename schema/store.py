"""The one CQL session of a process, made safe to use from asyncio.

Statements are prepared once and kept in a bounded LRU. The driver's sockets run on the
caller's event loop (``schema/reactor.py``), so an answer completes its future on the loop's own
thread; with the driver's I/O thread instead (TLS, or ``TGBRIDGE_STORE__IO=driver_thread``) it is
handed over with ``call_soon_threadsafe``. On the loop's connections, reads and writes skip
``execute_async`` and go out on the short path of ``schema/lean.py``. Idempotent statements are
retried with full-jitter backoff; a circuit breaker refuses calls while the store is down.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from cassandra import (
    ConsistencyLevel,
    DriverException,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    Unavailable,
    WriteFailure,
    WriteTimeout,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
    Session,
)
from cassandra.connection import ConnectionException
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.query import PreparedStatement, named_tuple_factory
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from config.settings import StoreIO, StoreSettings
from schema.breaker import BreakerOpenError, BreakerState, CircuitBreaker
from schema.lean import LeanPath, is_dml
from schema.reactor import loop_connection_class
from worker.metrics import Metrics

log = logging.getLogger(__name__)

#: Errors that say the store (or the path to it) is unwell, not that the statement is wrong.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    NoHostAvailable,
    OperationTimedOut,
    Unavailable,
    ReadTimeout,
    WriteTimeout,
    ReadFailure,
    WriteFailure,
    ConnectionException,
)


def cached_row_factory() -> Callable[[list[str], list[Any]], list[Any]]:
    """The driver's named-tuple rows, with each row class built once per column set.

    The driver's own factory builds a new namedtuple class for every answer, which is most of
    the client's CPU for small results; the first row still goes through it, so column names
    (``[applied]`` → ``applied``) are cleaned exactly as the driver does.
    """
    classes: dict[tuple[str, ...], Any] = {}

    def factory(colnames: list[str], rows: list[Any]) -> list[Any]:
        if not rows:
            return []
        key = tuple(colnames)
        cls = classes.get(key)
        if cls is None:
            cls = type(named_tuple_factory(colnames, rows[:1])[0])
            if len(classes) < 1000:
                classes[key] = cls
        return [cls(*row) for row in rows]

    return factory


class StoreUnavailableError(Exception):
    """The store could not be reached (after retries, or the breaker is open)."""


class Store:
    """Async access to one CQL session; build it with :meth:`connect`, end it with :meth:`close`."""

    def __init__(
        self,
        cluster: Cluster,
        session: Session,
        settings: StoreSettings,
        metrics: Metrics | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.cluster = cluster
        self.session = session
        self.settings = settings
        self.metrics = metrics
        #: The last transient failure, named in the log line when the breaker opens.
        self._last_error = "none recorded"
        self.breaker = breaker or CircuitBreaker(
            settings.breaker_failures,
            settings.breaker_reset_s,
            on_change=self._breaker_changed,
        )
        self._prepared: OrderedDict[str, PreparedStatement] = OrderedDict()
        self._preparing: dict[str, asyncio.Future[PreparedStatement]] = {}
        self._latency: dict[str, Callable[[float], None]] = {}
        self._write_cl = ConsistencyLevel.name_to_value[settings.write_consistency]
        self._read_cl = ConsistencyLevel.name_to_value[settings.read_consistency]
        self._serial_cl = ConsistencyLevel.name_to_value[settings.serial_consistency]
        #: The short request path (``schema/lean.py``), when the I/O runs on the loop.
        self._lean: LeanPath | None = None

    @classmethod
    async def connect(
        cls,
        settings: StoreSettings,
        metrics: Metrics | None = None,
        keyspace: str | None = None,
    ) -> Store:
        """Open the cluster connection (in a thread: the driver's connect blocks)."""
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(
                DCAwareRoundRobinPolicy(local_dc=settings.local_dc)
            ),
            consistency_level=ConsistencyLevel.name_to_value[settings.read_consistency],
            serial_consistency_level=ConsistencyLevel.name_to_value[settings.serial_consistency],
            request_timeout=settings.request_timeout_s,
            row_factory=cached_row_factory(),
        )
        auth = None
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            auth = PlainTextAuthProvider(username=settings.username, password=password)
        ssl_context = None
        if settings.tls_enabled:
            ssl_context = ssl.create_default_context(
                cafile=str(settings.tls_cafile) if settings.tls_cafile else None
            )
        io: dict[str, Any] = {}
        if settings.io is StoreIO.EVENT_LOOP and ssl_context is None:
            io["connection_class"] = loop_connection_class(asyncio.get_running_loop())
        cluster = Cluster(
            **io,
            contact_points=settings.contact_points,
            port=settings.port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            auth_provider=auth,
            ssl_context=ssl_context,
            connect_timeout=settings.connect_timeout_s,
            reconnection_policy=ExponentialReconnectionPolicy(0.5, 10.0),
            idle_heartbeat_interval=10,
            # Requests and answers are a few hundred bytes: compressing them costs CPU for nothing.
            compression=False,
            # Protocol v5 wraps every frame in checksummed segments, which this driver builds
            # and checks in pure Python (2-3% of the consumer's CPU in a profile); v4 has no
            # segments, loses nothing tgbridge uses, and is what ScyllaDB speaks anyway.
            protocol_version=4,
        )
        try:
            session = await asyncio.to_thread(cluster.connect, keyspace)
        except Exception as exc:
            cluster.shutdown()
            points = ",".join(settings.contact_points)
            raise StoreUnavailableError(
                f"cannot connect to the store at {points}:{settings.port}: {type(exc).__name__}"
            ) from None
        store = cls(cluster, session, settings, metrics)
        if io and settings.lean_requests:
            store._lean = LeanPath(
                session,
                asyncio.get_running_loop(),
                settings.request_timeout_s,
                profile.row_factory,
                fallback=store._driver_run,
            )
        return store

    async def close(self) -> None:
        await asyncio.to_thread(self.cluster.shutdown)

    @property
    def is_scylla(self) -> bool:
        """True when the cluster is ScyllaDB (it reports a scylla-specific system table)."""
        meta = self.cluster.metadata.keyspaces.get("system")
        return bool(meta and "scylla_local" in meta.tables)

    async def prepare(self, cql: str) -> PreparedStatement:
        """Prepare ``cql`` once; later calls hit a bounded LRU."""
        stmt = self._prepared.get(cql)
        if stmt is not None:
            self._prepared.move_to_end(cql)
            return stmt
        pending = self._preparing.get(cql)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self.session.prepare, cql))
            self._preparing[cql] = pending
            try:
                stmt = await pending
            finally:
                del self._preparing[cql]
            self._prepared[cql] = stmt
            while len(self._prepared) > self.settings.prepared_cache_size:
                self._prepared.popitem(last=False)
            return stmt
        return await asyncio.shield(pending)

    async def execute(
        self,
        cql: str,
        params: Sequence[Any] = (),
        *,
        idempotent: bool,
        write: bool = False,
        kind: str = "other",
    ) -> list[Any]:
        """Run a prepared statement and return its rows (first page).

        ``idempotent`` statements are retried on transient errors; writes use the write
        consistency level, reads the read level. The breaker refuses calls while open.
        """
        try:
            stmt = await self.prepare(cql)
        except TRANSIENT_ERRORS as exc:
            # A statement first used while the store is down must pause the caller like any
            # other unavailability, not surface as a raw driver error (a dead letter).
            raise StoreUnavailableError(
                f"store request failed: {type(exc).__name__}: {exc}"
            ) from exc
        bound = stmt.bind(params)
        bound.consistency_level = self._write_cl if write else self._read_cl
        bound.serial_consistency_level = self._serial_cl
        bound.is_idempotent = idempotent
        lean = is_dml(cql)
        try:
            # The first attempt runs without the retry machinery: it is the hot path.
            return await self._once(bound, kind, lean)
        except TRANSIENT_ERRORS as exc:
            if not idempotent or self.settings.retry_attempts < 2:
                raise StoreUnavailableError(
                    f"store request failed: {type(exc).__name__}: {exc}"
                ) from exc
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.retry_attempts - 1),
            wait=wait_random_exponential(
                multiplier=self.settings.retry_min_s, max=self.settings.retry_max_s
            ),
            retry=retry_if_exception(lambda e: isinstance(e, TRANSIENT_ERRORS)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(bound, kind, lean)
        except TRANSIENT_ERRORS as exc:
            raise StoreUnavailableError(
                f"store request failed: {type(exc).__name__}: {exc}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, bound: Any, kind: str, lean: bool) -> list[Any]:
        self.breaker.before_call()
        started = time.perf_counter()
        try:
            if lean and self._lean is not None and self._lean.on_its_loop():
                rows = await self._lean.execute(bound)
            else:
                rows = await self._driver_run(bound)
        except TRANSIENT_ERRORS as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            self.breaker.record_failure()
            if self.metrics:
                self.metrics.store_errors.labels(kind).inc()
            raise
        self.breaker.record_success()
        if self.metrics:
            observe = self._latency.get(kind)
            if observe is None:
                observe = self._latency[kind] = self.metrics.store_latency.labels(kind).observe
            observe(time.perf_counter() - started)
        return rows

    @property
    def lean(self) -> LeanPath | None:
        """The short request path, when this store has one (event-loop I/O, no TLS)."""
        return self._lean

    def _driver_run(self, bound: Any) -> asyncio.Future[list[Any]]:
        """``bound`` through ``Session.execute_async`` (its retries, re-preparing, plans)."""
        loop = asyncio.get_running_loop()
        here = threading.get_ident()
        result: asyncio.Future[list[Any]] = loop.create_future()
        response: ResponseFuture = self.session.execute_async(bound)

        def done(rows: list[Any]) -> None:
            if not result.done():
                result.set_result(rows)

        def failed(exc: BaseException) -> None:
            if not result.done():
                result.set_exception(exc)

        def on_loop(complete: Callable[[Any], None]) -> Callable[[Any], None]:
            # On the loop's thread (the loop read the answer itself) the future completes at
            # once; from the driver's threads it is handed over.
            def deliver(value: Any) -> None:
                if threading.get_ident() == here:
                    complete(value)
                else:
                    loop.call_soon_threadsafe(complete, value)

            return deliver

        response.add_callbacks(on_loop(done), on_loop(failed))
        return result

    def _breaker_changed(self, state: BreakerState) -> None:
        if state is BreakerState.CLOSED:
            log.warning("store circuit breaker is now %s", state.value)
        else:  # say what the last failure was, so that an outage explains itself
            log.warning(
                "store circuit breaker is now %s; last failure: %s", state.value, self._last_error
            )
        if self.metrics:
            self.metrics.breaker_state.set(0 if state is BreakerState.CLOSED else 1)


__all__ = [
    "TRANSIENT_ERRORS",
    "BreakerOpenError",
    "DriverException",
    "Store",
    "StoreUnavailableError",
]
