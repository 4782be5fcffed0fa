"""Raw JSON: the exact bytes of each update, as Telegram sent them.

The Kafka value must be byte-identical to Telegram's, including fields aiogram does not know, so
updates are cut out of the ``getUpdates`` body by a small string-aware scanner instead of being
parsed and re-serialised. Parsing (orjson, with the standard library as a fallback for what
orjson refuses but JSON allows, such as lone surrogate escapes) is used only to validate and read.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_WHITESPACE = b" \t\n\r"
# A JSON string from its opening quote: runs of plain characters and escaped characters.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STRUCTURE = re.compile(rb'["\[\]{}]')
_SCALAR_END = re.compile(rb"[,\]}\s]")


class RawJsonError(ValueError):
    """The body is not the JSON shape expected; the message says where."""


class InvalidUpdate(ValueError):
    """A value that is not an update; ``reason`` is a metrics label (bad_json, no_update_id)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def loads(raw: bytes) -> Any:
    """Parse JSON strictly, accepting what the JSON grammar allows even where orjson does not."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise RawJsonError(f"not JSON: {exc}") from None


def update_id_of(update: Any) -> int:
    """The ``update_id`` of a parsed update, or :class:`InvalidUpdate`."""
    if not isinstance(update, dict):
        raise InvalidUpdate("bad_json", f"an update is a JSON object, not {_json_type(update)}")
    update_id = update.get("update_id")
    if type(update_id) is not int:
        raise InvalidUpdate("no_update_id", "the object has no integer update_id")
    return update_id


def parse_update(raw: bytes) -> tuple[dict[str, Any], int]:
    """Parse and validate one update: a JSON object with an integer (not boolean) update_id."""
    try:
        update = loads(raw)
    except RawJsonError as exc:
        raise InvalidUpdate("bad_json", str(exc)) from None
    return update, update_id_of(update)


def split_result(body: bytes) -> list[bytes]:
    """The raw bytes of each element of the top-level ``result`` array of a response body.

    The body must be a JSON object with an array ``result`` (the last one, as parsers keep the
    last of duplicate keys). Whitespace around elements is not part of their slices.
    """
    pos = _skip_ws(body, 0)
    if body[pos : pos + 1] != b"{":
        raise RawJsonError("the body is not a JSON object")
    pos = _skip_ws(body, pos + 1)
    result: list[bytes] | None = None
    if body[pos : pos + 1] == b"}":
        raise RawJsonError("the body has no result")
    while True:
        key_end = _string_end(body, pos)
        key = body[pos:key_end]
        pos = _skip_ws(body, key_end)
        if body[pos : pos + 1] != b":":
            raise RawJsonError(f"expected ':' at byte {pos}")
        pos = _skip_ws(body, pos + 1)
        if _key_text(key) == "result":
            result, pos = _split_array(body, pos)
        else:
            pos = _value_end(body, pos)
        pos = _skip_ws(body, pos)
        sep = body[pos : pos + 1]
        if sep == b"}":
            break
        if sep != b",":
            raise RawJsonError(f"expected ',' or '}}' at byte {pos}")
        pos = _skip_ws(body, pos + 1)
    if result is None:
        raise RawJsonError("the body has no result")
    return result


def _split_array(body: bytes, pos: int) -> tuple[list[bytes], int]:
    if body[pos : pos + 1] != b"[":
        raise RawJsonError(f"result is not an array (byte {pos})")
    items: list[bytes] = []
    pos = _skip_ws(body, pos + 1)
    if body[pos : pos + 1] == b"]":
        return items, pos + 1
    while True:
        end = _value_end(body, pos)
        items.append(body[pos:end])
        pos = _skip_ws(body, end)
        sep = body[pos : pos + 1]
        if sep == b"]":
            return items, pos + 1
        if sep != b",":
            raise RawJsonError(f"expected ',' or ']' at byte {pos}")
        pos = _skip_ws(body, pos + 1)


def _skip_ws(body: bytes, pos: int) -> int:
    n = len(body)
    while pos < n and body[pos] in _WHITESPACE:
        pos += 1
    return pos


def _string_end(body: bytes, pos: int) -> int:
    match = _STRING.match(body, pos)
    if match is None:
        raise RawJsonError(f"expected a complete string at byte {pos}")
    return match.end()


def _value_end(body: bytes, pos: int) -> int:
    first = body[pos : pos + 1]
    if first == b'"':
        return _string_end(body, pos)
    if first in (b"{", b"["):
        depth = 0
        while True:
            match = _STRUCTURE.search(body, pos)
            if match is None:
                raise RawJsonError("unbalanced brackets: the body ends inside a value")
            char = match.group()
            if char == b'"':
                pos = _string_end(body, match.start())
                continue
            pos = match.end()
            depth += 1 if char in (b"{", b"[") else -1
            if depth == 0:
                return pos
    if not first or first in b",]}:":
        raise RawJsonError(f"expected a value at byte {pos}")
    match = _SCALAR_END.search(body, pos)
    return match.start() if match else len(body)


def _key_text(key: bytes) -> str:
    if b"\\" not in key:
        return key[1:-1].decode("utf-8", "replace")
    value = loads(key)
    return value if isinstance(value, str) else ""


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
