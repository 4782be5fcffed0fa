"""The receiver's webhook intake on this machine: ``python -m bench.receiver_webhook``.

One ``tgbridge receiver`` process serves one webhook bot on loopback and publishes to the real
Kafka (acks=all, idempotent). The benchmark plays Telegram with an aiohttp client and measures

* sustained throughput: a fixed number of concurrent clients POST as fast as answers come back,
  for a bounded time, at several concurrency levels;
* request latency at a fixed rate (1,000 updates/s by default): requests are started on a fixed
  schedule and each latency is counted from its scheduled start, so a stall is not hidden by the
  client waiting for it (no coordinated omission).

Only answers of 200 count, and every one of them must be in Kafka at the end. Results go to
``bench/results/receiver-webhook-<timestamp>.json``; a table is printed. Targets: at least 3,000
updates/s sustained, p99 at most 25 ms at 1,000/s. A timing never fails anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from worker.receiver.publisher import LINGER_MS, MAX_BATCH_BYTES
from worker.receiver.webhook import SECRET_HEADER
from worker.standin import StandIn

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "990000001:BENCH-token-not-a-real-one-0123456789"
BOT_ID = 990000001
SECRET = "bench-secret"
TARGET_THROUGHPUT = 3000.0
TARGET_P99_MS = 25.0


@dataclass
class Throughput:
    clients: int
    seconds: float
    ok: int
    failed: int
    per_second: float
    p50_ms: float
    p99_ms: float
    receiver_cpu_pct: float = 0.0
    receiver_cpu_us_per_update: float = 0.0
    client_cpu_pct: float = 0.0


@dataclass
class Latency:
    rate: int
    seconds: float
    sent: int
    ok: int
    failed: int
    achieved_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    receiver_cpu_pct: float = 0.0
    receiver_cpu_us_per_update: float = 0.0
    client_cpu_pct: float = 0.0


class CpuMeter:
    """CPU seconds used by the receiver process (from /proc) and by this client process."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._tick = os.sysconf("SC_CLK_TCK")

    def receiver(self) -> float:
        fields = self._stat.read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / self._tick

    def sample(self) -> tuple[float, float, float]:
        return time.perf_counter(), self.receiver(), time.process_time()

    @staticmethod
    def apply(
        result: Throughput | Latency,
        start: tuple[float, float, float],
        end: tuple[float, float, float],
    ) -> None:
        wall = end[0] - start[0]
        receiver = end[1] - start[1]
        result.receiver_cpu_pct = round(100 * receiver / wall, 1)
        result.receiver_cpu_us_per_update = round(1e6 * receiver / max(result.ok, 1), 1)
        result.client_cpu_pct = round(100 * (end[2] - start[2]) / wall, 1)


class Updates:
    """Realistic message updates (about 600 bytes), unique update ids, spread over 1,000 chats."""

    def __init__(self) -> None:
        self._next = 1

    def next(self) -> bytes:
        n = self._next
        self._next += 1
        chat = -1001000000000 - (n % 1000)
        return orjson.dumps(
            {
                "update_id": n,
                "message": {
                    "message_id": n,
                    "from": {
                        "id": 5000 + n % 97,
                        "is_bot": False,
                        "first_name": "Бенч",
                        "language_code": "ru",
                    },
                    "chat": {"id": chat, "title": "bench group", "type": "supergroup"},
                    "date": 1_700_000_000 + n // 1000,
                    "text": f"benchmark message number {n} — with some non-ASCII text ✓ and a "
                    f"link https://example.com/x/{n}",
                    "entities": [{"type": "url", "offset": 60, "length": 24}],
                },
            }
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class Receiver:
    """``tgbridge receiver`` as a subprocess in webhook mode, logs in a file."""

    def __init__(self, bootstrap: str, topic: str, api_base_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/telegram/{BOT_ID}"
        self.log = log
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TGBRIDGE_")}
        self.env.update(
            TGBRIDGE_TELEGRAM__BOTS=json.dumps(
                [{"token": TOKEN, "mode": "webhook", "webhook_secret": SECRET}]
            ),
            TGBRIDGE_TELEGRAM__API_BASE_URL=api_base_url,
            TGBRIDGE_TELEGRAM__WEBHOOK_HOST="127.0.0.1",
            TGBRIDGE_TELEGRAM__WEBHOOK_PORT=str(self.port),
            TGBRIDGE_KAFKA__BOOTSTRAP_SERVERS=bootstrap,
            TGBRIDGE_KAFKA__TOPIC=topic,
            TGBRIDGE_WORKER__LOG_FORMAT="json",
        )
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        tgbridge = Path(sys.executable).parent / "tgbridge"
        log = await asyncio.to_thread(open, self.log, "ab")
        with log:
            self.process = await asyncio.create_subprocess_exec(
                str(tgbridge), "receiver", env=self.env, cwd=self.log.parent, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"the receiver exited; see {self.log}")
            try:
                async with http.post(self.url, data=b"{}", headers={SECRET_HEADER: SECRET}) as r:
                    if r.status == 400:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the receiver did not listen in time; see {self.log}")

    async def stop(self) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


async def post(http: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    async with http.post(url, data=body, headers={SECRET_HEADER: SECRET}) as resp:
        await resp.read()
        return resp.status == 200


async def throughput(
    http: aiohttp.ClientSession, url: str, updates: Updates, clients: int, seconds: float
) -> Throughput:
    """``clients`` loops posting back to back for ``seconds``."""
    ok = failed = 0
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal ok, failed
        while time.perf_counter() < end:
            started = time.perf_counter()
            try:
                success = await post(http, url, updates.next())
            except aiohttp.ClientError:
                success = False
            latencies.append(time.perf_counter() - started)
            if success:
                ok += 1
            else:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Throughput(
        clients,
        round(elapsed, 2),
        ok,
        failed,
        round(ok / elapsed, 1),
        round(percentile(latencies, 0.50) * 1000, 2),
        round(percentile(latencies, 0.99) * 1000, 2),
    )


async def fixed_rate(
    http: aiohttp.ClientSession, url: str, updates: Updates, rate: int, seconds: float
) -> Latency:
    """Start one request every 1/``rate`` s; latency counts from the scheduled start."""
    total = int(rate * seconds)
    latencies: list[float] = []
    ok = failed = 0
    in_flight: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05

    async def one(scheduled: float, body: bytes) -> None:
        nonlocal ok, failed
        try:
            success = await post(http, url, body)
        except aiohttp.ClientError:
            success = False
        latencies.append(loop.time() - scheduled)
        if success:
            ok += 1
        else:
            failed += 1

    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled, updates.next()))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    elapsed = loop.time() - t0
    latencies.sort()
    ms = [v * 1000 for v in latencies]
    return Latency(
        rate,
        round(seconds, 2),
        total,
        ok,
        failed,
        round(ok / elapsed, 1),
        round(percentile(ms, 0.50), 2),
        round(percentile(ms, 0.90), 2),
        round(percentile(ms, 0.99), 2),
        round(percentile(ms, 0.999), 2),
        round(ms[-1], 2) if ms else float("nan"),
    )


async def records_in(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    topic = f"bench.recv.{uuid.uuid4().hex[:10]}"
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log = Path(tempfile.mkdtemp(prefix="receiver-webhook-")) / "receiver.log"
    updates = Updates()
    connector = aiohttp.TCPConnector(limit=max(args.clients) + 200, force_close=False)
    async with StandIn([TOKEN]) as api, aiohttp.ClientSession(connector=connector) as http:
        receiver = Receiver(args.bootstrap, topic, api.base_url, log)
        try:
            await receiver.start(http)
            # Warm up connections, the producer's metadata and the JIT-less code paths.
            warmup = await throughput(http, receiver.url, updates, 32, 2.0)
            assert receiver.process is not None
            cpu = CpuMeter(receiver.process.pid)
            sustained = []
            for clients in args.clients:
                before = cpu.sample()
                result = await throughput(http, receiver.url, updates, clients, args.seconds)
                cpu.apply(result, before, cpu.sample())
                sustained.append(result)
                print(f"  {clients:>4} clients: {result.per_second:>8.0f} updates/s", flush=True)
            await asyncio.sleep(1)
            before = cpu.sample()
            latency = await fixed_rate(http, receiver.url, updates, args.rate, args.seconds)
            cpu.apply(latency, before, cpu.sample())
            print(f"  {args.rate}/s: p99 {latency.p99_ms} ms", flush=True)
        finally:
            code = await receiver.stop()
    acked = warmup.ok + sum(t.ok for t in sustained) + latency.ok
    stored = await records_in(args.bootstrap, topic)
    await delete_topic(args.bootstrap, topic)
    best = max(sustained, key=lambda t: t.per_second)
    return {
        "benchmark": "receiver-webhook",
        "at": stamp,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "aiohttp": version("aiohttp"),
            "aiokafka": version("aiokafka"),
            "event_loop": "asyncio",
            "load_average_at_start": load_at_start,
        },
        "receiver": {
            "acks": "all",
            "idempotence": True,
            "linger_ms": LINGER_MS,
            "max_batch_bytes": MAX_BATCH_BYTES,
            "exit_code": code,
        },
        "throughput": [asdict(t) for t in sustained],
        "latency": asdict(latency),
        "check": {"answered_200": acked, "records_in_kafka": stored},
        "targets": {
            "throughput_per_s": TARGET_THROUGHPUT,
            "throughput_met": best.per_second >= TARGET_THROUGHPUT,
            "p99_ms_at_rate": TARGET_P99_MS,
            "p99_met": latency.p99_ms <= TARGET_P99_MS,
        },
        "log": str(log),
    }


def table(result: dict[str, Any]) -> str:
    lines = ["", "receiver webhook benchmark", ""]
    lines.append(
        f"{'clients':>8} {'updates/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} "
        f"{'rx CPU %':>9} {'rx us/upd':>10} {'client CPU %':>13}"
    )
    for t in result["throughput"]:
        lines.append(
            f"{t['clients']:>8} {t['per_second']:>10.0f} {t['p50_ms']:>8.2f} {t['p99_ms']:>8.2f} "
            f"{t['failed']:>7} {t['receiver_cpu_pct']:>9.1f} "
            f"{t['receiver_cpu_us_per_update']:>10.1f} {t['client_cpu_pct']:>13.1f}"
        )
    lat = result["latency"]
    targets = result["targets"]
    best = max(t["per_second"] for t in result["throughput"])
    lines += [
        "",
        f"at {lat['rate']}/s for {lat['seconds']} s ({lat['sent']} requests, "
        f"{lat['failed']} failed, achieved {lat['achieved_per_second']:.0f}/s):",
        f"  p50 {lat['p50_ms']} ms  p90 {lat['p90_ms']} ms  p99 {lat['p99_ms']} ms  "
        f"p99.9 {lat['p999_ms']} ms  max {lat['max_ms']} ms  (receiver CPU "
        f"{lat['receiver_cpu_pct']} %, {lat['receiver_cpu_us_per_update']} us/update)",
        "",
        f"sustained {best:.0f}/s vs target {TARGET_THROUGHPUT:.0f}/s: "
        f"{'met' if targets['throughput_met'] else 'NOT met'}",
        f"p99 {lat['p99_ms']} ms vs target {TARGET_P99_MS:.0f} ms: "
        f"{'met' if targets['p99_met'] else 'NOT met'}",
        f"answered 200 (incl. warm-up): {result['check']['answered_200']}, records in Kafka: "
        f"{result['check']['records_in_kafka']}",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.receiver_webhook", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--bootstrap", default=f"127.0.0.1:{os.environ.get('TGBRIDGE_DEV_KAFKA_PORT', '9092')}"
    )
    p.add_argument(
        "--clients", type=int, nargs="+", default=[16, 64, 128], help="concurrency levels"
    )
    p.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    p.add_argument("--rate", type=int, default=1000, help="updates/s of the latency phase")
    args = p.parse_args()
    result = asyncio.run(run(args))
    out = RESULTS / f"receiver-webhook-{result['at']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
