"""Fixtures of the receiver's integration tests; the helpers live in recv_support."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from recv_support import TOKEN, WEBHOOK_TOKEN, PrivateKafka, delete_topic
from support.stack import KAFKA

from worker.standin import StandIn


@pytest.fixture(scope="session", autouse=True)
def real_services() -> None:
    """The receiver needs only Kafka: overrides the shared check, which also wants Cassandra."""
    host, _, port = KAFKA.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        pytest.fail(
            f"Kafka not running at {KAFKA}: start it with `dev/services.sh start kafka`",
            pytrace=False,
        )


@pytest.fixture
async def recv_topic() -> AsyncIterator[str]:
    """A fresh topic name; the topic (created by the receiver) is deleted afterwards."""
    name = f"test.recv.{uuid.uuid4().hex[:12]}"
    yield name
    await delete_topic(KAFKA, name)


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    async with StandIn([TOKEN, WEBHOOK_TOKEN]) as api:
        yield api


@pytest.fixture
async def private_kafka(tmp_path: Path) -> AsyncIterator[PrivateKafka]:
    kafka = await asyncio.to_thread(PrivateKafka, tmp_path / "kafka")
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()
