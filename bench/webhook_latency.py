"""Latency from a webhook request to the row written, through a real ``tgbridge receiver``.

The benchmark plays Telegram: it POSTs each update to the receiver's webhook endpoint (with the
bot's secret token, at most 40 requests in flight as Telegram's default ``max_connections``) at a
steady rate; each request counts from its scheduled start, so a stall is never hidden. The
receiver publishes to the topic the running consumer reads. A local Bot API stand-in answers
the receiver's own calls (``getWebhookInfo``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import aiohttp

from bench.latency import Latency, histogram_view, lateness
from bench.offsets import caught_up
from bench.process import TGBRIDGE, ConsumerProcess, Target, free_port
from bench.scrape import HistogramDelta
from bench.summaries import latency_summary
from bench.traffic import Identity, Update
from bench.written import mapping_written_at
from config.settings import KafkaSettings
from schema.store import Store
from worker.demo.traffic import BOT_ID
from worker.lifecycle import freeze_startup_heap
from worker.standin import SECRET_HEADER, StandIn

TOKEN = f"{BOT_ID}:bench-token"
SECRET = "bench-secret"
MAX_CONNECTIONS = 40


class ReceiverProcess:
    """A ``tgbridge receiver`` serving one webhook bot on a free local port."""

    def __init__(self, target: Target, api_base_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.env = target.env(
            TGBRIDGE_TELEGRAM__MODE="webhook",
            TGBRIDGE_TELEGRAM__BOTS=json.dumps(
                [{"token": TOKEN, "mode": "webhook", "webhook_secret": SECRET}]
            ),
            TGBRIDGE_TELEGRAM__API_BASE_URL=api_base_url,
            TGBRIDGE_TELEGRAM__WEBHOOK_HOST="127.0.0.1",
            TGBRIDGE_TELEGRAM__WEBHOOK_PORT=str(self.port),
        )
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/{BOT_ID}"

    async def start(self, within_s: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(TGBRIDGE), "receiver", env=self.env, cwd=self.log_path.parent,
                stdout=log, stderr=log,
            )
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(
                    f"the receiver exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                await asyncio.sleep(0.2)
        raise RuntimeError(
            f"the receiver did not listen within {within_s:.0f} s; see {self.log_path}"
        )

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _post_paced(
    url: str, stream: Iterable[Update], rate: float, seconds: float
) -> tuple[dict[Identity, float], list[float], int, float]:
    """POST at ``rate``; returns request start per new message, answer times, failures, rate."""
    requested: dict[Identity, float] = {}
    answers: list[float] = []
    failures = 0
    gate = asyncio.Semaphore(MAX_CONNECTIONS)
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}

    async def post(session: aiohttp.ClientSession, u: Update, scheduled: float) -> None:
        # Counted from the scheduled start, so time spent waiting for a free connection counts.
        nonlocal failures
        async with gate:
            async with session.post(url, data=u.raw, headers=headers) as response:
                await response.read()
                ok = response.status == 200
            if ok:
                answers.append(time.time() - scheduled)
                if not u.is_edit:
                    requested[u.identity] = scheduled
            else:
                failures += 1

    total = int(rate * seconds)
    tasks = []
    async with aiohttp.ClientSession(connector=connector) as session:
        begin = time.monotonic()
        wall = time.time()
        for i, u in enumerate(stream):
            if i >= total:
                break
            delay = begin + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(session, u, wall + i / rate)))
        await asyncio.gather(*tasks)
        achieved = total / (time.time() - wall)
    return requested, answers, failures, achieved


async def webhook_to_row(
    kafka: KafkaSettings,
    target: Target,
    consumer: ConsumerProcess,
    store: Store,
    stream: Iterable[Update],
    rate: float,
    seconds: float,
    log_path: Path,
) -> dict[str, object]:
    """Run a receiver, post at ``rate`` for ``seconds``, measure request start to row written."""
    async with StandIn([TOKEN]) as api:
        receiver = ReceiverProcess(target, api.base_url, log_path)
        await receiver.start()
        try:
            freeze_startup_heap()  # as in bench.latency: no full collections of the runner's heap
            before = await consumer.metrics()
            requested, answers, failures, achieved = await _post_paced(
                receiver.url, stream, rate, seconds
            )
            await caught_up(kafka, target.group, target.topic)
            after = await consumer.metrics()
        finally:
            await receiver.stop()
    written = await mapping_written_at(store, target.keyspace, requested)
    delays = lateness(requested, written)
    result = Latency(
        target_rate=rate,
        achieved_rate=achieved,
        records=len(answers),
        measured=len(delays),
        missing=len(requested) - len(delays),
        summary=latency_summary(delays),
        histogram=histogram_view(
            HistogramDelta.between(before, after, "tgbridge_e2e_from_kafka_seconds")
        ),
    ).as_json()
    result["failed_requests"] = failures
    result["webhook_answer"] = latency_summary(answers)
    return result
