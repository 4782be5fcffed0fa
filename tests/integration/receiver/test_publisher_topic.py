"""The publisher's start: the topic is created when allowed, and named when it is missing."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from support.stack import KAFKA

from config import KafkaSettings
from worker.receiver.keys import Record
from worker.receiver.publisher import KafkaUnavailable, Publisher

pytestmark = pytest.mark.integration


async def test_missing_topic_is_named_when_it_may_not_be_created(recv_topic: str) -> None:
    publisher = Publisher(
        KafkaSettings(bootstrap_servers=KAFKA, topic=recv_topic, create_topics=False)
    )
    try:
        with pytest.raises(KafkaUnavailable) as info:
            await publisher.start()
    finally:
        await publisher.stop()
    assert recv_topic in str(info.value)
    assert "TGBRIDGE_KAFKA__CREATE_TOPICS" in str(info.value)


async def test_topic_is_created_with_the_configured_partitions(recv_topic: str) -> None:
    publisher = Publisher(KafkaSettings(bootstrap_servers=KAFKA, topic=recv_topic, partitions=3))
    try:
        await publisher.start()
        await publisher.publish_many([Record(b"1", b'{"update_id":1}', [])])
    finally:
        await publisher.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([recv_topic])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 3


async def test_unreachable_kafka_is_unavailable() -> None:
    publisher = Publisher(KafkaSettings(bootstrap_servers="127.0.0.1:1", topic="never"))
    try:
        with pytest.raises(KafkaUnavailable) as info:
            await publisher.start()
    finally:
        await publisher.stop()
    assert "127.0.0.1:1" in str(info.value)
