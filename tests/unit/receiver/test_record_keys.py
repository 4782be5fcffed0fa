"""The Kafka key and headers of an update: one chat's updates share a key, no token anywhere."""

from __future__ import annotations

from typing import Any

import pytest

from worker.receiver.keys import CHAT_UPDATES, build_record, chat_id_of, kafka_key, record_headers

BOT_ID = 123456


@pytest.mark.parametrize("update_type", CHAT_UPDATES)
def test_chat_updates_are_keyed_by_chat(update_type: str) -> None:
    update = {"update_id": 1, update_type: {"chat": {"id": -1001234567890, "type": "supergroup"}}}
    assert kafka_key(update, BOT_ID) == b"-1001234567890"


def test_callback_query_uses_its_message_chat() -> None:
    update = {
        "update_id": 5,
        "callback_query": {"id": "9", "from": {"id": 77}, "message": {"chat": {"id": 42}}},
    }
    assert kafka_key(update, BOT_ID) == b"42"


def test_inaccessible_callback_message_still_has_its_chat() -> None:
    update = {
        "update_id": 5,
        "callback_query": {"id": "9", "message": {"chat": {"id": 8}, "message_id": 1, "date": 0}},
    }
    assert chat_id_of(update) == 8


def test_future_update_type_with_a_chat_keeps_chat_order() -> None:
    update = {"update_id": 9, "message_poll_summary": {"chat": {"id": 31337}, "extra": [1]}}
    assert kafka_key(update, BOT_ID) == b"31337"


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 1, "inline_query": {"id": "1", "from": {"id": 5}, "query": ""}},
        {"update_id": 1, "callback_query": {"id": "1", "inline_message_id": "abc"}},
        {"update_id": 1, "poll": {"id": "p"}},
        {"update_id": 1, "business_connection": {"id": "b", "user_chat_id": 5}},
        {"update_id": 1, "message": {"chat": {"id": True}}},
        {"update_id": 1, "message": {"chat": {"id": "12"}}},
        {"update_id": 1, "message": {"chat": None}},
        {"update_id": 1, "message": "not an object"},
        {"update_id": 1},
    ],
)
def test_updates_without_a_chat_are_keyed_by_bot(update: dict[str, Any]) -> None:
    assert kafka_key(update, BOT_ID) == b"bot:123456"


def test_headers_are_ascii_bytes() -> None:
    assert record_headers(BOT_ID, 1_700_000_000_123, "webhook") == [
        ("bot_id", b"123456"),
        ("received_at", b"1700000000123"),
        ("transport", b"webhook"),
    ]


def test_record_keeps_the_raw_bytes_as_its_value() -> None:
    raw = b'{"update_id":1, "message":{"chat":{"id":7},"text":"hi"}}'
    record = build_record(
        raw, {"update_id": 1, "message": {"chat": {"id": 7}}}, BOT_ID, 1, "polling"
    )
    assert record.value is raw
    assert record.key == b"7"
    assert dict(record.headers)["transport"] == b"polling"
