"""Rows come back as the driver's named tuples, with the class built once per column set."""

from __future__ import annotations

from schema.store import cached_row_factory


def test_rows_match_the_driver_and_reuse_one_class() -> None:
    factory = cached_row_factory()
    first = factory(["[applied]", "chat_id"], [(False, 5)])
    second = factory(["[applied]", "chat_id"], [(True, 6), (False, 7)])
    assert first[0].applied is False and first[0].chat_id == 5
    assert [r.chat_id for r in second] == [6, 7]
    assert type(first[0]) is type(second[0])
    assert factory(["x"], []) == []
    other = factory(["x"], [(1,)])
    assert other[0].x == 1 and type(other[0]) is not type(first[0])
