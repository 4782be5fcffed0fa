"""Cutting updates out of a getUpdates body byte for byte, and validating an update."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.receiver.rawjson import (
    InvalidUpdate,
    RawJsonError,
    loads,
    parse_update,
    split_result,
)


def body_of(
    elements: list[bytes], sep: bytes = b",", before: bytes = b"", after: bytes = b""
) -> bytes:
    return b'{"ok":true,' + before + b'"result":[' + sep.join(elements) + b"]" + after + b"}"


def test_splits_compact_body() -> None:
    elements = [b'{"update_id":1,"message":{"text":"a"}}', b'{"update_id":2}']
    assert split_result(body_of(elements)) == elements


def test_empty_result() -> None:
    assert split_result(b'{"ok":true,"result":[]}') == []
    assert split_result(b'{ "ok" : true , "result" : [ \n ] }') == []


def test_strings_with_brackets_quotes_and_escapes() -> None:
    tricky = [
        rb'{"update_id":1,"text":"]}[{,\"\\"}',
        rb'{"update_id":2,"text":"\\\\","x":"\""}',
        rb'{"update_id":3,"url":"https:\/\/t.me\/x","t":"\u043f\u0440\u0438\ud83d\ude00"}',
        '{"update_id":4,"text":"привет 😀 \u2028"}'.encode(),
    ]
    assert split_result(body_of(tricky, sep=b" ,\n\t ")) == tricky


def test_other_keys_before_and_after_result_are_skipped() -> None:
    elements = [b'{"update_id":7,"a":[1,[2,{"b":"]"}]]}']
    before = b'"description":"result [ ] { }","n":-1.5e3,"t":true,"z":null,"arr":[[],{}],'
    after = b',"parameters":{"result":"not this one"}'
    assert split_result(body_of(elements, before=before, after=after)) == elements


def test_scalars_and_nested_arrays_as_elements() -> None:
    elements = [b"1", b"-2.5e-3", b"true", b"null", b'"s"', b"[1,[2]]", b"{}"]
    assert split_result(body_of(elements)) == elements


def test_escaped_result_key_is_recognised() -> None:
    body = b'{"ok":true,"r\\u0065sult":[{"update_id":1}]}'
    assert split_result(body) == [b'{"update_id":1}']


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"ok":true}',
        b'{"ok":true,"result":{}}',
        b'{"ok":true,"result":[{"update_id":1}',
        b'{"ok":true,"result":[{"update_id":1,"t":"unterminated}]}',
        b'{"ok":true "result":[]}',
        b'{"ok":true,"result":[1 2]}',
        b'{"ok":true,"result":[,]}',
    ],
)
def test_malformed_bodies_raise(body: bytes) -> None:
    with pytest.raises(RawJsonError):
        split_result(body)


def test_parse_update_accepts_object_with_int_update_id() -> None:
    update, update_id = parse_update(b'{"update_id": 42, "message": {}}')
    assert update_id == 42
    assert update["message"] == {}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "bad_json"),
        (b"", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'"string"', "bad_json"),
        (b"42", "bad_json"),
        (b"{}", "no_update_id"),
        (b'{"update_id": true}', "no_update_id"),
        (b'{"update_id": "1"}', "no_update_id"),
        (b'{"update_id": 1.0}', "no_update_id"),
        (b'{"update_id": null}', "no_update_id"),
    ],
)
def test_parse_update_refuses(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidUpdate) as info:
        parse_update(raw)
    assert info.value.reason == reason


def test_loads_falls_back_for_lone_surrogates() -> None:
    assert loads(b'{"t":"\\ud800"}') == {"t": "\ud800"}


json_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(json_text, json_values, max_size=5)


def serialise(value: Any, style: int) -> bytes:
    match style:
        case 0:
            return orjson.dumps(value)
        case 1:
            return json.dumps(value, ensure_ascii=True).encode()
        case 2:
            return json.dumps(value, ensure_ascii=False, indent=2).encode()
        case 3:
            return json.dumps(
                value, ensure_ascii=False, indent="\t", separators=(",", " : ")
            ).encode()
        case _:
            return (
                json.dumps(value, ensure_ascii=True, separators=(",", ":"))
                .replace("/", "\\/")
                .encode()
            )


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.tuples(json_objects, st.integers(0, 4)), max_size=8),
    sep=st.sampled_from([b",", b", ", b"\n,\n", b" \t,\r\n "]),
    pad=st.sampled_from([b"", b" ", b"\n  "]),
)
def test_slices_equal_original_bytes(
    values: list[tuple[dict[str, Any], int]], sep: bytes, pad: bytes
) -> None:
    elements = [serialise(v, style) for v, style in values]
    body = b"{" + pad + b'"ok"' + pad + b":true," + pad + b'"result"' + pad + b":" + pad + b"["
    body += pad + sep.join(elements) + pad + b"]" + pad + b"}"
    slices = split_result(body)
    assert slices == elements
    assert [loads(s) for s in slices] == [loads(e) for e in elements]


@settings(max_examples=100, deadline=None)
@given(values=st.lists(json_objects, max_size=6), indent=st.sampled_from([None, 1, 4]))
def test_whole_response_serialised_at_once(
    values: list[dict[str, Any]], indent: int | None
) -> None:
    body = json.dumps({"ok": True, "result": values}, indent=indent, ensure_ascii=False).encode()
    assert [loads(s) for s in split_result(body)] == [loads(orjson.dumps(v)) for v in values]
