"""End to end through real Kafka into real Cassandra: one row per Telegram message, always."""

from __future__ import annotations

from collections import Counter
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from support.consuming import checksum, consume, expected_texts, stored_rows
from support.stack import KAFKA, unique

from config.settings import Settings
from consumers.keys import message_key
from consumers.model import MessageIdentity
from schema.migrate import migrate
from schema.store import Store
from worker.demo.traffic import generate, supergroup, text_message, update
from worker.http import start_ops_server
from worker.metrics import Metrics

BOT = 42


async def scrape(metrics: Metrics) -> dict[str, float]:
    """Read /metrics over HTTP as Prometheus would."""
    runner = await start_ops_server(metrics, _ready, "127.0.0.1", 19_187)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get("http://127.0.0.1:19187/metrics") as r:
                text = await r.text()
    finally:
        await runner.cleanup()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            values[name] = float(value)
    return values


async def _ready() -> list[str]:
    return []


def chat_key(raw: bytes) -> bytes:
    """The receiver's partition key: the chat id."""
    u = orjson.loads(raw)
    return str(next(v for k, v in u.items() if k != "update_id")["chat"]["id"]).encode()


async def test_varied_updates_become_exactly_one_row_per_message(
    settings: Settings, store: Store, produce: Any
) -> None:
    updates = list(generate(3000, chats=300, seed=11))
    for raw in updates:
        await produce(raw, key=chat_key(raw), bot_id=BOT)
    metrics = Metrics()
    stats = await consume(settings, len(updates), metrics)

    rows = await stored_rows(store, settings.store.keyspace)
    expected = expected_texts(updates, BOT)
    got = {(r.chat_id, r.telegram_scope, r.telegram_message_id): r.content for r in rows}
    assert len(rows) == len(expected)
    assert got == expected
    keys = Counter((r.channel_id, r.bucket, r.message_id) for r in rows)
    assert keys.most_common(1)[0][1] == 1
    assert stats.new == len(expected)
    assert stats.new + stats.edits + stats.duplicates == len(updates)
    scraped = await scrape(metrics)
    assert scraped["tgbridge_records_consumed_total"] == len(updates)
    # Every record's time in Kafka is observed once, so a dashboard can split the latency.
    assert scraped["tgbridge_kafka_delay_seconds_count"] == len(updates)
    assert scraped["tgbridge_messages_written_total"] == len(expected)
    assert scraped["tgbridge_edits_applied_total"] == stats.edits
    assert scraped["tgbridge_duplicates_skipped_total"] == stats.duplicates
    # Offsets were committed, in fewer commits than records (they cover batches).
    assert 1 <= scraped["tgbridge_offset_commits_total"] < len(updates)
    # Replies to stored messages point at the stored message's key.
    by_tg = {(r.chat_id, r.telegram_message_id): r.message_id for r in rows}
    replies = [r for r in rows if r.reply_to_telegram_id is not None]
    assert replies
    resolved = [r for r in replies if r.reply_to_message_id is not None]
    assert all(
        by_tg[(r.chat_id, r.reply_to_telegram_id)] == r.reply_to_message_id for r in resolved
    )
    # Forum topics live in their own channel; photos keep the largest size only.
    assert any(r.thread_id for r in rows)
    with_photo = [r for r in rows if r.attachments]
    assert with_photo and all(a.width == 1280 for r in with_photo for a in r.attachments)


async def test_replay_changes_nothing_and_rebuilds_the_same_keys(
    make_settings: Any, settings: Settings, store: Store, produce: Any
) -> None:
    updates = list(generate(800, chats=60, seed=5))
    for raw in updates:
        await produce(raw, key=chat_key(raw), bot_id=BOT)
    await consume(settings, len(updates))
    rows = await stored_rows(store, settings.store.keyspace)
    got = {(r.chat_id, r.telegram_scope, r.telegram_message_id): r.content for r in rows}
    assert got == expected_texts(updates, BOT)  # each message once, its newest edit shown
    before = checksum(rows)

    # The whole topic again, from offset 0, into the same keyspace, as a backfill does it
    # (every mapping read first, however recent the record): nothing is written, nothing changes.
    backfill = make_settings(worker__live_window_s=0.0)
    metrics = Metrics()
    stats = await consume(backfill, len(updates), metrics, group_id=unique("replay"))
    assert stats.new == 0
    assert stats.duplicates + stats.edits == len(updates)
    assert checksum(await stored_rows(store, settings.store.keyspace)) == before
    # A fetched batch's dedupe reads go out together, one per chat: far fewer than records.
    # Only the edits write (their rows again, with the cells they have).
    reads = statements(metrics, "read_mapping") + statements(metrics, "read_mappings")
    assert 0 < reads < len(updates) / 6  # 60 chats; record by record it was about a quarter
    assert statements(metrics, "write_message") == stats.edits
    assert statements(metrics, "write_mapping") == statements(metrics, "lwt_key") == 0

    # And as live traffic (the records are seconds old): a supergroup's message skips its read
    # and its row is written again, with the cells it has, so still nothing changes, and an
    # edit stored since is not undone by its original.
    stats = await consume(settings, len(updates), group_id=unique("again"))
    assert stats.new > 0
    assert checksum(await stored_rows(store, settings.store.keyspace)) == before

    # And into an empty keyspace as a backfill, while the first pass ran as live traffic: the
    # same messages under the same keys in the same buckets.
    fresh = make_settings(store__keyspace=unique("t"), worker__live_window_s=0.0)
    other = await Store.connect(fresh.store)
    try:
        await migrate(other, fresh.store)
        await consume(fresh, len(updates), group_id=unique("fresh"))
        again = await stored_rows(other, fresh.store.keyspace)
        assert checksum(again) == before
    finally:
        await other.execute(f"DROP KEYSPACE IF EXISTS {fresh.store.keyspace}", idempotent=True)
        await other.close()


def statements(metrics: Metrics, kind: str) -> float:
    value = metrics.registry.get_sample_value(
        "tgbridge_store_request_seconds_count", {"kind": kind}
    )
    return value or 0.0


async def test_a_backfill_batch_with_a_message_its_copy_and_its_edit_stores_it_once(
    make_settings: Any, store: Store, produce: Any
) -> None:
    # A backfill reads a batch's mappings before any of its records is written: the copy and
    # the edit must not take the original's "not stored yet" as their own.
    settings = make_settings(worker__live_window_s=0.0)
    chat = supergroup(-1_009_000_000_002)
    date = 1_767_225_600
    original = text_message(20, chat, date, "draft")
    edit = {**original, "text": "final", "edit_date": date + 5}
    await produce(update(1, "message", original), key=b"c")
    await produce(update(2, "message", original), key=b"c")
    await produce(update(3, "edited_message", edit), key=b"c")
    stats = await consume(settings, 3)
    assert (stats.new, stats.duplicates, stats.edits) == (1, 1, 1)
    rows = await stored_rows(store, settings.store.keyspace)
    assert [(r.telegram_message_id, r.content) for r in rows] == [(20, "final")]


@pytest.mark.parametrize("window", [300.0, 0.0], ids=["live", "backfill"])
async def test_edit_and_deletion_before_their_message(
    make_settings: Any, store: Store, produce: Any, window: float
) -> None:
    settings = make_settings(worker__live_window_s=window)
    chat = supergroup(-1_009_000_000_001)
    date = 1_767_225_600
    original = text_message(10, chat, date, "first draft")
    edit1 = {**original, "text": "second", "edit_date": date + 5}
    edit2 = {**original, "text": "final", "edit_date": date + 9}
    # Arrival order: newest edit, original, older edit.
    await produce(update(1, "edited_message", edit2), key=b"c")
    await produce(update(2, "message", original), key=b"c")
    await produce(update(3, "edited_message", edit1), key=b"c")

    biz_chat = {"id": 555, "type": "private", "first_name": "Client"}
    biz = {**text_message(77, biz_chat, date, "secret offer"), "business_connection_id": "bc1"}
    deletion = {"business_connection_id": "bc1", "chat": biz_chat, "message_ids": [77]}
    await produce(
        update(4, "deleted_business_messages", deletion), key=b"555", received_at=b"1767225700000"
    )
    await produce(update(5, "business_message", biz), key=b"555")
    await consume(settings, 5)

    rows = {r.telegram_message_id: r for r in await stored_rows(store, settings.store.keyspace)}
    assert rows[10].content == "final"
    assert rows[77].deleted is True
    assert rows[77].content == "[deleted]"

    # Replaying the original business message cannot bring it back.
    await produce(update(6, "business_message", biz), key=b"555")
    await consume(settings, 1)
    rows = {r.telegram_message_id: r for r in await stored_rows(store, settings.store.keyspace)}
    assert rows[77].deleted is True and rows[77].content == "[deleted]"
    assert len(rows) == 2


async def test_poison_record_is_dead_lettered_and_the_partition_moves_on(
    settings: Settings, store: Store, produce: Any
) -> None:
    chat = supergroup(-1_009_000_000_002)
    await produce(update(1, "message", text_message(1, chat, 1_767_225_600, "before")), key=b"p")
    await produce(b"this is not json", key=b"p")
    await produce(b'{"update_id": 3, "message": {"message_id": "x"}}', key=b"p")
    await produce(update(4, "message", text_message(2, chat, 1_767_225_601, "after")), key=b"p")
    metrics = Metrics()
    stats = await consume(settings, 4, metrics)
    assert stats.dead_lettered == 2

    texts = sorted(r.content for r in await stored_rows(store, settings.store.keyspace))
    assert texts == ["after", "before"]
    assert metrics.dead_lettered.labels("not_json")._value.get() == 1
    assert metrics.dead_lettered.labels("bad_message")._value.get() == 1

    reader = AIOKafkaConsumer(
        settings.kafka.dlq_topic,
        bootstrap_servers=KAFKA,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        got = await reader.getmany(timeout_ms=5000)
        letters = [r for recs in got.values() for r in recs]
    finally:
        await reader.stop()
    assert len(letters) == 2
    first = dict(letters[0].headers)
    assert letters[0].value == b"this is not json"
    assert first["dlq.reason"] == b"not_json"
    assert first["dlq.source_topic"] == settings.kafka.topic.encode()
    assert first["dlq.offset"] == b"1"
    assert first["dlq.attempts"] == b"1"
    assert first["bot_id"] == b"42"
    assert b"message_id" in dict(letters[1].headers)["dlq.error"]


def _colliding_bots(chat_id: int) -> tuple[int, int]:
    """Two bots whose first key candidates for one basic-group message are the same key."""
    seen: dict[int, int] = {}
    for bot in range(1, 100_000):
        key = message_key(MessageIdentity(chat_id, f"bot:{bot}", 7), 1_767_225_600)
        if key in seen:
            return seen[key], bot
        seen[key] = bot
    raise AssertionError("no collision found")


async def test_two_messages_that_derive_one_key_get_two_keys(
    settings: Settings, store: Store, produce: Any
) -> None:
    # In a basic group ids are numbered per bot: bot A's message 7 and bot B's message 7 are
    # different messages. When their derived keys collide, the claim moves one of them.
    chat = {"id": -4_000_001, "title": "basic", "type": "group"}
    bot_a, bot_b = _colliding_bots(chat["id"])
    first = text_message(7, chat, 1_767_225_600, "bot A's seventh")
    second = text_message(7, chat, 1_767_225_600, "bot B's seventh")
    await produce(update(1, "message", first), key=b"g", bot_id=bot_a)
    await produce(update(2, "message", second), key=b"g", bot_id=bot_b)
    await produce(update(3, "message", second), key=b"g", bot_id=bot_b)  # and a duplicate
    await consume(settings, 3)
    rows = await stored_rows(store, settings.store.keyspace)
    assert sorted(r.content for r in rows) == ["bot A's seventh", "bot B's seventh"]
    assert len({r.message_id for r in rows}) == 2


async def _claimed(store: Store, keyspace: str) -> list[tuple[int, str, int]]:
    rows = await store.execute(
        f"SELECT chat_id, scope, telegram_message_id FROM {keyspace}.message_keys",
        idempotent=True,
    )
    return sorted((r.chat_id, r.scope, r.telegram_message_id) for r in rows)


async def test_a_private_chat_is_owned_by_its_first_bot_and_a_second_bot_claims(
    settings: Settings, store: Store, produce: Any
) -> None:
    # A user who talks to two bots has one chat id with both, and each bot numbers the messages
    # its own way. The first bot to store the chat owns its channel and writes unclaimed keys;
    # the second bot's keys are claimed and can never land on the first bot's.
    user_chat = {"id": 10_777, "first_name": "U", "type": "private"}
    sent = 1_767_225_600
    for n in range(1, 4):
        raw = update(n, "message", text_message(n, user_chat, sent, f"to bot A {n}"))
        await produce(raw, key=b"10777", bot_id=BOT)
    await consume(settings, 3)
    ks = settings.store.keyspace
    [binding] = await store.execute(
        f"SELECT channel_id, owner_chat_id, owner_scope FROM {ks}.channels WHERE chat_id = 10777",
        idempotent=True,
    )
    assert (binding.channel_id, binding.owner_chat_id, binding.owner_scope) == (
        10_777,
        10_777,
        f"bot:{BOT}",
    )
    assert await _claimed(store, ks) == [], "the owning bot's messages are not claimed"

    other = BOT + 1
    for n in range(1, 4):  # the same ids, the same second: other messages
        raw = update(10 + n, "message", text_message(n, user_chat, sent, f"to bot B {n}"))
        await produce(raw, key=b"10777", bot_id=other)
        await produce(raw, key=b"10777", bot_id=other)  # and each one twice
    await consume(settings, 6)
    rows = await stored_rows(store, ks)
    assert sorted(r.content for r in rows) == sorted(
        [f"to bot A {n}" for n in range(1, 4)] + [f"to bot B {n}" for n in range(1, 4)]
    )
    assert len({(r.channel_id, r.bucket, r.message_id) for r in rows}) == 6
    assert await _claimed(store, ks) == [(10_777, f"bot:{other}", n) for n in range(1, 4)]


async def test_a_chat_bound_before_owners_were_recorded_keeps_claiming(
    settings: Settings, store: Store, produce: Any
) -> None:
    # Channels bound before migration 0003 have no owner: their keys stay claimed, as before.
    ks = settings.store.keyspace
    await store.execute(
        f"INSERT INTO {ks}.channels (chat_id, thread_id, channel_id) VALUES (?, ?, ?)",
        (10_888, 0, 10_888),
        idempotent=True,
    )
    user_chat = {"id": 10_888, "first_name": "V", "type": "private"}
    raw = update(1, "message", text_message(1, user_chat, 1_767_225_600, "hello"))
    await produce(raw, key=b"10888", bot_id=BOT)
    await consume(settings, 1)
    assert [r.content for r in await stored_rows(store, ks)] == ["hello"]
    assert await _claimed(store, ks) == [(10_888, f"bot:{BOT}", 1)]


async def test_a_backfill_in_small_batches_read_ahead_stores_each_message_once(
    make_settings: Any, store: Store, produce: Any
) -> None:
    # Small batches and no live window: each batch's dedupe reads go out while the batch
    # before it is still waiting for its own, so an original, its copies and its edits often
    # sit in neighbouring batches, each read made before the other was written.
    settings = make_settings(worker__live_window_s=0.0, worker__batch_max_records=16)
    updates = list(generate(1200, chats=40, seed=13))
    for raw in updates:
        await produce(raw, key=chat_key(raw), bot_id=BOT)
    stats = await consume(settings, len(updates))
    rows = await stored_rows(store, settings.store.keyspace)
    expected = expected_texts(updates, BOT)
    got = {(r.chat_id, r.telegram_scope, r.telegram_message_id): r.content for r in rows}
    assert got == expected
    assert len(rows) == len(expected)
    assert Counter((r.channel_id, r.bucket, r.message_id) for r in rows).most_common(1)[0][1] == 1
    assert stats.new == len(expected)
    assert stats.new + stats.edits + stats.duplicates == len(updates)
    before = checksum(rows)

    # And replayed the same way, every record a duplicate: nothing new, nothing changed.
    stats = await consume(settings, len(updates), group_id=unique("replay"))
    assert stats.new == 0
    assert stats.duplicates + stats.edits == len(updates)
    assert checksum(await stored_rows(store, settings.store.keyspace)) == before
