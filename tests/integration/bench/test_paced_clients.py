"""The benchmark's paced producer: either client puts the same records where the receiver would.

The paced phases publish with librdkafka by default (it costs the measured machine a tenth of
aiokafka's CPU per record). The consumer must not be able to tell: each record goes to the
partition aiokafka's key hashing picks, with the receiver's headers and its stamp as the Kafka
timestamp.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from support.stack import KAFKA

from bench.produce import PacedClient, paced
from bench.traffic import updates
from config.settings import Settings
from worker.kafka import partitions_of


async def test_both_paced_clients_publish_the_same_records_to_the_same_partitions(
    settings: Settings, topics: None
) -> None:
    stream = list(updates(60, epoch=7))
    logs = {c: await paced(settings.kafka, stream, 300.0, 0.2, client=c) for c in PacedClient}
    assert [log.records for log in logs.values()] == [60, 60]
    # Edits are counted; new messages have their stamps kept for the latency figures.
    assert all(len(log.sent_at) + log.edits == 60 for log in logs.values())

    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    try:
        topic = settings.kafka.topic
        parts = [TopicPartition(topic, p) for p in await partitions_of(settings.kafka, topic)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got = []
        while len(got) < 120:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, f"only {len(got)} of 120 records came back"
            got += [r for records in batch.values() for r in records]
    finally:
        await consumer.stop()

    copies: dict[bytes, list[tuple[int, bytes | None, list[str], bool]]] = {}
    for r in got:
        hdrs = dict(r.headers)
        stamped = int(hdrs["received_at"]) == r.timestamp
        copies.setdefault(r.value, []).append((r.partition, r.key, sorted(hdrs), stamped))
    assert len(copies) == 60
    for u in stream:
        (a, b) = copies[u.raw]
        assert a == b == (a[0], u.key, ["bot_id", "received_at", "transport"], True)
    assert len({c[0][0] for c in copies.values()}) > 1, "all records in one partition"
