"""Interpreting getUpdates answers, the back-off policy and the health summary."""

from __future__ import annotations

import pytest

from worker.receiver.backoff import Backoff
from worker.receiver.health import ReceiverHealth
from worker.receiver.polling import TelegramError, parse_get_updates


def test_ok_response_gives_raw_and_parsed_updates() -> None:
    body = b'{"ok":true,"result":[{"update_id":1,"x":"\\u00e9"} , {"update_id":2}]}'
    batch = parse_get_updates(200, body)
    assert batch.raws == [b'{"update_id":1,"x":"\\u00e9"}', b'{"update_id":2}']
    assert batch.updates == [{"update_id": 1, "x": "é"}, {"update_id": 2}]


def test_conflict() -> None:
    body = b'{"ok":false,"error_code":409,"description":"Conflict: webhook is active"}'
    with pytest.raises(TelegramError) as info:
        parse_get_updates(409, body)
    assert info.value.code == 409
    assert "webhook" in str(info.value)


def test_too_many_requests_carries_retry_after() -> None:
    body = (
        b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7",'
        b'"parameters":{"retry_after":7}}'
    )
    with pytest.raises(TelegramError) as info:
        parse_get_updates(429, body)
    assert (info.value.code, info.value.retry_after) == (429, 7)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (502, b"<html>Bad Gateway</html>"),
        (200, b"[]"),
        (200, b'{"ok":true}'),
        (200, b'{"ok":true,"result":{}}'),
    ],
)
def test_unusable_answers_are_telegram_errors(status: int, body: bytes) -> None:
    with pytest.raises(TelegramError):
        parse_get_updates(status, body)


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(initial=0.5, cap=4.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(2.0 <= d <= 4.0 for d in delays[4:])
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_health_ready() -> None:
    health = ReceiverHealth()
    assert not health.ready()
    health.kafka_ok = True
    health.pending_update_count[1] = 5000
    assert health.ready()
    assert not health.ready(pending_limit=1000)
