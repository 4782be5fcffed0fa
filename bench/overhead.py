"""``python -m bench.overhead``: the consumer's own CPU per record, Kafka and the store left out.

The ratio ingest ÷ ceiling (``python -m bench``) is the consumer's extra work per message against
the statements themselves, measured on a machine whose speed moves by a fifth between runs. This
takes the extra work alone, so a change to it shows in microseconds, not in noise:

* **loop**: ``ConsumerLoop`` over the benchmark's traffic as Kafka records held in memory
  (decoding, ordering, write slots, metrics, offsets), with a stand-in writer whose
  statements are answered on the next turn of the event loop: one for a batch's dedupe reads,
  then two per message (three for a message that reads its own);
* **lanes**: the ceiling's shape (``bench/ceiling.py``, ``feed``): the same stand-in writer over
  messages decoded beforehand, read ahead a batch at a time, in as many lanes as the consumer's
  default write slots (256 since round 10, 64 before);
* **decode**: ``decode_update`` alone.

``loop - lanes`` is what the consumer adds per record before Kafka's client and the store's
statements (those two are measured by ``python -m bench``). Process CPU time; the best of
``--repeat`` runs. Writes ``bench/results/overhead-<time>.json`` and prints a table. Not a test:
the stand-ins are for timing the loop only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition

from bench import ceiling, report
from bench.run import write_side_result
from bench.traffic import Update, updates
from config.settings import WorkerSettings
from consumers.decode import decode_update
from consumers.loop import ConsumerLoop
from consumers.model import DecodedMessage
from consumers.writer import UNREAD, Outcome, Unread
from worker.demo.traffic import BOT_ID
from worker.lifecycle import run_fast
from worker.metrics import Metrics

PARTITIONS = 12
#: Round trips a new message makes in the ingest's steady state (read, row, mapping).
STATEMENTS = 3
#: The consumer's defaults; the lanes get as many as its write slots, so both sides have one width.
SETTINGS = WorkerSettings()


@dataclass(frozen=True, slots=True)
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


class _Records:
    """The part of ``AIOKafkaConsumer`` the loop uses, over records held in memory."""

    def __init__(self, stream: Sequence[Update]) -> None:
        self.tps = [TopicPartition("bench", p) for p in range(PARTITIONS)]
        self.records: dict[TopicPartition, list[_Record]] = {tp: [] for tp in self.tps}
        stamp = int(time.time() * 1000) - 7_200_000  # a backlog: no live-path shortcut
        bot = ((("bot_id", b"%d" % BOT_ID)),)
        for u in stream:
            tp = self.tps[zlib.crc32(u.key) % PARTITIONS]
            part = self.records[tp]
            part.append(_Record("bench", tp.partition, len(part), u.key, u.raw, bot, stamp))
        self.position = dict.fromkeys(self.tps, 0)
        self._assigned = set(self.tps)

    def assignment(self) -> set[TopicPartition]:
        return self._assigned

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[_Record]]:
        share = max(1, (max_records or 500) // PARTITIONS)
        batch = {}
        for tp in self.tps:
            at = self.position[tp]
            taken = self.records[tp][at : at + share]
            if taken:
                batch[tp] = taken
                self.position[tp] = at + len(taken)
        await asyncio.sleep(0)
        return batch

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await asyncio.sleep(0)

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.records[tp])

    def ends(self) -> dict[TopicPartition, int]:
        return {tp: len(records) for tp, records in self.records.items()}


class _Writer:
    """Stands in for ``MessageWriter``: each statement is answered on the loop's next turn, and
    no message is stored yet. A batch's dedupe reads count as one statement; a message whose
    read was made with them makes one statement less."""

    async def seen_all(self, messages: Sequence[DecodedMessage]) -> list[Unread | None]:
        await _answered()
        return [None] * len(messages)

    async def store(
        self, m: DecodedMessage, *, live: bool = False, seen: Any = UNREAD
    ) -> Outcome:
        for _ in range(STATEMENTS if seen is UNREAD else STATEMENTS - 1):
            await _answered()
        return Outcome.NEW


async def _answered() -> None:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[None] = loop.create_future()
    loop.call_soon(answer.set_result, None)
    await answer


async def _loop_us(stream: Sequence[Update]) -> float:
    source = _Records(stream)
    loop = ConsumerLoop(
        source,
        _Writer(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # no dead letters in this traffic
        None,  # type: ignore[arg-type]  # the store is only probed after a failure
        Metrics(),
        SETTINGS,
    )
    started = time.process_time()
    await loop.run(asyncio.Event(), source.ends())
    spent = time.process_time() - started
    if loop.stats.new != len(stream):
        raise RuntimeError(f"the loop stored {loop.stats.new} of {len(stream)} records")
    return spent / len(stream) * 1e6


async def _lanes_us(stream: Sequence[Update]) -> float:
    messages = ceiling.decode_all([u.raw for u in stream])
    writer: Any = _Writer()
    started = time.process_time()
    await ceiling.feed(writer, messages, SETTINGS.concurrency, SETTINGS.batch_max_records)
    return (time.process_time() - started) / len(messages) * 1e6


def _decode_us(stream: Sequence[Update]) -> float:
    started = time.process_time()
    for u in stream:
        decode_update(u.raw, BOT_ID)
    return (time.process_time() - started) / len(stream) * 1e6


async def measure(records: int, repeat: int) -> dict[str, Any]:
    stream = list(updates(records))
    gc.collect()
    gc.freeze()  # as the consumer does once started (worker.lifecycle.freeze_startup_heap)
    runs = []
    for _ in range(repeat):
        loop_us = await _loop_us(stream)
        lanes_us = await _lanes_us(stream)
        runs.append({"loop_us": loop_us, "lanes_us": lanes_us, "decode_us": _decode_us(stream)})
    best = {k: round(min(r[k] for r in runs), 2) for k in runs[0]}
    best["added_us"] = round(best["loop_us"] - best["lanes_us"], 2)
    return {"records": records, "repeat": repeat, "statements_per_message": STATEMENTS,
            "best": best, "runs": [{k: round(v, 2) for k, v in r.items()} for r in runs]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.overhead", description=__doc__.splitlines()[0]
    )
    p.add_argument("--records", type=int, default=40_000, help="records per run (default 40000)")
    p.add_argument("--repeat", type=int, default=5, help="runs; the best counts (default 5)")
    o = p.parse_args(argv)
    if o.records < 1000 or o.repeat < 1:
        p.error("--records must be at least 1000 and --repeat at least 1")
    figures = run_fast(measure(o.records, o.repeat))
    best = figures["best"]
    rows = [
        report.Row("Consumer loop, per record", f"{best['loop_us']:.1f} µs"),
        report.Row("Ceiling's lanes, per message", f"{best['lanes_us']:.1f} µs"),
        report.Row("Added by the consumer", f"{best['added_us']:.1f} µs"),
        report.Row("  of which decoding", f"{best['decode_us']:.1f} µs"),
    ]
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    write_side_result("overhead", stamp, figures, rows, python=sys.version.split()[0])

if __name__ == "__main__":
    main()
