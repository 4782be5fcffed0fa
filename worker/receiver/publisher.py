"""The Kafka side of the receiver: an idempotent producer that answers only once Kafka has acked.

``acks="all"`` with idempotence means an acknowledged record is on every in-sync replica and a
retried batch is never written twice by the producer itself. Retriable errors are retried by the
producer without end, so a deadline (``publish_timeout_s``) turns an outage into a
:class:`PublishError` the caller can act on (answer 503, or refetch from Telegram later).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2

from config import KafkaSettings
from worker.receiver.keys import Record

log = logging.getLogger(__name__)

#: aiokafka keeps one produce request in flight per broker, so records batch up by themselves
#: while a request is out; a longer linger only adds latency (measured: bench/receiver_webhook).
LINGER_MS = 1
MAX_BATCH_BYTES = 256 * 1024
_TOPIC_ALREADY_EXISTS = 36
#: Room for headers and batch framing above the largest update accepted.
_RECORD_OVERHEAD = 64 * 1024


class KafkaUnavailable(Exception):
    """Kafka cannot be reached, or the topic is missing and may not be created."""


class PublishError(Exception):
    """Records were not all acknowledged within the deadline, or Kafka refused them.

    ``pending``, when not None, resolves once every record is finally acknowledged (or fails):
    the producer keeps retrying them, so a caller may wait for it instead of sending them again.
    It is None when some records never reached the producer; those must be sent again.
    """

    def __init__(self, message: str, pending: asyncio.Future[Any] | None = None) -> None:
        super().__init__(message)
        self.pending = pending


class ChatPartitioner:
    """Kafka's default partitioner (murmur2 of the key, as the Java client), memoised per key.

    aiokafka computes murmur2 in pure Python on every send; the same chats recur all the time,
    so a bounded memo removes that cost from the webhook's per-request path.
    """

    def __init__(self, max_keys: int = 65_536) -> None:
        self._hashes: dict[bytes, int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._max_keys:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


def security_options(settings: KafkaSettings) -> dict[str, Any]:
    """Client options for TLS and SASL, from the settings."""
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.ssl_cafile) if settings.ssl_cafile else None
        options["ssl_context"] = create_ssl_context(cafile=cafile)
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            options["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return options


class Publisher:
    """Sends records to the updates topic and waits for Kafka's acknowledgement."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        max_value_bytes: int = 1024 * 1024,
        linger_ms: int = LINGER_MS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self._settings = settings
        self.topic = settings.topic
        self.timeout = settings.publish_timeout_s
        self._max_request = max(1024 * 1024, max_value_bytes + _RECORD_OVERHEAD)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.client_id}-receiver",
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=max_batch_bytes,
            max_request_size=self._max_request,
            partitioner=ChatPartitioner(),
            **security_options(settings),
        )
        self._started = False

    async def start(self) -> None:
        """Connect, make sure the topic exists and learn its partitions, or KafkaUnavailable."""
        try:
            await self._producer.start()
            self._started = True
            await self._ensure_topic()
            async with asyncio.timeout(max(self.timeout, 10.0)):
                partitions = await self._producer.partitions_for(self.topic)
        except KafkaError as exc:
            raise KafkaUnavailable(
                f"Kafka at {self._settings.bootstrap_servers} is unavailable: {exc}"
            ) from None
        except TimeoutError:
            raise KafkaUnavailable(
                f"Kafka did not report the partitions of topic {self.topic!r} in time"
            ) from None
        log.info("publishing to %s (%d partitions)", self.topic, len(partitions))

    async def _ensure_topic(self) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=f"{self._settings.client_id}-receiver-admin",
            **security_options(self._settings),
        )
        try:
            await admin.start()
            if self.topic in await admin.list_topics():
                return
            if not self._settings.create_topics:
                raise KafkaUnavailable(
                    f"Kafka topic {self.topic!r} does not exist and "
                    "TGBRIDGE_KAFKA__CREATE_TOPICS is false: create it first"
                )
            topic = NewTopic(
                self.topic,
                num_partitions=self._settings.partitions,
                replication_factor=self._settings.replication_factor,
                topic_configs={"max.message.bytes": str(self._max_request)},
            )
            response = await admin.create_topics([topic])
            for name, code, *rest in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    detail = rest[0] if rest and rest[0] else f"error code {code}"
                    raise KafkaUnavailable(f"creating Kafka topic {name!r} failed: {detail}")
            log.info("created topic %s with %d partitions", self.topic, self._settings.partitions)
        finally:
            await admin.close()

    async def publish(self, record: Record) -> None:
        """Send one record and wait for its acknowledgement, within the deadline."""
        await self.publish_many((record,))

    async def publish_many(self, records: Sequence[Record]) -> None:
        """Send records in order and wait until Kafka has acknowledged every one of them.

        Raises :class:`PublishError` when that takes longer than ``publish_timeout_s`` or Kafka
        refuses a record; records of one key keep their order either way.
        """
        if not records:
            return
        futures: list[asyncio.Future[Any]] = []
        combined: asyncio.Future[Any] | None = None
        try:
            async with asyncio.timeout(self.timeout):
                for r in records:
                    futures.append(
                        await self._producer.send(self.topic, r.value, r.key, headers=r.headers)
                    )
                combined = futures[0] if len(futures) == 1 else asyncio.gather(*futures)
                await asyncio.shield(combined)
        except TimeoutError:
            raise PublishError(
                f"Kafka did not acknowledge {len(records)} record(s) of {self.topic} "
                f"within {self.timeout:g} s",
                _retrieved(combined),
            ) from None
        except KafkaError as exc:
            _retrieved(combined)
            raise PublishError(f"Kafka refused a record of {self.topic}: {exc!r}") from None

    async def flush(self) -> None:
        if self._started:
            await self._producer.flush()

    async def stop(self) -> None:
        """Send what is buffered, then close (the producer's own stop flushes first)."""
        self._started = False
        await self._producer.stop()


def _retrieved(future: asyncio.Future[Any] | None) -> asyncio.Future[Any] | None:
    """``future``, made never to log "exception was never retrieved" when nobody awaits it."""
    if future is not None:
        future.add_done_callback(_retrieve)
    return future


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
