"""Helpers of the receiver's integration tests: settings, reading a topic back, a corpus of varied
updates and a private broker that a test may stop and restart."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from support.stack import KAFKA

from config import Settings
from worker.metrics import Metrics
from worker.receiver.app import run_receiver
from worker.receiver.backoff import Backoff
from worker.receiver.health import ReceiverHealth
from worker.receiver.webhook import WebhookServer
from worker.standin import StandIn

ROOT = Path(__file__).resolve().parents[3]
#: Token-shaped, long enough that a leak would be unmistakable in logs.
TOKEN = "700100200:AAE_receiver-test-secret-part-0123456789"
WEBHOOK_TOKEN = "700100300:AAE_webhook-test-secret-part-9876543210"
WEBHOOK_SECRET = "s3cret_for-the-webhook"
OTHER_SECRET = "other_bots-secret"


def bot_id_of(token: str) -> int:
    return int(token.partition(":")[0])


def make_settings(
    bootstrap: str,
    topic: str,
    *,
    bots: list[dict[str, Any]],
    api_base_url: str = "http://127.0.0.1:9",
    **groups: dict[str, Any],
) -> Settings:
    """Settings for one receiver run; ``groups`` add or override per group (``kafka={...}``)."""
    data: dict[str, Any] = {
        "kafka": {"bootstrap_servers": bootstrap, "topic": topic, "partitions": 4},
        "telegram": {
            "bots": bots,
            "api_base_url": api_base_url,
            "poll_timeout_s": 2,
            "webhook_host": "127.0.0.1",
            "webhook_port": free_port(),
        },
        "worker": {"shutdown_timeout_s": 10},
    }
    for group, values in groups.items():
        data.setdefault(group, {}).update(values)
    return Settings(_env_file=None, **data)  # type: ignore[call-arg]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def delete_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        if name in await admin.list_topics():
            await admin.delete_topics([name])
    finally:
        await admin.close()


async def read_all(bootstrap: str, topic: str, within: float = 20.0) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to its current end, in partition order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic, within)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord] = []
        next_offset = {tp: 0 for tp in tps}
        deadline = time.monotonic() + within
        while any(next_offset[tp] < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {within} s")
            batch = await consumer.getmany(*tps, timeout_ms=500)
            for tp, tp_records in batch.items():
                records.extend(tp_records)
                if tp_records:
                    next_offset[tp] = tp_records[-1].offset + 1
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str, within: float) -> set[int]:
    deadline = time.monotonic() + within
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} has no partitions")
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)


def update_ids_by_key(records: list[ConsumerRecord]) -> dict[bytes, list[int]]:
    """The update ids of each key, in the order Kafka holds them."""
    out: dict[bytes, list[int]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out.setdefault(r.key, []).append(orjson.loads(r.value)["update_id"])
    return out


async def wait_until(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)


def corpus(count: int, first_id: int = 1000) -> list[bytes]:
    """``count`` varied updates as raw bytes, written in several JSON styles.

    Text, media with captions, edits, channel posts, forum topics, replies, business messages,
    reactions, callback queries, inline queries (no chat), an update type and fields from a future
    API version; non-ASCII text, ``\\u`` escapes and ``\\/`` escapes.
    """
    chats = [
        {"id": 11, "type": "private", "first_name": "Анна"},
        {"id": 12, "type": "private", "first_name": "李"},
        {"id": -4001, "type": "group", "title": "Group ✓"},
        {"id": -1001000000001, "type": "supergroup", "title": "Forum", "is_forum": True},
        {"id": -1001000000002, "type": "channel", "title": 'News "quoted"'},
        {"id": 13, "type": "private", "first_name": "عمر"},
    ]
    user = {"id": 11, "is_bot": False, "first_name": "Анна", "language_code": "ru"}
    texts = [
        "hello",
        "привет, мир 🌍",
        "emoji 👨‍👩‍👧‍👦 and RTL مرحبا",
        'quotes " and backslash \\ and slash / and brackets ]}[{',
        "url https://example.com/a/b?c=d",
        "line\nbreak\ttab \u2028 separator",
        "\U0001d518\U0001d52b\U0001d526\U0001d520 astral",
    ]
    out: list[bytes] = []
    message_ids: dict[int, int] = {}
    for i in range(count):
        update_id = first_id + i
        chat = chats[i % len(chats)]
        mid = message_ids[chat["id"]] = message_ids.get(chat["id"], 0) + 1
        text = texts[i % len(texts)]
        message: dict[str, Any] = {
            "message_id": mid,
            "date": 1_700_000_000 + i,
            "chat": chat,
            "from": user,
            "text": text,
        }
        kind = i % 16
        update: dict[str, Any] = {"update_id": update_id}
        if chat["type"] == "channel":
            del message["from"]
            message["sender_chat"] = chat
            update["edited_channel_post" if kind % 3 == 0 else "channel_post"] = message
        elif kind == 1:
            del message["text"]
            message["photo"] = [
                {"file_id": f"AgAC{i}", "file_unique_id": f"u{i}", "width": 90, "height": 60}
            ]
            message["caption"] = text
            message["caption_entities"] = [{"type": "bold", "offset": 0, "length": 2}]
            update["message"] = message
        elif kind == 2:
            message["edit_date"] = message["date"] + 5
            update["edited_message"] = message
        elif kind == 3 and chat.get("is_forum"):
            message["message_thread_id"] = 7
            message["is_topic_message"] = True
            update["message"] = message
        elif kind == 4:
            message["reply_to_message"] = {
                "message_id": max(mid - 1, 1),
                "date": 1_700_000_000,
                "chat": chat,
                "text": "earlier",
            }
            update["message"] = message
        elif kind == 5:
            message["business_connection_id"] = "bc-1"
            update["business_message"] = message
        elif kind == 6:
            message["business_connection_id"] = "bc-1"
            message["edit_date"] = message["date"] + 1
            update["edited_business_message"] = message
        elif kind == 7:
            update["deleted_business_messages"] = {
                "business_connection_id": "bc-1",
                "chat": chat,
                "message_ids": [1, 2],
            }
        elif kind == 8:
            update["message_reaction"] = {
                "chat": chat,
                "message_id": 1,
                "date": 1_700_000_000,
                "user": user,
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}],
            }
        elif kind == 9:
            update["callback_query"] = {
                "id": f"cb{i}",
                "from": user,
                "chat_instance": "ci",
                "data": "x/y",
                "message": message,
            }
        elif kind == 10:
            update["inline_query"] = {"id": f"iq{i}", "from": user, "query": text, "offset": ""}
        elif kind == 11:
            update["guest_summon_from_the_future"] = {
                "chat": chat,
                "summon_id": i,
                "nested": {"a": [1, {"b": None}]},
            }
        elif kind == 12:
            message["future_field_2031"] = {"unknown": True, "list": [1.5, -2e-7, "é"]}
            update["message"] = message
        else:
            update["message"] = message
        out.append(_serialise(update, i % 5))
    return out


def _serialise(update: dict[str, Any], style: int) -> bytes:
    if style == 0:
        return orjson.dumps(update)
    if style == 1:
        # What Telegram itself writes: \u escapes for non-ASCII and \/ for slashes.
        return (
            json.dumps(update, ensure_ascii=True, separators=(",", ":"))
            .replace("/", "\\/")
            .encode()
        )
    if style == 2:
        return json.dumps(update, ensure_ascii=False, indent=1).encode()
    if style == 3:
        return json.dumps(update, ensure_ascii=True, separators=(", ", ": ")).encode()
    return json.dumps(update, ensure_ascii=False).encode()


def kafka_cluster_id() -> str:
    """A random 22-character cluster id for StorageTool's `-t`.

    The URL-safe base64 of a UUID starts with '-' one time in 64, and StorageTool's argument
    parser then takes the id for an option and exits 1; Kafka's own Uuid.randomUuid() redraws
    such ids for the same reason, and so does this.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class PrivateKafka:
    """A throwaway one-node Kafka on its own ports and data dir, which a test may stop and restart.

    Built from the jars dev/services.sh fetched into .local/kafka/lib, with the same properties.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._lib = ROOT / ".local" / "kafka" / "lib"
        self._log4j = ROOT / "dev" / "services" / "log4j2.properties"
        self._process: asyncio.subprocess.Process | None = None
        if not (self._lib / ".complete").exists():
            pytest.fail(
                "the Kafka jars are missing: run dev/services.sh start kafka", pytrace=False
            )
        template = (ROOT / "dev" / "services" / "kafka.properties").read_text()
        data = home / "data"
        data.mkdir(parents=True)
        self._properties = home / "server.properties"
        self._properties.write_text(
            template.replace("@PORT@", str(self.port))
            .replace("@CONTROLLER_PORT@", str(self.controller_port))
            .replace("@DATA@", str(data))
        )
        formatted = subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                kafka_cluster_id(),
                "-c",
                str(self._properties),
                "--ignore-formatted",
            ],
            capture_output=True,
            timeout=60,
        )
        if formatted.returncode != 0:
            pytest.fail(
                f"formatting the private Kafka's log dir failed ({formatted.returncode}): "
                + formatted.stderr.decode(errors="replace")[-2000:],
                pytrace=False,
            )

    def _java(self) -> list[str]:
        return [
            "java",
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={self._log4j}",
            "-cp",
            f"{self._lib}/*",
        ]

    async def start(self, within: float = 60.0) -> None:
        log = await asyncio.to_thread(open, self.home / "kafka.log", "ab")
        with log:
            self._process = await asyncio.create_subprocess_exec(
                *self._java(), "kafka.Kafka", str(self._properties), stdout=log, stderr=log
            )
        deadline = time.monotonic() + within
        while True:
            if self._process.returncode is not None:
                raise AssertionError(f"private Kafka exited; see {self.home / 'kafka.log'}")
            if await self._ready():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"private Kafka not ready in {within} s")
            await asyncio.sleep(0.3)

    async def _ready(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            await admin.close()

    async def stop(self) -> None:
        """Stop the broker the hard way (SIGKILL): an outage, not a maintenance window."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        await asyncio.wait_for(process.wait(), 30)


def receiver_env(
    standin: StandIn, topic: str, bots: list[dict[str, Any]], **extra: str
) -> dict[str, str]:
    """The environment of a receiver process: only variables the test chose, no .env."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TGBRIDGE_")}
    env.update(
        TGBRIDGE_TELEGRAM__BOTS=json.dumps(bots),
        TGBRIDGE_TELEGRAM__API_BASE_URL=standin.base_url,
        TGBRIDGE_TELEGRAM__POLL_TIMEOUT_S="2",
        TGBRIDGE_KAFKA__BOOTSTRAP_SERVERS=KAFKA,
        TGBRIDGE_KAFKA__TOPIC=topic,
        TGBRIDGE_KAFKA__PARTITIONS="4",
        TGBRIDGE_WORKER__LOG_FORMAT="json",
        TGBRIDGE_WORKER__SHUTDOWN_TIMEOUT_S="10",
    )
    env.update(extra)
    return env


async def spawn(env: dict[str, str], workdir: Path, *args: str) -> asyncio.subprocess.Process:
    """Start ``tgbridge receiver`` (or ``args``) in ``workdir``; its output goes to receiver.log."""
    command = args or ("receiver",)
    log = await asyncio.to_thread(open, workdir / "receiver.log", "ab")
    with log:
        return await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "tgbridge"),
            *command,
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )


def fast_backoff() -> Backoff:
    return Backoff(initial=0.05, cap=0.3)


class Running:
    """A receiver running in this event loop (fast back-off), with its URL and metrics."""

    def __init__(self, settings: Settings, health: ReceiverHealth | None = None) -> None:
        self.settings = settings
        self.health = health or ReceiverHealth()
        self.metrics = Metrics()
        self.stop = asyncio.Event()
        self._ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.server: WebhookServer | None = None

    async def __aenter__(self) -> Running:
        def ready(server: WebhookServer | None) -> None:
            self.server = server
            self._ready.set()

        self.task = asyncio.create_task(
            run_receiver(
                self.settings,
                self.metrics,
                self.stop,
                health=self.health,
                backoff=fast_backoff,
                on_ready=ready,
            )
        )
        waiter = asyncio.ensure_future(self._ready.wait())
        await asyncio.wait([waiter, self.task], timeout=20, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self.task.done():
            self.task.result()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 15)

    def url(self, bot_id: int | str) -> str:
        port = self.settings.telegram.webhook_port
        return f"http://127.0.0.1:{port}" + self.settings.telegram.webhook_path.replace(
            "{bot_id}", str(bot_id)
        )

    def rejected(self, reason: str, bot_id: int | str) -> float:
        return self.metrics.updates_rejected.labels(str(bot_id), reason)._value.get()
