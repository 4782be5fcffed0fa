"""Fixtures for tests against the real Kafka and Cassandra that dev/services.sh starts.

A missing server fails the test run (it is never a skip). Each test gets its own keyspace and
its own topics, so tests never see each other's data.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from support.stack import CASSANDRA_PORT, KAFKA, unique

from config.settings import Settings
from schema.migrate import migrate
from schema.store import Store


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session", autouse=True)
def real_services() -> None:
    missing = [
        name
        for name, port in (("Kafka", int(KAFKA.rsplit(":", 1)[1])), ("Cassandra", CASSANDRA_PORT))
        if not _port_open(port)
    ]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not running: start them with `dev/services.sh start` "
            "(make test does this for you)",
            pytrace=False,
        )


@pytest.fixture
def names() -> dict[str, str]:
    ks = unique("t")
    return {"keyspace": ks, "topic": f"test.{ks}", "dlq": f"test.{ks}.dlq", "group": f"g.{ks}"}


@pytest.fixture
def make_settings(names: dict[str, str]) -> Callable[..., Settings]:
    """Settings pointing at the real services, this test's keyspace and topics."""

    def build(**overrides: Any) -> Settings:
        data: dict[str, Any] = {
            "kafka": {
                "bootstrap_servers": KAFKA,
                "topic": names["topic"],
                "dlq_topic": names["dlq"],
                "partitions": 4,
            },
            "store": {"port": CASSANDRA_PORT, "keyspace": names["keyspace"]},
            "worker": {"group_id": names["group"], "metrics_port": 0},
        }
        for path, value in overrides.items():
            group, _, key = path.partition("__")
            data.setdefault(group, {})[key] = value
        return Settings(_env_file=None, **data)  # type: ignore[call-arg]

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    """A store connection with this test's keyspace migrated; the keyspace is dropped after."""
    s = await Store.connect(settings.store)
    await migrate(s, settings.store)
    try:
        yield s
        await s.execute(
            f"DROP KEYSPACE IF EXISTS {settings.store.keyspace}", idempotent=True, kind="ddl"
        )
    finally:
        await s.close()  # even when the drop fails, so no session outlives the test's loop


@pytest.fixture
async def topics(settings: Settings) -> AsyncIterator[None]:
    from worker.kafka import ensure_topics

    await ensure_topics(settings.kafka, settings.kafka.topic, settings.kafka.dlq_topic)
    yield
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.delete_topics([settings.kafka.topic, settings.kafka.dlq_topic])
    finally:
        await admin.close()


@pytest.fixture
async def produce(settings: Settings, topics: None) -> AsyncIterator[Callable[..., Any]]:
    """Publish raw updates the way the receiver does (key = chat, bot_id header)."""
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    await producer.start()

    async def send(
        raw: bytes, key: bytes | None = b"1", bot_id: int = 42, **headers: bytes
    ) -> None:
        hdrs = [("bot_id", str(bot_id).encode()), ("transport", b"test"), *headers.items()]
        await producer.send_and_wait(settings.kafka.topic, raw, key=key, headers=hdrs)

    yield send
    await producer.stop()
