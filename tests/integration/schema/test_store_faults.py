"""The store client against a real Cassandra that is stopped and started again."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

import pytest

from config.settings import Settings
from schema.breaker import BreakerOpenError, BreakerState
from schema.store import Store, StoreUnavailableError
from worker.metrics import Metrics

ROOT = Path(__file__).resolve().parents[3]
PROBE = "SELECT release_version FROM system.local"


def services(*args: str) -> None:
    subprocess.run([str(ROOT / "dev" / "services.sh"), *args], check=True, timeout=240)


async def test_retries_then_breaker_opens_while_down_and_closes_when_back(
    make_settings: object, caplog: pytest.LogCaptureFixture
) -> None:
    settings: Settings = make_settings(  # type: ignore[operator]
        store__breaker_reset_s=3.0, store__request_timeout_s=2.0, store__retry_max_s=0.2
    )
    metrics = Metrics()
    store = await Store.connect(settings.store, metrics)
    try:
        await store.execute(PROBE, idempotent=True)
        services("stop", "cassandra")
        try:
            # A statement never prepared before fails as unavailable too, not as a driver error.
            with pytest.raises(StoreUnavailableError):
                await store.execute(
                    "SELECT cluster_name FROM system.local", idempotent=True, kind="unprepared"
                )
            # An idempotent statement is tried 3 times, a non-idempotent one once.
            with pytest.raises(StoreUnavailableError):
                await store.execute(PROBE, idempotent=True, kind="idem")
            assert metrics.store_errors.labels("idem")._value.get() == 3
            with pytest.raises(StoreUnavailableError):
                await store.execute(PROBE, idempotent=False, kind="once")
            assert metrics.store_errors.labels("once")._value.get() == 1
            # Failures 5 in a row open the breaker: calls are refused without trying.
            with pytest.raises((StoreUnavailableError, BreakerOpenError)):
                await store.execute(PROBE, idempotent=False, kind="once")
            assert store.breaker.state is BreakerState.OPEN
            assert metrics.breaker_state._value.get() == 1
            # The log line that says so names the failure that opened it.
            opened = [
                r.getMessage()
                for r in caplog.records
                if r.name == "schema.store" and "breaker is now open" in r.getMessage()
            ]
            assert len(opened) == 1, opened
            assert re.search(
                r"last failure: (NoHostAvailable|OperationTimedOut|ConnectionException): \S",
                opened[0],
            ), opened[0]
            with pytest.raises(BreakerOpenError):
                await store.execute(PROBE, idempotent=False, kind="refused")
            assert metrics.store_errors.labels("refused")._value.get() == 0
        finally:
            services("start", "cassandra")
        deadline = time.monotonic() + 90
        while True:
            try:
                await store.execute(PROBE, idempotent=False)
                break
            except (StoreUnavailableError, BreakerOpenError):
                assert time.monotonic() < deadline, "the breaker never closed after the restart"
                await asyncio.sleep(1)
        assert store.breaker.state is BreakerState.CLOSED
        assert metrics.breaker_state._value.get() == 0
    finally:
        await store.close()
