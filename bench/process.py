"""The processes under test: ``tgbridge migrate``, and a ``tgbridge consumer`` watched from outside.

The consumer runs as its own process, configured only through environment variables as in
production, so its resident memory is its own and its ``/metrics`` page is the one operators see.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.procfs import status_kib
from bench.scrape import Scrape, scrape

TGBRIDGE = Path(sys.executable).with_name("tgbridge")


class ProcessExited(RuntimeError):
    """The process under test ended while the benchmark still needed it."""


@dataclass(frozen=True)
class Target:
    """Where a tgbridge process reads and writes: topics, keyspace and consumer group."""

    bootstrap: str
    cassandra_port: int
    topic: str
    dlq_topic: str
    keyspace: str
    group: str

    def env(self, **extra: str) -> dict[str, str]:
        """The process environment: this machine's, with every TGBRIDGE_ variable ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TGBRIDGE_")}
        # As the Docker image runs it: two glibc malloc arenas (see the Dockerfile).
        env.setdefault("MALLOC_ARENA_MAX", "2")
        env.update(
            TGBRIDGE_KAFKA__BOOTSTRAP_SERVERS=self.bootstrap,
            TGBRIDGE_KAFKA__TOPIC=self.topic,
            TGBRIDGE_KAFKA__DLQ_TOPIC=self.dlq_topic,
            TGBRIDGE_STORE__PORT=str(self.cassandra_port),
            TGBRIDGE_STORE__KEYSPACE=self.keyspace,
            TGBRIDGE_WORKER__GROUP_ID=self.group,
            TGBRIDGE_WORKER__LOG_FORMAT="text",
        )
        env.update(extra)
        return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def migrate(target: Target, workdir: Path) -> None:
    """Create and migrate the target keyspace with ``tgbridge migrate``."""
    proc = await asyncio.create_subprocess_exec(
        str(TGBRIDGE), "migrate", env=target.env(), cwd=workdir,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"tgbridge migrate failed ({proc.returncode}): {out.decode()[-2000:]}")


class ConsumerProcess:
    """One ``tgbridge consumer``; its log goes to ``log_path``."""

    def __init__(self, target: Target, log_path: Path, extra_env: dict[str, str]) -> None:
        self.target = target
        self.log_path = log_path
        self.extra_env = extra_env
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self._http: aiohttp.ClientSession | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        env = self.target.env(TGBRIDGE_WORKER__METRICS_PORT=str(self.port),
                              TGBRIDGE_WORKER__METRICS_HOST="127.0.0.1", **self.extra_env)
        log = self.log_path.open("ab")
        try:
            self.started_at = time.time()
            self.proc = await asyncio.create_subprocess_exec(
                str(TGBRIDGE), "consumer", env=env, cwd=self.log_path.parent,
                stdout=log, stderr=log,
            )
        finally:
            log.close()
        self._http = aiohttp.ClientSession()

    async def wait_ready(self, within_s: float = 120.0) -> float:
        """Wait until ``/readyz`` answers 200 (partitions assigned, store reachable)."""
        assert self._http is not None
        deadline = time.monotonic() + within_s
        url = f"http://127.0.0.1:{self.port}/readyz"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                async with self._http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return time.time()
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(
            f"the consumer was not ready within {within_s:.0f} s; see {self.log_path}"
        )

    async def metrics(self) -> Scrape:
        assert self._http is not None
        self._check_alive()
        return await scrape(self._http, f"http://127.0.0.1:{self.port}/metrics")

    def rss_mib(self) -> float | None:
        kib = status_kib(self.pid, "VmRSS")
        return None if kib is None else kib / 1024

    def peak_rss_mib(self) -> float | None:
        kib = status_kib(self.pid, "VmHWM")
        return None if kib is None else kib / 1024

    async def stop(self, grace_s: float = 30.0) -> int | None:
        """SIGTERM (a graceful drain), then SIGKILL after ``grace_s``; returns the exit code."""
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), grace_s)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            raise ProcessExited(
                f"the consumer exited with {self.proc.returncode}; see {self.log_path}"
            )
