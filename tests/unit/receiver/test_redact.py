"""Tokens never leave the process in a message."""

from __future__ import annotations

from worker.receiver.redact import MASK, describe, redact

TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


def test_known_token_is_masked_also_url_encoded_and_secret_alone() -> None:
    text = f"http://x/bot{TOKEN}/getUpdates http://x/bot{TOKEN.replace(':', '%3A')}/y {TOKEN[10:]}"
    out = redact(text, [TOKEN])
    assert TOKEN not in out
    assert TOKEN.partition(":")[2] not in out
    assert out.count(MASK) == 3


def test_token_shapes_are_masked_without_knowing_them() -> None:
    assert redact("url=https://api.telegram.org/bot987654:ABCdefGHIjklMNOpqrSTUvwx/getMe") == (
        f"url=https://api.telegram.org/bot{MASK}/getMe"
    )


def test_short_test_tokens_are_masked_when_known() -> None:
    assert redact("GET /bot123:abc/getUpdates", ["123:abc"]) == f"GET /bot{MASK}/getUpdates"


def test_describe_exception() -> None:
    exc = ValueError(f"Invalid URL http://h/bot{TOKEN}/getUpdates")
    assert describe(exc, [TOKEN]) == f"ValueError: Invalid URL http://h/bot{MASK}/getUpdates"
    assert describe(TimeoutError()) == "TimeoutError"
