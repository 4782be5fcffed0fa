"""Kafka plumbing shared by the receiver and the consumers: connection options and topics."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from config.settings import KafkaSettings

log = logging.getLogger(__name__)


class KafkaSetupError(Exception):
    """A topic is missing (or cannot be created); the message says how to fix it."""


class KafkaUnavailableError(KafkaSetupError):
    """No broker answered at the configured address."""


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security options common to producers, consumers and the admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        )
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


def durable_producer(settings: KafkaSettings, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer that acknowledges only what every in-sync replica has: acks=all, idempotent."""
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=overrides.pop("linger_ms", 2),
        request_timeout_ms=int(settings.publish_timeout_s * 1000) + 1000,
        **overrides,
    )


async def ensure_topics(settings: KafkaSettings, *topics: str) -> None:
    """Create missing topics (when allowed) or fail with a line naming the missing one."""
    admin = AIOKafkaAdminClient(**client_options(settings), client_id=f"{settings.client_id}-admin")
    try:
        await admin.start()
    except KafkaConnectionError:
        raise KafkaUnavailableError(
            f"cannot reach Kafka at {settings.bootstrap_servers} "
            "(TGBRIDGE_KAFKA__BOOTSTRAP_SERVERS)"
        ) from None
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing and not settings.create_topics:
            raise KafkaSetupError(
                f"Kafka topic {missing[0]!r} does not exist; create it or set "
                "TGBRIDGE_KAFKA__CREATE_TOPICS=true"
            )
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, settings.partitions, settings.replication_factor) for t in missing]
                )
                log.info("created Kafka topics %s", ", ".join(missing))
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def partitions_of(settings: KafkaSettings, topic: str) -> list[int]:
    """The partition ids of ``topic`` (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(**client_options(settings), client_id=f"{settings.client_id}-admin")
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry["topic"] == topic and entry["error_code"] == 0:
            return sorted(p["partition"] for p in entry["partitions"])
    return []
