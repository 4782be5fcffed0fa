"""``python -m bench.stall``: does a stall of a few seconds leave the consumer holding memory?

A consumer runs at a steady rate for ``--seconds``; at ``--at`` one process is stopped
(``SIGSTOP``) for ``--for`` seconds and then continued: Cassandra (the store stalls, as during a
compaction: records in flight pile up), Kafka, or the consumer itself (a backlog waits for it).
Resident memory is sampled every two seconds. The consumer gives glibc's free pages back every
minute (``worker.heap``), so the level compared is the median over the ``WINDOW_S`` seconds
before the stop and over the last ``WINDOW_S`` seconds of the run: a step between the two is
memory the consumer kept, not pages it had not given back yet.

``--backlog-first S`` stops the consumer for S seconds at the start, so it catches up with a
backlog (its pipeline full) before the stall, as the soak does since round 23
(``bench/soak.py``). Round 23 ran it both ways at 2,300 msg/s, Cassandra stopped 3 s: without the
backlog the consumer kept 2.98 MiB after the stall, after one 0.06 MiB. What it kept was the
allocators' (one more 1 MiB arena of Python's, glibc's heap a MB or two larger with its top
pinned), not objects: see ``BENCHMARKS.md``, "Round 23".

Writes ``bench/results/stall-<time>.json`` and prints a table. Needs ``dev/services.sh start``.
Not a test: one run says what one host did once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.process import ConsumerProcess, Target, migrate
from bench.procfs import service_pid
from bench.produce import paced
from bench.run import ROOT, drop_run_data, write_side_result
from bench.traffic import updates
from config.settings import KafkaSettings, StoreSettings, WorkerSettings
from schema.store import Store
from worker.kafka import ensure_topics
from worker.lifecycle import run_fast

SAMPLE_EVERY_S = 2.0
#: Seconds of samples whose median is a level: a minute's trim and the climb after it.
WINDOW_S = 90.0
VICTIMS = ("cassandra", "kafka", "consumer")


async def _stopped(pid: int, seconds: float) -> None:
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


async def _clean_up(kafka: KafkaSettings, target: Target, o: argparse.Namespace) -> None:
    store = await Store.connect(StoreSettings(port=o.cassandra_port))
    try:
        await drop_run_data(store, [target.keyspace], kafka)
    finally:
        await store.close()


async def measure(o: argparse.Namespace, run_id: str) -> dict[str, Any]:
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{o.kafka_port}",
        topic=f"stall.{run_id}",
        dlq_topic=f"stall.{run_id}.dlq",
    )
    await ensure_topics(kafka, kafka.topic, kafka.dlq_topic)
    target = Target(kafka.bootstrap_servers, o.cassandra_port, kafka.topic, kafka.dlq_topic,
                    f"stall_{run_id}", f"stall-{run_id}")
    workdir = Path("/tmp") / f"tgbridge-stall-{run_id}"
    workdir.mkdir(parents=True, exist_ok=True)
    await migrate(target, workdir)
    consumer = ConsumerProcess(target, workdir / "consumer.log", {})
    await consumer.start()
    samples: list[tuple[float, float]] = []
    events: list[tuple[float, str]] = []
    try:
        await consumer.wait_ready()
        victim = consumer.pid if o.stop == "consumer" else service_pid(ROOT / ".local", o.stop)
        if victim is None:
            raise SystemExit(f"no {o.stop} process from dev/services.sh is running")
        started = time.monotonic()
        sender = asyncio.create_task(
            paced(kafka, updates(10**9, epoch=4), o.rate, o.seconds, track=False)
        )
        stall_done = backlog_done = False
        while not sender.done():
            at = time.monotonic() - started
            rss = consumer.rss_mib()
            if rss is not None:
                samples.append((at, rss))
            if o.backlog_first and not backlog_done and at >= 10:
                backlog_done = True
                events.append((round(at, 1), f"consumer stopped {o.backlog_first:g} s"))
                await _stopped(consumer.pid, o.backlog_first)
            elif not stall_done and at >= o.at:
                stall_done = True
                events.append((round(at, 1), f"{o.stop} stopped {o.stall:g} s"))
                await _stopped(victim, o.stall)
            await asyncio.sleep(SAMPLE_EVERY_S)
        log = await sender
    finally:
        await consumer.stop()
        await _clean_up(kafka, target, o)
    before = [r for t, r in samples if o.at - WINDOW_S <= t < o.at]
    after = [r for t, r in samples if t >= samples[-1][0] - WINDOW_S]
    level_before = statistics.median(before)
    level_after = statistics.median(after)
    return {
        "rate": o.rate,
        "achieved_rate": round(log.achieved_rate, 1),
        "stopped": o.stop,
        "stop_at_s": o.at,
        "stop_for_s": o.stall,
        "backlog_first_s": o.backlog_first,
        "level_before_mib": round(level_before, 2),
        "level_after_mib": round(level_after, 2),
        "step_mib": round(level_after - level_before, 2),
        "peak_mib": round(max(r for _, r in samples), 2),
        "events": events,
        "rss_samples": [(round(t, 1), round(r, 2)) for t, r in samples],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.stall", description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=2300.0, help="msg/s (default 2300)")
    p.add_argument("--seconds", type=float, default=480.0, help="run length (default 480)")
    p.add_argument("--stop", choices=VICTIMS, default="cassandra",
                   help="the process stopped (default cassandra)")
    p.add_argument("--at", type=float, default=240.0, help="when it is stopped (default 240 s)")
    p.add_argument("--for", dest="stall", type=float, default=3.0,
                   help="for how long (default 3 s)")
    p.add_argument("--backlog-first", type=float, default=0.0, metavar="S",
                   help="stop the consumer S seconds at the start first (default 0: no)")
    p.add_argument("--kafka-port", type=int,
                   default=int(os.environ.get("TGBRIDGE_DEV_KAFKA_PORT", "9092")))
    p.add_argument("--cassandra-port", type=int,
                   default=int(os.environ.get("TGBRIDGE_DEV_CASSANDRA_PORT", "9042")))
    o = p.parse_args(argv)
    # The level before the stop is taken after the consumer's first heap trim (a minute after
    # it starts): before that the RSS still holds its start-up's free pages.
    first_trim = WorkerSettings().heap_trim_interval_s
    if not first_trim + o.backlog_first + WINDOW_S <= o.at <= o.seconds - WINDOW_S - o.stall:
        p.error(
            f"--at must leave {WINDOW_S:g} s of samples between the consumer's first heap trim "
            f"({first_trim:g} s after it starts, after any --backlog-first) and the stop, and "
            f"{WINDOW_S:g} s after the stop"
        )
    run_id = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    figures = run_fast(measure(o, run_id))
    rows = [
        report.Row("Stopped", f"{o.stop} for {o.stall:g} s at {o.at:g} s"
                   + (f", after a backlog of {o.backlog_first:g} s" if o.backlog_first else "")),
        report.Row("RSS before (median)", f"{figures['level_before_mib']:.2f} MiB"),
        report.Row("RSS at the end (median)", f"{figures['level_after_mib']:.2f} MiB"),
        report.Row("Kept after the stall", f"{figures['step_mib']:+.2f} MiB"),
    ]
    write_side_result("stall", run_id, figures, rows)

if __name__ == "__main__":
    main()
